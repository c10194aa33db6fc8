"""Slow request bodies: no address may hold many half-sent requests open.

The HTTP server closes a connection whose body has not arrived within
settings.BODY_TIMEOUT_S (Tornado's `body_timeout`, hall/server.py). On top of
that, `GuardedHTTPServer` counts, per client address (hall/clientaddr.py),
the requests whose body is still arriving SLOW_BODY_GRACE_S after their
headers; past MAX_SLOW_BODIES_PER_ADDR, a new request from that address is
answered 429 `rate_limited` and its connection closed, and a request that
turns slow is closed. A body that arrives at once (nearly all of them) is
never counted, so busy clients are not limited here; requests without a
body (GETs, WebSocket handshakes) are neither counted nor refused.
"""
from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from typing import Any, Awaitable

import tornado.httpserver
from tornado import httputil

import settings
from hall.clientaddr import client_address

logger = logging.getLogger(__name__)

_REFUSAL = json.dumps({"code": "rate_limited",
                       "message": "too many unfinished requests from this address"}).encode()
_RESPONSE = (b"HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json; charset=utf-8\r\n"
             b"Connection: close\r\nContent-Length: " + str(len(_REFUSAL)).encode() +
             b"\r\n\r\n" + _REFUSAL)


class SlowBodies:
    """Requests per address whose body is overdue."""

    def __init__(self, cap: int, grace_s: float) -> None:
        self.cap = cap
        self.grace_s = grace_s
        self.slow: Counter[str] = Counter()

    def full(self, address: str) -> bool:
        return self.cap > 0 and self.slow[address] >= self.cap

    def add(self, address: str) -> None:
        self.slow[address] += 1

    def remove(self, address: str) -> None:
        self.slow[address] -= 1
        if self.slow[address] <= 0:
            del self.slow[address]


def _close(request_conn: Any, response: bytes | None) -> None:
    """Take the connection from the HTTP machinery, say `response`, close it."""
    try:
        stream = request_conn.detach()
    except Exception:
        stream = getattr(request_conn, "stream", None)
    if stream is None or stream.closed():
        return
    if response is None:
        stream.close()
        return
    try:
        written = stream.write(response)
    except Exception:
        stream.close()
        return

    def done(fut: Any) -> None:
        fut.exception()  # retrieved: a reset peer is not worth a log line
        stream.close()
    written.add_done_callback(done)


class _Guarded(httputil.HTTPMessageDelegate):
    def __init__(self, guard: SlowBodies, inner: httputil.HTTPMessageDelegate,
                 request_conn: Any) -> None:
        self.guard = guard
        self.inner = inner
        self.request_conn = request_conn
        self.address = ""
        self.counted = False
        self.timer: asyncio.TimerHandle | None = None
        self.done = False      # nothing (more) to count for this request
        self.refused = False   # answered 429 here; the application never saw it

    def headers_received(self, start_line: Any, headers: httputil.HTTPHeaders
                         ) -> Awaitable[None] | None:
        if "Content-Length" not in headers and "Transfer-Encoding" not in headers:
            self.done = True  # no body (GET, a WebSocket handshake): nothing to guard
            return self.inner.headers_received(start_line, headers)
        context = getattr(self.request_conn, "context", None)
        peer = getattr(context, "remote_ip", "") or ""
        self.address = client_address(peer, headers)
        if self.guard.full(self.address):
            logger.warning("refusing a request from %s: %d unfinished bodies",
                           self.address, self.guard.slow[self.address])
            self.done = self.refused = True
            _close(self.request_conn, _RESPONSE)
            return None
        if self.guard.grace_s <= 0:
            self._overdue()
        else:
            self.timer = asyncio.get_running_loop().call_later(self.guard.grace_s, self._overdue)
        return self.inner.headers_received(start_line, headers)

    def _overdue(self) -> None:
        self.timer = None
        if self.done:
            return
        if self.guard.full(self.address):
            logger.warning("closing a slow request from %s: %d unfinished bodies",
                           self.address, self.guard.slow[self.address])
            self._finish()
            stream = getattr(self.request_conn, "stream", None)
            if stream is not None:
                stream.close()  # the read fails; on_connection_close follows
            return
        self.counted = True
        self.guard.add(self.address)

    def _finish(self) -> None:
        self.done = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.counted:
            self.counted = False
            self.guard.remove(self.address)

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        if self.refused:
            return None
        return self.inner.data_received(chunk)

    def finish(self) -> None:
        if self.refused:
            return
        self._finish()
        self.inner.finish()

    def on_connection_close(self) -> None:
        self._finish()
        self.inner.on_connection_close()


class GuardedHTTPServer(tornado.httpserver.HTTPServer):
    """Tornado's HTTPServer with the slow-body guard around every request."""

    def initialize(self, *args: Any, slow_bodies: SlowBodies | None = None,
                   **kwargs: Any) -> None:
        super().initialize(*args, **kwargs)
        self.slow_bodies = slow_bodies or SlowBodies(settings.MAX_SLOW_BODIES_PER_ADDR,
                                                     settings.SLOW_BODY_GRACE_S)

    def start_request(self, server_conn: object, request_conn: httputil.HTTPConnection
                      ) -> httputil.HTTPMessageDelegate:
        inner = super().start_request(server_conn, request_conn)
        return _Guarded(self.slow_bodies, inner, request_conn)
