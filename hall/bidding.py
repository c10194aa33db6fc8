"""The bid path shared by HTTP and WebSocket: validate, then one Lua call.

The same `ref` from the same user on the same lot returns the first answer
for 24 h, across both transports, because the answer is stored by the script.

An accepted bid's answer carries its signed receipt (`Receipts`): the script
writes the receipt's fields, the hall signs them.

Bids that arrive in the same IOLoop iteration are sent to Redis together: one
pipeline (not a transaction) of EVALSHA calls, one write and one round trip
for the lot on the batcher's own connection (hall/bidline.py), instead of one
per bid (`BidBatcher`). Each bid is still its own script run, atomic on its
own; the batch only shares the socket.
"""
from __future__ import annotations

import asyncio
import json
from functools import partial
from typing import Any

from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError
from redis.retry import Retry

from auction import bidchain, engine
from auction.receipts import Signer
from hall.auth import Identity
from hall.bidline import BidLine
from hall.errors import ApiError
from hall.lots import LotReader
from hall.ratelimit import bid_rate
from hall.validate import money


def read_bid(data: dict) -> tuple[int | None, str, int | None]:
    """(amount, ref, max_amount) from a bid message; ApiError('invalid') if bad.

    `amount` may be left out when `max_amount` is given: the bid is then the
    minimum next bid, or, from the leader, only a higher private maximum.
    """
    ref = data.get("ref")
    if not isinstance(ref, str) or not 1 <= len(ref) <= 64:
        raise ApiError("invalid", "ref must be a string of 1 to 64 characters")
    max_amount = money(data, "max_amount", required=False)
    amount = money(data, "amount", required=max_amount is None)
    if max_amount is not None and amount is not None and max_amount < amount:
        raise ApiError("invalid", "max_amount must be at least amount")
    return amount, ref, max_amount


class BidBatcher:
    """Collect the bid script calls of one loop iteration; send them as one pipeline.

    `call_packed()` returns a future for the script's raw reply. The first call in an
    iteration schedules `_flush` with `call_soon`, so everything queued until
    the loop comes round goes in the same pipeline; several pipelines may be in
    flight at once (no waiting for the previous batch), one after the other on
    the batcher's own connection (hall/bidline.py), whose callback resolves
    the batch's futures: no Task or coroutine per batch while all is well.

    Anything else goes through `_run`, a Task: opening the line (at start, and
    after it was lost), a batch the line failed (connection lost or timed out:
    sent again under the client's retry, on a new line, which the ref makes
    harmless: a bid already decided returns its answer), and a NOSCRIPT reply
    (Redis restarted or flushed its script cache: the script is loaded and
    just those calls sent again, as redis-py's Script does; the same bytes,
    the sha being the script's own hash). Other error replies, or a batch that
    fails every retry, fail the affected futures with the same exception types
    a single call would raise.
    """

    def __init__(self, redis: Any, script: Any, seal: Any = None) -> None:
        self.redis = redis
        self.script = script  # redis-py AsyncScript (sha + source)
        # Signs an answer's receipt (Receipts.seal). The whole batch is signed
        # back to back: libsodium's tables stay in cache, which measured
        # cheaper per signature than one signature between other work.
        self.seal = seal
        self._queue: list[tuple[bytes, asyncio.Future]] = []
        self._tasks: set[asyncio.Task] = set()
        self._line: BidLine | None = None  # the batches' connection (hall/bidline.py)
        self._opening = asyncio.Lock()
        self._closed = False
        self.commands = BidCommands()
        self.batches = 0
        self.calls = 0

    def call_packed(self, command: bytes) -> "asyncio.Future[bytes]":
        """A future for the reply to one script call, already in RESP
        (`BidCommands.pack`)."""
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        if not self._queue:
            loop.call_soon(self._flush)
        self._queue.append((command, fut))
        return fut

    def _flush(self) -> None:
        batch, self._queue = self._queue, []
        batch = [item for item in batch if not item[1].cancelled()]
        if not batch:
            return
        self.batches += 1
        self.calls += len(batch)
        line = self._line
        if line is not None and line.usable():
            line.send(b"".join([command for command, _ in batch]), len(batch),
                      partial(self._replied, batch))
        else:
            self._spawn(self._run(batch))

    def _replied(self, batch: list[tuple[bytes, asyncio.Future]],
                 replies: list | Exception) -> None:
        """The line's answer to a batch sent from `_flush`."""
        if isinstance(replies, Exception) and self._closed:
            _fail_all(batch, replies)
        elif isinstance(replies, Exception) or any(isinstance(r, NoScriptError) for r in replies):
            self._spawn(self._run(batch, replies))
        else:
            self._resolve(batch, replies)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _resolve(self, batch: list[tuple[bytes, asyncio.Future]], replies: list) -> None:
        seal = self.seal
        for (_, fut), reply in zip(batch, replies):
            if fut.done():
                continue
            if isinstance(reply, Exception):
                fut.set_exception(reply)
            else:
                try:
                    fut.set_result(seal(reply) if seal is not None else reply)
                except Exception as exc:  # a receipt that cannot be sealed fails its bid alone
                    fut.set_exception(exc)

    async def _run(self, batch: list[tuple[bytes, asyncio.Future]],
                   replies: list | Exception | None = None) -> None:
        """A batch the fast path could not finish: `replies` is what the line
        answered (None: not sent yet; an exception: the line failed)."""
        try:
            if not isinstance(replies, list):
                replies = await self._send([command for command, _ in batch])
            retry = [i for i, r in enumerate(replies) if isinstance(r, NoScriptError)]
            if retry:
                self.script.sha = await self.redis.script_load(self.script.script)
                again = await self._send([batch[i][0] for i in retry])
                for i, r in zip(retry, again):
                    replies[i] = r
        except BaseException as exc:  # connection lost, cancelled, ...
            _fail_all(batch, exc)
            if not isinstance(exc, Exception):
                raise
            return
        self._resolve(batch, replies)

    async def _send(self, calls: list[bytes]) -> list:
        """One write of every call's EVALSHA on the line, then their replies in
        order, under the client's retry (a line lost to a Redis restart or
        failover is opened again and the whole batch sent again).

        redis-py's pipeline packing alone was 11 % of the hall's samples under
        load (docs/benchmarks.md, "third round"): calls come packed
        (`BidCommands`).
        """
        packed = b"".join(calls)
        retry = self.redis.get_retry() or Retry(NoBackoff(), 0)
        return await retry.call_with_retry(lambda: self._exchange(packed, len(calls)),
                                           lambda _error: None)

    async def _exchange(self, packed: bytes, n: int) -> list:
        line = self._line
        if line is None or not line.usable():
            async with self._opening:  # one new line for every batch that needs it
                line = self._line
                if self._closed:
                    raise RedisConnectionError("the hall is stopping: no more bids")
                if line is None or not line.usable():
                    line = self._line = await BidLine.open(self.redis.connection_pool)
        answer: asyncio.Future = asyncio.get_running_loop().create_future()
        line.send(packed, n, partial(_settle, answer))
        result = await answer
        if isinstance(result, Exception):
            raise result
        return result

    def close(self) -> None:
        """At the hall's stop: batches in flight fail, none is sent again."""
        self._closed = True
        for task in list(self._tasks):  # batches waiting to be sent again
            task.cancel()
        if self._line is not None:
            self._line.close()


