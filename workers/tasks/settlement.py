"""Settlement, refunds and the money sweep (queue: money)."""
from __future__ import annotations

from auction import tasknames
from auction.wechatpay import WeChatPayUnavailable
from workers import offers, orders, payments, refunds, settlement, topups
from workers.celery import app
from workers.tasks import TRANSIENT, HallTask, TickTask, each


@app.task(name=tasknames.SETTLE_LOT, base=HallTask)
def settle_lot(lot_id: int, user_id: int | None = None) -> dict:
    return settlement.settle_lot(lot_id)


@app.task(name=tasknames.SEND_REFUND, base=HallTask,
          autoretry_for=TRANSIENT + (WeChatPayUnavailable,), max_retries=12)
def send_refund(refund_id: int) -> dict:
    """A pending WeChat refund to the gateway (idempotent by out_refund_no)."""
    return refunds.send_refund(refund_id)


@app.task(name=tasknames.MONEY_SWEEP, base=TickTask)
def money_sweep() -> dict:
    """Beat's money tick, every second or so: 悔拍 for overdue orders, stuck
    WeChat refunds and payments, expired second-chance offers and unpaid
    top-ups, in one run (one Celery round trip instead of three)."""
    return each({"forfeited": orders.forfeit_overdue, "refunds_requeued": refunds.retry_pending,
                 "payments_checked": payments.reconcile_due, "offers": offers.sweep,
                 "topups": topups.sweep})


@app.task(name=tasknames.NOOP, base=HallTask)
def noop(user_id: int | None = None) -> str:
    """A bare round trip on the money queue (bench/money.py compares against it)."""
    return "ok"
