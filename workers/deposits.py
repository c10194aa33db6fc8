"""保证金: paying a deposit by balance or WeChat Pay, once per user and scope."""
from __future__ import annotations

import logging

from peewee import IntegrityError

from models import (
    AuctionSession,
    Deposit,
    LedgerEntry,
    Lot,
    Payment,
    User,
    now_ms,
    write_transaction,
)
from workers import lotstate, publish
from workers.errors import Refused

logger = logging.getLogger(__name__)


def scope_key(scope: str, session_id: int, lot_id: int, user_id: int) -> str:
    return f"s:{session_id}:u:{user_id}" if scope == "session" else f"l:{lot_id}:u:{user_id}"


def _in_force(deposit: Deposit) -> None:
    """After commit: open bidding for the user and tell their sockets."""
    lotstate.grant_deposit(deposit.scope, deposit.session_id, deposit.lot_id,
                           deposit.user_id)
    publish.to_user(deposit.user_id, {
        "type": "deposit", "scope": deposit.scope, "session_id": deposit.session_id,
        "lot_id": deposit.lot_id, "amount": deposit.amount, "method": deposit.method})


def _trade_no(prefix: str, task_id: str) -> str:
    """out_trade_no derived from the task id: a redelivered task reuses it, and
    the gateway answers the same prepay for the same out_trade_no."""
    return prefix + task_id.replace("-", "")[:31]


def pay_deposit(user_id: int, lot_id: int, scope: str, method: str, task_id: str) -> dict:
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
            _in_force(existing)  # a redelivered task: finish what it started
            return {"status": "paid", "deposit": existing.public()}
        if existing.status == "pending" and method == "wechat":
            # Paying again while a WeChat payment is open: the same payment.
            return _prepay(existing, session)
        if existing.status == "pending":
            # The bidder opened WeChat Pay, left it, and pays by balance now.
            return _switch_to_balance(existing, lot.id, amount, task_id)
        raise Refused("already_paid", f"a {scope} deposit is already in force")
    if scope == "lot" and Deposit.select().where(
            (Deposit.scope_key == scope_key("session", session.id, lot.id, user_id))
            & (Deposit.status == "paid")).exists():
        raise Refused("already_paid", "a session deposit already covers this lot")
    if method == "wechat":
        if amount <= 0:
            raise Refused("invalid", f"this {scope} has no deposit to pay by WeChat Pay")
        return _start_wechat(user_id, lot, session, scope, key, amount, task_id)
    # One transaction: a refusal (insufficient balance) rolls everything back.
    try:
        with write_transaction():
            _debit(user_id, amount)
            deposit = Deposit.create(user=user_id, auction_session=session.id,
                                     lot=lot.id if scope == "lot" else None, scope=scope,
                                     scope_key=key, amount=amount, method="balance",
                                     status="paid", task_id=task_id, paid_at_ms=now_ms())
            balance = _ledger_deposit(deposit, lot.id)
    except IntegrityError:
        raise Refused("already_paid", f"a {scope} deposit is already in force")
    _in_force(deposit)
    return {"status": "paid", "deposit": deposit.public(), "balance": balance}


def _debit(user_id: int, amount: int) -> None:
    """Take `amount` from the balance, or Refused (in a transaction: rolled back)."""
    debited = User.update(balance=User.balance - amount).where(
        (User.id == user_id) & (User.balance >= amount)).execute()
    if not debited:
        raise Refused("insufficient_balance",
                      f"the deposit is {amount} fen; top up your balance first")


def _ledger_deposit(deposit: Deposit, lot_id: int) -> int:
    """The ledger line for a deposit paid from the balance; returns the balance."""
    balance = User.get_by_id(deposit.user_id).balance
    LedgerEntry.create(user=deposit.user_id, amount=-deposit.amount, balance_after=balance,
                       kind="deposit", ref=f"deposit:{deposit.id}",
                       memo=f"{deposit.scope} deposit, lot {lot_id}")
    return balance


def _switch_to_balance(deposit: Deposit, lot_id: int, amount: int, task_id: str) -> dict:
    """Pay a deposit whose WeChat payment is open from the balance instead.

    The WeChat order is closed at the gateway first, so the payer can no longer
    pay it; only then is the balance debited. If the gateway says it was paid
    meanwhile (its notification not here yet), that payment is settled and
    counts: the balance is not touched.
    """
    from workers.wechatpay import WeChatPayError, WeChatPayUnavailable
    if User.get_by_id(deposit.user_id).balance < amount:
        # Checked before closing, so a short balance leaves WeChat Pay open.
        raise Refused("insufficient_balance",
                      f"the deposit is {amount} fen; top up your balance first")
    client = wechat_client()
    no = deposit.out_trade_no
    try:
        client.close_order(no)
    except WeChatPayUnavailable:
        raise Refused("unavailable", "WeChat Pay did not answer; retry")
    except WeChatPayError:
        order = client.query_order(no)
        if order.get("trade_state") == "SUCCESS":
            wechat_paid(no, order.get("transaction_id") or "", "SUCCESS",
                        (order.get("amount") or {}).get("total"))
            raise Refused("already_paid", "the WeChat payment went through; the deposit is paid")
        if order.get("trade_state") != "CLOSED":
            raise Refused("conflict", "the open WeChat payment could not be closed; retry")
    with write_transaction():
        closed = Payment.update(status="closed").where(
            (Payment.out_trade_no == no) & (Payment.status == "pending")).execute()
        if not closed:  # its notification was applied meanwhile
            raise Refused("already_paid", f"a {deposit.scope} deposit is already in force")
        _debit(deposit.user_id, amount)
        Deposit.update(method="balance", status="paid", amount=amount, task_id=task_id,
                       out_trade_no=None, paid_at_ms=now_ms()).where(
            (Deposit.id == deposit.id) & (Deposit.status == "pending")).execute()
        deposit = Deposit.get_by_id(deposit.id)
        balance = _ledger_deposit(deposit, lot_id)
    logger.info("deposit %s: WeChat order %s closed, paid from the balance", deposit.id, no)
    _in_force(deposit)
    return {"status": "paid", "deposit": deposit.public(), "balance": balance}


