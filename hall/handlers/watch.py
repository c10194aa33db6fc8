"""关注 (watch list): POST/DELETE /api/lots/{id}/watch, GET /api/me/watches.

Watching is idempotent: watching twice is one watch, unwatching a lot not
watched is fine. Watchers get the lot's `closing_soon` notice (workers/notify.py)
without having paid a deposit.
"""
from __future__ import annotations

from peewee import IntegrityError

from auction import keys
from hall.errors import ApiError
from hall.handlers.base import BaseHandler
from hall.validate import positive_id
from models import Lot, Watch

MAX_WATCHES = 500


class WatchHandler(BaseHandler):
    async def post(self, lot_id: str) -> None:
        user = self.require_user()
        lid = positive_id(lot_id)
        if await self.lots.row(lid, user) is None:
            raise ApiError("not_found", "no such lot")
        if await self.db.count(Watch.select().where(Watch.user == user.id)) >= MAX_WATCHES:
            if not await self.db.exists(Watch.select().where(
                    (Watch.user == user.id) & (Watch.lot == lid))):
                raise ApiError("conflict", f"at most {MAX_WATCHES} lots can be watched")
        try:
            await Watch.acreate(user=user.id, lot=lid)
        except IntegrityError:
            pass  # already watching (unique user+lot)
        self.send({"lot_id": lid, "watching": True})

    async def delete(self, lot_id: str) -> None:
        user = self.require_user()
        lid = positive_id(lot_id)
        await Watch.delete().where((Watch.user == user.id) & (Watch.lot == lid)).aexecute()
        self.send({"lot_id": lid, "watching": False})


class MyWatchesHandler(BaseHandler):
    async def get(self) -> None:
        user = self.require_user()
        rows = await self.db.list(
            Watch.select(Watch, Lot).join(Lot).where(Watch.user == user.id)
            .order_by(Watch.id.desc()).limit(MAX_WATCHES))
        # Live state (status, price, deadline) from Redis while the lot is published.
        pipe = self.redis.pipeline(transaction=False)
        for w in rows:
            pipe.hmget(keys.lot(w.lot_id), "status", "price", "deadline")
        states = await pipe.execute() if rows else []
        watches = []
        for w, (status, price, deadline) in zip(rows, states):
            lot = w.lot
            item = {"lot_id": lot.id, "session_id": lot.session_id, "title": lot.title,
                    "images": lot.images or [], "status": lot.status,
                    "price": lot.final_price, "deadline_ms": lot.ends_at_ms,
                    "watched_at_ms": w.created_at_ms}
            if status is not None:
                item["status"] = status.decode()
                item["price"] = int(price) if price and int(price) else None
                item["deadline_ms"] = int(deadline or 0)
            watches.append(item)
        self.send({"watches": watches})

