"""Alerts to the operators: money that needs a person (a refused refund, a
forfeited order, a payment nothing wants). LPUSH on `ops:alerts` (the last
200 kept, for the dashboard) and PUBLISH on channel `ops`, as they happen."""
from __future__ import annotations

import time
from typing import Any

from auction import keys, wire
from workers import publish

KEEP = 200


def alert_ops(kind: str, **fields: Any) -> None:
    message = wire.dumps({"type": "alert", "kind": kind, "at_ms": int(time.time() * 1000),
                          **fields})
    pipe = publish.client().pipeline(transaction=False)
    pipe.lpush(keys.OPS_ALERTS, message)
    pipe.ltrim(keys.OPS_ALERTS, 0, KEEP - 1)
    pipe.publish(keys.OPS_CHANNEL, message)
    pipe.execute()
