"""The garbage collector, kept off the fan-out's tail.

A full collection walks every object the collector tracks. A fresh hall process
holds about 75,000 of them from its imports alone (modules, classes, functions,
routes), all living as long as the process: each full collection walked them
again, 15-65 ms on the benchmark machine, a pause that every broadcast queued
behind it waits out (issue 17: the fan-out's p99 at 3-4 x its median).

After start-up they are moved out of the collector's sight (`gc.freeze`, what
CPython's docs advise before forking and Instagram does for the same pauses):
full collections then walk only what came since: connections, rooms, pending
work. Nothing made later is frozen, so garbage cycles among connections are
still collected. A callback times every collection for /metrics.

The thresholds (HALL_GC_THRESHOLD, 50000,20,100 by default): with Python's
own (700,10,10) a room of 3,000 sockets had six full collections in one
40-bid benchmark run, each walking every connection's objects (200-300 ms
here), and the broadcasts behind them made the last receiver's p99 1.9-3.1 x
websockets.broadcast's; with these, none, and 0.95-1.16 x. The price: cyclic
garbage that reached the oldest generation (closed connections, mostly) waits
longer to be freed; reference counting still frees everything else at once.
"""
from __future__ import annotations

import gc
import time


class GcWatch:
    """Collections and their pauses, by generation (gc.callbacks)."""

    def __init__(self) -> None:
        self.count = [0, 0, 0]
        self.total_s = [0.0, 0.0, 0.0]
        self.max_s = [0.0, 0.0, 0.0]
        self._started = 0.0

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        gen = info.get("generation", 2)
        took = time.perf_counter() - self._started
        self.count[gen] += 1
        self.total_s[gen] += took
        self.max_s[gen] = max(self.max_s[gen], took)

    def lines(self) -> list[str]:
        out = [
            "# HELP hall_gc_collections_total Garbage collections, by generation.",
            "# TYPE hall_gc_collections_total counter",
            *(f'hall_gc_collections_total{{generation="{g}"}} {n}' for g, n in enumerate(self.count)),
            "# HELP hall_gc_pause_seconds_total Time spent in garbage collections, by generation.",
            "# TYPE hall_gc_pause_seconds_total counter",
            *(f'hall_gc_pause_seconds_total{{generation="{g}"}} {s:.6f}' for g, s in enumerate(self.total_s)),
            "# HELP hall_gc_pause_seconds_max The longest garbage collection, by generation.",
            "# TYPE hall_gc_pause_seconds_max gauge",
            *(f'hall_gc_pause_seconds_max{{generation="{g}"}} {s:.6f}' for g, s in enumerate(self.max_s)),
            "# HELP hall_gc_frozen_objects Start-up objects kept out of collections (gc.freeze).",
            "# TYPE hall_gc_frozen_objects gauge",
            f"hall_gc_frozen_objects {gc.get_freeze_count()}",
        ]
        return out


def settle(freeze: bool = True, threshold: tuple[int, ...] = ()) -> GcWatch:
    """Once the process has started: collect what start-up left over, freeze
    the rest (unless `freeze` is off, for A/B runs), set the collector's
    thresholds if given, and watch collections."""
    gc.collect()
    if freeze:
        gc.freeze()
    if threshold:
        gc.set_threshold(*threshold)
    watch = GcWatch()
    gc.callbacks.append(watch)
    return watch
