"""Payment notifications: one place that settles a verified WeChat Pay
notification and hands it to what was paid for, a deposit or an order.

The hall checks the notification's signature, timestamp and encryption and
queues `wechat_paid` (workers/tasks/deposits.py); here the payment is looked
up by out_trade_no, its amount checked, and the deposit or order settled,
idempotently: a replayed or redelivered notification changes nothing.
"""
from __future__ import annotations

import logging

from auction.errors import Refused
from models import Payment
from workers import deposits, gateway, orders

logger = logging.getLogger(__name__)


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
    settle = deposits.wechat_paid if payment.deposit_id else orders.wechat_paid
    done = settle(payment, transaction_id)
    return {"status": "paid" if done["changed"] else "already_paid",
            "out_trade_no": out_trade_no, "late_refund": done["late_refund"]}
