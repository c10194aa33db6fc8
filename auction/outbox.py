"""The outbox: every task the hall answered 202 for, until a worker finishes it.

Once a task is in a worker's hands the broker keeps it (late acknowledgement
and leases, workers/leases.py). Before that there are moments where a message
can be lost with nobody noticing: a worker killed between taking it off the
queue and writing it to the unacknowledged set, a broker that restarts without
having saved it, a publish that fails after the client was told "queued". The
hall cannot tell these apart from "still waiting in the queue", so it keeps a
record of what it submitted and, while a task has not started, submits it
again with the same task id on a backoff. Every task is idempotent by its id,
so a copy that was not lost after all runs twice and changes nothing.

A worker clears the entry when the task reaches SUCCESS or FAILURE (the
tasks' base class, in the same pipeline as its "finished" counter); the hall's
sweep also drops entries whose result says they are done.

This module only says what to write and decides; the hall and the workers
run the commands on their own clients (a pipeline of either kind).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from auction import keys

# A task still PENDING this long after its submission is looked at again.
FIRST_LOOK_S = 30.0
MAX_BACKOFF_S = 300.0
FINAL_STATES = ("SUCCESS", "FAILURE", "REVOKED")
# A worker holds it (running, waiting for a retry, or just received): the
# broker's lease brings it back if that worker dies, so no copy is needed.
HELD_STATES = ("STARTED", "RETRY", "RECEIVED")


@dataclass
class Entry:
    task_id: str
    name: str
    kwargs: dict
    at_ms: int
    attempts: int = 0

    def dumps(self) -> str:
        return json.dumps({"name": self.name, "kwargs": self.kwargs, "at_ms": self.at_ms,
                           "attempts": self.attempts}, separators=(",", ":"))

    @classmethod
    def loads(cls, task_id: str, raw: str | bytes) -> "Entry":
        d = json.loads(raw)
        return cls(task_id, d["name"], d["kwargs"], int(d["at_ms"]), int(d.get("attempts", 0)))


def record(pipe: Any, entry: Entry, first_look_s: float = FIRST_LOOK_S) -> None:
    """Queue on `pipe` the commands that put a submitted task in the outbox."""
    pipe.hset(keys.TASK_OUTBOX, entry.task_id, entry.dumps())
    pipe.zadd(keys.TASK_OUTBOX_DUE, {entry.task_id: entry.at_ms + int(first_look_s * 1000)})


def clear(pipe: Any, task_id: str) -> None:
    """Queue on `pipe` the commands that take a finished task out of the outbox."""
    pipe.hdel(keys.TASK_OUTBOX, task_id)
    pipe.zrem(keys.TASK_OUTBOX_DUE, task_id)


def backoff_s(attempts: int, first_look_s: float = FIRST_LOOK_S) -> float:
    """Wait before the next look after `attempts` re-submissions (doubling, capped)."""
    return min(first_look_s * (2 ** attempts), MAX_BACKOFF_S)


def verdict(state: str) -> str:
    """What to do with a due entry whose task is in `state`: done, wait or resubmit."""
    if state in FINAL_STATES:
        return "done"
    if state in HELD_STATES:
        return "wait"
    return "resubmit"  # PENDING: queued behind others, or lost; a copy is harmless
