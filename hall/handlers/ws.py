"""/ws: the auction room socket (join, leave, bid, ping)."""
from __future__ import annotations

import json
import logging
import time
from typing import Any, TYPE_CHECKING
from urllib.parse import urlparse

import tornado.web
import tornado.websocket
from redis.exceptions import RedisError

import settings
from auction import wire
from hall.auth import Identity
from hall.bidding import place_bid_raw, read_bid
from hall.errors import ApiError
from hall.frames import FrameWriter, mine_variant, text_frame
from hall.handlers.base import BACKEND_DOWN
from hall.ratelimit import ConnectionCap
from hall.audience import LOGGED_OUT
from hall.validate import BadJson, is_unicode, parse_json
from hall.validate import lot_id as read_lot_id

if TYPE_CHECKING:
    from hall.app import HallApplication

logger = logging.getLogger(__name__)


class RoomSocket(FrameWriter, tornado.websocket.WebSocketHandler):
    application: "HallApplication"

    def initialize(self) -> None:
        self.identity: Identity | None = None
        self.user_id: int | None = None
        self.lots: set[int] = set()
        # This connection's own cap; the per-user limit is in the bid script.
        self.bid_cap = ConnectionCap(settings.BID_RATE_PER_S)

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

    async def prepare(self) -> None:
        """Who opens the socket, before the upgrade: `?token=` (scripts) or the
        HttpOnly login cookie (the hall's own pages never put the token in
        the URL); revoked tokens and deleted accounts are anonymous viewers.
        A backend that is down answers 503 (the client reconnects later)."""
        token = self.get_query_argument("token", None) or self.get_cookie("hall_token")
        if not token:
            return
        try:
            self.identity = await self.application.identities.resolve(token)
        except BACKEND_DOWN as exc:
            logger.warning("socket identity unavailable: %s: %s", type(exc).__name__, exc)
            raise tornado.web.HTTPError(503)
        self.user_id = self.identity.id if self.identity else None

    def open(self) -> None:
        self.attach_stream(self.ws_connection.stream, settings.WS_MAX_BUFFER)
        self.set_nodelay(True)
        self.application.metrics.sockets_opened += 1
        self.application.audience.socket_opened(self)
        if self.identity is not None:
            # A logout between prepare() and now was announced before this
            # socket could hear it: look once more, now that it listens.
            self.application.spawn(self._still_valid(self.identity))

    async def _still_valid(self, identity: Identity) -> None:
        try:
            revoked = await self.application.identities.is_revoked(identity)
        except BACKEND_DOWN:
            return
        if revoked:
            self.close(LOGGED_OUT, "logged out")

    def on_close(self) -> None:
        self.release_stream()
        self.application.audience.socket_closed(self)

    # -- sending -----------------------------------------------------------
    def on_laggard(self) -> None:
        logger.info("closing a socket that stopped reading (user %s)", self.user_id)
        self.application.metrics.laggards += 1

    def send_json(self, data: dict) -> None:
        self.send_frame(text_frame(wire.dumpb(data)))

    def send_error_msg(self, code: str, message: str) -> None:
        self.send_json({"type": "error", "code": code, "message": message})

    # -- receiving ---------------------------------------------------------
    async def on_message(self, message: str | bytes) -> None:
        if len(message) > settings.WS_MAX_FRAME:
            self.send_error_msg("invalid", f"messages are limited to {settings.WS_MAX_FRAME} bytes")
            return
        try:
            data = parse_json(message)
        except BadJson as exc:
            if isinstance(exc.data, dict) and exc.data.get("op") == "bid":
                # A bid with a string that is not valid Unicode (a lone
                # surrogate): rejected, with its ref when that one is readable.
                ref = exc.data.get("ref")
                ref = ref if isinstance(ref, str) and len(ref) <= 64 and is_unicode(ref) else None
                self.application.metrics.count_code("invalid")
                self.send_json({"type": "rejected", "ref": ref, "code": "invalid",
                                "message": exc.message})
            else:
                self.send_error_msg("invalid", exc.message)
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
                await self.op_ops()
            else:
                self.send_error_msg("invalid", "unknown op; use join, leave, bid or ping")
        except ApiError as exc:
            self.send_error_msg(exc.code, exc.message)
        except Exception as exc:  # a broken backend must not kill the socket
            if isinstance(exc, (RedisError, OSError)):
                self.send_error_msg("unavailable", "the auction engine is unavailable; retry")
            else:
                logger.exception("ws op %r failed", op)
                self.send_error_msg("internal", "internal error")

    async def op_ops(self) -> None:
        """The operator feed: the role as the database has it now, not as it
        was when the socket opened."""
        if self.identity is not None:
            fresh = await self.application.identities.resolve_again(self.identity)
            if fresh is None:
                self.close(LOGGED_OUT, "logged out")
                return
            self.identity = fresh
        self.application.ops.subscribe(self)

    async def op_join(self, data: dict) -> None:
        lot_id = read_lot_id(data)
        since = data.get("since_seq")
        if since is not None and (type(since) is not int or not 0 <= since <= 2**53):
            raise ApiError("invalid", "since_seq must be an integer from 0 to 2^53")
        await self.application.audience.join(self, lot_id, since)

    async def op_leave(self, data: dict) -> None:
        lot_id = read_lot_id(data)
        await self.application.audience.leave(self, lot_id)

    async def op_bid(self, data: dict) -> None:
        ref = data.get("ref")
        ref = ref if isinstance(ref, str) and len(ref) <= 64 else None
        try:
            lot_id = read_lot_id(data)
            if self.identity is None:
                raise ApiError("unauthorized", "log in to bid")
            amount, ref, max_amount = read_bid(data)
            if not self.bid_cap.take():
                raise ApiError("rate_limited", "too many bids; slow down")
            app = self.application
            raw = await place_bid_raw(app.lots, app.bids, app.receipts, self.identity, lot_id,
                                      amount, ref, max_amount)
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
                                                 wire.dumpb(ref), b"}"))))
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
                payload = mine_variant(payload)
            self.send_frame(text_frame(payload))


