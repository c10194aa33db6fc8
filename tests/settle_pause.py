"""The product's Celery app for the crash test, with settlement pausing after
each refund: `celery -A tests.settle_pause worker ...`.

After every loser's refund commits, the worker LPUSHes `{"pid", "lot_id",
"refunds"}` on `test:settle:paused` and sleeps SETTLE_PAUSE_S, so the test
can SIGKILL it in the middle of a settlement. The product has no such hook:
the pause is wrapped around `workers.refunds.refund_deposit` here.
"""
from __future__ import annotations

import json
import os
import time
from collections import Counter

from models import Deposit
from workers import app, publish, refunds

__all__ = ["app"]

PAUSED = "test:settle:paused"
SETTLE_PAUSE_S = 120
_original = refunds.refund_deposit
_done: Counter[int] = Counter()


def refund_deposit(deposit_id: int, dispatcher=None):
    refund = _original(deposit_id, dispatcher)
    if refund is not None:
        lot_id = Deposit.get_by_id(deposit_id).lot_id
        _done[lot_id] += 1
        publish.client().lpush(PAUSED, json.dumps(
            {"pid": os.getpid(), "lot_id": lot_id, "refunds": _done[lot_id]}))
        time.sleep(SETTLE_PAUSE_S)
    return refund


refunds.refund_deposit = refund_deposit
