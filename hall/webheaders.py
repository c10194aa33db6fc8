"""Security headers of the pages and the static files.

* Content-Security-Policy: scripts, styles, fonts and connections only from
  the hall itself (no inline script or style, no eval); images from the hall
  plus settings.IMAGE_HOSTS, so a lot image cannot make browsers call an
  arbitrary host; no plugins, no framing, forms post only to the hall.
* X-Content-Type-Options: nosniff, so a file is only ever what its type says.
* Referrer-Policy: same-origin, so lot URLs do not leak to other sites.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

import tornado.web

import settings


@lru_cache(maxsize=4)
def _policy(image_hosts: tuple[str, ...]) -> str:
    images = " ".join(("'self'", "data:") + image_hosts)
    return "; ".join((
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        f"img-src {images}",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ))


def content_security_policy() -> str:
    return _policy(tuple(settings.IMAGE_HOSTS))


def set_security_headers(handler: Any) -> None:
    handler.set_header("Content-Security-Policy", content_security_policy())
    handler.set_header("X-Content-Type-Options", "nosniff")
    handler.set_header("Referrer-Policy", "same-origin")
    handler.set_header("X-Frame-Options", "DENY")


class StaticFiles(tornado.web.StaticFileHandler):
    """/static/...: Tornado's static files with the security headers."""

    def set_default_headers(self) -> None:
        set_security_headers(self)
