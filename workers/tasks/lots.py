"""Lot lifecycle tasks (queue: lots): publish, start, sweep, close, bid log."""
from __future__ import annotations

from workers import bidlog, schedule
from workers.celery import app
from workers.tasks import CONSUMER, HallTask
from workers.tasks.settlement import settle_lot


def _settle_later(lot_id: int) -> None:
    settle_lot.delay(lot_id)


def _close_at(lot_id: int, in_s: float) -> None:
    close_lot.apply_async((lot_id,), countdown=max(in_s, 0), expires=in_s + 30)


@app.task(base=HallTask)
def sweep() -> dict:
    return schedule.sweep(_settle_later, _close_at)


@app.task(base=HallTask)
def close_lot(lot_id: int) -> dict:
    return schedule.close_lot(lot_id, _settle_later)


@app.task(base=HallTask)
def publish_session(session_id: int) -> dict:
    return schedule.publish_session(session_id)


@app.task(base=HallTask)
def start_session(session_id: int) -> dict:
    return schedule.start_session(session_id)


@app.task(base=HallTask)
def flush_bids() -> int:
    return bidlog.flush(CONSUMER)
