"""Which tasks get a job record (models.Job), and which may be run again.

Only the tasks about money and lots: the per-second sweeps and notices would
bury them. A failed task may be re-run from the jobs page only when running
it twice cannot move money twice: each of these is idempotent (unique refs
and guarded updates, docs/architecture.md "Decisions" 2).
"""
from __future__ import annotations

import json
from typing import Any

from auction import tasknames
from models import Job, Lot, write_transaction

# Job records are queued in Redis as each run ends and written to the
# database in batches (one transaction for up to BATCH), by whichever worker
# or hall takes JOBS_FLUSH_LOCK first: a write transaction per task run
# would compete with the money tasks themselves for SQLite's write lock.
BATCH = 500
FLUSH_EVERY_MS = 1000

RECORDED = {
    tasknames.PAY_DEPOSIT: "pay_deposit",
    tasknames.WECHAT_PAID: "wechat_paid",
    tasknames.SEND_PAYMENT_REFUND: "payment_refund",
    tasknames.RECONCILE_PAYMENT: "reconcile_payment",
    tasknames.PAY_ORDER: "pay_order",
    tasknames.TOPUP: "topup",
    tasknames.SETTLE_LOT: "settle_lot",
    tasknames.SEND_REFUND: "send_refund",
    tasknames.CLOSE_AT: "close_lot",
    tasknames.PUBLISH_SESSION: "publish_session",
    tasknames.START_SESSION: "start_session",
}
RERUNNABLE = frozenset({tasknames.PAY_DEPOSIT, tasknames.PAY_ORDER, tasknames.SETTLE_LOT,
                        tasknames.SEND_REFUND, tasknames.SEND_PAYMENT_REFUND,
                        tasknames.RECONCILE_PAYMENT})


def store(raw: list[Any]) -> int:
    """Write queued records (JSON) in one transaction; a task seen again (a
    retry, a redelivery, a re-run's PENDING row) updates its row."""
    rows = [json.loads(r) for r in raw]
    lots = {r["lot_id"] for r in rows if r.get("lot_id") and r.get("session_id") is None}
    with write_transaction():
        # Found by session too, though most lot tasks name only their lot.
        sessions = {lot.id: lot.session_id for lot in
                    Lot.select(Lot.id, Lot.auction_session).where(Lot.id.in_(list(lots)))} if lots else {}
        for row in rows:
            if row.get("session_id") is None and row.get("lot_id") in sessions:
                row["session_id"] = sessions[row["lot_id"]]
            task_id = row.pop("task_id")
            if not Job.update(**row).where(Job.task_id == task_id).execute():
                Job.create(task_id=task_id, **row)
    return len(rows)
