"""Handing work to the Celery workers from the hall (an embedded client).

Publishing a Celery message is a blocking call, so it runs on the
application's thread pool (as Flower does); the hall answers 202 with the
task id at once. The task's owner is remembered in Redis so only they can
read it, and so the worker knows whose sockets to tell when it finishes.
It also goes into the outbox (auction/outbox.py), which this module sweeps:
a task the broker lost before any worker held it is submitted again.
"""
from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any, Protocol

import settings
from auction import keys, outbox, tasknames
from hall.errors import ApiError

logger = logging.getLogger(__name__)

TASK_TTL_S = 7 * 24 * 3600
OPERATOR_WAIT_S = 15  # how long an operator's request waits for its task


class Resources(Protocol):
    """What queueing needs of the application."""
    redis: Any
    celery: Any

    async def run_blocking(self, fn: Any, *args: Any) -> Any: ...


async def submit(app: Resources, name: str, owner_id: int, kind: str,
                 kwargs: dict[str, Any]) -> str:
    """Queue task `name` for its owner; the task id, at once."""
    task_id = str(uuid.uuid4())
    pipe = app.redis.pipeline(transaction=False)
    pipe.hset(keys.task_owner(task_id), mapping={"owner": owner_id, "kind": kind})
    pipe.expire(keys.task_owner(task_id), TASK_TTL_S)
    outbox.record(pipe, outbox.Entry(task_id, name, kwargs, int(time.time() * 1000)),
                  settings.OUTBOX_LOOK_S)
    await pipe.execute()
    try:
        await app.run_blocking(lambda: tasknames.send(app.celery, name, kwargs=kwargs,
                                                      task_id=task_id))
    except Exception as exc:  # broker down: tell the client to retry
        raise ApiError("unavailable", f"could not queue the task: {type(exc).__name__}")
    return task_id


async def submit_and_wait(app: Resources, name: str, owner_id: int, kind: str,
                          kwargs: dict[str, Any], timeout: float = OPERATOR_WAIT_S
                          ) -> tuple[str, bool]:
    """Queue a task and wait up to `timeout` for it to finish (operator actions
    that answer with the state they made): (task id, finished). A task not
    finished in time is still queued and will run; the caller says so, with
    the id to follow, rather than an error that reads as "nothing happened"."""
    task_id = await submit(app, name, owner_id, kind, kwargs)

    def wait() -> bool:
        try:
            app.celery.AsyncResult(task_id).get(timeout=timeout, propagate=False)
        except Exception:  # celery.exceptions.TimeoutError, or the backend away
            return False
        return True
    return task_id, await app.run_blocking(wait)


async def task_status(app: Resources, task_id: str, user_id: int) -> dict:
    owner = await app.redis.hgetall(keys.task_owner(task_id))
    if not owner or int(owner[b"owner"]) != user_id:
        raise ApiError("not_found", "no such task")

    def read() -> dict:
        result = app.celery.AsyncResult(task_id)
        state = result.state
        out: dict[str, Any] = {"task_id": task_id, "kind": owner[b"kind"].decode(),
                               "state": state if state in ("PENDING", "STARTED", "SUCCESS", "FAILURE")
                               else "STARTED" if state in ("RETRY", "RECEIVED") else state}
        if state == "SUCCESS":
            out["result"] = result.result
        elif state == "FAILURE":
            out["error"] = error_of(result.result)
        return out

    return await app.run_blocking(read)


def error_of(exc: Any) -> dict:
    """{code, message} from a task's exception (workers raise Refused(code, msg))."""
    args = getattr(exc, "args", ())
    if len(args) == 2 and all(isinstance(a, str) for a in args):
        return {"code": args[0], "message": args[1]}
    return {"code": "task_failed", "message": "the task failed; it will not be retried"}


async def redeliver_lost(app: Resources, now_ms: int | None = None, batch: int = 200) -> dict:
    """One pass over the outbox: due tasks that finished leave it, those a worker
    holds wait, those still PENDING are submitted again under the same id.
    Only one hall sweeps at a time (a short lock); the counts of each."""
    look_s = settings.OUTBOX_LOOK_S
    if not await app.redis.set(keys.TASK_OUTBOX_LOCK, "1", nx=True,
                               px=max(int(look_s * 1000 / 2), 500)):
        return {}
    now = int(time.time() * 1000) if now_ms is None else now_ms
    due = [i.decode() for i in await app.redis.zrangebyscore(keys.TASK_OUTBOX_DUE, "-inf", now,
                                                               start=0, num=batch)]
    counts = {"done": 0, "wait": 0, "resubmit": 0}
    if not due:
        return counts
    raws = await app.redis.hmget(keys.TASK_OUTBOX, due)
    entries = [outbox.Entry.loads(i, raw) for i, raw in zip(due, raws) if raw is not None]
    states = await app.run_blocking(
        lambda: [app.celery.AsyncResult(e.task_id).state for e in entries])
    pipe = app.redis.pipeline(transaction=False)
    resubmit: list[outbox.Entry] = []
    for task_id, raw in zip(due, raws):
        if raw is None:
            pipe.zrem(keys.TASK_OUTBOX_DUE, task_id)
    for entry, state in zip(entries, states):
        action = outbox.verdict(state)
        counts[action] += 1
        if action == "done":
            outbox.clear(pipe, entry.task_id)
            continue
        if action == "resubmit":
            entry.attempts += 1
            resubmit.append(entry)
            pipe.hset(keys.TASK_OUTBOX, entry.task_id, entry.dumps())
        pipe.zadd(keys.TASK_OUTBOX_DUE,
                  {entry.task_id: now + int(outbox.backoff_s(entry.attempts, look_s) * 1000)})
    await pipe.execute()
    if resubmit:
        def send_all() -> None:
            for e in resubmit:
                tasknames.send(app.celery, e.name, kwargs=e.kwargs, task_id=e.task_id,
                               queued_at_ms=e.at_ms)
        try:
            await app.run_blocking(send_all)
        except Exception as exc:  # broker away: the entries are due again later
            logger.warning("could not submit %d lost tasks again: %r", len(resubmit), exc)
        else:
            for e in resubmit:
                logger.warning("task %s (%s) not started %d s after it was submitted: "
                               "submitted again (attempt %d)", e.task_id, e.name,
                               (now - e.at_ms) // 1000, e.attempts)
    return counts


async def keep_redelivering(app: Resources) -> None:
    """The hall's outbox sweep, for as long as the hall runs."""
    interval = max(settings.OUTBOX_LOOK_S / 6, 0.2)
    while True:
        try:
            await redeliver_lost(app)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # Redis away: try again next round
            logger.warning("outbox sweep failed: %r", exc)
        await asyncio.sleep(interval)
