"""Handing work to the Celery workers from the hall (an embedded client).

Publishing a Celery message is a blocking call, so it runs on the
application's thread pool (as Flower does); the hall answers 202 with the
task id at once. The task's owner is remembered in Redis so only they can
read it, and so the worker knows whose sockets to tell when it finishes.
"""
from __future__ import annotations

import uuid
from typing import Any, Protocol

from auction import keys, tasknames
from hall.errors import ApiError

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
