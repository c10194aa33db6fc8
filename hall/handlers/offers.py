"""Second-chance offers for bidders (API.md, "Trust"): GET /api/me/offers,
POST /api/offers/{id}/accept, POST /api/offers/{id}/decline.

The rules are auction/offers.py, run here in one write transaction each;
passing a lot on to the next bidder (after a decline, or an accept after the
deadline) is the workers' (`pass_on`, queued by name; the offer sweep does it
too should the queueing fail)."""
from __future__ import annotations

import logging

from auction import keys, offers, snapshot, tasknames
from hall.auth import Identity
from hall.errors import ApiError
from hall.handlers.base import BaseHandler
from hall.handlers.orders import order_public
from hall.tasks import submit
from hall.validate import positive_id
from models import Lot, Offer, now_ms

logger = logging.getLogger(__name__)


class BidderHandler(BaseHandler):
    def require_bidder(self) -> Identity:
        user = self.require_user()
        if user.is_operator:
            raise ApiError("forbidden", "offers are for bidders")
        return user

    async def pass_on(self, lot_id: int, user_id: int) -> None:
        try:
            await submit(self.application, tasknames.OFFER_PASS_ON, user_id, "offer",
                         {"lot_id": lot_id})
        except ApiError as exc:  # the broker away: the offer sweep passes it on
            logger.warning("could not queue pass_on for lot %s: %s", lot_id, exc.message)


def offer_row(offer: Offer, title: str | None, now: int) -> dict:
    row = {**offer.public(), "lot_title": title}
    if row["status"] == offers.PENDING and offer.expires_ms <= now:
        row["status"] = offers.EXPIRED  # the sweep records it in a moment
    return row


class MyOffersHandler(BidderHandler):
    """The bidder's second-chance offers, newest first (pending ones with their deadline)."""

    async def get(self) -> None:
        user = self.require_bidder()
        rows = await self.db.list(
            Offer.select(Offer, Lot.title.alias("lot_title")).join(Lot, on=(Offer.lot == Lot.id))
            .where(Offer.user == user.id).order_by(Offer.id.desc()).limit(200).objects())
        now = now_ms()
        self.send({"offers": [offer_row(o, o.lot_title, now) for o in rows],
                   "server_time_ms": now})


class OfferAcceptHandler(BidderHandler):
    """Accept a second-chance offer: 200 the (unpaid) order, paid like any order."""

    async def post(self, offer_id: str) -> None:
        user = self.require_bidder()
        oid = positive_id(offer_id)
        result = await self.in_transaction(lambda: offers.accept(user.id, oid, now_ms()))
        if result.expired:
            offer = await Offer.aget(Offer.id == oid)
            await self.pass_on(offer.lot_id, user.id)
            raise ApiError("offer_expired", "this offer has expired")
        # The room's "sold to" names the buyer now, not the bidder who forfeited
        # (auction/snapshot.py reads `buyer_name` over the engine's leader).
        await self.redis.hset(keys.lot(result.order.lot_id), mapping={
            "buyer_name": snapshot.mask_name(user.name), "buyer_price": result.order.amount})
        self.send({**order_public(result.order), "offer_id": oid})


class OfferDeclineHandler(BidderHandler):
    """Decline a second-chance offer: 200 the offer; the lot goes to the next bidder."""

    async def post(self, offer_id: str) -> None:
        user = self.require_bidder()
        oid = positive_id(offer_id)
        offer = await self.in_transaction(lambda: offers.decline(user.id, oid, now_ms()))
        await self.pass_on(offer.lot_id, user.id)
        self.send(offer.public())
