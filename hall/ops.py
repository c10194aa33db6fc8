"""The operator overview, and the feed that pushes it to operator sockets.

`Overview.compute()` answers GET /api/admin/overview: rooms across every hall
process (each reports its own every 2 s, hall/audience.py), the live lots'
state, queue depths, workers online, the task rate and recent failures.

`OpsFeed`: a socket subscribes with `{"op":"ops"}` (operators only). While at
least one socket of this hall process is subscribed, one loop computes the
overview every `interval` seconds, encodes it into one WebSocket frame and
writes those bytes to every subscriber. The loop ends when the last
subscriber leaves; a new subscriber wakes it at once, so the first overview
arrives without waiting for the next tick.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any, Awaitable, Callable

import settings
from auction import keys, tasknames, wire
from hall.errors import ApiError
from hall.frames import text_frame
from hall.dbtask import own_task
from hall.lots import LotReader
from models import AuctionSession, Lot

logger = logging.getLogger(__name__)

INTERVAL_S = 2.0
TASK_RATE_WINDOW_S = 10
RECENT_FAILURES = 20
# Closed and settled lots stay on the dashboard, with their result, while
# their session runs and this long after it ended (not only while watched).
KEEP_ENDED_MS = 2 * 3600 * 1000
MAX_KEPT_LOTS = 200


def room_bidders(room: Any) -> int:
    """Logged-in users in a room, not counting operators (the dashboard joins
    every live room to draw its chart)."""
    n = 0
    for conns in room.by_user.values():
        identity = getattr(next(iter(conns)), "identity", None)
        if identity is None or not identity.is_operator:
            n += 1
    return n


class Overview:
    def __init__(self, redis: Any, lots: LotReader, celery: Any,
                 run_blocking: Callable[..., Awaitable[Any]]) -> None:
        self.redis = redis
        self.lots = lots
        self.celery = celery
        self.run_blocking = run_blocking

    async def compute(self) -> dict:
        rooms, halls = await self._rooms()
        lengths, failures, rate = await self._tasks()
        return {
            "rooms": sorted(rooms.values(), key=lambda r: r["lot_id"]),
            "halls": halls,
            "queues": dict(zip(tasknames.QUEUES, lengths)),
            "workers": await self.run_blocking(self._ping_workers),
            "recent_failures": failures,
            "task_rate_per_s": rate,
            "fair_warning_s": settings.FAIR_WARNING_S,  # what the console's confirmation says
            "server_time_ms": int(time.time() * 1000),
        }

    async def _rooms(self) -> tuple[dict[int, dict], list[dict]]:
        """Connections per room summed over the hall processes, with each live lot's state."""
        rooms: dict[int, dict] = {}
        halls = []

        def room(lot_id: int) -> dict:
            return rooms.setdefault(lot_id, {"lot_id": lot_id, "connections": 0, "bidders": 0})

        async for key in self.redis.scan_iter(match=keys.HALL_STATS_PREFIX + "*", count=100):
            raw = await self.redis.get(key)
            if not raw:
                continue
            stats = json.loads(raw)
            halls.append({"name": key.decode()[len(keys.HALL_STATS_PREFIX):],
                          "connections": stats["connections"]})
            for lid, (conns, bidders) in stats["rooms"].items():
                r = room(int(lid))
                r["connections"] += conns
                r["bidders"] += bidders
        live_ids = [int(x) for x in await self.redis.zrange(keys.DEADLINES, 0, -1)]
        kept = await _running_sessions_lots(self.lots.db, int(time.time() * 1000))
        for lid in set(live_ids) | set(rooms) | set(kept):
            snap = await self.lots.snapshot(lid, None)
            if snap is not None:
                room(lid).update(title=snap["title"], status=snap["status"], price=snap["price"],
                                 deadline_ms=snap["deadline_ms"], bid_count=snap["bid_count"],
                                 session_id=snap["session_id"],
                                 fair_warning_ends_ms=snap.get("fair_warning_ends_ms"),
                                 result=snap.get("result"))
        return rooms, halls

    async def _tasks(self) -> tuple[list[int], list[dict], float]:
        """Queue lengths, recent failures, and tasks finished per second lately."""
        pipe = self.redis.pipeline(transaction=False)
        for q in tasknames.QUEUES:
            pipe.llen(q)
        pipe.lrange(keys.TASK_FAILURES, 0, RECENT_FAILURES - 1)
        now_s = int(time.time())
        pipe.mget([keys.tasks_done(s) for s in range(now_s - TASK_RATE_WINDOW_S, now_s)])
        *lengths, failures, done = await pipe.execute()
        rate = round(sum(int(n) for n in done if n) / TASK_RATE_WINDOW_S, 2)
        return lengths, [json.loads(f) for f in failures], rate

    def _ping_workers(self) -> list[str]:
        try:
            replies = self.celery.control.ping(timeout=0.5) or []
        except Exception:
            return []
        return sorted(name for reply in replies for name in reply)


class OpsFeed:
    def __init__(self, compute: Callable[[], Awaitable[dict]],
                 spawn: Callable[[Any], asyncio.Task], interval: float = INTERVAL_S) -> None:
        self.compute = compute
        self.spawn = spawn
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
            self._task = self.spawn(self._run())

    def unsubscribe(self, conn: Any) -> None:
        self.subscribers.discard(conn)
        if not self.subscribers and self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        while self.subscribers:
            self._wake.clear()
            try:
                body = await self.compute()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis down etc.: try again next tick
                logger.warning("ops overview failed: %s", exc)
            else:
                self.ticks += 1
                body["type"] = "overview"
                frame = text_frame(wire.dumpb(body))
                for conn in tuple(self.subscribers):
                    conn.send_frame(frame)
            try:
                await asyncio.wait_for(self._wake.wait(), self.interval)
            except TimeoutError:  # asyncio.TimeoutError is TimeoutError (3.11+)
                pass


@own_task  # the feed's task lives as long as the dashboard: do not pin a connection to it
async def _running_sessions_lots(database: Any, now_ms: int) -> list[int]:
    """Lots of published or live sessions, and of sessions that ended lately."""
    query = (Lot.select(Lot.id).join(AuctionSession, on=(Lot.auction_session == AuctionSession.id))
             .where(AuctionSession.status.in_(("published", "live"))
                    | (AuctionSession.ended_at_ms > now_ms - KEEP_ENDED_MS))
             .order_by(Lot.id.desc()).limit(MAX_KEPT_LOTS))
    return [lot.id for lot in await database.list(query)]

