"""退款: deposits going back the way they came, each exactly once.

A refund is one `Refund` row per deposit (unique), written in the same
transaction that moves the deposit out of `paid`, so it can exist only once:

* balance deposits: the balance is credited and a `refund:{deposit}` ledger
  entry written in that transaction; the row is `done` at once;
* WeChat Pay deposits: the row starts `pending`; after commit a task
  (`send_refund`, queued through workers/dispatch.py) calls the gateway's
  refund API with `out_refund_no = "R" + out_trade_no`, on which the gateway
  is idempotent, then marks the row `done`. A redelivered or repeated task asks
  the gateway again with the same number and refunds nothing twice. Rows
  left `pending` (a worker died between commit and queueing) are re-queued by
  the money sweep (`retry_pending`). A refund the gateway refuses for good
  becomes `failed` and the operators are told (workers/alerts.py).

Whoever refunds says so in the refund's own transaction: `refund_in_transaction`
registers the announcement (queue the gateway call, tell the owner, SMS) as an
after-commit hook, so a rollback announces nothing.

Money nothing wants (a second payment of a deposit or order already paid, a
payment for one that is over, a trade we had closed and the payer paid
anyway) goes back the same way, by `refund_payment_in_transaction`: one
`PaymentRefund` row per payment (unique), written in the transaction that
records the payment as paid, `out_refund_no = "RP" + out_trade_no`, sent by
`send_payment_refund` and re-queued by the same money sweep. It never
touches a balance (it was never in one), so the ledger stays as it was; the
owner gets `payment_refund` messages (pending, then done) and the operators
an `unmatched_payment` alert that says it is being refunded.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from auction import audit, keys, ledger
from auction.wechatpay import (
    WeChatPayClient,
    WeChatPayConfig,
    WeChatPayConfigError,
    WeChatPayError,
    WeChatPayUnavailable,
)
from models import (
    Deposit,
    Order,
    Payment,
    PaymentRefund,
    Refund,
    TopUp,
    now_ms,
    on_commit,
    write_transaction,
)
from workers import dispatch, gateway, notify, publish
from workers.alerts import alert_ops

logger = logging.getLogger(__name__)

RETRY_AFTER_MS = 60_000


def out_refund_no(deposit: Deposit) -> str:
    """Deterministic, so a retried refund is the same refund at the gateway."""
    return gateway.refund_no(deposit.out_trade_no)


def refund_in_transaction(deposit: Deposit, amount: int,
                          dispatcher: Callable[[int], None] | None = None,
                          **extra: Any) -> Refund:
    """Write the refund of `amount` of `deposit` and announce it after the commit.

    Call inside a write transaction, right after moving the deposit out of
    `paid` (that guarded UPDATE is what makes it happen once; the unique index
    is the backstop). `extra` fields go into the owner's `refund` message."""
    if deposit.method == "balance":
        ledger.credit(deposit.user_id, amount, kind="refund", ref=f"refund:{deposit.id}",
                      memo=f"{deposit.scope} deposit refund")
        refund = Refund.create(user=deposit.user_id, deposit=deposit.id, amount=amount,
                               method="balance", status="done", done_at_ms=now_ms())
    else:
        refund = Refund.create(user=deposit.user_id, deposit=deposit.id, amount=amount,
                               method=deposit.method, status="pending")
        audit.gateway_money("refund", deposit.user_id, amount, method=deposit.method,
                            deposit_id=deposit.id, refund_id=refund.id)
    on_commit(lambda: announce(refund, deposit, dispatcher, **extra))
    return refund


def _message(refund: Refund, deposit: Deposit, status: str) -> dict:
    msg = {"type": "refund", "refund_id": refund.id, "deposit_id": deposit.id,
           "scope": deposit.scope, "session_id": deposit.session_id, "amount": refund.amount,
           "method": refund.method, "status": status}
    if deposit.lot_id is not None:
        msg["lot_id"] = deposit.lot_id
    return msg


