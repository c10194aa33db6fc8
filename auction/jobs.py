"""Which tasks get a job record (models.Job), and which may be run again.

Only the tasks about money and lots: the per-second sweeps and notices would
bury them. A failed task may be re-run from the jobs page only when running
it twice cannot move money twice: each of these is idempotent (unique refs
and guarded updates, docs/architecture.md "Decisions" 2).
"""
from __future__ import annotations

from auction import tasknames

RECORDED = {
    tasknames.PAY_DEPOSIT: "pay_deposit",
    tasknames.WECHAT_PAID: "wechat_paid",
    tasknames.SEND_PAYMENT_REFUND: "payment_refund",
    tasknames.RECONCILE_PAYMENT: "reconcile_payment",
    tasknames.PAY_ORDER: "pay_order",
    tasknames.SETTLE_LOT: "settle_lot",
    tasknames.SEND_REFUND: "send_refund",
    tasknames.CLOSE_AT: "close_lot",
    tasknames.PUBLISH_SESSION: "publish_session",
    tasknames.START_SESSION: "start_session",
}
RERUNNABLE = frozenset({tasknames.PAY_DEPOSIT, tasknames.PAY_ORDER, tasknames.SETTLE_LOT,
                        tasknames.SEND_REFUND, tasknames.SEND_PAYMENT_REFUND,
                        tasknames.RECONCILE_PAYMENT})
