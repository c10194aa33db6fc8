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
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from auction import keys, ledger
from auction.wechatpay import (
    WeChatPayClient,
    WeChatPayConfig,
    WeChatPayConfigError,
    WeChatPayError,
    WeChatPayUnavailable,
)
from models import Deposit, Refund, now_ms, on_commit, write_transaction
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
    publish.to_user(deposit.user_id, {**_message(refund, deposit, refund.status), **extra})
    notify.deposit_refunded(deposit.user_id, refund.amount,
                            lot_id=deposit.lot_id if deposit.scope == "lot" else None,
                            session_id=deposit.session_id, deposit_id=deposit.id)


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
    client = client or WeChatPayClient(WeChatPayConfig.from_settings())
    try:
        answer = client.refund(deposit.out_trade_no, out_refund_no(deposit), refund.amount,
                               deposit.amount, reason=f"{deposit.scope} deposit refund")
    except (WeChatPayUnavailable, WeChatPayConfigError):
        # Transient, or fixable by configuration: the row stays pending; the
        # task retries, then the money sweep re-queues it every minute.
        raise
    except WeChatPayError as exc:
        with write_transaction():
            Refund.update(status="failed").where(
                (Refund.id == refund_id) & (Refund.status == "pending")).execute()
        logger.error("WeChat refused refund %s: %s", refund_id, exc)
        alert_ops("refund_failed", refund_id=refund_id, deposit_id=deposit.id,
                  user_id=deposit.user_id, amount=refund.amount, error=str(exc)[:200])
        return {"refund_id": refund_id, "status": "failed", "error": exc.code}
    with write_transaction():
        done = Refund.update(status="done", done_at_ms=now_ms()).where(
            (Refund.id == refund_id) & (Refund.status == "pending")).execute()
    if done:
        publish.to_user(deposit.user_id, {**_message(refund, deposit, "done"),
                                          "lot_id": deposit.lot_id})
    return {"refund_id": refund_id, "status": "done", "gateway_status": answer.get("status"),
            "wechat_refund_id": answer.get("refund_id")}


def retry_pending(older_than_ms: int = RETRY_AFTER_MS,
                  dispatcher: Callable[[int], None] | None = None) -> list[int]:
    """Re-queue WeChat refunds still pending after `older_than_ms` (at most
    once a minute each), for a worker that died before queueing them or a
    gateway that stayed down longer than the task's retries."""
    cutoff = now_ms() - older_than_ms
    ids = [r.id for r in Refund.select(Refund.id).where(
        (Refund.status == "pending") & (Refund.created_at_ms <= cutoff)).limit(100)]
    queued = []
    r = publish.client()
    for rid in ids:
        if r.set(keys.refund_retry(rid), 1, nx=True, ex=60):
            (dispatcher or dispatch.refund)(rid)
            queued.append(rid)
    return queued