def announce(refund: Refund, deposit: Deposit, dispatcher: Callable[[int], None] | None = None,
             **extra: Any) -> None:
    """After commit: queue a WeChat refund, and tell the owner."""
    if refund.status == "pending":
        (dispatcher or dispatch.refund)(refund.id)
    _tell_owner(refund, deposit, **extra)


def _tell_owner(refund: Refund, deposit: Deposit, **extra: Any) -> None:
    publish.to_user(deposit.user_id, {**_message(refund, deposit, refund.status), **extra})
    notify.deposit_refunded(deposit.user_id, refund.amount,
                            lot_id=deposit.lot_id if deposit.scope == "lot" else None,
                            session_id=deposit.session_id, deposit_id=deposit.id)


def tell_owners_again(deposits: Any, skip: set[int]) -> int:
    """Tell the owners of these deposits' refunds once more (not those in `skip`,
    the deposit ids just refunded and announced). For a settlement resumed after
    its worker died between a refund's commit and its after-commit hook: the
    refund is in the books but its owner never heard. A second socket message is
    harmless (clients go by refund_id) and the SMS is sent once per deposit
    (notify.deposit_refunded). The gateway call is not queued again: a refund
    left pending is the money sweep's (`retry_pending`). Returns how many."""
    told = 0
    for refund in (Refund.select(Refund, Deposit).join(Deposit)
                   .where(Deposit.id.in_(deposits))):
        if refund.deposit_id not in skip:
            _tell_owner(refund, refund.deposit)
            told += 1
    return told


def refund_deposit(deposit_id: int, dispatcher: Callable[[int], None] | None = None
                   ) -> Refund | None:
    """Refund a paid deposit in full; None if it is not `paid` (already done)."""
    with write_transaction():
        moved = Deposit.update(status="refunded").where(
            (Deposit.id == deposit_id) & (Deposit.status == "paid")).execute()
        if not moved:
            return None
        deposit = Deposit.get_by_id(deposit_id)
        return refund_in_transaction(deposit, deposit.amount, dispatcher)


def send_refund(refund_id: int, client: Any = None) -> dict:
    """Ask WeChat Pay to refund a pending refund; idempotent by out_refund_no."""
    refund = Refund.get_or_none(Refund.id == refund_id)
    if refund is None:
        return {"refund_id": refund_id, "status": "unknown"}
    if refund.status != "pending":
        return {"refund_id": refund_id, "status": refund.status}
    deposit = Deposit.get_by_id(refund.deposit_id)
    answer = _at_gateway(Refund, refund, client, deposit.out_trade_no, out_refund_no(deposit),
                         deposit.amount, f"{deposit.scope} deposit refund",
                         {"refund_id": refund_id, "deposit_id": deposit.id})
    if answer.get("error"):
        return {"refund_id": refund_id, "status": "failed", "error": answer["error"]}
    if answer.pop("moved"):
        publish.to_user(deposit.user_id, {**_message(refund, deposit, "done"),
                                          "lot_id": deposit.lot_id})
    return {"refund_id": refund_id, "status": "done", **answer}


def _at_gateway(model: Any, row: Any, client: Any, out_trade_no: str, refund_no: str,
                total: int, reason: str, alert: dict) -> dict:
    """The gateway call of a pending refund row (`Refund` or `PaymentRefund`),
    then the row `done`, or `failed` (and the operators told) when the gateway
    refuses it for good. Transient trouble, or a gateway not configured, is
    raised and the row stays pending: the task retries, then the money sweep
    re-queues it every minute. `moved`: this call marked the row done."""
    client = client or WeChatPayClient(WeChatPayConfig.from_settings())
    try:
        answer = client.refund(out_trade_no, refund_no, row.amount, total, reason=reason)
    except (WeChatPayUnavailable, WeChatPayConfigError):
        raise
    except WeChatPayError as exc:
        with write_transaction():
            model.update(status="failed").where(
                (model.id == row.id) & (model.status == "pending")).execute()
        logger.error("WeChat refused refund %s (%s): %s", refund_no, model.__name__, exc)
        alert_ops("refund_failed", **alert, user_id=row.user_id, amount=row.amount,
                  out_refund_no=refund_no, error=str(exc)[:200])
        return {"error": exc.code}
    fields: dict[str, Any] = {"status": "done", "done_at_ms": now_ms()}
    if model is PaymentRefund:
        fields["gateway_refund_id"] = answer.get("refund_id")
    with write_transaction():
        moved = model.update(**fields).where(
            (model.id == row.id) & (model.status == "pending")).execute()
    return {"moved": bool(moved), "gateway_status": answer.get("status"),
            "wechat_refund_id": answer.get("refund_id")}


