"""The wallet (钱包): POST/GET /api/me/topups (充值 by WeChat Pay) and
GET /api/me/wallet (the balance and a readable statement).

A top-up is queued like a WeChat deposit (202 + task id, the prepay in the
task's result); the worker credits the balance once the payment is notified
(workers/topups.py) and pushes `topup` to the owner's sockets.

The statement puts every movement of the user's money in one list, newest
first: the balance's ledger entries (top-ups, deposits and orders paid from
the balance, refunds into it, operator credits) and the WeChat payments and
refunds that never touch the balance. Each names what it was for (the lot's
and the session's titles), never a raw memo or task id.
"""
from __future__ import annotations

from typing import Any

import settings
from auction import tasknames
from hall.errors import ApiError
from hall.handlers.base import BaseHandler
from hall.handlers.wechat import wechat_scene
from hall.tasks import submit
from models import (
    AuctionSession,
    Deposit,
    LedgerEntry,
    Lot,
    Order,
    Payment,
    PaymentRefund,
    Refund,
    TopUp,
    User,
    now_ms,
)

STATEMENT_LIMIT = 200


def topup_amount(data: dict) -> int:
    """`amount`: integer fen from 1 to HALL_TOPUP_MAX_FEN; `invalid` otherwise."""
    value = data.get("amount")
    if value is None:
        raise ApiError("invalid", "amount is required (integer fen)")
    if type(value) is not int:  # floats, strings and booleans alike
        raise ApiError("invalid", "amount must be an integer number of fen")
    if not 0 < value <= settings.TOPUP_MAX_FEN:
        raise ApiError("invalid", f"amount must be from 1 to {settings.TOPUP_MAX_FEN} fen")
    return value


class MyTopUpsHandler(BaseHandler):
    """充值: start a top-up by WeChat Pay (POST, 202 + task id); the user's top-ups (GET)."""

    async def get(self) -> None:
        user = self.require_user()
        rows = await self.db.list(TopUp.select().where(TopUp.user == user.id)
                                  .order_by(TopUp.id.desc()).limit(50))
        self.send({"topups": [t.public() for t in rows], "max_amount": settings.TOPUP_MAX_FEN})

    async def post(self) -> None:
        user = self.require_user()
        data = self.json_body()
        amount = topup_amount(data)
        task_id = await submit(self.application, tasknames.TOPUP, user.id, "topup",
                               {"user_id": user.id, "amount": amount,
                                **await wechat_scene(self, data, "wechat", user.id)})
        self.send({"task_id": task_id}, 202)


def _titles(deposit_ids: set[int], order_ids: set[int]) -> tuple[dict, dict]:
    """What each deposit and order was for: lot and session titles."""
    deposits: dict[int, dict] = {}
    if deposit_ids:
        for d in Deposit.select().where(Deposit.id.in_(list(deposit_ids))):
            deposits[d.id] = {"deposit_id": d.id, "scope": d.scope, "lot_id": d.lot_id,
                              "session_id": d.session_id}
    orders: dict[int, dict] = {}
    if order_ids:
        for o in Order.select().where(Order.id.in_(list(order_ids))):
            orders[o.id] = {"order_id": o.id, "lot_id": o.lot_id}
    lot_ids = {x["lot_id"] for x in (*deposits.values(), *orders.values()) if x["lot_id"]}
    lots = {lot.id: lot for lot in Lot.select(Lot.id, Lot.title, Lot.auction_session)
            .where(Lot.id.in_(list(lot_ids)))} if lot_ids else {}
    session_ids = {d["session_id"] for d in deposits.values()} | {
        lot.session_id for lot in lots.values()}
    sessions = {s.id: s.title for s in AuctionSession.select(AuctionSession.id, AuctionSession.title)
                .where(AuctionSession.id.in_(list(session_ids)))} if session_ids else {}
    for x in (*deposits.values(), *orders.values()):
        lot = lots.get(x["lot_id"]) if x["lot_id"] else None
        x["lot_title"] = lot.title if lot else None
        sid = x.get("session_id") or (lot.session_id if lot else None)
        x["session_id"] = sid
        x["session_title"] = sessions.get(sid)
    return deposits, orders


