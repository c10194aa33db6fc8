"""The operator feed over the WebSocket: `{"op":"ops"}` -> `overview` pushes.

Against the real stack: an operator socket gets overviews that follow a new
bid's price and a new connection in the lot's room; bidders and anonymous
viewers are refused. And the feed itself (hall/ops.py) with a stand-in
application: one overview per tick shared by every subscriber, and no work
once nobody is subscribed.
"""
from __future__ import annotations

import asyncio
import uuid
from types import SimpleNamespace

import pytest
from conftest import Socket

from hall.errors import ApiError
from hall.ops import OpsFeed


def room_of(overview: dict, lot_id: int) -> dict | None:
    return next((r for r in overview["rooms"] if r["lot_id"] == lot_id), None)


def is_overview(pred):
    return lambda m: m.get("type") == "overview" and pred(m)


async def test_operator_socket_gets_overviews(stack, hall):
    _, (lot,) = await hall.live_lots(1, ends_in_s=120, start_price=1000, increment=100)
    lid = lot["id"]
    op = await Socket.connect(stack.ws_url, hall.operator.token)
    bidder_api, _ = await hall.bidder()
    sock = None
    try:
        await op.send({"op": "ops"})
        first = await op.wait_for(lambda m: m.get("type") in ("overview", "error"))
        assert first["type"] == "overview", first
        for key in ("rooms", "halls", "queues", "workers", "recent_failures", "task_rate_per_s",
                    "server_time_ms"):
            assert key in first, key
        assert first["workers"], "the test worker answers the ping"
        assert room_of(first, lid) is not None  # a live lot is listed even with nobody in it
        # Subscribing twice changes nothing (still one subscription).
        await op.send({"op": "ops"})

        # -- a new connection: wait until the room is empty (live_lots' watcher
        # has gone), then a bidder joins and the pushed figures follow.
        mark = len(op.messages)
        await op.wait_for(is_overview(lambda m: room_of(m, lid)["connections"] == 0), start=mark)
        sock = await Socket.connect(stack.ws_url, bidder_api.token)
        assert (await sock.join(lid))["type"] == "snapshot"
        mark = len(op.messages)
        seen = await op.wait_for(is_overview(
            lambda m: room_of(m, lid)["connections"] == 1 and room_of(m, lid)["bidders"] == 1),
            start=mark)
        assert room_of(seen, lid)["price"] is None

        # -- a new bid: its price shows up in a later overview. The deposit is a
        # worker task, so the task rate is above zero too.
        await hall.pay_deposit(bidder_api, sock, lid)
        answer = await sock.bid(lid, 1000)
        assert answer["type"] == "accepted", answer
        mark = len(op.messages)
        seen = await op.wait_for(is_overview(lambda m: room_of(m, lid)["price"] == 1000), start=mark)
        room = room_of(seen, lid)
        assert room["bid_count"] == 1 and room["status"] == "live"
        assert room["deadline_ms"] == answer["deadline_ms"]
        assert seen["task_rate_per_s"] > 0
        # Overviews keep coming, every ~2 s, with a rising server time.
        mark = len(op.messages)
        nxt = await op.wait_for(is_overview(lambda m: True), start=mark)
        assert nxt["server_time_ms"] > seen["server_time_ms"]
        # The operator socket is still an ordinary socket.
        await op.send({"op": "ping"})
        await op.wait_for(lambda m: m.get("type") == "pong")
    finally:
        await op.close()
        if sock is not None:
            await sock.close()


@pytest.mark.parametrize("who", ["bidder", "anonymous"])
async def test_ops_refused_to_non_operators(stack, hall, who):
    token = (await hall.bidder(balance=0))[0].token if who == "bidder" else None
    sock = await Socket.connect(stack.ws_url, token)
    try:
        await sock.send({"op": "ops"})
        err = await sock.wait_for(lambda m: m.get("type") == "error")
        assert err["code"] == ("forbidden" if who == "bidder" else "unauthorized"), err
        # The connection stays usable; no overview was pushed before the pong.
        await sock.send({"op": "ping"})
        await sock.wait_for(lambda m: m.get("type") == "pong")
        assert not sock.of_type("overview")
    finally:
        await sock.close()


# -- the feed on its own ------------------------------------------------------------

class FakeConn:
    def __init__(self, role: str | None) -> None:
        self.identity = SimpleNamespace(is_operator=role == "operator") if role else None
        self.frames: list[bytes] = []
        self.got = asyncio.Event()

    def send_frame(self, frame: bytes) -> None:
        self.frames.append(frame)
        self.got.set()


class FakeApp:
    def __init__(self) -> None:
        self.calls = 0
        self.tasks: set[asyncio.Task] = set()

    def _spawn(self, coro):
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        return task

    async def overview(self) -> dict:
        self.calls += 1
        return {"rooms": [], "n": self.calls, "id": uuid.uuid4().hex}


async def test_feed_one_computation_per_tick_for_all_subscribers():
    app = FakeApp()
    feed = OpsFeed(app.overview, app._spawn, interval=0.05)
    for role, code in ((None, "unauthorized"), ("bidder", "forbidden")):
        with pytest.raises(ApiError) as info:
            feed.subscribe(FakeConn(role))
        assert info.value.code == code
    assert not feed.subscribers and app.calls == 0  # nothing runs for nobody

    a, b = FakeConn("operator"), FakeConn("operator")
    feed.subscribe(a)
    feed.subscribe(b)
    await asyncio.wait_for(asyncio.gather(a.got.wait(), b.got.wait()), 5)
    for _ in range(3):  # a few more ticks
        a.got.clear()
        await asyncio.wait_for(a.got.wait(), 5)
    # The same encoded frame went to both: one computation, one encoding per tick.
    shared = [f for f in a.frames if f in b.frames]
    assert len(shared) >= 3
    assert app.calls <= len(a.frames) + 1
    assert b'"type":"overview"' in a.frames[-1]

    feed.unsubscribe(a)
    feed.unsubscribe(b)
    (task,) = app.tasks
    await asyncio.gather(task, return_exceptions=True)
    assert task.done() and feed._task is None
    calls = app.calls
    # A new subscriber starts it again, at once.
    c = FakeConn("operator")
    feed.subscribe(c)
    await asyncio.wait_for(c.got.wait(), 5)
    assert app.calls == calls + 1
    feed.unsubscribe(c)