# -- money nothing wants -------------------------------------------------------------


def refund_payment_in_transaction(payment: Payment, reason: str,
                                  dispatcher: Callable[[int], None] | None = None
                                  ) -> PaymentRefund:
    """Write the refund of a whole payment nothing wants and announce it after the commit.

    Call inside a write transaction, right after the guarded UPDATE that
    recorded the payment as paid (that is what makes it happen once; the
    unique payment and out_refund_no are the backstop). `reason`: `duplicate`
    (what it paid for was paid already), `too_late` (that is over: forfeited,
    refunded) or `trade_closed` (we had closed the trade: a deposit's, or a
    top-up's after its expiry). No balance moves."""
    row = PaymentRefund.create(user=payment.user_id, payment=payment.id, amount=payment.amount,
                               method=payment.method, reason=reason,
                               out_refund_no=gateway.payment_refund_no(payment.out_trade_no))
    audit.gateway_money("refund", payment.user_id, payment.amount, method=payment.method,
                        payment_id=payment.id, payment_refund_id=row.id, reason=reason)
    if payment.deposit_id is not None:
        Deposit.update(duplicate_refunded=Deposit.duplicate_refunded + payment.amount).where(
            Deposit.id == payment.deposit_id).execute()
    elif payment.order_id is not None:  # neither: a top-up's (closed) trade
        Order.update(duplicate_refunded=Order.duplicate_refunded + payment.amount).where(
            Order.id == payment.order_id).execute()
    on_commit(lambda: _announce_payment_refund(row, payment, dispatcher))
    return row


def _payment_message(row: PaymentRefund, payment: Payment, status: str) -> dict:
    """The owner's `payment_refund` message: which payment of what goes back."""
    msg: dict[str, Any] = {"type": "payment_refund", "payment_refund_id": row.id,
                           "out_trade_no": payment.out_trade_no, "amount": row.amount,
                           "method": row.method, "reason": row.reason, "status": status}
    if payment.deposit_id is not None:
        deposit = Deposit.get_by_id(payment.deposit_id)
        msg.update(deposit_id=deposit.id, scope=deposit.scope, session_id=deposit.session_id)
        if deposit.lot_id is not None:
            msg["lot_id"] = deposit.lot_id
    elif payment.order_id is not None:
        msg.update(order_id=payment.order_id, lot_id=Order.get_by_id(payment.order_id).lot_id)
    else:  # a top-up's trade, paid after it was closed
        msg["topup_id"] = _topup_id(payment)
    return msg


def _topup_id(payment: Payment) -> int | None:
    topup = TopUp.get_or_none(TopUp.out_trade_no == payment.out_trade_no)
    return topup.id if topup is not None else None


def _target_state(payment: Payment) -> dict:
    """What the stray payment was for, and its state, for the operators."""
    if payment.deposit_id is not None:
        return {"deposit_id": payment.deposit_id,
                "deposit_status": Deposit.get_by_id(payment.deposit_id).status}
    if payment.order_id is None:
        topup = TopUp.get_or_none(TopUp.out_trade_no == payment.out_trade_no)
        return {"topup_id": topup.id if topup else None,
                "topup_status": topup.status if topup else None}
    return {"order_id": payment.order_id, "order_status": Order.get_by_id(payment.order_id).status}


