"""After the hammer: the winner's order, refunds of losers' deposits.

Each money movement is one transaction and idempotent (one live order per
lot, a unique refund per deposit, status checks in every UPDATE), so settling
twice, or a second worker finishing what a killed one started, changes
nothing that was already done:

1. one transaction: the lot `settled` in the database; for a sale, the order
   (hammer price + buyer's premium) with the winner's lot deposit credited up
   to what is due and the rest of it refunded;
2. one transaction per losing lot deposit: its refund (workers/refunds.py);
3. when every lot of the session has settled: the session ends, and each
   paid session deposit is credited to its owner's first unpaid order of the
   session (up to what is due, the rest refunded), or refunded in full.

A refund is announced (the gateway call queued, the owner told) by an
after-commit hook of the transaction that wrote it; `won` and the order
messages go out after the lot's own transactions have committed. A worker
killed between a commit and its hook leaves a refund nobody was told of, so
a run that finds the lot (or session) already settled tells the owners of
its refunds again (a socket message twice is harmless; the SMS goes once).
"""
from __future__ import annotations

import logging
from collections.abc import Callable

import settings
from auction import keys
from models import AuctionSession, Deposit, Lot, Order, now_ms, write_transaction
from workers import bidlog, lotstate, notify, publish, refunds

logger = logging.getLogger(__name__)

Dispatcher = Callable[[int], None]


def credit_deposit(deposit_id: int, order_id: int, dispatcher: Dispatcher | None = None
                   ) -> tuple[int, object | None] | None:
    """Credit a paid deposit to an unpaid order, up to what is due; refund the
    rest. One transaction. Returns (credited, refund or None), or None if the
    deposit was no longer paid or the order no longer unpaid."""
    with write_transaction():
        deposit = Deposit.get_by_id(deposit_id)
        order = Order.get_by_id(order_id)
        if deposit.status != "paid" or order.status != "unpaid":
            return None
        credit = min(deposit.amount, order.due)
        moved = Deposit.update(status="credited", credited=credit, credited_to=order_id).where(
            (Deposit.id == deposit_id) & (Deposit.status == "paid")).execute()
        if not moved:
            return None
        Order.update(deposit_credited=Order.deposit_credited + credit,
                     due=Order.due - credit).where(Order.id == order_id).execute()
        if order.due - credit == 0:
            Order.update(status="paid", paid_at_ms=now_ms()).where(
                (Order.id == order_id) & (Order.status == "unpaid")).execute()
        refund = None
        if credit < deposit.amount:
            refund = refunds.refund_in_transaction(deposit, deposit.amount - credit, dispatcher)
    return credit, refund


def settle_lot(lot_id: int, dispatcher: Dispatcher | None = None) -> dict:
    """Write the result of a closed lot: order for the winner, refunds for the rest."""
    state = lotstate.client().hgetall(keys.lot(lot_id))
    if state.get("status") not in ("closed", "settled"):
        return {"lot_id": lot_id, "status": state.get("status"), "settled": False}
    bidlog.flush(f"settle-{lot_id}")  # the bids table is complete before we decide
    sold = state.get("result") == "sold"
    result = settle_closed(
        lot_id, sold=sold, price=int(state.get("price") or 0),
        winner_id=int(state["leader"]) if sold else None,
        closed_at=int(state.get("closed_at") or now_ms()),
        bid_count=int(state.get("count") or 0), dispatcher=dispatcher,
        after_lot=lambda: lotstate.mark_settled(lot_id))
    result["result"] = state.get("result")
    return result


