"""GET /api/me/orders, GET /api/me/deposits, POST /api/orders/{id}/pay."""
from __future__ import annotations

from auction import tasknames
from auction.coupons import coupon_problem
from hall.errors import ApiError
from hall.handlers.base import BaseHandler
from hall.handlers.wechat import wechat_scene
from hall.tasks import submit
from hall.validate import choice, integer, positive_id
from models import AuctionSession, Coupon, Deposit, LedgerEntry, Lot, Order, Refund, now_ms


def order_public(o: Order) -> dict:
    return {**o.public(), "coupon_id": o.coupon_id, "paid_at_ms": o.paid_at_ms,
            "created_at_ms": o.created_at_ms}


def _lots_of(lot_ids: set) -> dict:
    """Title, first photo, status and session (title, status) of each lot, for /me."""
    if not lot_ids:
        return {}
    lots = list(Lot.select(Lot.id, Lot.title, Lot.images, Lot.status, Lot.auction_session)
                .where(Lot.id.in_(list(lot_ids))))
    sessions = {s.id: s for s in AuctionSession.select(
        AuctionSession.id, AuctionSession.title, AuctionSession.status).where(
        AuctionSession.id.in_(list({lot.session_id for lot in lots})))}
    out = {}
    for lot in lots:
        s = sessions.get(lot.session_id)
        out[lot.id] = {"lot_title": lot.title, "lot_image": (lot.images or [None])[0],
                       "lot_status": lot.status, "session_id": lot.session_id,
                       "session_title": s.title if s else None,
                       "session_status": s.status if s else None}
    return out


def _sessions_of(session_ids: set) -> dict:
    if not session_ids:
        return {}
    return {s.id: {"session_title": s.title, "session_status": s.status}
            for s in AuctionSession.select(AuctionSession.id, AuctionSession.title,
                                           AuctionSession.status)
            .where(AuctionSession.id.in_(list(session_ids)))}


class MyOrdersHandler(BaseHandler):
    async def get(self) -> None:
        user = self.require_user()
        rows = await self.db.list(Order.select().where(Order.user == user.id).order_by(Order.id))
        lots = await self.db.run(lambda: _lots_of({o.lot_id for o in rows}))
        self.send({"orders": [{**order_public(o), **lots.get(o.lot_id, {})} for o in rows]})


class MyDepositsHandler(BaseHandler):
    """Deposits (with what was credited to which order), refunds and the ledger."""

    async def get(self) -> None:
        user = self.require_user()
        deposits = await self.db.list(
            Deposit.select().where(Deposit.user == user.id).order_by(Deposit.id))
        refunds = await self.db.list(
            Refund.select().where(Refund.user == user.id).order_by(Refund.id))
        ledger = await self.db.list(
            LedgerEntry.select().where(LedgerEntry.user == user.id)
            .order_by(LedgerEntry.id.desc()).limit(200))
        lots = await self.db.run(lambda: _lots_of({d.lot_id for d in deposits if d.lot_id}))
        sessions = await self.db.run(lambda: _sessions_of({d.session_id for d in deposits}))
        refund_of = {r.deposit_id: r.status for r in refunds}
        self.send({
            "deposits": [{**sessions.get(d.session_id, {}), **lots.get(d.lot_id, {}),
                          **d.public(), "credited": d.credited, "credited_to": d.credited_to,
                          "created_at_ms": d.created_at_ms,
                          "refund_status": refund_of.get(d.id)} for d in deposits],
            "refunds": [{"id": r.id, "deposit_id": r.deposit_id, "amount": r.amount,
                         "method": r.method, "status": r.status, "at_ms": r.created_at_ms,
                         "done_at_ms": r.done_at_ms} for r in refunds],
            "ledger": [{"amount": e.amount, "balance_after": e.balance_after, "kind": e.kind,
                        "memo": e.memo, "at_ms": e.created_at_ms} for e in ledger],
        })


class OrderPayHandler(BaseHandler):
    async def post(self, order_id: str) -> None:
        user = self.require_user()
        oid = positive_id(order_id)
        data = self.json_body()
        method = choice(data, "method", ("balance", "wechat"))
        coupon_id = integer(data, "coupon_id", required=False, minimum=1)
        order = await Order.aget_or_none(Order.id == oid)
        if order is None or order.user_id != user.id:
            raise ApiError("not_found", "no such order")
        if order.status != "unpaid":
            raise ApiError("already_paid" if order.status == "paid" else "conflict",
                           f"this order is {order.status}")
        if coupon_id is not None:
            # Refused at once when plainly bad; the worker checks again.
            coupon = await Coupon.aget_or_none(Coupon.id == coupon_id)
            problem = coupon_problem(coupon, user.id, order, now_ms())
            if problem:
                raise ApiError(*problem)
        task_id = await submit(self.application, tasknames.PAY_ORDER, user.id,
                               "order_payment", {"user_id": user.id, "order_id": oid,
                                                 "method": method, "coupon_id": coupon_id,
                                                 **await wechat_scene(self, data, method,
                                                                      user.id)})
        self.send({"task_id": task_id}, 202)
