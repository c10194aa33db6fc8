"""Lot lifecycle tasks (queue: lots): publish, start, sweep, close, bid log."""
from __future__ import annotations

from auction import tasknames
from workers import bidlog, dispatch, schedule
from workers.celery import app
from workers.tasks import CONSUMER, HallTask, OwnedTask, PeriodicTask


class PublishTask(OwnedTask):
    abstract = True
    kind = "publish"


@app.task(name=tasknames.SWEEP, base=PeriodicTask)
def sweep() -> dict:
    return schedule.sweep(dispatch.settlements, dispatch.close_at)


@app.task(name=tasknames.CLOSE_AT, base=PeriodicTask)
def close_at(deadline_ms: int) -> list[int]:
    return schedule.close_at(deadline_ms, dispatch.settlements, dispatch.close_at)


@app.task(name=tasknames.PUBLISH_SESSION, base=PublishTask)
def publish_session(session_id: int, user_id: int | None = None) -> dict:
    """Publish now; `user_id`, the operator who asked, is told when it is done."""
    return schedule.publish_session(session_id)


@app.task(name=tasknames.START_SESSION, base=HallTask)
def start_session(session_id: int) -> dict:
    return schedule.start_session(session_id)


@app.task(name=tasknames.FLUSH_BIDS, base=PeriodicTask)
def flush_bids() -> int:
    return bidlog.flush(CONSUMER)
