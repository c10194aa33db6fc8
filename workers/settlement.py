"""After the hammer: the winner's order, refunds of losers' deposits.

Each step is idempotent (unique order per lot, unique refund per deposit,
status checks in the UPDATE), so settling twice changes nothing.
"""
from __future__ import annotations

import logging

import settings
from hall import engine
from models import (AuctionSession, Deposit, LedgerEntry, Lot, Order, Refund, User, db, write_transaction,
                    now_ms)
from workers import bidlog, lotstate, publish

logger = logging.getLogger(__name__)


def refund_deposit(deposit: Deposit) -> bool:
    """Give a paid deposit back the way it came; False if it was not paid."""
    with write_transaction():
        moved = Deposit.update(status="refunded").where(
            (Deposit.id == deposit.id) & (Deposit.status == "paid")).execute()
        if not moved:
            return False
        Refund.create(user=deposit.user_id, deposit=deposit.id, amount=deposit.amount,
                      method=deposit.method,
                      status="done" if deposit.method == "balance" else "pending")
        if deposit.method == "balance":
            User.update(balance=User.balance + deposit.amount).where(
                User.id == deposit.user_id).execute()
            balance = User.get_by_id(deposit.user_id).balance
            LedgerEntry.create(user=deposit.user_id, amount=deposit.amount,
                               balance_after=balance, kind="refund",
                               ref=f"refund:{deposit.id}", memo=f"{deposit.scope} deposit refund")
    return True


def settle_lot(lot_id: int) -> dict:
    """Write the result of a closed lot: order for the winner, refunds for the rest."""
    state = {k: v for k, v in lotstate.client().hgetall(engine.lot_key(lot_id)).items()}
    if state.get("status") not in ("closed", "settled"):
        return {"lot_id": lot_id, "status": state.get("status"), "settled": False}
    bidlog.flush(f"settle-{lot_id}")  # the bids table is complete before we decide
    lot = Lot.get_by_id(lot_id)
    sold = state.get("result") == "sold"
    price = int(state.get("price") or 0)
    winner_id = int(state["leader"]) if sold else None
    closed_at = int(state.get("closed_at") or now_ms())
    order = None
    with write_transaction():
        Lot.update(status="settled", final_price=price or None, winner=winner_id,
                   bid_count=int(state.get("count") or 0), closed_at_ms=closed_at).where(
            Lot.id == lot_id).execute()
        if sold:
            order = Order.get_or_none(Order.lot == lot_id)
            if order is None:
                premium = price * lot.buyer_premium_bp // 10000
                credited = 0
                dep = Deposit.get_or_none((Deposit.lot == lot_id) & (Deposit.user == winner_id)
                                          & (Deposit.scope == "lot") & (Deposit.status == "paid"))
                if dep is not None:
                    credited = min(dep.amount, price + premium)
                    Deposit.update(status="credited").where(Deposit.id == dep.id).execute()
                order = Order.create(user=winner_id, lot=lot_id, amount=price, premium=premium,
                                     deposit_credited=credited, due=price + premium - credited,
                                     pay_by_ms=closed_at + settings.ORDER_PAY_WINDOW_S * 1000)
    refunded = []
    losers = Deposit.select().where((Deposit.lot == lot_id) & (Deposit.scope == "lot")
                                    & (Deposit.status == "paid"))
    for dep in list(losers):
        if dep.user_id != winner_id and refund_deposit(dep):
            refunded.append(dep.user_id)
            publish.to_user(dep.user_id, {"type": "refund", "lot_id": lot_id,
                                          "amount": dep.amount, "scope": "lot"})
    lotstate.mark_settled(lot_id)
    if order is not None:
        publish.to_user(winner_id, {"type": "won", "lot_id": lot_id, "order": order.public()})
    session_done = settle_session_if_done(lot.session_id)
    return {"lot_id": lot_id, "settled": True, "result": state.get("result"), "price": price,
            "order_id": order.id if order else None, "refunded": refunded,
            "session_ended": session_done}


def settle_session_if_done(session_id: int) -> bool:
    """When every lot has settled: end the session, settle session deposits."""
    open_lots = Lot.select().where((Lot.auction_session == session_id)
                                   & (Lot.status != "settled")).count()
    if open_lots:
        return False
    AuctionSession.update(status="ended", ended_at_ms=now_ms()).where(
        (AuctionSession.id == session_id) & (AuctionSession.status != "ended")).execute()
    deposits = Deposit.select().where((Deposit.auction_session == session_id)
                                      & (Deposit.scope == "session") & (Deposit.status == "paid"))
    for dep in list(deposits):
        first_order = (Order.select().join(Lot).where(
            (Order.user == dep.user_id) & (Lot.auction_session == session_id)
            & (Order.status == "unpaid")).order_by(Order.id).first())
        if first_order is not None:
            with write_transaction():
                moved = Deposit.update(status="credited").where(
                    (Deposit.id == dep.id) & (Deposit.status == "paid")).execute()
                if moved:
                    credit = min(dep.amount, first_order.due)
                    Order.update(deposit_credited=Order.deposit_credited + credit,
                                 due=Order.due - credit).where(Order.id == first_order.id).execute()
        elif refund_deposit(dep):
            publish.to_user(dep.user_id, {"type": "refund", "session_id": session_id,
                                          "amount": dep.amount, "scope": "session"})
    return True
