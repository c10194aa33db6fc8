"""Job records: every money or lot task run ends with one row in models.Job.

Celery signals, so no task needs to know: prerun notes the start, failure and
retry note what went wrong, postrun queues the record in Redis and, when no
one else is at it, writes a batch of queued records to the database
(auction/jobs.py: one transaction per batch, an upsert per task id, so a
retry or a redelivery updates the same task's row). Failures of every task
are also counted in Redis for /metrics. A record that cannot be written is
logged and never fails the task it describes.
"""
from __future__ import annotations

import json
import inspect
import logging
from datetime import datetime
from typing import Any

from celery import signals

from auction import jobs, keys, tasknames
from models import db, now_ms
from workers import publish
from workers.db import bind

logger = logging.getLogger(__name__)

_running: dict[str, dict] = {}  # task id -> what prerun/failure/retry learned


@signals.task_prerun.connect
def _started(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    if task is not None and task.name in jobs.RECORDED and task_id:
        _running[task_id] = {"started_at_ms": now_ms(), "queued_at_ms": _queued_at(task.request)}


def _queued_at(request: Any) -> int | None:
    """When this run became due: the submit time the message carries
    (auction/tasknames.py), or its ETA if later (a countdown, a retry's)."""
    try:
        due = request.get(tasknames.QUEUED_HEADER)
        due = int(due) if due is not None else None
        eta = request.get("eta")
        if eta:
            eta_ms = int(datetime.fromisoformat(str(eta)).timestamp() * 1000)
            due = max(due or 0, eta_ms)
        return due
    except (TypeError, ValueError):
        return None


@signals.task_failure.connect
def _failed(task_id: str | None = None, exception: BaseException | None = None,
            sender: Any = None, **_: Any) -> None:
    name = getattr(sender, "name", "?")
    try:
        publish.client().hincrby(keys.TASKS_FAILED_TOTAL, name, 1)
    except Exception as exc:  # a Redis blip must not turn into a second failure
        logger.warning("could not count the failure of %s: %s", name, exc)
    if task_id in _running:
        code = getattr(exception, "code", None)
        _running[task_id]["error"] = (f"{code}: " if code else "") + (
            f"{type(exception).__name__}: {exception}" if code is None else str(
                getattr(exception, "message", exception)))


@signals.task_retry.connect
def _retried(request: Any = None, reason: Any = None, **_: Any) -> None:
    task_id = getattr(request, "id", None)
    if task_id in _running:
        _running[task_id]["error"] = f"retrying: {reason}"[:300]


@signals.task_postrun.connect
def _finished(task_id: str | None = None, task: Any = None, args: Any = None,
              kwargs: dict | None = None, state: str | None = None, **_: Any) -> None:
    seen = _running.pop(task_id, None) if task_id else None
    if seen is None or task is None:
        return
    kwargs = _named(task, args or (), kwargs or {})
    row = {"name": task.name, "kind": jobs.RECORDED[task.name],
           "lot_id": _int(kwargs.get("lot_id")), "session_id": _int(kwargs.get("session_id")),
           "user_id": _int(kwargs.get("user_id")), "state": state or "UNKNOWN",
           "retries": int(getattr(task.request, "retries", 0) or 0),
           "error": (seen.get("error") or None) if state != "SUCCESS" else None,
           "kwargs": kwargs, "queued_at_ms": seen["queued_at_ms"],
           "started_at_ms": seen["started_at_ms"], "finished_at_ms": now_ms()}
    if row["error"]:
        row["error"] = row["error"][:300]
    try:
        redis = publish.client()
        pipe = redis.pipeline(transaction=False)
        pipe.rpush(keys.JOBS_PENDING, json.dumps({"task_id": task_id, **row},
                                                 separators=(",", ":"), default=str))
        if row["queued_at_ms"] is not None:  # for /metrics: the queue wait summed per kind
            wait = max(0, row["started_at_ms"] - row["queued_at_ms"])
            pipe.hincrby(keys.JOBS_WAIT_MS_TOTAL, row["kind"], wait)
            pipe.hincrby(keys.JOBS_WAIT_COUNT, row["kind"], 1)
        pipe.execute()
        # At most one batch a FLUSH_EVERY_MS across all workers: the lock is
        # left to expire, not released, so the writes come in batches.
        if redis.set(keys.JOBS_FLUSH_LOCK, 1, nx=True, px=jobs.FLUSH_EVERY_MS):
            flush(redis)
    except Exception as exc:  # a job record never fails the task it describes
        logger.warning("could not record job %s (%s): %s", task_id, task.name, exc)


def flush(redis: Any) -> int:
    """Write one batch of queued records; taken off the queue only once committed."""
    raw = redis.lrange(keys.JOBS_PENDING, 0, jobs.BATCH - 1)
    if not raw:
        return 0
    bind()
    with db.connection_context():
        jobs.store(raw)
    redis.ltrim(keys.JOBS_PENDING, len(raw), -1)
    return len(raw)


def _named(task: Any, args: Any, kwargs: dict) -> dict:
    """The run's arguments by name: the workers queue some tasks with positional
    ones (a settlement after a deadline: `(lot_id,)`), and the record is found
    by lot, and re-run, by name."""
    if not args:
        return kwargs
    try:
        return dict(inspect.signature(task.run).bind_partial(*args, **kwargs).arguments)
    except (TypeError, ValueError):
        return kwargs


def _int(value: Any) -> int | None:
    return value if type(value) is int else None
