"""The bid batches' Redis connection, written and read by the hall itself.

The same arrangement as hall/subscription.py: the connection is made and
opened by redis-py, by the client's own pool (address or Sentinel lookup,
AUTH, database, TLS, keepalive), and once it is open this object becomes the
socket's asyncio protocol. A batch is one write of its packed EVALSHA calls
(hall/bidding.py); one `hiredis.Reader` parses the replies, which come back
in the order sent, so every batch in flight shares the one connection, and
each batch's replies go to its callback as soon as the last one is read.
Per batch that leaves out what redis-py's exchange costs on top: a pool
checkout or health check, the `asyncio.wait_for` around the write (a Task and
a timer), a timer for the batch, the retry wrapper, a coroutine per reply and
the Task that awaits them.

Errors are redis-py's: an error reply is parsed by redis-py's own parser's
rules (`NOSCRIPT` is a NoScriptError, and so on). What means the connection
is no good for writing, `LOADING` (a Redis that restarted) or `READONLY` (a
former master, after a Sentinel failover), fails the line like a lost
connection. A lost line, or a batch unanswered within the client's
socket_timeout (one timer for the line, not one per batch), fails every batch
in flight with redis-py's ConnectionError or TimeoutError; the batcher sends
them again on a new line, which the ref makes harmless.

Taking the connection over from redis-py is hall/rawredis.py's; error replies
are parsed with redis-py's parser's `parse_error`.
"""
from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, Callable

import hiredis
from redis._parsers.base import BaseParser
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError
from redis.exceptions import TimeoutError as RedisTimeoutError

from hall.rawredis import close_quietly, take_over

# A batch's callback: its replies in order (an error reply as its exception),
# or the exception that failed the whole line.
Replied = Callable[["list | Exception"], None]


class BidLine(asyncio.Protocol):
    """One Redis connection for bid batches: `send(packed, n, replied)`."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn
        self._parser = hiredis.Reader(replyError=BaseParser.parse_error)
        self._transport: asyncio.Transport | None = None
        self._loop = asyncio.get_running_loop()
        # Batches in flight, oldest first: [replies expected, replies so far,
        # callback, answer due by (loop time)].
        self._waiting: deque[list] = deque()
        self.timeout: float | None = conn.socket_timeout
        self._timer: asyncio.TimerHandle | None = None

    @classmethod
    async def open(cls, pool: Any) -> "BidLine":
        conn = pool.make_connection()
        await conn.connect()
        line = cls(conn)
        line._transport = take_over(conn, line)
        return line

    def usable(self) -> bool:
        """Open, and not failed (`_fail` drops the transport)."""
        return self._transport is not None and not self._transport.is_closing()

    def send(self, packed: bytes, n: int, replied: Replied) -> None:
        """Write one batch of n calls; `replied` gets its n replies, or the
        exception that failed the line (at once when it is already closed)."""
        if not self.usable():
            replied(RedisConnectionError("the bid connection to Redis is closed"))
            return
        due = self._loop.time() + self.timeout if self.timeout else None
        self._waiting.append([n, [], replied, due])
        if due is not None and self._timer is None:
            self._timer = self._loop.call_at(due, self._check_due)
        self._transport.write(packed)

    def close(self) -> None:
        self._fail(RedisConnectionError("the bid connection to Redis was closed"))

    def _check_due(self) -> None:
        """The line's one timer: at the oldest batch's due time, fail the line if
        that batch is still unanswered, else wait for the next oldest."""
        self._timer = None
        if not self._waiting:
            return
        n, _, _, due = self._waiting[0]
        if due <= self._loop.time():
            self._fail(RedisTimeoutError(
                f"no answer from Redis within {self.timeout} s to a batch of {n} bids"))
        else:
            self._timer = self._loop.call_at(due, self._check_due)

    def _fail(self, exc: Exception) -> None:
        """Every batch in flight fails with `exc`; the connection is dropped."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        waiting, self._waiting = self._waiting, deque()
        transport, self._transport = self._transport, None
        close_quietly(self._conn, transport)
        for _, _, replied, _ in waiting:
            replied(exc)

    # -- asyncio.Protocol ------------------------------------------------
    def data_received(self, data: bytes) -> None:
        self._parser.feed(data)
        gets = self._parser.gets
        waiting = self._waiting
        while (reply := gets()) is not False:
            if isinstance(reply, (RedisConnectionError, ReadOnlyError)):
                # LOADING, READONLY: this Redis takes no bids now; a new line
                # asks again (Sentinel: for the master).
                self._fail(RedisConnectionError(f"Redis refused the bid batch: {reply}"))
                return
            if not waiting:
                self._fail(RedisConnectionError("a reply from Redis that nothing asked for"))
                return
            batch = waiting[0]
            replies = batch[1]
            replies.append(reply)
            if len(replies) == batch[0]:
                waiting.popleft()
                batch[2](replies)

    def eof_received(self) -> bool:
        return False  # close the transport: connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        if self._transport is not None:  # lost, not dropped by _fail
            self._fail(RedisConnectionError(f"the bid connection to Redis was lost: {exc}"))