def _fail_all(batch: list[tuple[bytes, asyncio.Future]], exc: BaseException) -> None:
    for _, fut in batch:
        if not fut.done():
            fut.set_exception(exc)


def _settle(answer: asyncio.Future, result: list | Exception) -> None:
    if not answer.done():
        answer.set_result(result)


def pack_evalsha(sha: str | bytes, calls: list[tuple]) -> bytes:
    """RESP of one `EVALSHA sha numkeys key... arg...` per call. Arguments are
    str or int, as auction/engine.py builds them.

    Built as one str and encoded once: 5-6 us a call against 19-23 us for
    redis-py's packer (`python bench/packing.py`: a bid's 24 arguments). A bulk
    string's length is in bytes, so text that is not ASCII is measured encoded.
    The bid path packs through `BidCommands`; this is what its templates are
    held to (tests/test_engine_rules.py) and the packer it is measured beside.
    """
    sha_s = sha.decode() if isinstance(sha, bytes) else sha
    head = f"$7\r\nEVALSHA\r\n${len(sha_s)}\r\n{sha_s}\r\n"
    out: list[str] = []
    append = out.append
    for argv in calls:
        append(f"*{len(argv) + 2}\r\n{head}")
        for arg in argv:
            if type(arg) is str:
                text = arg
            elif type(arg) is int:
                text = str(arg)
            else:
                raise TypeError(f"a bid script argument must be str or int: {arg!r}")
            if text.isascii():
                append(f"${len(text)}\r\n{text}\r\n")
            else:
                append(f"${len(text.encode())}\r\n{text}\r\n")
    return "".join(out).encode()


# Stand-ins for what changes from one bid of a user on a lot to the next.
_REF, _AMOUNT, _MAX = "\x00ref\x00", "\x00amount\x00", "\x00max\x00"


def _bulk(text: str) -> bytes:
    data = text.encode()
    return b"$%d\r\n%b\r\n" % (len(data), data)


