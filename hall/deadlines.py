"""The hall closes due lots too, and keeps the database's lot rows in step.

Workers close lots on time (beat's sweep and its short-ETA timers). The hall
runs the same atomic close every HALL_SWEEP_INTERVAL_S as a backstop, so a lot
closes, and its room hears it, while no worker or beat is running. The close
(Lua) hands each lot to exactly one caller, whichever hall or worker that is,
and puts it in `lots:unsettled`: the hall queues its settlement, the workers
run it when they can, and the sweep queues it again if that message is lost.

Whoever closed a lot, its database row follows: every lot Redis has closed and
not yet settled is written `closed` (with its closing time) if the row still
says it is open, so the database never says `live` for a lot that is over.
"""
from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, Awaitable, Callable

from auction import engine, keys, tasknames
from models import Lot

logger = logging.getLogger(__name__)

OPEN_IN_DB = ("scheduled", "live", "paused")


class Deadlines:
    def __init__(self, redis: Any, database: Any, celery: Any,
                 run_blocking: Callable[..., Awaitable[Any]], interval_s: float) -> None:
        self.redis = redis
        self.db = database
        self.celery = celery
        self.run_blocking = run_blocking
        self.interval_s = interval_s
        self.close_due = redis.register_script(engine.CLOSE_DUE_LUA)

    async def tick(self) -> dict:
        """Close what is due, queue its settlement; bring closed rows up to date."""
        closed = json.loads(await self.close_due(keys=[keys.DEADLINES], args=[engine.MAXLEN, 1000]))
        if closed:
            def queue() -> None:
                with self.celery.producer_or_acquire() as producer:
                    for lot_id in closed:
                        tasknames.send(self.celery, tasknames.SETTLE_LOT, args=(lot_id,),
                                       producer=producer)
            try:
                await self.run_blocking(queue)
            except Exception as exc:  # lots:unsettled re-queues them after the grace period
                logger.warning("closed lots %s; could not queue their settlement: %r", closed, exc)
        marked = await self.mark_closed()
        return {"closed": closed, "marked": marked}

    async def mark_closed(self) -> list[int]:
        """Write `closed` into the rows of lots Redis has closed and not settled."""
        unsettled = {int(m): int(score) for m, score in
                     await self.redis.zrange(keys.UNSETTLED, 0, 999, withscores=True)}
        if not unsettled:
            return []
        return await asyncio.ensure_future(self._mark(unsettled))  # a task of its own: no pinned connection

    async def _mark(self, unsettled: dict[int, int]) -> list[int]:
        def run() -> list[int]:
            stale = [lot.id for lot in Lot.select(Lot.id).where(
                Lot.id.in_(list(unsettled)) & Lot.status.in_(OPEN_IN_DB))]
            for lot_id in stale:
                Lot.update(status="closed", closed_at_ms=unsettled[lot_id]).where(
                    (Lot.id == lot_id) & Lot.status.in_(OPEN_IN_DB)).execute()
            return stale
        return await self.db.run(run)

    async def run(self) -> None:
        """For as long as the hall runs."""
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis or the database away: next round
                logger.warning("deadline sweep failed: %r", exc)
            await asyncio.sleep(self.interval_s)
