"""The pages (served by the hall itself, no CDN): one HTML shell, one script per page."""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import tornado.web

from hall.webheaders import set_security_headers

SHELL = Path(__file__).resolve().parent.parent / "static" / "pages" / "shell.html"
PAGES = ("index", "session", "lot", "me", "login", "notfound", "ops",
         # the back office (issue 13)
         "ops_sessions", "ops_session", "ops_audit", "ops_users", "ops_orders", "ops_order",
         "ops_jobs")


@lru_cache(maxsize=len(PAGES))
def render(page: str) -> bytes:
    """The shell with this page's script and markers (`__PAGE__`)."""
    return SHELL.read_text(encoding="utf-8").replace("__PAGE__", page).encode()


class PageHandler(tornado.web.RequestHandler):
    def initialize(self, page: str) -> None:
        if page not in PAGES:
            raise ValueError(f"unknown page {page}")
        self.page = page

    def get(self, *_args: str) -> None:
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Cache-Control", "no-cache")
        set_security_headers(self)  # CSP, nosniff, Referrer-Policy, no framing
        self.finish(render(self.page))


class NotFoundPage(tornado.web.RequestHandler):
    """Any other path: a page in the product's style, in both languages, with
    a way back (404), for a browser asking for a page; a JSON error in the
    API's words for anything else (a script, another method)."""

    def _json(self) -> None:
        self.set_status(404)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps({"code": "not_found", "message": "no such resource"}))

    def get(self, *_args: str) -> None:
        accept = self.request.headers.get("Accept", "")
        if "text/html" not in accept:
            self._json()
            return
        self.set_status(404)
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Cache-Control", "no-cache")
        set_security_headers(self)
        self.finish(render("notfound"))

    def head(self, *_args: str) -> None:
        self.set_status(404)
        self.finish()

    def post(self, *_args: str) -> None:
        self._json()

    put = patch = delete = post
