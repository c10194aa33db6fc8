"""The Celery workers: money, lot lifecycle, bid log, notifications.

Start with `celery -A workers worker -P eventlet` (the pool is chosen on the
command line only, never in config: eventlet must patch before anything else).
Nothing here needs fork or POSIX-only modules, so workers also run on Windows.
"""
from workers.celery import app

__all__ = ["app"]
