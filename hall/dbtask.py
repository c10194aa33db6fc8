"""Database reads that must not pin a connection to a long-lived task.

playhouse.pwasyncio binds a database connection to the asyncio task that
first queries, and gives it back only when that task ends. An HTTP request's
task ends with the request, but a WebSocket's task lives as long as the
socket: a query made in a socket's handshake (reading its account) would hold
a pooled connection for hours, and the eleventh socket would wait for one.
Such reads run in a task of their own, which returns its connection as it
finishes.
"""
from __future__ import annotations

import asyncio
import functools
from typing import Any, Awaitable, Callable, TypeVar

T = TypeVar("T")


def own_task(fn: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    """Decorate a coroutine function so each call runs in a short task of its own."""
    @functools.wraps(fn)
    async def run(*args: Any, **kwargs: Any) -> T:
        return await asyncio.ensure_future(fn(*args, **kwargs))
    return run
