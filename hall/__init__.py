"""The auction hall: Tornado HTTP API, WebSocket rooms and pages.

Never imports eventlet (it belongs on the worker command line only): the hall
runs on asyncio. It imports nothing of workers/ but the Celery app, as a client.
"""