class BidCommands:
    """A bid's EVALSHA in RESP, from a template per bidder and lot.

    Of the script's 21 keys and arguments only three parts change from one bid
    of a user on a lot to the next: the ref (an argument, and inside a key),
    the amount and the maximum. The rest (the lot's and the bidder's keys, the
    masked name, the pseudonym, the key id) is encoded once per (lot, bidder).
    Keys and arguments come from auction/engine.py with stand-ins, so the
    script's order is still written in one place. Packing a bid was 7 us
    with the keys, arguments and `pack_evalsha`, and is under 2 us here
    (`python bench/packing.py`). A template is about 1 KB: past `limit` of
    them the map starts again (the active pairs are rebuilt on their next bid).
    """

    def __init__(self, limit: int = 20_000) -> None:
        self._templates: dict[tuple, tuple[bytes, tuple]] = {}
        self._limit = limit

    def pack(self, sha: str | bytes, lot_id: int, session_id: int, user: Identity,
             amount: int | None, ref: str, max_amount: int | None, rate_per_s: int,
             bidder_ref: str, kid: str) -> bytes:
        key = (sha, lot_id, session_id, user.id, user.name, rate_per_s, bidder_ref, kid)
        template = self._templates.get(key)
        if template is None:
            if len(self._templates) >= self._limit:
                self._templates.clear()
            template = self._templates[key] = self._template(
                sha, engine.bid_keys(lot_id, session_id, user.id, _REF),
                engine.bid_args(lot_id, user.id, user.name, _AMOUNT, _REF, _MAX, rate_per_s,
                                bidder_ref, kid))
        head, parts = template
        values = {_REF: ref, _AMOUNT: "" if amount is None else str(amount),
                  _MAX: str(max_amount) if max_amount else ""}
        out = [head]
        for prefix, slot, suffix, after in parts:
            data = (prefix + values[slot] + suffix).encode()
            out.append(b"$%d\r\n%b\r\n%b" % (len(data), data, after))
        return b"".join(out)

    @staticmethod
    def _template(sha: str | bytes, keys: list, args: list) -> tuple[bytes, tuple]:
        """(everything before the first changing part, then per changing part:
        text before its stand-in, the stand-in, text after it, the unchanging
        RESP up to the next one)."""
        argv = [len(keys), *keys, *args]
        sha_s = sha.decode() if isinstance(sha, bytes) else sha  # SCRIPT LOAD's is bytes
        static = [f"*{len(argv) + 2}\r\n$7\r\nEVALSHA\r\n".encode(), _bulk(sha_s)]
        head: bytes | None = None
        parts: list[tuple[str, str, str, bytes]] = []
        slot: tuple[str, str, str] | None = None
        for arg in argv:
            text = str(arg)
            found = [s for s in (_REF, _AMOUNT, _MAX) if s in text]
            if not found:
                static.append(_bulk(text))
                continue
            if len(found) > 1 or text.count(found[0]) > 1:
                raise ValueError(f"one changing part per argument: {text!r}")
            if slot is None:
                head = b"".join(static)
            else:
                parts.append((*slot, b"".join(static)))
            prefix, _, suffix = text.partition(found[0])
            slot = (prefix, found[0], suffix)
            static = []
        if slot is None:
            raise ValueError("a bid's call has a ref")
        parts.append((*slot, b"".join(static)))
        return head or b"", tuple(parts)


class Receipts:
    """What the bid path needs for receipts: each bidder's pseudonym on a lot
    (the bid chain's `bidder_ref`, kept per process: an HMAC per bid costs
    more than a dict lookup), the key id, and the signing of answers."""

    def __init__(self, signer: Signer, secret: str, limit: int = 100_000) -> None:
        self.signer = signer
        self.kid = signer.kid
        self._key = bidchain.ref_key(secret)
        self._refs: dict[tuple[int, int], str] = {}
        self._limit = limit

    def bidder_ref(self, lot_id: int, user_id: int) -> str:
        ref = self._refs.get((lot_id, user_id))
        if ref is None:
            if len(self._refs) >= self._limit:
                self._refs.clear()
            ref = self._refs[(lot_id, user_id)] = bidchain.bidder_ref(self._key, lot_id, user_id)
        return ref

    def seal(self, answer: bytes) -> bytes:
        return self.signer.seal(answer)

    def keys(self) -> list[dict]:
        return self.signer.keys()


async def place_bid_raw(lots: LotReader, bids: BidBatcher, receipts: Receipts, user: Identity,
                        lot_id: int, amount: int | None, ref: str,
                        max_amount: int | None = None) -> bytes:
    """Run the bid script; returns its stored answer as JSON bytes (accepted or a
    code), an accepted bid's with its signed receipt."""
    if await lots.is_banned(user.id):
        raise ApiError("banned", "this account is banned from bidding")
    session_id = await lots.session_of(lot_id)
    if session_id is None:
        if await lots.exists(lot_id):
            raise ApiError("lot_not_open", "this lot is not published yet")
        raise ApiError("not_found", "no such lot")
    # The batcher signs the receipt (BidBatcher.seal).
    return await bids.call_packed(bids.commands.pack(
        bids.script.sha, lot_id, session_id, user, amount, ref, max_amount, bid_rate(),
        receipts.bidder_ref(lot_id, user.id), receipts.kid))


async def place_bid(lots: LotReader, bids: BidBatcher, receipts: Receipts, user: Identity,
                    lot_id: int, amount: int | None, ref: str,
                    max_amount: int | None = None) -> dict:
    """Run the bid script; returns the stored answer (accepted or a code)."""
    return json.loads(await place_bid_raw(lots, bids, receipts, user, lot_id, amount, ref,
                                          max_amount))
