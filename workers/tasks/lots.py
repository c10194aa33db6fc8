"""Lot lifecycle tasks (queue: lots): publish, start, sweep, close, bid log."""
from __future__ import annotations

from auction import tasknames
from workers import bidlog, dispatch, schedule
from workers.celery import app
from workers.tasks import CONSUMER, HallTask, OwnedTask, PeriodicTask, TickTask, each


class PublishTask(OwnedTask):
    abstract = True
    kind = "publish"


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


@app.task(name=tasknames.LOTS_TICK, base=TickTask)
def tick() -> dict:
    """Beat, every HALL_SWEEP_INTERVAL_S: the deadline sweep and the bid
    log's flush in one run (one Celery round trip instead of two)."""
    return each({"sweep": lambda: schedule.sweep(dispatch.settlements, dispatch.close_at),
                 "bids_flushed": lambda: bidlog.flush(CONSUMER)})
