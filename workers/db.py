"""The workers' database binding and transaction helper."""
from __future__ import annotations

import sys
from typing import Any

import models
import settings

_bound = False


def bind() -> Any:
    """Bind models.db to a plain (blocking) peewee database, once per process."""
    global _bound
    if not _bound:
        if settings.DATABASE_URL.startswith("postgres"):
            _cooperate_with_eventlet()
        models.init_db(settings.DATABASE_URL, asynchronous=False)
        _bound = True
    return models.db


def _cooperate_with_eventlet() -> None:
    """Under `-P eventlet`, make psycopg2 wait on the hub, not block it.

    psycopg2's C code does its own socket I/O, which eventlet's monkey patch
    cannot see; psycogreen installs a wait callback that yields to the hub.
    Other pools (threads, solo) need nothing, and nothing here imports
    eventlet unless the worker already runs on it.
    """
    eventlet = sys.modules.get("eventlet")
    if eventlet is None or not eventlet.patcher.is_monkey_patched("socket"):
        return
    from psycogreen.eventlet import patch_psycopg
    patch_psycopg()
