"""GET /healthz (liveness) and GET /metrics (Prometheus text)."""
from __future__ import annotations

from hall.handlers.base import BaseHandler


class HealthHandler(BaseHandler):
    async def get(self) -> None:
        self.send({"status": "ok", "redis": self.application.audience.relay.ready.is_set()})


class MetricsHandler(BaseHandler):
    def get(self) -> None:
        self.set_header("Content-Type", "text/plain; version=0.0.4")
        self.finish(self.application.metrics.render(self.application.audience))
