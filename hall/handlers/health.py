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
        *depths, failed = await pipe.execute()
        lines = ["# HELP hall_queue_depth Tasks waiting in each broker queue.",
                 "# TYPE hall_queue_depth gauge"]
        lines += [f'hall_queue_depth{{queue="{q}"}} {n}' for q, n in zip(tasknames.QUEUES, depths)]
        lines += ["# HELP hall_task_failures_total Task runs that failed, by task name.",
                  "# TYPE hall_task_failures_total counter"]
        for name, n in sorted((k.decode() if isinstance(k, bytes) else k, int(v))
                              for k, v in failed.items()):
            lines.append(f'hall_task_failures_total{{task="{name}"}} {n}')
        return "\n".join(lines) + "\n"
