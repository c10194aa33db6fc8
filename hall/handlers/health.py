"""GET /healthz (liveness) and GET /metrics (Prometheus text)."""
from __future__ import annotations

from auction import keys, tasknames
from hall.handlers.base import BaseHandler


class HealthHandler(BaseHandler):
    async def get(self) -> None:
        self.send({"status": "ok", "redis": self.application.audience.relay.ready.is_set()})


class MetricsHandler(BaseHandler):
    async def get(self) -> None:
        self.set_header("Content-Type", "text/plain; version=0.0.4")
        text = self.application.metrics.render(self.application.audience)
        self.finish(text + await self._tasks())

    async def _tasks(self) -> str:
        """Queue depths (the broker's lists) and task failures counted by the workers."""
        pipe = self.redis.pipeline(transaction=False)
        for queue in tasknames.QUEUES:
            pipe.llen(queue)
        pipe.hgetall(keys.TASKS_FAILED_TOTAL)
        pipe.hgetall(keys.JOBS_WAIT_MS_TOTAL)
        pipe.hgetall(keys.JOBS_WAIT_COUNT)
        *depths, failed, wait_ms, waits = await pipe.execute()
        lines = ["# HELP hall_queue_depth Tasks waiting in each broker queue.",
                 "# TYPE hall_queue_depth gauge"]
        lines += [f'hall_queue_depth{{queue="{q}"}} {n}' for q, n in zip(tasknames.QUEUES, depths)]
        lines += ["# HELP hall_task_failures_total Task runs that failed, by task name.",
                  "# TYPE hall_task_failures_total counter"]
        for name, n in sorted((k.decode() if isinstance(k, bytes) else k, int(v))
                              for k, v in failed.items()):
            lines.append(f'hall_task_failures_total{{task="{name}"}} {n}')
        # Queue wait (submitted or due -> started) of the recorded money and lot
        # tasks, per job kind: rate(sum) / rate(count) is the mean wait.
        lines += ["# HELP hall_job_queue_wait_seconds Time money and lot tasks waited in the queue.",
                  "# TYPE hall_job_queue_wait_seconds summary"]
        for kind, n in sorted(_decoded(waits).items()):
            total = int(_decoded(wait_ms).get(kind, 0)) / 1000
            lines.append(f'hall_job_queue_wait_seconds_sum{{kind="{kind}"}} {total:.3f}')
            lines.append(f'hall_job_queue_wait_seconds_count{{kind="{kind}"}} {int(n)}')
        return "\n".join(lines) + "\n"


def _decoded(h: dict) -> dict[str, str]:
    return {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
            for k, v in h.items()}
