"""Payment notifications: one place that settles a verified WeChat Pay
notification and hands it to what was paid for, a deposit, an order or a
top-up (充值, workers/topups.py).

The hall checks the notification's signature, timestamp and encryption and
queues `wechat_paid` (workers/tasks/deposits.py); here the payment is looked
up by out_trade_no, its amount checked, and the deposit or order settled,
idempotently: a replayed or redelivered notification changes nothing.

Money nothing wants is refunded where it came from, once (workers/refunds.py):
a second payment of something already paid, a payment of something over, and
a payment of a trade we had closed (`closed`: the bidder moved on to the
balance or a fresh trade, or a top-up expired unpaid, workers/topups.py).
The last is a race the gateway's close cannot rule out, so it is believed
only when the gateway's own query says the trade was paid, with this
transaction id.

A notification can also never arrive (the hall was down through all of the
gateway's retries, a network between them dropped them): `reconcile_due` asks
the gateway about every WeChat payment still pending a while after it opened
(主动查询, as WeChat Pay's guide asks merchants to do) and settles what it says
was paid through the same path as a notification.
"""
from __future__ import annotations

import logging
from collections.abc import Callable

import settings
from auction import audit, keys
from auction.errors import Refused
from models import Payment, now_ms, write_transaction
from workers import deposits, dispatch, gateway, orders, publish, refunds, topups

logger = logging.getLogger(__name__)

PAID_STATES = gateway.PAID_STATES


def wechat_paid(out_trade_no: str, transaction_id: str, trade_state: str,
                total: int | None) -> dict:
    payment = Payment.get_or_none(Payment.out_trade_no == out_trade_no)
    if payment is None:
        raise Refused("not_found", "unknown out_trade_no")
    if trade_state != "SUCCESS":
        return {"status": "ignored", "trade_state": trade_state}
    if total != payment.amount:
        logger.warning("WeChat amount mismatch for %s: %s != %s", out_trade_no, total,
                       payment.amount)
    gateway.paid_amount_matches(payment, total)
    if payment.status == "closed":
        done = _paid_after_close(payment, transaction_id)
    else:
        settle = (deposits.wechat_paid if payment.deposit_id else
                  orders.wechat_paid if payment.order_id else topups.wechat_paid)
        done = settle(payment, transaction_id)
    if done.get("ignored"):
        return {"status": "ignored", "trade_state": done["ignored"]}
    duplicate = done["duplicate"]
    if not done["changed"]:
        duplicate = refunds.payment_refund_of(payment.id)
        if duplicate is not None:
            refunds.resume_payment_refund(duplicate)
    if duplicate is not None:
        status = "duplicate"  # paid, and going back where it came from
    else:
        status = "paid" if done["changed"] else "already_paid"
    return {"status": status, "out_trade_no": out_trade_no, "late_refund": done["late_refund"],
            "payment_refund": duplicate.public() if duplicate is not None else None}


def _paid_after_close(payment: Payment, transaction_id: str) -> dict:
    """A payment notified for a trade we had closed: refunded if the gateway
    confirms it was paid, else nothing (a notification the gateway's own
    record contradicts moves no money)."""
    order = gateway.wechat_client().query_order(payment.out_trade_no)
    paid = (order.get("trade_state") in PAID_STATES
            and order.get("transaction_id") == transaction_id
            and (order.get("amount") or {}).get("total") == payment.amount)
    if not paid:
        logger.warning("WeChat says %s was paid, its query says %s: ignored",
                       payment.out_trade_no, order.get("trade_state"))
        return {"changed": False, "late_refund": False, "duplicate": None,
                "ignored": order.get("trade_state")}
    duplicate = None
    with write_transaction():
        changed = bool(Payment.update(status="paid", transaction_id=transaction_id).where(
            (Payment.id == payment.id) & (Payment.status == "closed")).execute())
        if changed:
            audit.gateway_money("deposit" if payment.deposit_id else
                                "order" if payment.order_id else "topup", payment.user_id,
                                payment.amount, method="wechat", out_trade_no=payment.out_trade_no,
                                transaction_id=transaction_id, trade="closed")
            duplicate = refunds.refund_payment_in_transaction(payment, "trade_closed")
    return {"changed": changed, "late_refund": False, "duplicate": duplicate}


# WeChat Pay orders expire two hours after they open unless told otherwise:
# a payment older than that can no longer be paid, so it is no longer asked about.
RECONCILE_WINDOW_MS = 2 * 3600 * 1000


def reconcile_due(now: int | None = None, limit: int = 50,
                  dispatcher: Callable[[str], None] | None = None) -> list[str]:
    """Queue a gateway query for each WeChat payment still pending
    HALL_PAYMENT_CHECK_AFTER_S after it opened (each at most once per that
    period); the trade numbers queued."""
    now = now_ms() if now is None else now
    every_ms = int(settings.PAYMENT_CHECK_AFTER_S * 1000)
    rows = (Payment.select(Payment.id, Payment.out_trade_no)
            .where((Payment.status == "pending") & (Payment.method == "wechat")
                   & (Payment.created_at_ms <= now - every_ms)
                   & (Payment.created_at_ms > now - RECONCILE_WINDOW_MS))
            .order_by(Payment.id).limit(limit))
    r = publish.client()
    due = [p.out_trade_no for p in rows
           if r.set(keys.payment_check(p.id), 1, nx=True, px=every_ms)]
    for no in due:
        (dispatcher or dispatch.reconcile_payment)(no)
    return due


def reconcile(out_trade_no: str) -> dict:
    """Ask the gateway about one pending payment; settle it if it was paid."""
    payment = Payment.get_or_none(Payment.out_trade_no == out_trade_no)
    if payment is None or payment.status != "pending":
        return {"status": "unchanged", "out_trade_no": out_trade_no}
    order = gateway.wechat_client().query_order(out_trade_no)
    state = order.get("trade_state")
    if state not in PAID_STATES:
        return {"status": "unchanged", "out_trade_no": out_trade_no, "trade_state": state}
    logger.warning("WeChat payment %s was paid but never notified: settled from the query",
                   out_trade_no)
    return wechat_paid(out_trade_no, order["transaction_id"], "SUCCESS",
                       (order.get("amount") or {}).get("total"))
