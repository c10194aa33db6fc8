"""Jobs for operators: the money and lot tasks found by what they were about
(GET /api/admin/jobs), and a re-run of a failed idempotent one
(POST /api/admin/jobs/{task_id}/rerun)."""
from __future__ import annotations

from auction import audit, jobs, keys
from hall.errors import ApiError
from hall.handlers.admin import AdminHandler
from hall.tasks import submit
from models import Job, now_ms

STATES = ("SUCCESS", "FAILURE", "RETRY", "PENDING")
MAX_LISTED = 500


async def flush_pending(handler: AdminHandler) -> None:
    """Write the records the workers queued and have not written yet (the last
    runs before a quiet spell), so the page shows every finished run; skipped
    while a worker is writing a batch."""
    redis = handler.redis
    if not await redis.set(keys.JOBS_FLUSH_LOCK, 1, nx=True, px=jobs.FLUSH_EVERY_MS):
        return
    try:
        raw = await redis.lrange(keys.JOBS_PENDING, 0, jobs.BATCH - 1)
        if raw:
            await handler.db.run(jobs.store, raw)
            await redis.ltrim(keys.JOBS_PENDING, len(raw), -1)
    finally:
        await redis.delete(keys.JOBS_FLUSH_LOCK)


class JobsHandler(AdminHandler):
    """Money and lot tasks: `lot_id`, `session_id`, `user_id`, `state`, `kind`, newest first."""

    async def get(self) -> None:
        await flush_pending(self)
        query = Job.select().order_by(Job.id.desc())
        for name, column in (("lot_id", Job.lot_id), ("session_id", Job.session_id),
                             ("user_id", Job.user_id)):
            raw = self.get_query_argument(name, "")
            if raw:
                if not raw.isdigit() or len(raw) > 18:
                    raise ApiError("invalid", f"{name} must be an id")
                query = query.where(column == int(raw))
        state = self.get_query_argument("state", "")
        if state:
            if state not in STATES:
                raise ApiError("invalid", f"state must be one of {', '.join(STATES)}")
            query = query.where(Job.state == state)
        kind = self.get_query_argument("kind", "")
        if kind:
            if kind not in jobs.RECORDED.values():
                raise ApiError("invalid", f"kind must be one of {', '.join(sorted(jobs.RECORDED.values()))}")
            query = query.where(Job.kind == kind)
        rows = await self.db.list(query.limit(MAX_LISTED))
        self.send({"jobs": [{**j.public(), "rerunnable": j.state == "FAILURE"
                             and j.name in jobs.RERUNNABLE} for j in rows]})


class JobRerunHandler(AdminHandler):
    """Run a failed money task again with the same arguments (it is idempotent)."""

    async def post(self, task_id: str) -> None:
        await flush_pending(self)
        job = await Job.aget_or_none(Job.task_id == task_id)
        if job is None:
            raise ApiError("not_found", "no such job")
        if job.name not in jobs.RERUNNABLE:
            raise ApiError("conflict", f"a {job.kind} task is not one that may be run again")
        if job.state != "FAILURE":
            raise ApiError("conflict", f"only a failed task is run again; this one is {job.state}")
        owner = job.user_id or self.operator.id
        queued_at = now_ms()
        new_id = await submit(self.application, job.name, owner, job.kind, job.kwargs or {})

        def record() -> None:
            Job.create(task_id=new_id, name=job.name, kind=job.kind, lot_id=job.lot_id,
                       session_id=job.session_id, user_id=job.user_id, state="PENDING",
                       kwargs=job.kwargs, rerun_of=job.task_id, queued_at_ms=queued_at)
            audit.record("task.rerun", f"task:{job.id}", actor=self.actor,
                         before={"task_id": job.task_id, "state": job.state},
                         after={"task_id": new_id})
        await self.audited(record)
        self.send({"task_id": new_id, "rerun_of": job.task_id}, 202)
