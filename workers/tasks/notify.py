"""Notification tasks (queue: notify): outbid drain, closing soon, SMS sends.

`tick` runs from beat every SWEEP_INTERVAL_S: the event drain, then the
closing-soon reminders;
`send_sms` / `send_user_sms` are queued by workers/notify.py. Provider
trouble (sms.SmsUnavailable: network, timeouts, 429/5xx, throttling) is
retried with exponential backoff and full jitter; SMS sends live on their own
queue, so a failing provider never delays bids, closes or money tasks.
"""
from __future__ import annotations

import random
from typing import Any

import settings
from auction import tasknames
from workers import notify
from workers.celery import app
from workers.sms import SmsUnavailable
from workers.tasks import CONSUMER, TRANSIENT, HallTask, TickTask, each


class SmsTask(HallTask):
    """Autoretry on provider trouble: backoff * 2**n seconds (capped), then
    "equal jitter" (between half and all of it) so a provider outage is not
    answered by every queued message retrying in the same instant; unlike
    Celery's full jitter, a retry never comes at once."""
    abstract = True
    autoretry_for = TRANSIENT + (SmsUnavailable,)
    retry_backoff = settings.NOTIFY_SMS_RETRY_BACKOFF_S
    retry_backoff_max = settings.NOTIFY_SMS_RETRY_MAX_S
    retry_jitter = False
    max_retries = settings.NOTIFY_SMS_RETRIES

    def retry(self, *args: Any, countdown: float | None = None, **kwargs: Any) -> Any:
        if countdown:
            countdown = countdown * random.uniform(0.5, 1.0)
        return super().retry(*args, countdown=countdown, **kwargs)


@app.task(name=tasknames.NOTIFY_TICK, base=TickTask)
def tick() -> dict:
    """Beat, every HALL_SWEEP_INTERVAL_S: the event stream drained into
    notices, then the closing-soon reminders."""
    return each({"events": lambda: notify.drain_events(CONSUMER),
                 "closing_soon": notify.closing_soon})


@app.task(name=tasknames.SEND_SMS, base=SmsTask)
def send_sms(phone: str, template: str, params: dict, out_id: str) -> dict:
    return notify.send(phone, template, params, out_id)


@app.task(name=tasknames.SEND_USER_SMS, base=SmsTask)
def send_user_sms(user_id: int, template: str, params: dict, out_id: str) -> dict:
    return notify.send_to_user(user_id, template, params, out_id)
