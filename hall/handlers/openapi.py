"""GET /api/openapi.json: the API description (built by hall/openapi.py)."""
from __future__ import annotations

from hall.handlers.base import BaseHandler
from hall.openapi import build_spec


class OpenApiHandler(BaseHandler):
    _spec: dict | None = None  # built once from the application's routes

    def get(self) -> None:
        if OpenApiHandler._spec is None:
            OpenApiHandler._spec = build_spec(self.application.routes)
        self.send(OpenApiHandler._spec)