def statement(user_id: int) -> dict[str, Any]:
    """The wallet of one user (synchronous; run through `db.run`)."""
    user = User.get_by_id(user_id)
    ledger = list(LedgerEntry.select().where(LedgerEntry.user == user_id)
                  .order_by(LedgerEntry.id.desc()).limit(STATEMENT_LIMIT))
    payments = list(Payment.select().where((Payment.user == user_id) & (Payment.status == "paid")
                                           & (Payment.method == "wechat"))
                    .order_by(Payment.id.desc()).limit(STATEMENT_LIMIT))
    refunds = list(Refund.select().where((Refund.user == user_id) & (Refund.method == "wechat"))
                   .order_by(Refund.id.desc()).limit(STATEMENT_LIMIT))
    returned = list(PaymentRefund.select().where(PaymentRefund.user == user_id)
                    .order_by(PaymentRefund.id.desc()).limit(STATEMENT_LIMIT))
    deposit_ids: set[int] = set()
    order_ids: set[int] = set()
    topup_ids: set[int] = set()
    refs: list[tuple[str, int | None]] = []
    for e in ledger:
        kind, _, key = e.ref.partition(":")
        ident = int(key) if key.isdigit() else None
        refs.append((kind, ident))
        if kind in ("deposit", "refund") and ident:
            deposit_ids.add(ident)
        elif kind == "order" and ident:
            order_ids.add(ident)
        elif kind == "topup" and ident:
            topup_ids.add(ident)
    for p in payments:
        if p.deposit_id:
            deposit_ids.add(p.deposit_id)
        if p.order_id:
            order_ids.add(p.order_id)
    deposit_ids |= {r.deposit_id for r in refunds}
    paid_for = {p.id: p for p in Payment.select().where(
        Payment.id.in_([r.payment_id for r in returned]))} if returned else {}
    for p in paid_for.values():
        if p.deposit_id:
            deposit_ids.add(p.deposit_id)
        if p.order_id:
            order_ids.add(p.order_id)
    deposits, orders = _titles(deposit_ids, order_ids)

    def about(deposit_id: int | None = None, order_id: int | None = None) -> dict:
        if deposit_id and deposit_id in deposits:
            return dict(deposits[deposit_id])
        if order_id and order_id in orders:
            return dict(orders[order_id])
        return {}

    entries: list[dict[str, Any]] = []
    for e, (kind, ident) in zip(ledger, refs):
        item = {"at_ms": e.created_at_ms, "kind": e.kind, "amount": e.amount,
                "balance_after": e.balance_after, "via": "balance", "status": "done"}
        if kind in ("deposit", "refund"):
            item.update(about(deposit_id=ident))
        elif kind == "order":
            item.update(about(order_id=ident))
        elif kind == "topup":
            item.update(topup_id=ident, via="wechat")
        entries.append(item)
    closed_trades = {t.out_trade_no: t.id for t in TopUp.select(TopUp.id, TopUp.out_trade_no).where(
        (TopUp.user == user_id) & (TopUp.status == "closed")
        & TopUp.out_trade_no.in_([p.out_trade_no for p in payments]
                                 + [p.out_trade_no for p in paid_for.values()]))}
    for p in payments:
        if not (p.deposit_id or p.order_id):
            if p.out_trade_no in closed_trades:
                # Paid after its top-up had closed: never credited, going back
                # (its payment_refund entry).
                entries.append({"at_ms": p.created_at_ms, "kind": "topup_closed",
                                "amount": -p.amount, "balance_after": None, "via": "wechat",
                                "status": "done", "topup_id": closed_trades[p.out_trade_no]})
            continue  # a top-up: its ledger entry says it
        entries.append({"at_ms": p.created_at_ms, "kind": "deposit" if p.deposit_id else "order",
                        "amount": -p.amount, "balance_after": None, "via": "wechat",
                        "status": "done", **about(p.deposit_id, p.order_id)})
    for r in refunds:
        entries.append({"at_ms": r.created_at_ms, "kind": "refund", "amount": r.amount,
                        "balance_after": None, "via": "wechat", "status": r.status,
                        **about(deposit_id=r.deposit_id)})
    for r in returned:
        p = paid_for.get(r.payment_id)
        entries.append({"at_ms": r.created_at_ms, "kind": "payment_refund", "amount": r.amount,
                        "balance_after": None, "via": "wechat", "status": r.status,
                        "reason": r.reason,
                        **(about(p.deposit_id, p.order_id) if p is not None else {}),
                        **({"topup_id": closed_trades[p.out_trade_no]}
                           if p is not None and p.out_trade_no in closed_trades else {})})
    entries.sort(key=lambda x: x["at_ms"] or 0, reverse=True)
    pending = [t.public() for t in TopUp.select().where(
        (TopUp.user == user_id) & (TopUp.status == "pending")).order_by(TopUp.id.desc()).limit(5)]
    # Closed unpaid at their expiry in the last day: said, so the user knows
    # nothing was taken and the QR code they may still hold is void.
    closed = [t.public() for t in TopUp.select().where(
        (TopUp.user == user_id) & (TopUp.status == "closed")
        & (TopUp.closed_at_ms > now_ms() - 86_400_000)).order_by(TopUp.id.desc()).limit(3)]
    return {"balance": user.balance, "topup_max": settings.TOPUP_MAX_FEN,
            "entries": entries[:STATEMENT_LIMIT], "pending_topups": pending,
            "closed_topups": closed}


class MyWalletHandler(BaseHandler):
    """The wallet: balance, the largest top-up, and the statement of every movement."""

    async def get(self) -> None:
        user = self.require_user()
        if await User.aget_or_none(User.id == user.id) is None:
            raise ApiError("unauthorized", "this account no longer exists")
        self.send(await self.db.run(lambda: statement(user.id)))
