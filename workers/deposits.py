"""保证金: paying a deposit by balance or WeChat Pay, once per user and scope.

A deposit is in force when its row is `paid`: the same commit then grants
bidding in Redis and tells the owner's sockets (`deposit`), through an
after-commit hook. A WeChat deposit is `pending` until the gateway's signed
notification arrives (workers/payments.py dispatches it to `wechat_paid`).

A deposit waits for one WeChat trade at a time (`Deposit.out_trade_no`). When
the gateway has closed it (the payer let it expire), paying by WeChat again
closes our Payment row too and opens a fresh trade number; money that still
arrives for a trade the deposit no longer waits for (a closed one, or any
payment after it is in force or over) is refunded where it came from
(workers/refunds.py `refund_payment_in_transaction`), never kept.
"""
from __future__ import annotations

import logging
from typing import Any

from peewee import IntegrityError

from auction import audit, ledger
from auction.errors import Refused
from auction.wechatpay import WeChatPayError, WeChatPayUnavailable
from models import (
    AuctionSession,
    Deposit,
    Lot,
    Payment,
    User,
    now_ms,
    on_commit,
    write_transaction,
)
from workers import gateway, lotstate, publish, refunds

logger = logging.getLogger(__name__)


def scope_key(scope: str, session_id: int, lot_id: int, user_id: int) -> str:
    return f"s:{session_id}:u:{user_id}" if scope == "session" else f"l:{lot_id}:u:{user_id}"


def in_force(deposit: Deposit) -> None:
    """Open bidding for the user and tell their sockets (after the commit;
    again on a redelivery: both are idempotent)."""
    lotstate.grant_deposit(deposit.scope, deposit.session_id, deposit.lot_id,
                           deposit.user_id)
    publish.to_user(deposit.user_id, {
        "type": "deposit", "scope": deposit.scope, "session_id": deposit.session_id,
        "lot_id": deposit.lot_id, "amount": deposit.amount, "method": deposit.method})


def _already(scope: str) -> Refused:
    return Refused("already_paid", f"a {scope} deposit is already in force")


def pay_deposit(user_id: int, lot_id: int, scope: str, method: str, task_id: str,
                scene: str | None = None, client_ip: str | None = None,
                app: str | None = None) -> dict:
    """Pay a deposit; WeChat in `scene` (jsapi by default; workers/gateway.py)."""
    lot = Lot.get_or_none(Lot.id == lot_id)
    if lot is None:
        raise Refused("not_found", "no such lot")
    session = AuctionSession.get_by_id(lot.session_id)
    if lot.status in ("closed", "settled") or session.status == "ended":
        raise Refused("lot_closed", "this lot has closed")
    amount = session.deposit_amount if scope == "session" else lot.lot_deposit
    key = scope_key(scope, session.id, lot.id, user_id)
    existing = Deposit.get_or_none(Deposit.scope_key == key)
    if existing is not None:
        if existing.task_id == task_id and existing.status == "paid":
            in_force(existing)  # a redelivered task: finish what it started
            return {"status": "paid", "deposit": existing.public()}
        if existing.status == "pending" and method == "wechat":
            # Paying again while a WeChat payment is open: the same payment
            # (or a fresh trade when the gateway has closed that one, or for
            # another scene).
            return _prepay_again(existing, session, task_id,
                                 gateway.payer(user_id, scene, client_ip, app))
        if existing.status == "pending":
            # The bidder opened WeChat Pay, left it, and pays by balance now.
            return _switch_to_balance(existing, lot.id, amount, task_id)
        raise _already(scope)
    if scope == "lot" and Deposit.select().where(
            (Deposit.scope_key == scope_key("session", session.id, lot.id, user_id))
            & (Deposit.status == "paid")).exists():
        raise Refused("already_paid", "a session deposit already covers this lot")
    if method == "wechat":
        if amount <= 0:
            raise Refused("invalid", f"this {scope} has no deposit to pay by WeChat Pay")
        who = gateway.payer(user_id, scene, client_ip, app)  # refused before writing
        return _start_wechat(who, lot, session, scope, key, amount, task_id)
    # One transaction: a refusal (insufficient balance) rolls everything back.
    try:
        with write_transaction():
            deposit = Deposit.create(user=user_id, auction_session=session.id,
                                     lot=lot.id if scope == "lot" else None, scope=scope,
                                     scope_key=key, amount=amount, method="balance",
                                     status="paid", task_id=task_id, paid_at_ms=now_ms())
            balance = _debit(deposit, lot.id)
            on_commit(lambda: in_force(deposit))
    except IntegrityError:
        return _lost_race(user_id, lot_id, scope, method, task_id, key)
    return {"status": "paid", "deposit": deposit.public(), "balance": balance}


