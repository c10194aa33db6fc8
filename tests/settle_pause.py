"""The product's Celery app for the crash test, with settlement pausing at
each refund: `celery -A tests.settle_pause worker ...`.

The worker LPUSHes `{"pid", "lot_id", "refunds"}` on `test:settle:paused` and
sleeps SETTLE_PAUSE_S, so the test can SIGKILL it in the middle of a
settlement, at one of two places (`SETTLE_PAUSE_AT`):

- `refunded` (the default): after a refund has committed and been announced
  (wrapped around `workers.refunds.refund_deposit`);
- `unannounced`: after the refund's commit, before its after-commit
  announcement has told anyone (wrapped around `workers.refunds.announce`).

The product has no such hooks; they are wrapped around its functions here.
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
_refund_deposit = refunds.refund_deposit
_announce = refunds.announce
_done: Counter[int] = Counter()


def _pause(lot_id: int) -> None:
    _done[lot_id] += 1
    publish.client().lpush(PAUSED, json.dumps(
        {"pid": os.getpid(), "lot_id": lot_id, "refunds": _done[lot_id]}))
    time.sleep(SETTLE_PAUSE_S)


def refund_deposit(deposit_id: int, dispatcher=None):
    refund = _refund_deposit(deposit_id, dispatcher)
    if refund is not None:
        _pause(Deposit.get_by_id(deposit_id).lot_id)
    return refund


def announce(refund, deposit, dispatcher=None, **extra):
    _pause(deposit.lot_id)
    return _announce(refund, deposit, dispatcher, **extra)


if os.environ.get("SETTLE_PAUSE_AT", "refunded") == "unannounced":
    refunds.announce = announce
else:
    refunds.refund_deposit = refund_deposit
