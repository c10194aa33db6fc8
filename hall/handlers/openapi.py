"""GET /api/openapi.json: the API description (hall/openapi.json)."""
from __future__ import annotations

from pathlib import Path

from hall.handlers.base import BaseHandler

SPEC = Path(__file__).resolve().parent.parent / "openapi.json"


class OpenApiHandler(BaseHandler):
    def get(self) -> None:
        self.finish(SPEC.read_bytes() if SPEC.exists() else b'{"openapi":"3.1.0","paths":{}}')
