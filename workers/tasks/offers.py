"""Second-chance offers (queue: money): passing a lot on (the expiry sweep is
part of the money tick, workers/tasks/settlement.py)."""
from __future__ import annotations

from auction import tasknames
from workers import offers
from workers.celery import app
from workers.tasks import HallTask


@app.task(name=tasknames.OFFER_PASS_ON, base=HallTask)
def pass_on(lot_id: int, user_id: int | None = None) -> dict:
    """After a decline or a too-late accept: the lot goes to the next bidder."""
    return offers.pass_on(lot_id)
