"""GET /api/openapi.json: the API description (built by hall/openapi.py)."""
from __future__ import annotations

from hall.handlers.base import BaseHandler
from hall.openapi import build_spec


class OpenApiHandler(BaseHandler):
    def get(self) -> None:
        self.send(build_spec())
