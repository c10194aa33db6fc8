"""The Celery application, shared by the workers, beat and the hall's client."""
from __future__ import annotations

from celery import Celery
from celery.signals import worker_init
from kombu import Queue

import settings
from auction import tasknames
from auction.redisconn import celery_urls
from workers.broker import transport_for
from workers.leases import Leases

# REDIS_URL, or with REDIS_SENTINELS sentinel:// URLs plus the master's name.
_redis = celery_urls()


def _every(task: str, seconds: float) -> dict:
    """A beat entry; a run not started within 5 periods is dropped (the next one comes)."""
    return {"task": task, "schedule": seconds, "options": {"expires": 5 * seconds}}

app = Celery(
    "auction",
    include=[
        "workers.tasks.deposits",
        "workers.tasks.settlement",
        "workers.tasks.lots",
        "workers.tasks.orders",
        "workers.tasks.topups",
        "workers.tasks.offers",
        "workers.tasks.notify",
        "workers.jobs",  # not tasks: the signals that keep the job records (models.Job)
    ],
)
app.conf.update(
    broker_url=_redis["broker_url"],
    # kombu's Redis transport, but a channel used after its connection closed
    # raises ConnectionError (reconnect) rather than AttributeError (worker exits).
    broker_transport=transport_for(_redis["broker_url"]),
    result_backend=_redis["result_backend"],
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    timezone="UTC",
    enable_utc=True,
    # Money tasks are idempotent, so acknowledge after they finish: a worker
    # killed mid-task gets its task redelivered instead of losing it.
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    task_track_started=True,
    # Prefetched messages are held (leased, workers/leases.py) but not run;
    # few of them means little to hand out again when a worker dies.
    worker_prefetch_multiplier=1,
    result_expires=7 * 24 * 3600,
    result_extended=True,
    task_queues=[Queue(q) for q in tasknames.QUEUES],
    task_default_queue=tasknames.DEFAULT_QUEUE,
    task_routes=tasknames.ROUTES,
    # Live workers renew the lease of every message they hold (workers/leases.py),
    # so a short visibility timeout only means faster redelivery of tasks from
    # a dead worker. The restore mutex of a worker killed while restoring
    # expires soon too (kombu's default, 300 s, would stall every restore).
    broker_transport_options={"visibility_timeout": settings.VISIBILITY_TIMEOUT_S,
                              "unacked_mutex_expire": max(int(settings.LEASE_RENEW_S * 2), 2),
                              "unacked_restore_throttle": 1,
                              **_redis["broker_transport_options"]},
    # A result stored while Redis restarts or fails over waits for it (backing
    # off up to 2 s) rather than failing the task's last step.
    result_backend_always_retry=True,
    result_backend_max_retries=30,
    result_backend_max_sleep_between_retries_ms=2000,
    result_backend_transport_options={"retry_policy": {"timeout": 5.0},
                                      **_redis["result_backend_transport_options"]},
    broker_connection_retry_on_startup=True,
    worker_send_task_events=True,
    task_send_sent_event=False,
    # One tick per queue: each Celery round trip costs the worker far more
    # than an idle sweep's own work (docs/benchmarks.md, "the worker's fixed cost").
    beat_schedule={
        # Deadlines past due closed (backstop of the close_at timers); the bid log flushed.
        "lots-tick": _every(tasknames.LOTS_TICK, settings.SWEEP_INTERVAL_S),
        # 悔拍 for orders past pay_by_ms, stuck WeChat refunds and payments, expired
        # second-chance offers, top-ups left unpaid past their expiry (queue: money).
        "money-tick": _every(tasknames.MONEY_SWEEP, max(settings.SWEEP_INTERVAL_S, 1.0)),
        # Outbid and other event notices; closing-soon reminders (queue: notify).
        "notify-tick": _every(tasknames.NOTIFY_TICK, settings.SWEEP_INTERVAL_S),
    },
)


app.steps["consumer"].add(Leases)


@worker_init.connect
def _bind_database(**_kwargs) -> None:
    """Workers use plain peewee (the hall binds the async database itself)."""
    from workers.db import bind
    bind()


@worker_init.connect
def _guard_pool(sender=None, **_kwargs) -> None:
    """Under -P eventlet, a task's failing last step must not stall the consumer."""
    if "eventlet" in str(getattr(sender, "pool_cls", "")).lower():
        from workers.pool import install
        install()
