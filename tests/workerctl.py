"""Test helpers for faults: the stack's workers' consumers, conditions with a deadline."""
from __future__ import annotations

import asyncio
import time
from typing import Any, Callable

import redis
from celery import Celery
from kombu.exceptions import OperationalError

RECOVERY_S = 120  # the bound docs/reliability.md promises for these faults


async def consumers(stack, action: str, queue: str, destination: list | None = None) -> list:
    """cancel_consumer / add_consumer on the stack's workers; the names that answered.

    A fresh control connection each time, tried again once: earlier tests
    restart Redis, and a connection kombu pooled before that is dead."""
    def call() -> list:
        for attempt in range(3):
            control = Celery(broker=stack.redis.url, broker_pool_limit=0)
            try:
                kw = {"destination": destination} if destination else {}
                return getattr(control.control, action)(queue, reply=True, timeout=5, **kw)
            except (redis.exceptions.ConnectionError, OperationalError):
                if attempt == 2:
                    raise
            finally:
                control.close()
        return []
    replies = await asyncio.get_running_loop().run_in_executor(None, call)
    return [name for reply in replies for name in reply]


async def until(pred: Callable[[], Any], what: str, timeout: float = RECOVERY_S) -> Any:
    """Poll a condition that no event announces (database rows, broker sets, an
    answer that needs a round trip: `pred` may be a coroutine function)."""
    deadline = time.monotonic() + timeout
    while True:
        got = pred()
        if asyncio.iscoroutine(got):
            got = await got
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.05)
