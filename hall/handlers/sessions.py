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
        self.send({"sessions": [s.public(lot_count=s.n) for s in rows]})


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
