"""Lot lifecycle tasks (queue: lots): publish, start, sweep, close, bid log."""
from __future__ import annotations

from workers import bidlog, schedule
from workers.celery import app
from workers.tasks import CONSUMER, HallTask
from workers.tasks.settlement import settle_lot


def _settle_later(lot_ids: list[int]) -> None:
    """Queue one settlement per closed lot over one broker connection."""
    with app.producer_or_acquire() as producer:
        for lot_id in lot_ids:
            settle_lot.apply_async((lot_id,), producer=producer)


def _arm(deadline_ms: int, in_s: float) -> None:
    close_at.apply_async((deadline_ms,), countdown=max(in_s, 0), expires=max(in_s, 0) + 60)


@app.task(base=HallTask)
def sweep() -> dict:
    return schedule.sweep(_settle_later, _arm)


@app.task(base=HallTask)
def close_at(deadline_ms: int) -> list[int]:
    return schedule.close_at(deadline_ms, _settle_later, _arm)


@app.task(base=HallTask)
def publish_session(session_id: int) -> dict:
    return schedule.publish_session(session_id)


@app.task(base=HallTask)
def start_session(session_id: int) -> dict:
    return schedule.start_session(session_id)


@app.task(base=HallTask)
def flush_bids() -> int:
    return bidlog.flush(CONSUMER)