def _announce_payment_refund(row: PaymentRefund, payment: Payment,
                             dispatcher: Callable[[int], None] | None = None) -> None:
    """After commit: queue the gateway call, tell the owner and the operators."""
    (dispatcher or dispatch.payment_refund)(row.id)
    logger.warning("WeChat payment %s is not wanted (%s): refunding %s fen as %s",
                   payment.out_trade_no, row.reason, row.amount, row.out_refund_no)
    publish.to_user(payment.user_id, _payment_message(row, payment, "pending"))
    alert_ops("unmatched_payment", user_id=payment.user_id, out_trade_no=payment.out_trade_no,
              amount=payment.amount, reason=row.reason, action="refund",
              payment_refund_id=row.id, out_refund_no=row.out_refund_no, **_target_state(payment))


def payment_refund_of(payment_id: int) -> PaymentRefund | None:
    return PaymentRefund.get_or_none(PaymentRefund.payment == payment_id)


def resume_payment_refund(row: PaymentRefund,
                          dispatcher: Callable[[int], None] | None = None) -> None:
    """A redelivered notification of a payment being refunded: queue its gateway
    call again while it is pending (in case the first run died before queueing
    it); the gateway's idempotence makes an extra call refund nothing twice."""
    if row.status == "pending":
        (dispatcher or dispatch.payment_refund)(row.id)


def send_payment_refund(payment_refund_id: int, client: Any = None) -> dict:
    """Ask WeChat Pay to refund a payment nothing wants; idempotent by out_refund_no."""
    row = PaymentRefund.get_or_none(PaymentRefund.id == payment_refund_id)
    if row is None:
        return {"payment_refund_id": payment_refund_id, "status": "unknown"}
    if row.status != "pending":
        return {"payment_refund_id": payment_refund_id, "status": row.status}
    payment = Payment.get_by_id(row.payment_id)
    answer = _at_gateway(PaymentRefund, row, client, payment.out_trade_no, row.out_refund_no,
                         payment.amount, "duplicate payment refund",
                         {"payment_refund_id": row.id, "out_trade_no": payment.out_trade_no,
                          **_target_state(payment)})
    if answer.get("error"):
        return {"payment_refund_id": payment_refund_id, "status": "failed",
                "error": answer["error"]}
    if answer.pop("moved"):
        publish.to_user(payment.user_id, _payment_message(row, payment, "done"))
        alert_ops("payment_refunded", user_id=payment.user_id, amount=row.amount,
                  out_trade_no=payment.out_trade_no, out_refund_no=row.out_refund_no,
                  payment_refund_id=row.id, **_target_state(payment))
    return {"payment_refund_id": payment_refund_id, "status": "done", **answer}


def retry_pending(older_than_ms: int = RETRY_AFTER_MS,
                  dispatcher: Callable[[int], None] | None = None,
                  payment_dispatcher: Callable[[int], None] | None = None) -> list[int]:
    """Re-queue WeChat refunds still pending after `older_than_ms` (at most
    once a minute each), for a worker that died before queueing them or a
    gateway that stayed down longer than the task's retries; the refunds of
    money nothing wants too. Returns the `Refund` ids re-queued."""
    cutoff = now_ms() - older_than_ms
    r = publish.client()
    queued = _requeue(r, Refund, cutoff, keys.refund_retry, dispatcher or dispatch.refund)
    again = _requeue(r, PaymentRefund, cutoff, keys.payment_refund_retry,
                     payment_dispatcher or dispatch.payment_refund)
    if again:
        logger.info("re-queued refunds of unwanted payments: %s", again)
    return queued


def _requeue(r: Any, model: Any, cutoff: int, retry_key: Callable[[int], str],
             dispatcher: Callable[[int], None]) -> list[int]:
    ids = [row.id for row in model.select(model.id).where(
        (model.status == "pending") & (model.created_at_ms <= cutoff)).limit(100)]
    queued = []
    for rid in ids:
        if r.set(retry_key(rid), 1, nx=True, ex=60):
            dispatcher(rid)
            queued.append(rid)
    return queued
