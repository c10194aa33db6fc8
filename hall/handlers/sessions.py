"""专场: the session list and a session with its lots."""
from __future__ import annotations

from peewee import JOIN, fn

from hall.errors import ApiError
from hall.handlers.base import BaseHandler
from hall.validate import positive_id
from models import AuctionSession, Lot

STATUSES = ("draft", "published", "live", "ended")


class SessionListHandler(BaseHandler):
    async def get(self) -> None:
        status = self.get_query_argument("status", None)
        user = self.current_user
        query = (AuctionSession.select(AuctionSession, fn.COUNT(Lot.id).alias("n"))
                 .join(Lot, JOIN.LEFT_OUTER).group_by(AuctionSession.id)
                 .order_by(AuctionSession.id.desc()))
        if status:
            if status not in STATUSES:
                raise ApiError("invalid", f"status must be one of {', '.join(STATUSES)}")
            query = query.where(AuctionSession.status == status)
        if user is None or not user.is_operator:
            query = query.where(AuctionSession.status != "draft")
        rows = await self.db.list(query.limit(500))
        covers = await self.db.run(lambda: _covers([s.id for s in rows]))
        self.send({"sessions": [{**s.public(lot_count=s.n), **covers.get(s.id, {})} for s in rows]})


def _covers(session_ids: list[int]) -> dict[int, dict]:
    """For the list: each session's cover photo (its first lot with one), the
    first and last deadline of its lots, and how many are live now."""
    out: dict[int, dict] = {}
    if not session_ids:
        return out
    for lot in (Lot.select(Lot.auction_session, Lot.images, Lot.ends_at_ms, Lot.status)
                .where(Lot.auction_session.in_(session_ids)).order_by(Lot.position, Lot.id)):
        s = out.setdefault(lot.session_id, {"cover": None, "first_ends_at_ms": None,
                                            "last_ends_at_ms": None, "live_lots": 0})
        if s["cover"] is None and lot.images:
            s["cover"] = lot.images[0]
        if lot.ends_at_ms:
            s["first_ends_at_ms"] = min(filter(None, (s["first_ends_at_ms"], lot.ends_at_ms)))
            s["last_ends_at_ms"] = max(filter(None, (s["last_ends_at_ms"], lot.ends_at_ms)))
        s["live_lots"] += lot.status == "live"
    return out


class SessionHandler(BaseHandler):
    async def get(self, session_id: str) -> None:
        sid = positive_id(session_id)
        session = await AuctionSession.aget_or_none(AuctionSession.id == sid)
        user = self.current_user
        if session is None or (session.status == "draft" and not (user and user.is_operator)):
            raise ApiError("not_found", "no such session")
        lot_ids = [lot.id for lot in await self.db.list(
            Lot.select(Lot.id).where(Lot.auction_session == sid).order_by(Lot.position, Lot.id))]
        lots = [await self.lots.snapshot(lid, user) for lid in lot_ids]
        body = session.public(lot_count=len(lot_ids))
        body["lots"] = [s for s in lots if s is not None]
        self.send(body)
