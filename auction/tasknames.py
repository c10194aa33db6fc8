"""Task names, queues and routes, and the one way to queue a task.

The hall and the workers never import each other's task functions: both
queue work by name through `send()`, and the workers register their tasks
under exactly these names (workers/tasks/*.py). Money and notifications are
on separate queues, so a flood of SMS never delays a refund.
"""
from __future__ import annotations

import time
from typing import Any

# -- money (queue "money") -----------------------------------------------------------
PAY_DEPOSIT = "workers.tasks.deposits.pay_deposit"
WECHAT_PAID = "workers.tasks.deposits.wechat_paid"
SEND_PAYMENT_REFUND = "workers.tasks.deposits.send_payment_refund"  # money nothing wants
RECONCILE_PAYMENT = "workers.tasks.deposits.reconcile_payment"  # a notification lost?
PAY_ORDER = "workers.tasks.orders.pay_order"
TOPUP = "workers.tasks.topups.start_topup"  # 充值 by WeChat Pay
SETTLE_LOT = "workers.tasks.settlement.settle_lot"
SEND_REFUND = "workers.tasks.settlement.send_refund"
# Beat's money tick: overdue orders, stuck refunds and payments, expired
# second-chance offers, unpaid top-ups past their expiry.
MONEY_SWEEP = "workers.tasks.settlement.money_sweep"
NOOP = "workers.tasks.settlement.noop"  # a bare round trip (bench/money.py)
OFFER_PASS_ON = "workers.tasks.offers.pass_on"  # a second-chance offer goes to the next bidder

# -- lot lifecycle (queue "lots") ---------------------------------------------------------
CLOSE_AT = "workers.tasks.lots.close_at"
PUBLISH_SESSION = "workers.tasks.lots.publish_session"
START_SESSION = "workers.tasks.lots.start_session"
LOTS_TICK = "workers.tasks.lots.tick"  # beat's lots tick: the sweep, then the bid log's flush

# -- notifications (queue "notify") -------------------------------------------------------
NOTIFY_TICK = "workers.tasks.notify.tick"  # beat's notify tick: event notices, closing soon
SEND_SMS = "workers.tasks.notify.send_sms"
SEND_USER_SMS = "workers.tasks.notify.send_user_sms"

MONEY, LOTS, NOTIFY = "money", "lots", "notify"
QUEUES = (MONEY, LOTS, NOTIFY)
DEFAULT_QUEUE = LOTS
ROUTES = {
    "workers.tasks.deposits.*": {"queue": MONEY},
    "workers.tasks.settlement.*": {"queue": MONEY},
    "workers.tasks.orders.*": {"queue": MONEY},
    "workers.tasks.topups.*": {"queue": MONEY},
    "workers.tasks.offers.*": {"queue": MONEY},
    "workers.tasks.lots.*": {"queue": LOTS},
    "workers.tasks.notify.*": {"queue": NOTIFY},
}


QUEUED_HEADER = "hall_queued_at_ms"  # message header: when the task became due to run


def send(celery_app: Any, name: str, args: tuple = (), kwargs: dict | None = None,
         queued_at_ms: int | None = None, **options: Any) -> Any:
    """Queue task `name` (one of the names above); the AsyncResult.

    Every task of the product is queued here, by the hall (hall/tasks.py) and
    by the workers (workers/dispatch.py) alike; `options` are Celery's
    (task_id, countdown, expires, producer ...). The message carries when it
    became due (now, or after its countdown; `queued_at_ms` for a re-submit
    of an older task), so the worker's job record knows how long it waited
    in the queue (workers/jobs.py)."""
    due = queued_at_ms if queued_at_ms is not None else int(
        (time.time() + float(options.get("countdown") or 0)) * 1000)
    options["headers"] = {**(options.get("headers") or {}), QUEUED_HEADER: due}
    return celery_app.send_task(name, args=args, kwargs=kwargs or {}, **options)
