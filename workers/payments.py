"""Payment notifications: one place that settles a verified WeChat Pay
notification and hands it to what was paid for, a deposit or an order.

The hall checks the notification's signature, timestamp and encryption and
queues `wechat_paid` (workers/tasks/deposits.py); here the payment is looked
up by out_trade_no, its amount checked, and the deposit or order settled,
idempotently: a replayed or redelivered notification changes nothing.

Money nothing wants is refunded where it came from, once (workers/refunds.py):
a second payment of something already paid, a payment of something over, and
a payment of a trade we had closed (`closed`: the bidder moved on to the
balance or a fresh trade). The last is a race the gateway's close cannot rule
out, so it is believed only when the gateway's own query says the trade was
paid, with this transaction id.
"""
from __future__ import annotations

import logging

from auction.errors import Refused
from models import Payment, write_transaction
from workers import deposits, gateway, orders, refunds

logger = logging.getLogger(__name__)

PAID_STATES = ("SUCCESS", "REFUND")  # REFUND: paid, and (part of it) refunded since


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
        settle = deposits.wechat_paid if payment.deposit_id else orders.wechat_paid
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
            duplicate = refunds.refund_payment_in_transaction(payment, "trade_closed")
    return {"changed": changed, "late_refund": False, "duplicate": duplicate}
