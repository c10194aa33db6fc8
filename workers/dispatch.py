"""Queueing follow-up work from inside the workers.

Plain functions (settlement, refunds, notifications, the sweep) never import
the task modules: they queue by name through here (auction/tasknames.py), or
are handed a dispatcher by their caller (a test hands a list's `append`).
"""
from __future__ import annotations

from typing import Callable

from auction import tasknames
from workers.celery import app

Dispatcher = Callable[[int], None]


def refund(refund_id: int) -> None:
    """Queue the gateway call of a pending WeChat refund."""
    tasknames.send(app, tasknames.SEND_REFUND, args=(refund_id,))


def reconcile_payment(out_trade_no: str) -> None:
    """Queue a gateway query of a WeChat payment whose notification has not come."""
    tasknames.send(app, tasknames.RECONCILE_PAYMENT, args=(out_trade_no,))


def payment_refund(payment_refund_id: int) -> None:
    """Queue the gateway call of a pending refund of money nothing wants."""
    tasknames.send(app, tasknames.SEND_PAYMENT_REFUND, args=(payment_refund_id,))


def settlements(lot_ids: list[int]) -> None:
    """Queue one settlement per closed lot, over one broker connection."""
    with app.producer_or_acquire() as producer:
        for lot_id in lot_ids:
            tasknames.send(app, tasknames.SETTLE_LOT, args=(lot_id,), producer=producer)


def close_at(deadline_ms: int, in_s: float) -> None:
    """A short-ETA close for one deadline (never a long ETA: the deadline set is the truth)."""
    delay = max(in_s, 0)
    tasknames.send(app, tasknames.CLOSE_AT, args=(deadline_ms,), countdown=delay,
                   expires=delay + 60)


def sms(phone: str, template: str, params: dict, out_id: str) -> None:
    tasknames.send(app, tasknames.SEND_SMS, args=(phone, template, params, out_id))


def user_sms(user_id: int, template: str, params: dict, out_id: str) -> None:
    tasknames.send(app, tasknames.SEND_USER_SMS, args=(user_id, template, params, out_id))