def settle_closed(lot_id: int, *, sold: bool, price: int, winner_id: int | None,
                  closed_at: int, bid_count: int, dispatcher: Dispatcher | None = None,
                  after_lot: Callable[[], None] | None = None) -> dict:
    """Settle a lot whose result is known (the database side of settle_lot)."""
    lot = Lot.get_by_id(lot_id)
    with write_transaction():
        first_run = Lot.update(status="settled", final_price=price or None, winner=winner_id,
                               bid_count=bid_count, closed_at_ms=closed_at).where(
            (Lot.id == lot_id) & (Lot.status != "settled")).execute()
        # The hammer's order (the first of the lot: later ones are
        # second-chance offers' after a forfeit, auction/offers.py).
        order = (Order.select().where(Order.lot == lot_id).order_by(Order.id).first()
                 if sold else None)
        if sold and order is None:
            premium = price * lot.buyer_premium_bp // 10000
            order = Order.create(user=winner_id, lot=lot_id, amount=price, premium=premium,
                                 deposit_credited=0, due=price + premium,
                                 pay_by_ms=closed_at + settings.ORDER_PAY_WINDOW_S * 1000)
    bidlog.extend_chain(lot_id)  # settled: its chain_head, if every bid is stored
    # The winner's lot deposit goes to the order (also when a redelivered
    # settlement finds it still paid because the first run died just here).
    announced: set[int] = set()  # deposits whose refunds this run wrote (and announced)
    if order is not None:
        dep = Deposit.get_or_none((Deposit.lot == lot_id) & (Deposit.user == winner_id)
                                  & (Deposit.scope == "lot") & (Deposit.status == "paid"))
        if dep is not None:
            got = credit_deposit(dep.id, order.id, dispatcher)
            if got is not None and got[1] is not None:
                announced.add(dep.id)
    refunded = []
    losers = Deposit.select().where((Deposit.lot == lot_id) & (Deposit.scope == "lot")
                                    & (Deposit.status == "paid"))
    for dep in list(losers):
        if dep.user_id == winner_id:
            continue
        if refunds.refund_deposit(dep.id, dispatcher) is not None:
            refunded.append(dep.user_id)
            announced.add(dep.id)
    if not first_run:
        # An earlier run got this far before: it may have died between a
        # refund's commit and its announcement.
        refunds.tell_owners_again(Deposit.select(Deposit.id).where(
            (Deposit.lot == lot_id) & (Deposit.scope == "lot")), announced)
    if after_lot is not None:
        after_lot()
    if order is not None:
        order = Order.get_by_id(order.id)
        publish.to_user(winner_id, {"type": "won", "lot_id": lot_id, "order": order.public()})
        notify.lot_won(winner_id, lot_id, order)  # SMS, on the notify queue
    session_done = settle_session_if_done(lot.session_id, dispatcher)
    return {"lot_id": lot_id, "settled": True, "price": price,
            "order_id": order.id if order else None, "refunded": refunded,
            "session_ended": session_done}


def settle_session_if_done(session_id: int, dispatcher: Dispatcher | None = None) -> bool:
    """When every lot has settled: end the session, settle session deposits."""
    open_lots = Lot.select().where((Lot.auction_session == session_id)
                                   & (Lot.status != "settled")).count()
    if open_lots:
        return False
    with write_transaction():
        first_run = AuctionSession.update(status="ended", ended_at_ms=now_ms()).where(
            (AuctionSession.id == session_id) & (AuctionSession.status != "ended")).execute()
    announced: set[int] = set()
    deposits = Deposit.select().where((Deposit.auction_session == session_id)
                                      & (Deposit.scope == "session") & (Deposit.status == "paid"))
    for dep in list(deposits):
        first_order = (Order.select().join(Lot).where(
            (Order.user == dep.user_id) & (Lot.auction_session == session_id)
            & (Order.status == "unpaid")).order_by(Order.id).first())
        if first_order is not None:
            got = credit_deposit(dep.id, first_order.id, dispatcher)
            if got is not None:
                if got[1] is not None:
                    announced.add(dep.id)
                publish.to_user(dep.user_id, {
                    "type": "order", "order": Order.get_by_id(first_order.id).public()})
                continue
            if Deposit.get_by_id(dep.id).status != "paid":
                continue  # someone else settled it meanwhile
            # the order was paid or forfeited in between: refund instead
        if refunds.refund_deposit(dep.id, dispatcher) is not None:
            announced.add(dep.id)
    if not first_run:  # as for a lot: an earlier run may have died before announcing
        refunds.tell_owners_again(Deposit.select(Deposit.id).where(
            (Deposit.auction_session == session_id) & (Deposit.scope == "session")), announced)
    return True