def _lost_race(user_id: int, lot_id: int, scope: str, method: str, task_id: str,
               key: str, who: gateway.Payer | None = None) -> dict:
    """Another run created this scope's deposit first. If it was a copy of this
    same task (redelivered, or submitted again by the hall's outbox, running at
    the same moment), its answer is this one's; anyone else's is already_paid."""
    existing = Deposit.get_or_none(Deposit.scope_key == key)
    if existing is not None and existing.task_id == task_id:
        if who is None:
            return pay_deposit(user_id, lot_id, scope, method, task_id)
        return pay_deposit(user_id, lot_id, scope, method, task_id, who.scene, who.client_ip,
                           who.app)
    raise _already(scope)


def _short_message(amount: int) -> str:
    return f"the deposit is {amount} fen; top up your balance first"


def _debit(deposit: Deposit, lot_id: int) -> int:
    """The deposit's amount from the balance (in the caller's transaction)."""
    return ledger.debit(deposit.user_id, deposit.amount, kind="deposit",
                        ref=f"deposit:{deposit.id}", memo=f"{deposit.scope} deposit, lot {lot_id}",
                        short=_short_message(deposit.amount))


def _switch_to_balance(deposit: Deposit, lot_id: int, amount: int, task_id: str) -> dict:
    """Pay a deposit whose WeChat payment is open from the balance instead.

    The WeChat order is closed at the gateway first, so the payer can no longer
    pay it; only then is the balance debited. If the gateway says it was paid
    meanwhile (its notification not here yet), that payment is settled and
    counts: the balance is not touched.
    """
    if User.get_by_id(deposit.user_id).balance < amount:
        # Checked before closing, so a short balance leaves WeChat Pay open.
        raise Refused("insufficient_balance", _short_message(amount))
    client = gateway.wechat_client()
    no = deposit.out_trade_no
    try:
        client.close_order(no)
    except WeChatPayUnavailable:
        raise Refused("unavailable", "WeChat Pay did not answer; retry")
    except WeChatPayError:
        if _gateway_state(client, no) != "CLOSED":
            raise Refused("conflict", "the open WeChat payment could not be closed; retry")
    with write_transaction():
        closed = Payment.update(status="closed").where(
            (Payment.out_trade_no == no) & (Payment.status == "pending")).execute()
        if not closed:  # its notification was applied meanwhile
            raise _already(deposit.scope)
        Deposit.update(method="balance", status="paid", amount=amount, task_id=task_id,
                       out_trade_no=None, paid_at_ms=now_ms()).where(
            (Deposit.id == deposit.id) & (Deposit.status == "pending")).execute()
        deposit = Deposit.get_by_id(deposit.id)
        balance = _debit(deposit, lot_id)
        on_commit(lambda: in_force(deposit))
    logger.info("deposit %s: WeChat order %s closed, paid from the balance", deposit.id, no)
    return {"status": "paid", "deposit": deposit.public(), "balance": balance}


def _start_wechat(who: gateway.Payer, lot: Lot, session: AuctionSession, scope: str,
                  key: str, amount: int, task_id: str) -> dict:
    gateway.wechat_client()  # configured, or refused with nothing written
    user_id = who.user_id
    out_trade_no = gateway.trade_no(gateway.DEPOSIT, task_id)
    try:
        with write_transaction():
            deposit = Deposit.create(user=user_id, auction_session=session.id,
                                     lot=lot.id if scope == "lot" else None, scope=scope,
                                     scope_key=key, amount=amount, method="wechat",
                                     status="pending", task_id=task_id, out_trade_no=out_trade_no)
            Payment.create(user=user_id, deposit=deposit.id, method="wechat", amount=amount,
                           out_trade_no=out_trade_no, scene=who.scene)
    except IntegrityError:
        return _lost_race(user_id, lot.id, scope, "wechat", task_id, key, who)
    return _prepay(deposit, session, who)


def _gateway_state(client: Any, no: str) -> str:
    """The gateway's trade_state of an open trade that would not close or
    prepay. Paid there while its notification is not here yet: that payment
    is settled now and counts (Refused already_paid)."""
    order = client.query_order(no)
    if order.get("trade_state") == "SUCCESS":
        payment = Payment.get(Payment.out_trade_no == no)
        gateway.paid_amount_matches(payment, (order.get("amount") or {}).get("total"))
        wechat_paid(payment, order.get("transaction_id") or "")
        raise Refused("already_paid", "the WeChat payment went through; the deposit is paid")
    return str(order.get("trade_state"))


