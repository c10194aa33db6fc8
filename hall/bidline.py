"""The bid batches' Redis connection, written and read by the hall itself.

The same arrangement as hall/subscription.py: the connection is made and
opened by redis-py, by the client's own pool (address or Sentinel lookup,
AUTH, database, TLS, keepalive), and once it is open this object becomes the
socket's asyncio protocol. A batch is one write of its packed EVALSHA calls
(hall/bidding.py); one `hiredis.Reader` parses the replies, which come back
in the order sent, so every batch in flight shares the one connection. Per
batch that leaves out redis-py's health check, the `asyncio.wait_for` around
its write (a Task and a timer), its retry wrapper and a coroutine per reply.

Errors are redis-py's: an error reply is parsed by redis-py's own parser's
rules (`NOSCRIPT` is a NoScriptError, and so on). What means the connection
is no good for writing, `LOADING` (a Redis that restarted) or `READONLY` (a
former master, after a Sentinel failover), fails the line like a lost
connection. A lost line, or a batch unanswered within the client's
socket_timeout, fails every batch in flight with redis-py's ConnectionError
or TimeoutError; the batcher opens a new line and sends them again, which
the ref makes harmless.

It uses the same two private parts of redis-py's connection as
hall/subscription.py (`_writer`, `_close`) and its parser's `parse_error`.
"""
from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

import hiredis
from redis._parsers.base import BaseParser
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError
from redis.exceptions import TimeoutError as RedisTimeoutError


class BidLine(asyncio.Protocol):
    """One Redis connection for bid batches: `exchange(packed, n)` -> n replies."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn
        self._parser = hiredis.Reader(replyError=BaseParser.parse_error)
        self._transport: asyncio.Transport | None = None
        # Batches in flight, oldest first: [replies expected, replies so far, future].
        self._waiting: deque[list] = deque()
        self.timeout: float | None = conn.socket_timeout
        self.lost = False

    @classmethod
    async def open(cls, pool: Any) -> "BidLine":
        conn = pool.make_connection()
        await conn.connect()
        line = cls(conn)
        # redis-py has read every reply of its handshake and sent nothing
        # else: from here the socket's bytes are the line's.
        transport = conn._writer.transport
        transport.set_protocol(line)
        line._transport = transport
        return line

    async def exchange(self, packed: bytes, n: int) -> list:
        """Send one batch; its n replies, an error reply as its exception."""
        if self.lost or self._transport is None or self._transport.is_closing():
            raise RedisConnectionError("the bid connection to Redis is closed")
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        self._waiting.append([n, [], fut])
        self._transport.write(packed)
        try:
            async with asyncio.timeout(self.timeout):
                return await fut
        except TimeoutError:
            self._fail(RedisTimeoutError(
                f"no answer from Redis within {self.timeout} s to a batch of {n} bids"))
            raise RedisTimeoutError(
                f"no answer from Redis within {self.timeout} s to a batch of {n} bids") from None

    def close(self) -> None:
        self._fail(RedisConnectionError("the bid connection to Redis was closed"))

    def _fail(self, exc: Exception) -> None:
        """Every batch in flight fails with `exc`; the connection is dropped."""
        self.lost = True
        waiting, self._waiting = self._waiting, deque()
        for _, _, fut in waiting:
            if not fut.done():
                fut.set_exception(exc)
        silent_close = getattr(self._conn, "_close", None)
        if silent_close is not None:
            silent_close()
        elif self._transport is not None:
            self._transport.close()
        self._transport = None

    # -- asyncio.Protocol ------------------------------------------------
    def data_received(self, data: bytes) -> None:
        self._parser.feed(data)
        gets = self._parser.gets
        waiting = self._waiting
        while (reply := gets()) is not False:
            if isinstance(reply, RedisConnectionError) or isinstance(reply, ReadOnlyError):
                # LOADING, READONLY: this Redis takes no bids now; a new line
                # asks again (Sentinel: for the master).
                self._fail(RedisConnectionError(f"Redis refused the bid batch: {reply}"))
                return
            if not waiting:
                self._fail(RedisConnectionError("a reply from Redis that nothing asked for"))
                return
            batch = waiting[0]
            batch[1].append(reply)
            if len(batch[1]) == batch[0]:
                waiting.popleft()
                if not batch[2].done():
                    batch[2].set_result(batch[1])

    def eof_received(self) -> bool:
        return False  # close the transport: connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        if not self.lost:
            self._fail(RedisConnectionError(f"the bid connection to Redis was lost: {exc}"))
