"""The pages (served by the hall itself, no CDN): one HTML shell per page."""
from __future__ import annotations

from pathlib import Path

import tornado.web

PAGES_DIR = Path(__file__).resolve().parent.parent / "static" / "pages"


class PageHandler(tornado.web.RequestHandler):
    def initialize(self, page: str) -> None:
        self.page = page

    def get(self, *_args: str) -> None:
        path = PAGES_DIR / f"{self.page}.html"
        if not path.exists():
            raise tornado.web.HTTPError(404)
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Frame-Options", "DENY")
        self.finish(path.read_bytes())