def _prepay_again(deposit: Deposit, session: AuctionSession, task_id: str,
                  who: gateway.Payer) -> dict:
    """WeChat again for a deposit whose WeChat trade is open: its prepay.

    The gateway closes a trade the payer left unpaid too long (ORDER_CLOSED):
    then our Payment row is closed too and a fresh trade number, from this
    task's id, takes its place. The old trade stays closed; should its money
    arrive after all, it is refunded (workers/payments.py). A trade belongs to
    one scene at the gateway: another scene (the bidder moved from the desktop
    to the phone) closes the open trade first and opens a fresh one the same way."""
    old, fresh = deposit.out_trade_no, gateway.trade_no(gateway.DEPOSIT, task_id)
    opened_in = Payment.get(Payment.out_trade_no == old).scene or gateway.JSAPI
    if opened_in == who.scene or fresh == old:
        try:
            return _prepay(deposit, session, who)
        except WeChatPayUnavailable:
            raise Refused("unavailable", "WeChat Pay did not answer; retry")
        except WeChatPayError as exc:
            if exc.code != "ORDER_CLOSED" and _gateway_state(
                    gateway.wechat_client(), old) != "CLOSED":
                raise
    else:
        client = gateway.wechat_client()
        try:
            client.close_order(old)
        except WeChatPayUnavailable:
            raise Refused("unavailable", "WeChat Pay did not answer; retry")
        except WeChatPayError:
            if _gateway_state(client, old) != "CLOSED":
                raise Refused("conflict", "the open WeChat payment could not be closed; retry")
    if fresh == old:
        # The task that opened this trade, redelivered after the gateway closed
        # it: its number is spent; the bidder asks again (a new task, a new number).
        raise Refused("conflict", "this WeChat payment has closed; pay again")
    with write_transaction():
        closed = Payment.update(status="closed").where(
            (Payment.out_trade_no == old) & (Payment.status == "pending")).execute()
        moved = Deposit.update(out_trade_no=fresh, task_id=task_id).where(
            (Deposit.id == deposit.id) & (Deposit.status == "pending")
            & (Deposit.out_trade_no == old)).execute()
        if not (closed and moved):  # its notification was applied meanwhile
            if Deposit.get_by_id(deposit.id).status == "paid":
                raise _already(deposit.scope)
            raise Refused("conflict", "this deposit changed meanwhile; look again")
        Payment.create(user=deposit.user_id, deposit=deposit.id, method="wechat",
                       amount=deposit.amount, out_trade_no=fresh, scene=who.scene)
    logger.info("deposit %s: WeChat trade %s closed at the gateway, paying with %s (%s)",
                deposit.id, old, fresh, who.scene)
    return _prepay(Deposit.get_by_id(deposit.id), session, who)


def _prepay(deposit: Deposit, session: AuctionSession, who: gateway.Payer) -> dict:
    """The prepay of a pending WeChat deposit in the payer's scene (the same
    every time for one trade)."""
    answer = gateway.prepay(gateway.wechat_client(), who, deposit.out_trade_no,
                            f"保证金 {session.title}"[:100], deposit.amount)
    return {"status": "awaiting_payment", "out_trade_no": deposit.out_trade_no,
            "amount": deposit.amount, **answer}


def wechat_paid(payment: Payment, transaction_id: str) -> dict:
    """A verified, successful WeChat payment of a deposit: put it in force, once.

    One transaction marks the payment paid and, when the deposit is pending
    on this very trade, the deposit paid; a deposit paid after its lot
    settled or its session ended is refunded at once, in the same
    transaction. Money for a deposit that no longer waits for this trade
    (paid from the balance or by another trade, or over) is refunded where it
    came from, in that transaction too (`duplicate`). A payment handled
    already changes nothing; its deposit is announced again, in case the
    first run died before that.
    """
    late, duplicate = False, None
    with write_transaction():
        changed = bool(Payment.update(status="paid", transaction_id=transaction_id).where(
            (Payment.id == payment.id) & (Payment.status == "pending")).execute())
        if changed:
            audit.gateway_money("deposit", payment.user_id, payment.amount, method="wechat",
                                deposit_id=payment.deposit_id, out_trade_no=payment.out_trade_no,
                                transaction_id=transaction_id)
            took = Deposit.update(status="paid", paid_at_ms=now_ms()).where(
                (Deposit.id == payment.deposit_id) & (Deposit.status == "pending")
                & (Deposit.out_trade_no == payment.out_trade_no)).execute()
            deposit = Deposit.get_by_id(payment.deposit_id)
            if not took:
                reason = "duplicate" if deposit.status in ("paid", "credited") else "too_late"
                duplicate = refunds.refund_payment_in_transaction(payment, reason)
            elif _too_late(deposit):
                Deposit.update(status="refunded").where(Deposit.id == deposit.id).execute()
                refunds.refund_in_transaction(deposit, deposit.amount, reason="late_payment")
                late = True
    deposit = Deposit.get_by_id(payment.deposit_id)
    if (duplicate is None and not late and deposit.status == "paid"
            and deposit.out_trade_no == payment.out_trade_no):
        in_force(deposit)
    return {"changed": changed, "late_refund": late, "duplicate": duplicate}


def _too_late(deposit: Deposit) -> bool:
    """The deposit's lot (or session) has settled: nothing left to bid on."""
    if deposit.scope == "lot":
        return Lot.get_by_id(deposit.lot_id).status == "settled"
    return AuctionSession.get_by_id(deposit.session_id).status == "ended"