def wechat_client():
    """The gateway client, or Refused("unavailable") before anything is written
    (a deposit left pending for a gateway we cannot reach would block the user)."""
    from workers.wechatpay import WeChatPayClient, WeChatPayConfig, WeChatPayError
    try:
        config = WeChatPayConfig.from_settings()
    except WeChatPayError as exc:
        raise Refused("unavailable", f"WeChat Pay is not configured ({exc.code})")
    if not config.api_base or not config.notify_url:
        raise Refused("unavailable", "WeChat Pay is not configured (WECHAT_API_BASE, "
                                     "WECHAT_NOTIFY_URL)")
    return WeChatPayClient(config)


def _start_wechat(user_id: int, lot: Lot, session: AuctionSession, scope: str, key: str,
                  amount: int, task_id: str) -> dict:
    wechat_client()  # configured, or refused with nothing written
    out_trade_no = _trade_no("D", task_id)
    try:
        with write_transaction():
            deposit = Deposit.create(user=user_id, auction_session=session.id,
                                     lot=lot.id if scope == "lot" else None, scope=scope,
                                     scope_key=key, amount=amount, method="wechat",
                                     status="pending", task_id=task_id, out_trade_no=out_trade_no)
            Payment.create(user=user_id, deposit=deposit.id, method="wechat", amount=amount,
                           out_trade_no=out_trade_no)
    except IntegrityError:
        raise Refused("already_paid", f"a {scope} deposit is already in force")
    return _prepay(deposit, session)


def _prepay(deposit: Deposit, session: AuctionSession) -> dict:
    """The JSAPI prepay for a pending WeChat deposit (the same every time)."""
    prepay = wechat_client().jsapi_prepay(deposit.out_trade_no, f"保证金 {session.title}"[:100],
                                 deposit.amount, openid=f"openid-{deposit.user_id}")
    return {"status": "awaiting_payment", "out_trade_no": deposit.out_trade_no,
            "amount": deposit.amount, "prepay": prepay}


def wechat_paid(out_trade_no: str, transaction_id: str, trade_state: str,
                total: int | None) -> dict:
    """Settle a verified WeChat notification, once (keyed by out_trade_no).

    One transaction marks the payment paid and puts the deposit in force (or
    pays the order). A deposit paid after its lot settled or its session ended
    is refunded at once, in the same transaction.
    """
    from workers import refunds
    payment = Payment.get_or_none(Payment.out_trade_no == out_trade_no)
    if payment is None:
        raise Refused("not_found", "unknown out_trade_no")
    if trade_state != "SUCCESS":
        return {"status": "ignored", "trade_state": trade_state}
    if total != payment.amount:
        logger.warning("WeChat amount mismatch for %s: %s != %s", out_trade_no, total,
                       payment.amount)
        raise Refused("invalid", "the paid amount does not match")
    late_refund = None
    order_paid = None
    with write_transaction():
        changed = Payment.update(status="paid", transaction_id=transaction_id).where(
            (Payment.id == payment.id) & (Payment.status == "pending")).execute()
        if changed and payment.deposit_id:
            Deposit.update(status="paid", paid_at_ms=now_ms()).where(
                (Deposit.id == payment.deposit_id) & (Deposit.status == "pending")).execute()
            deposit = Deposit.get_by_id(payment.deposit_id)
            if deposit.status == "paid" and _too_late(deposit):
                Deposit.update(status="refunded").where(Deposit.id == deposit.id).execute()
                late_refund = refunds.refund_in_transaction(deposit, deposit.amount)
        if changed and payment.order_id:
            from workers.orders import order_paid_in_transaction
            order_paid = order_paid_in_transaction(payment)
    if payment.deposit_id:
        deposit = Deposit.get_by_id(payment.deposit_id)
        if late_refund is not None:
            refunds.announce(late_refund, deposit, reason="late_payment")
        elif deposit.status == "paid":
            _in_force(deposit)
    if changed and payment.order_id:
        from workers.orders import after_wechat_order_payment
        after_wechat_order_payment(payment, order_paid)
    return {"status": "paid" if changed else "already_paid", "out_trade_no": out_trade_no,
            "late_refund": late_refund is not None}


def _too_late(deposit: Deposit) -> bool:
    """The deposit's lot (or session) has settled: nothing left to bid on."""
    if deposit.scope == "lot":
        return Lot.get_by_id(deposit.lot_id).status == "settled"
    return AuctionSession.get_by_id(deposit.session_id).status == "ended"
