"""The hall's pub/sub connection, read without redis-py's `PubSub`.

Every bid reaches every hall as one pub/sub message, so the cost of reading
one is paid on the bid path. redis-py's `PubSub.get_message` runs, per
message, a health check, its retry wrapper and an observability hook, builds
a dict, and resumes the listening coroutine. Here the connection is still
made by redis-py, by the client's own pool (so its address or Sentinel
lookup, AUTH, database, TLS and keepalive all apply), but once it is open this
object becomes the socket's asyncio protocol: bytes that arrive are parsed by
one `hiredis.Reader` and handed to the relay in the loop's next round, with no
coroutine in between. `python bench/relay.py` measures both readers.

Taking the connection over from redis-py is hall/rawredis.py's.

It does not reconnect by itself: when the connection is lost, `lost`
completes and the relay makes a new one (hall/relay.py), as it did with
redis-py's. Like redis-py's pub/sub in blocking mode it sends no idle PING: a
silent peer is found by TCP keepalive.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import hiredis
from redis.exceptions import ConnectionError as RedisConnectionError

from hall.rawredis import close_quietly, take_over

logger = logging.getLogger(__name__)

Handler = Callable[[list], None]


class Subscription(asyncio.Protocol):
    """One pub/sub connection: subscribe, unsubscribe; replies go to a handler.

    Replies are lists as Redis sends them: `[b"message", channel, data]`,
    `[b"subscribe", channel, count]`, `[b"unsubscribe", channel, count]` (on
    RESP3, redis-py's default from 8.0, a list subclass for push messages); an
    error reply comes as a `hiredis.ReplyError`."""

    def __init__(self, pool: Any) -> None:
        self._conn = pool.make_connection()
        self._parser = hiredis.Reader()
        self._transport: asyncio.Transport | None = None
        self._handler: Handler | None = None
        self._held: list = []               # replies not yet handed to the handler
        self._draining = False              # a _drain is scheduled
        self._waiting: set[str] = set()     # channels whose confirmation open() awaits
        self._confirmed: asyncio.Future | None = None
        self.lost: asyncio.Future = asyncio.get_running_loop().create_future()

    async def open(self, channels: list[str]) -> None:
        """Connect and subscribe to `channels`; returns once Redis confirmed
        every one. Messages that arrive meanwhile are held for `deliver_to`,
        so the caller can first re-read what it missed."""
        await self._conn.connect()
        self._transport = take_over(self._conn, self)
        self._waiting = set(channels)
        self._confirmed = asyncio.get_running_loop().create_future()
        self.subscribe(*channels)
        await asyncio.wait((self._confirmed, self.lost), return_when=asyncio.FIRST_COMPLETED)
        if not self._confirmed.done():
            raise RedisConnectionError("the pub/sub connection closed while subscribing")

    def deliver_to(self, handler: Handler) -> None:
        """From now on hand every reply to `handler`, those held first."""
        self._handler = handler
        self._drain()

    def subscribe(self, *channels: str) -> None:
        self._send("SUBSCRIBE", *channels)

    def unsubscribe(self, *channels: str) -> None:
        self._send("UNSUBSCRIBE", *channels)

    def _send(self, *args: str) -> None:
        # Written straight to the transport: a few bytes, and redis-py's
        # writer would wait on a protocol that is no longer the socket's.
        if self._transport is None or self._transport.is_closing():
            raise RedisConnectionError("the pub/sub connection is closed")
        self._transport.write(b"".join(self._conn.pack_command(*args)))

    def close(self) -> None:
        close_quietly(self._conn, self._transport)
        if not self.lost.done():
            self.lost.set_result(None)

    # -- asyncio.Protocol ------------------------------------------------
    def data_received(self, data: bytes) -> None:
        self._parser.feed(data)
        gets = self._parser.gets
        held = self._held
        while (reply := gets()) is not False:
            if self._waiting and isinstance(reply, list) and reply[0] == b"subscribe":
                self._waiting.discard(reply[1].decode())
                if not self._waiting and not self._confirmed.done():
                    self._confirmed.set_result(None)
            held.append(reply)
        if held and self._handler is not None and not self._draining:
            # Handed over in the loop's next round, not from this I/O
            # callback: that is the round in which the bid batch's answers
            # reach their sockets too, so a bidder's `accepted` and the `bid`
            # event it caused go out in one send (hall/frames.py). Delivered
            # from here, they went in two, and the hall answered 5 % fewer
            # bids a second (docs/benchmarks.md, "the relay").
            self._draining = True
            asyncio.get_running_loop().call_soon(self._drain)

    def _drain(self) -> None:
        self._draining = False
        held, self._held = self._held, []
        handler = self._handler
        for reply in held:
            try:
                handler(reply)
            except Exception:  # one bad message must not drop the connection
                logger.exception("pub/sub handler failed on %r", reply)

    def eof_received(self) -> bool:
        return False  # close the transport: connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        if not self.lost.done():
            self.lost.set_result(exc)
