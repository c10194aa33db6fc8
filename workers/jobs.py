"""Job records: every money or lot task run ends with one row in models.Job.

Celery signals, so no task needs to know: prerun notes the start, failure and
retry note what went wrong, postrun writes the row (one upsert per run, so a
retry or a redelivery updates the same task's row). Failures of every task
are also counted in Redis for /metrics. A record that cannot be written is
logged and never fails the task it describes.
"""
from __future__ import annotations

import logging
from typing import Any

from celery import signals

from auction import jobs, keys
from models import Job, Lot, db, now_ms, write_transaction
from workers import publish
from workers.db import bind

logger = logging.getLogger(__name__)

_running: dict[str, dict] = {}  # task id -> what prerun/failure/retry learned


@signals.task_prerun.connect
def _started(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    if task is not None and task.name in jobs.RECORDED and task_id:
        _running[task_id] = {"started_at_ms": now_ms()}


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
def _finished(task_id: str | None = None, task: Any = None, kwargs: dict | None = None,
              state: str | None = None, **_: Any) -> None:
    seen = _running.pop(task_id, None) if task_id else None
    if seen is None or task is None:
        return
    kwargs = kwargs or {}
    row = {"name": task.name, "kind": jobs.RECORDED[task.name],
           "lot_id": _int(kwargs.get("lot_id")), "session_id": _int(kwargs.get("session_id")),
           "user_id": _int(kwargs.get("user_id")), "state": state or "UNKNOWN",
           "retries": int(getattr(task.request, "retries", 0) or 0),
           "error": (seen.get("error") or None) if state != "SUCCESS" else None,
           "kwargs": kwargs, "started_at_ms": seen["started_at_ms"], "finished_at_ms": now_ms()}
    if row["error"]:
        row["error"] = row["error"][:300]
    try:
        bind()
        with db.connection_context():
            with write_transaction():
                if row["session_id"] is None and row["lot_id"] is not None:
                    # Found by session too, though the task names only its lot.
                    lot = Lot.get_or_none(Lot.id == row["lot_id"])
                    row["session_id"] = lot.session_id if lot else None
                updated = Job.update(**row).where(Job.task_id == task_id).execute()
                if not updated:
                    Job.create(task_id=task_id, **row)
    except Exception as exc:
        logger.warning("could not record job %s (%s): %s", task_id, task.name, exc)


def _int(value: Any) -> int | None:
    return value if type(value) is int else None
