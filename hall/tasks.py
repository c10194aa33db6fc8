"""Handing work to the Celery workers from the hall (an embedded client).

Publishing a Celery message is a blocking call, so it runs on the
application's thread pool (as Flower does); the hall answers 202 with the
task id at once. The task's owner is remembered in Redis so only they can
read it, and so the worker knows whose sockets to tell when it finishes.
"""
from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING, Any

from hall.errors import ApiError

if TYPE_CHECKING:
    from hall.app import HallApplication

TASK_TTL_S = 7 * 24 * 3600


def task_owner_key(task_id: str) -> str:
    return f"task:{task_id}"


async def submit(app: "HallApplication", name: str, owner_id: int, kind: str,
                 kwargs: dict[str, Any]) -> str:
    task_id = str(uuid.uuid4())
    await app.redis.hset(task_owner_key(task_id), mapping={"owner": owner_id, "kind": kind})
    await app.redis.expire(task_owner_key(task_id), TASK_TTL_S)
    loop = asyncio.get_running_loop()
    try:
        await loop.run_in_executor(
            app.executor,
            lambda: app.celery.send_task(name, kwargs=kwargs, task_id=task_id),
        )
    except Exception as exc:  # broker down: tell the client to retry
        raise ApiError("unavailable", f"could not queue the task: {type(exc).__name__}")
    return task_id


async def task_status(app: "HallApplication", task_id: str, user_id: int) -> dict:
    owner = await app.redis.hgetall(task_owner_key(task_id))
    if not owner or int(owner[b"owner"]) != user_id:
        raise ApiError("not_found", "no such task")
    loop = asyncio.get_running_loop()

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

    return await loop.run_in_executor(app.executor, read)


def error_of(exc: Any) -> dict:
    """{code, message} from a task's exception (workers raise Refused(code, msg))."""
    args = getattr(exc, "args", ())
    if len(args) == 2 and all(isinstance(a, str) for a in args):
        return {"code": args[0], "message": args[1]}
    return {"code": "task_failed", "message": "the task failed; it will not be retried"}
