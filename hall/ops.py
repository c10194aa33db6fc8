"""The operator feed: `overview` messages pushed to subscribed operator sockets.

A socket subscribes with `{"op":"ops"}` (operators only). While at least one
socket of this hall process is subscribed, one loop computes the overview
(the same body as GET /api/admin/overview) every `interval` seconds, encodes
it into one WebSocket frame and writes those bytes to every subscriber. The
loop ends when the last subscriber leaves; a new subscriber wakes it at once,
so the first overview arrives without waiting for the next tick.
"""
from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING, Any

from hall.errors import ApiError
from hall.rooms import text_frame

if TYPE_CHECKING:
    from hall.app import HallApplication

logger = logging.getLogger(__name__)

INTERVAL_S = 2.0

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def room_bidders(room: Any) -> int:
    """Logged-in users in a room, not counting operators (the dashboard joins
    every live room to draw its chart)."""
    n = 0
    for conns in room.by_user.values():
        identity = getattr(next(iter(conns)), "identity", None)
        if identity is None or not identity.is_operator:
            n += 1
    return n


class OpsFeed:
    def __init__(self, app: "HallApplication", interval: float = INTERVAL_S) -> None:
        self.app = app
        self.interval = interval
        self.subscribers: set[Any] = set()
        self.ticks = 0  # overviews computed (for tests and /metrics)
        self._task: asyncio.Task | None = None
        self._wake = asyncio.Event()

    def subscribe(self, conn: Any) -> None:
        """`{"op":"ops"}`: operators only; raises ApiError for anyone else."""
        identity = conn.identity
        if identity is None:
            raise ApiError("unauthorized", "log in as an operator")
        if not identity.is_operator:
            raise ApiError("forbidden", "operators only")
        if conn in self.subscribers:
            return
        self.subscribers.add(conn)
        self._wake.set()  # the newcomer gets an overview now, not in up to 2 s
        if self._task is None or self._task.done():
            self._task = self.app._spawn(self._run())

    def unsubscribe(self, conn: Any) -> None:
        self.subscribers.discard(conn)
        if not self.subscribers and self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        while self.subscribers:
            self._wake.clear()
            try:
                body = await self.app.overview()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis down etc.: try again next tick
                logger.warning("ops overview failed: %s", exc)
            else:
                self.ticks += 1
                body["type"] = "overview"
                frame = text_frame(_dumps(body).encode())
                for conn in tuple(self.subscribers):
                    conn.send_frame(frame)
            try:
                await asyncio.wait_for(self._wake.wait(), self.interval)
            except TimeoutError:  # asyncio.TimeoutError is TimeoutError (3.11+)
                pass
