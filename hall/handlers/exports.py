"""Exports: a session's results.csv (operator) and an order's sale confirmation PDF
(its winner or an operator; anyone else 404, as if it did not exist)."""
from __future__ import annotations

from hall import documents
from hall.errors import ApiError
from hall.handlers.admin import AdminHandler
from hall.handlers.base import BaseHandler
from hall.validate import positive_id
from models import AuctionSession, Lot, Order, User


class ResultsCsvHandler(AdminHandler):
    """One row per lot: result, hammer, premium, due, winner, order status (CSV, UTF-8 BOM)."""

    async def get(self, session_id: str) -> None:
        sid = positive_id(session_id)
        session = await AuctionSession.aget_or_none(AuctionSession.id == sid)
        if session is None:
            raise ApiError("not_found", "no such session")
        lots = await self.db.list(Lot.select().where(Lot.auction_session == sid)
                                  .order_by(Lot.position, Lot.id))
        orders = {o.lot_id: o for o in await self.db.list(
            Order.select().where(Order.lot.in_([lot.id for lot in lots]))
            .order_by(Order.id))} if lots else {}  # the latest (a second-chance sale)
        winners = {u.id: u.username for u in await self.db.list(
            User.select(User.id, User.username).where(
                User.id.in_([o.user_id for o in orders.values()])))} if orders else {}
        rows = []
        for lot in lots:
            order = orders.get(lot.id)
            # The live state (Redis) leads the row until the settlement has written it down.
            snap = await self.lots.snapshot(lot.id, self.operator) or {}
            status = snap.get("status", lot.status)
            price = snap.get("price", lot.final_price)
            if status not in ("closed", "settled"):
                result = status
            elif order is not None or (price and snap.get("reserve_met", True)):
                result = "sold"
            else:
                result = "unsold"
            hammer = order.amount if order else price if result == "sold" else None
            rows.append({
                "lot_id": lot.id, "position": lot.position + 1, "title": lot.title,
                "result": result, "hammer_yuan": documents.yuan(hammer),
                "premium_yuan": documents.yuan(order.premium) if order else "",
                "due_yuan": documents.yuan(order.due) if order else "",
                "winner": winners.get(order.user_id, "") if order else "",
                "order_status": order.status if order else "",
                "bid_count": snap.get("bid_count", lot.bid_count),
                "closed_at": documents.when(lot.closed_at_ms),
            })
        self.set_header("Content-Type", "text/csv; charset=utf-8")
        self.set_header("Content-Disposition",
                        f'attachment; filename="session-{sid}-results.csv"')
        self.set_status(200)
        self.finish(documents.results_csv(rows))


class ConfirmationPdfHandler(BaseHandler):
    """成交确认书: the sale confirmation of an order, as PDF (its winner or an operator)."""

    async def get(self, order_id: str) -> None:
        user = self.require_user()
        oid = positive_id(order_id)
        order = await Order.aget_or_none(Order.id == oid)
        if order is None or not (user.is_operator or order.user_id == user.id):
            raise ApiError("not_found", "no such order")
        if order.status == "forfeited":
            raise ApiError("conflict", "this order was forfeited; there is no sale to confirm")
        lot = await Lot.aget(Lot.id == order.lot_id)
        session = await AuctionSession.aget(AuctionSession.id == lot.session_id)
        winner = await User.aget(User.id == order.user_id)
        snap = await self.lots.snapshot(lot.id, user) or {}
        fields = {"order_id": order.id, "lot_id": lot.id, "lot_title": lot.title,
                  "session_id": session.id, "session_title": session.title,
                  "hammer": order.amount, "premium": order.premium,
                  "deposit_credited": order.deposit_credited, "due": order.due,
                  "winner": winner.username, "closed_at_ms": lot.closed_at_ms,
                  "chain_head": snap.get("chain_head")}
        try:
            # Laying out the page and subsetting the font takes a moment: off the IOLoop.
            pdf = await self.application.run_blocking(documents.confirmation_pdf, fields,
                                                      self.application.receipts.signer)
        except documents.NoFont as exc:
            raise ApiError("unavailable", str(exc))
        self.set_header("Content-Type", "application/pdf")
        self.set_header("Content-Disposition",
                        f'inline; filename="confirmation-{order.id}.pdf"')
        self.set_status(200)
        self.finish(pdf)
