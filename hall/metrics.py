"""Counters for /metrics, in Prometheus text format (kept by hand: a few ints)."""
from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hall.audience import Audience
    from hall.bidding import BidBatcher
    from hall.gcpause import GcWatch


class Metrics:
    def __init__(self) -> None:
        self.bids = Counter()  # outcome code -> count ("accepted" for accepted)
        self.laggards = 0
        self.sockets_opened = 0
        self.gc: "GcWatch | None" = None  # set once the process has started (hall/gcpause.py)
        self.batcher: "BidBatcher | None" = None  # the bid pipelines (hall/bidding.py)

    def count_bid(self, answer: dict) -> None:
        self.bids[answer.get("code", "accepted")] += 1

    def count_code(self, code: str) -> None:
        self.bids[code] += 1

    def render(self, audience: "Audience") -> str:
        lines = [
            "# HELP hall_bids_total Bids answered by this hall process, by outcome.",
            "# TYPE hall_bids_total counter",
        ]
        for code, n in sorted(self.bids.items()):
            lines.append(f'hall_bids_total{{outcome="{code}"}} {n}')
        lines += [
            "# HELP hall_connections Open WebSocket connections.",
            "# TYPE hall_connections gauge",
            f"hall_connections {len(audience.sockets)}",
            "# HELP hall_rooms Lots with at least one watcher in this process.",
            "# TYPE hall_rooms gauge",
            f"hall_rooms {len(audience.rooms.rooms)}",
            "# HELP hall_laggards_closed_total Sockets closed for not reading.",
            "# TYPE hall_laggards_closed_total counter",
            f"hall_laggards_closed_total {self.laggards}",
            "# HELP hall_sockets_opened_total WebSocket connections accepted.",
            "# TYPE hall_sockets_opened_total counter",
            f"hall_sockets_opened_total {self.sockets_opened}",
            "# HELP hall_pubsub_reconnects_total Redis pub/sub reconnections.",
            "# TYPE hall_pubsub_reconnects_total counter",
            f"hall_pubsub_reconnects_total {audience.relay.reconnects}",
        ]
        if self.batcher is not None:
            lines += [
                "# HELP hall_bid_batches_total Pipelines of bid script calls sent to Redis.",
                "# TYPE hall_bid_batches_total counter",
                f"hall_bid_batches_total {self.batcher.batches}",
                "# HELP hall_bid_batch_calls_total Bid script calls in those pipelines.",
                "# TYPE hall_bid_batch_calls_total counter",
                f"hall_bid_batch_calls_total {self.batcher.calls}",
            ]
        if self.gc is not None:
            lines += self.gc.lines()
        return "\n".join(lines) + "\n"
