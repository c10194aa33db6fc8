"""Thin Celery tasks: each calls one plain function from workers/.

`OwnedTask` tells the task's owner (kwargs["user_id"]) over their sockets
when it finishes, after the result is stored, so a client that reacts to the
`task` message and then reads /api/tasks/{id} sees the final state.
"""
from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections.abc import Callable
from typing import Any

from celery import Task
from peewee import InterfaceError, OperationalError
from redis.exceptions import ConnectionError as RedisConnectionError

import settings
from auction import keys, outbox
from auction.errors import Refused
from models import db
from workers import alerts, publish
from workers.db import bind

logger = logging.getLogger(__name__)

TASKS_DONE_TTL_S = 30
# Transient failures worth retrying: a locked/unreachable database, Redis blips.
TRANSIENT = (OperationalError, InterfaceError, RedisConnectionError)
CONSUMER = f"{socket.gethostname()}-{os.getpid()}"


class HallTask(Task):
    """Base: database bound and connection closed around every run.

    A `Refused` (already_paid, a used coupon, a short balance) is an answer,
    not a fault: `throws` makes Celery log it at INFO as "raised expected",
    without a traceback; ERROR with a traceback stays for real failures."""
    abstract = True
    throws = (Refused,)
    # A locked or unreachable database is waited out, however long it takes:
    # each attempt is bounded (the database's busy/connect timeout), the wait
    # between attempts doubles up to 10 s, and the number of attempts is not
    # (dropping a settlement or a deposit is never the answer). Operators are
    # alerted once a task has been retrying for a while (on_retry).
    autoretry_for = TRANSIENT
    retry_backoff = 0.5
    retry_backoff_max = 10
    max_retries = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        bind()
        # The connection opens lazily inside run(), so a database that is down
        # raises there, where autoretry_for sees it and retries with backoff.
        try:
            return super().__call__(*args, **kwargs)
        finally:
            if not db.is_closed():
                db.close()

    def after_return(self, status: str, retval: Any, task_id: str, args: Any, kwargs: Any,
                     einfo: Any) -> None:
        """Count the finished task (SUCCESS or FAILURE; Celery skips retries) in a
        per-second bucket and take it out of the hall's outbox: one pipelined
        round trip."""
        key = keys.tasks_done(int(time.time()))
        try:
            pipe = publish.client().pipeline(transaction=False)
            pipe.incr(key)
            pipe.expire(key, TASKS_DONE_TTL_S)
            outbox.clear(pipe, task_id)
            pipe.execute()
        except Exception as exc:
            logger.warning("could not count a finished task: %s", exc)

    def on_retry(self, exc: Exception, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        """Tell the operators when a task keeps failing on something transient
        (at the threshold, then every tenth time past it)."""
        attempt = self.request.retries + 1
        after = settings.RETRY_ALERT_AFTER
        if attempt >= after and (attempt - after) % 10 == 0:
            try:
                alerts.alert_ops("task_retrying", task=self.name, task_id=task_id,
                                 attempts=attempt, error=f"{type(exc).__name__}: {exc}"[:300])
            except Exception:
                logger.exception("could not alert operators of a retrying task")

    def on_failure(self, exc: Exception, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        if not isinstance(exc, Refused):
            try:
                publish.client().lpush(keys.TASK_FAILURES, json.dumps({
                    "task": self.name, "task_id": task_id, "error": f"{type(exc).__name__}: {exc}"[:300],
                    "at_ms": int(time.time() * 1000)}))
                publish.client().ltrim(keys.TASK_FAILURES, 0, 49)
            except Exception:
                logger.exception("could not record a task failure")


class PeriodicTask(HallTask):
    """Beat's periodic work (sweeps, flushes): a transient failure is not
    retried, the next beat does the same work anyway. Retrying would pile up
    copies of it, one per beat, for as long as the database stays locked."""
    abstract = True
    autoretry_for = ()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except TRANSIENT as exc:
            return skipped(self.name, exc)


class TickTask(PeriodicTask):
    """Beat's once-a-second tick of a queue. Nobody waits for its result, so
    none is stored (nor a STARTED state before it) and no monitoring events
    are sent: on an idle worker those round trips were most of its CPU
    (docs/benchmarks.md, "the worker's fixed cost"). The worker's log still
    shows each run and what it returned."""
    abstract = True
    ignore_result = True
    send_events = False


class OwnedTask(HallTask):
    abstract = True
    kind = "task"

    def _tell(self, task_id: str, kwargs: dict, message: dict) -> None:
        user_id = kwargs.get("user_id")
        if user_id is not None:
            publish.to_user(user_id, {"type": "task", "task_id": task_id, "kind": self.kind,
                                      **message})

    def on_success(self, retval: Any, task_id: str, args: Any, kwargs: dict) -> None:
        self._tell(task_id, kwargs, {"state": "SUCCESS", "result": retval})

    def on_failure(self, exc: Exception, task_id: str, args: Any, kwargs: dict, einfo: Any) -> None:
        super().on_failure(exc, task_id, args, kwargs, einfo)
        if isinstance(exc, Refused):
            error = {"code": exc.code, "message": exc.message}
        else:
            error = {"code": "task_failed", "message": "the task failed"}
        self._tell(task_id, kwargs, {"state": "FAILURE", "error": error})


def skipped(what: str, exc: BaseException) -> dict:
    """Periodic work left for the next round after a transient failure."""
    logger.warning("%s skipped this round: %r", what, exc)
    return {"skipped": f"{type(exc).__name__}: {exc}"[:200]}


def each(parts: dict[str, Callable[[], Any]]) -> dict:
    """Run a tick's independent parts in turn, each result under its name.

    One part's transient failure (a locked database, a Redis blip) skips only
    that part this round, as when each was a task of its own."""
    done: dict[str, Any] = {}
    for name, part in parts.items():
        try:
            done[name] = part()
        except TRANSIENT as exc:
            done[name] = skipped(name, exc)
    return done
