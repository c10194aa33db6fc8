"""Settlement after the hammer (queue: money)."""
from __future__ import annotations

from workers import settlement
from workers.celery import app
from workers.tasks import HallTask


@app.task(base=HallTask)
def settle_lot(lot_id: int, user_id: int | None = None) -> dict:
    return settlement.settle_lot(lot_id)
