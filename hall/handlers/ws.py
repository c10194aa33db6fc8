"""/ws: the auction room socket (join, leave, bid, ping)."""
from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any, TYPE_CHECKING
from urllib.parse import urlparse

import tornado.websocket
from tornado.iostream import IOStream, StreamBufferFullError, StreamClosedError

import settings

from hall.auth import Identity, read_token
from hall.bidding import place_bid_raw, read_bid
from hall.errors import ApiError
from hall.rooms import text_frame

if TYPE_CHECKING:
    from hall.app import HallApplication

logger = logging.getLogger(__name__)

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


# Sockets with frames queued in this loop iteration; one call_soon flushes them.
_corked: list["RoomSocket"] = []


def _flush_corked() -> None:
    conns = _corked[:]
    _corked.clear()
    for conn in conns:
        try:
            conn._uncork()
        except Exception:
            logger.exception("socket write failed")


class RoomSocket(tornado.websocket.WebSocketHandler):
    application: "HallApplication"

    def initialize(self) -> None:
        self.identity: Identity | None = None
        self.user_id: int | None = None
        self.lots: set[int] = set()
        self._stream = None
        self._sock = None
        self._out: list[bytes] | None = None  # frames queued this loop iteration
        self._bid_tokens = float(settings.BID_RATE_PER_S)
        self._bid_stamp = time.monotonic()

    # -- handshake -------------------------------------------------------
    def check_origin(self, origin: str) -> bool:
        allowed = settings.ALLOWED_ORIGINS
        if allowed:
            return origin in allowed
        # Default: same host as the page, so another site cannot drive a
        # logged-in browser's socket with its cookie.
        return urlparse(origin).netloc == self.request.host

    def get_compression_options(self) -> None:
        return None  # frames are pre-built once per broadcast; no per-socket deflate

    def open(self) -> None:
        token = self.get_query_argument("token", None) or self.get_cookie("hall_token")
        self.identity = read_token(token)
        self.user_id = self.identity.id if self.identity else None
        self._stream = self.ws_connection.stream
        self._stream.max_write_buffer_size = settings.WS_MAX_BUFFER
        # Plain TCP only: an SSLIOStream has its own handshake/buffer state.
        self._sock = self._stream.socket if type(self._stream) is IOStream else None
        self.set_nodelay(True)
        self.application.socket_opened(self)

    def on_close(self) -> None:
        self._stream = None
        self._sock = None
        self.application.socket_closed(self)

    # -- sending -----------------------------------------------------------
    def send_frame(self, frame: bytes) -> None:
        """Queue a pre-built frame; everything queued in one loop iteration is
        written with one send (the `accepted` answer, the `bid` event and an
        `outbid` notice for the same socket usually arrive together)."""
        if self._stream is None:
            return
        out = self._out
        if out is None:
            self._out = [frame]
            if not _corked:
                asyncio.get_running_loop().call_soon(_flush_corked)
            _corked.append(self)
        else:
            out.append(frame)

    def _uncork(self) -> None:
        out = self._out
        self._out = None
        conn = self.ws_connection
        if not out or conn is None or conn.server_terminated:  # nothing after our close frame
            return
        self._write(out[0] if len(out) == 1 else b"".join(out))

    def _write(self, data: bytes) -> None:
        """Write to the socket; drop this socket if it cannot keep up.

        Fast path: while Tornado has nothing queued for this socket, hand the
        bytes straight to the kernel (`socket.send`), skipping IOStream.write's
        buffer, Future and callback per write. Whatever the kernel does not take
        (or any error) goes through IOStream.write, which keeps the order (its
        buffer is non-empty from then on, so later writes queue behind), the
        bounded buffer (StreamBufferFullError -> laggard dropped) and the close
        handling.
        """
        stream = self._stream
        if stream is None:
            return
        if self._sock is not None and not stream._write_buffer:
            try:
                sent = self._sock.send(data)
            except OSError:  # EAGAIN, or a dead socket: IOStream.write sorts it out
                sent = 0
            if sent == len(data):
                return
            if sent:
                data = data[sent:]
        try:
            stream.write(data)
        except StreamBufferFullError:
            logger.info("closing a socket that stopped reading (user %s)", self.user_id)
            self.application.metrics.laggards += 1
            self._stream = None
            stream.close()
        except StreamClosedError:
            self._stream = None

    def send_json(self, data: dict) -> None:
        self.send_frame(text_frame(_dumps(data).encode()))

    def send_error_msg(self, code: str, message: str) -> None:
        self.send_json({"type": "error", "code": code, "message": message})

    # -- receiving ---------------------------------------------------------
    async def on_message(self, message: str | bytes) -> None:
        if len(message) > settings.WS_MAX_FRAME:
            self.send_error_msg("invalid", f"messages are limited to {settings.WS_MAX_FRAME} bytes")
            return
        try:
            data = json.loads(message)
        except (ValueError, UnicodeDecodeError):
            self.send_error_msg("invalid", "not valid JSON")
            return
        if not isinstance(data, dict):
            self.send_error_msg("invalid", "a message is a JSON object with an op")
            return
        op = data.get("op")
        try:
            if op == "bid":
                await self.op_bid(data)
            elif op == "ping":
                self.send_json({"type": "pong", "server_time_ms": int(time.time() * 1000)})
            elif op == "join":
                await self.op_join(data)
            elif op == "leave":
                await self.op_leave(data)
            elif op == "ops":  # operators: overview pushes (hall/ops.py)
                self.application.ops.subscribe(self)
            else:
                self.send_error_msg("invalid", "unknown op; use join, leave, bid or ping")
        except ApiError as exc:
            self.send_error_msg(exc.code, exc.message)
        except Exception as exc:  # a broken backend must not kill the socket
            from redis.exceptions import RedisError
            if isinstance(exc, (RedisError, OSError)):
                self.send_error_msg("unavailable", "the auction engine is unavailable; retry")
            else:
                logger.exception("ws op %r failed", op)
                self.send_error_msg("internal", "internal error")

    @staticmethod
    def _lot_id(data: dict) -> int:
        lot_id = data.get("lot_id")
        if type(lot_id) is not int or not 0 < lot_id < 2**53:
            raise ApiError("invalid", "lot_id must be a positive integer")
        return lot_id

    async def op_join(self, data: dict) -> None:
        lot_id = self._lot_id(data)
        since = data.get("since_seq")
        if since is not None and (type(since) is not int or not 0 <= since <= 2**53):
            raise ApiError("invalid", "since_seq must be an integer from 0 to 2^53")
        await self.application.join(self, lot_id, since)

    async def op_leave(self, data: dict) -> None:
        lot_id = self._lot_id(data)
        await self.application.leave(self, lot_id)

    def _rate_ok(self) -> bool:
        now = time.monotonic()
        rate = settings.BID_RATE_PER_S
        self._bid_tokens = min(rate, self._bid_tokens + (now - self._bid_stamp) * rate)
        self._bid_stamp = now
        if self._bid_tokens < 1:
            return False
        self._bid_tokens -= 1
        return True

    async def op_bid(self, data: dict) -> None:
        ref = data.get("ref")
        ref = ref if isinstance(ref, str) and len(ref) <= 64 else None
        try:
            lot_id = self._lot_id(data)
            if self.identity is None:
                raise ApiError("unauthorized", "log in to bid")
            amount, ref, max_amount = read_bid(data)
            if not self._rate_ok():
                raise ApiError("rate_limited", "too many bids; slow down")
            raw = await place_bid_raw(self.application, self.identity, lot_id, amount, ref,
                                      max_amount)
        except ApiError as exc:
            self.application.metrics.count_code(exc.code)
            self.send_json({"type": "rejected", "ref": ref, "code": exc.code,
                            "message": exc.message})
            return
        if b'"accepted":true' in raw and b'"code"' not in raw:
            # The script's JSON answer as is, with type and ref spliced in
            # (no json.loads + dumps on the hot path).
            self.application.metrics.count_code("accepted")
            self.send_frame(text_frame(b"".join((raw[:-1], b',"type":"accepted","ref":',
                                                 _dumps(ref).encode(), b"}"))))
            return
        answer = json.loads(raw)
        self.application.metrics.count_bid(answer)
        if "code" in answer:
            self.send_json({"type": "rejected", "ref": ref, "code": answer["code"],
                            "message": answer.get("message", "")})
        else:
            answer["type"] = "accepted"
            answer["ref"] = ref
            self.send_json(answer)

    def send_snapshot(self, snap: dict[str, Any], events: list) -> None:
        snap["type"] = "snapshot"
        self.send_json(snap)
        uid = str(self.user_id) if self.user_id is not None else None
        for _event_id, flat in events:
            fields = dict(zip(flat[::2], flat[1::2]))  # XRANGE inside Lua: a flat list
            payload = fields[b"d"]
            if uid and fields.get(b"u", b"").decode() == uid:
                payload = payload[:-1] + b',"mine":true}'
            self.send_frame(text_frame(payload))


