"""Redis restarts under a live room: the hall reconnects and nothing is missed."""
from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis

from conftest import Socket
from tests.procs import ROOT, RedisServer


async def _bid_until_answered(api, lot_id: int, amount: int, ref: str) -> dict:
    """Place a bid by HTTP, retrying (same ref: idempotent) while Redis is back-starting."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while True:
        code, body = await api.call("POST", f"/api/lots/{lot_id}/bids",
                                    {"amount": amount, "ref": ref})
        if code != 503:
            return {"status": code, **(body or {})}
        if loop.time() > deadline:
            raise AssertionError(f"the hall never got Redis back: {body}")
        await asyncio.sleep(0.05)  # pacing between retries of a refused request


async def test_redis_restart_hall_reconnects_and_client_misses_nothing(stack, hall):
    _session, (lot,) = await hall.live_lots(1, ends_in_s=120, extend_window_s=0)
    lot_id = lot["id"]
    api, _, ws = await hall.paid_bidder(lot_id)
    other, _, ows = await hall.paid_bidder(lot_id)
    viewer = await Socket.connect(stack.ws_url)
    await viewer.join(lot_id)
    assert (await ws.bid(lot_id, 1000))["type"] == "accepted"
    await viewer.wait_for(lambda m: m.get("type") == "bid" and m["seq"] == 1)

    # Restart Redis (AOF on): the pub/sub connection drops under the hall, and
    # under the worker (beat keeps it busy, so tasks finish during the outage).
    worker_pid = stack.worker.proc.pid
    stack.redis.stop()
    stack.redis.start()

    first = await _bid_until_answered(other, lot_id, 1100, uuid.uuid4().hex)
    assert first["status"] == 200 and first["seq"] == 2, first
    second = await _bid_until_answered(api, lot_id, 1200, uuid.uuid4().hex)
    assert second["seq"] == 3
    # The viewer gets both, in order, once each: whether they came live or
    # from the hall re-reading the stream after it resubscribed.
    await viewer.wait_for(lambda m: m.get("type") == "bid" and m["seq"] == 3, timeout=30)
    seqs = [m["seq"] for m in viewer.of_type("bid", lot_id)]
    assert seqs == [1, 2, 3]
    # State survived the restart: price, leader and history.
    snap = await hall.anon.get(f"/api/lots/{lot_id}")
    assert snap["price"] == 1200 and snap["seq"] == 3
    history = (await hall.anon.get(f"/api/lots/{lot_id}/bids"))["bids"]
    assert [h["amount"] for h in history] == [1000, 1100, 1200]

    # The same worker process, never restarted, still takes money tasks.
    _, _, lws = await hall.paid_bidder(lot_id)
    assert stack.worker.proc.poll() is None and stack.worker.proc.pid == worker_pid
    worker_log = stack.worker.log_path.read_text(errors="replace")
    assert "Unrecoverable error" not in worker_log and "Removing descriptor" not in worker_log
    for s in (ws, ows, viewer, lws):
        await s.close()


async def test_bids_after_redis_forgot_its_scripts_are_decided_once(stack, hall):
    """SCRIPT FLUSH (what a failover to a replica or a restart without the
    script cache looks like): the next bids, sent at once from four sockets so
    they share one batch, are each answered: one accepted, the rest too low."""
    _session, (lot,) = await hall.live_lots(1, ends_in_s=120, extend_window_s=0,
                                            start_price=1000, increment=100)
    lot_id = lot["id"]
    sockets = [(await hall.paid_bidder(lot_id))[2] for _ in range(4)]
    stack.sync_redis().script_flush()
    answers = await asyncio.gather(*(s.bid(lot_id, 1000) for s in sockets))
    kinds = sorted(a["type"] if a["type"] == "accepted" else a["code"] for a in answers)
    assert kinds == ["accepted", "too_low", "too_low", "too_low"], answers
    history = (await hall.anon.get(f"/api/lots/{lot_id}/bids"))["bids"]
    assert [h["amount"] for h in history] == [1000]
    for s in sockets:
        await s.close()


# A worker's process (monkey-patched by eventlet, as `celery worker -P eventlet` is),
# its pool holding connections from before a Redis restart. Under eventlet,
# redis-py's check of a pooled connection on checkout does not see that the
# server closed it.
_WORKER_AFTER_A_RESTART = r"""
import eventlet; eventlet.monkey_patch()
import json, sys
from pathlib import Path
import redis
import settings
from auction import keys
from tests.procs import RedisServer
from workers import publish

server = RedisServer(Path(sys.argv[1]), Path(sys.argv[1])).start()
try:
    settings.REDIS_URL = server.url
    pool = publish.client().connection_pool
    held = [pool.get_connection() for _ in range(3)]  # as after a few tasks at once
    for conn in held:
        pool.release(conn)
    server.stop()
    server.start()
    listener = redis.Redis.from_url(server.url).pubsub()
    listener.subscribe(keys.user_channel(7))
    listener.get_message(timeout=5)
    publish.to_user(7, {"type": "task", "task_id": "t-1", "state": "SUCCESS"})
    got = listener.get_message(timeout=5)
    print("delivered:", json.loads(got["data"])["task_id"] if got else None)
finally:
    server.stop()
"""


def test_a_workers_message_to_a_user_after_a_redis_restart_is_delivered(tmp_path: Path) -> None:
    """The worker's next message to a user after a restart (a deposit's result)
    goes out on a new connection. It used to raise "Connection closed by
    server" after the task had succeeded, and the bidder was never told their
    deposit was paid."""
    done = subprocess.run([sys.executable, "-c", _WORKER_AFTER_A_RESTART, str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "delivered: t-1" in done.stdout, done.stdout + done.stderr


@contextlib.asynccontextmanager
async def _echo_batcher(tmp_path: Path, make_client: Any) -> AsyncIterator[tuple]:
    """(batcher, call, control): a BidBatcher on a Redis of its own (the tests
    pause it) whose script answers its argument; `call(text)` queues one call.
    Its line is open."""
    from hall.bidding import BidBatcher, pack_evalsha

    server = RedisServer(tmp_path / "redis", tmp_path).start()
    client = make_client(server.url)
    control = redis.Redis.from_url(server.url)
    try:
        script = client.register_script("return ARGV[1]")
        await client.script_load(script.script)
        batcher = BidBatcher(client, script)

        def call(text: str) -> asyncio.Future:
            return batcher.call_packed(pack_evalsha(script.sha, [(0, text)]))
        assert await call("before") == b"before"
        yield batcher, call, control
    finally:
        try:
            control.client_unpause()
        finally:  # the server goes even if the test left it unreachable
            await client.aclose()
            server.stop()


def _pause_scripts(control: redis.Redis) -> None:
    control.client_pause(60_000, all=False)  # WRITE: scripts wait, UNPAUSE does not


async def test_a_burst_of_bid_batches_shares_one_connection_and_leaves_the_pool_alone(
        tmp_path: Path):
    """Batches in flight at once (as while Redis is slow or restarting) go one
    after the other on the batcher's own connection, each answered with its
    own replies; the hall's other commands still get every pooled connection
    meanwhile. A connection per batch in flight left a hall with "No connection
    available" while Redis was slow (and, kept for good, for the rest of its life)."""
    import redis.asyncio as aioredis

    size = 12

    def make_client(url: str) -> aioredis.Redis:
        pool = aioredis.BlockingConnectionPool.from_url(url, max_connections=2, timeout=1)
        return aioredis.Redis.from_pool(pool)
    async with _echo_batcher(tmp_path, make_client) as (batcher, call, control):
        pool = batcher.redis.connection_pool
        warm = [await pool.get_connection() for _ in range(2)]  # connected before the pause
        for conn in warm:
            await pool.release(conn)
        _pause_scripts(control)  # every batch below in flight at once
        answers = []
        for i in range(size):
            answers += [call(str(i)), call(f"{i}b")]
            batcher._flush()  # what the loop's next iteration does: a batch of its own
        assert batcher.batches == size + 1
        # Redis answers nothing now, and the pool's connections are all free.
        others = [await pool.get_connection() for _ in range(2)]
        for conn in others:
            await pool.release(conn)
        assert not any(fut.done() for fut in answers)
        control.client_unpause()
        expected = [x for i in range(size) for x in (str(i).encode(), f"{i}b".encode())]
        assert await asyncio.gather(*answers) == expected


async def test_a_batch_redis_does_not_answer_in_time_fails_and_the_next_gets_a_new_connection(
        tmp_path: Path):
    """A batch unanswered within the client's socket_timeout fails its bids
    with redis-py's TimeoutError (the socket says "unavailable; retry"); the
    line it was on is dropped, and the next batch is answered on a new one."""
    import redis.asyncio as aioredis
    from redis.exceptions import TimeoutError as RedisTimeoutError

    def make_client(url: str) -> aioredis.Redis:
        return aioredis.Redis.from_url(url, socket_timeout=0.5)  # no retry
    async with _echo_batcher(tmp_path, make_client) as (batcher, call, control):
        clients_before = len(control.client_list())
        _pause_scripts(control)
        with pytest.raises(RedisTimeoutError):
            await call("late")
        control.client_unpause()
        assert await call("after") == b"after"
        assert len(control.client_list()) == clients_before  # the old line is gone, one new


async def test_bids_in_flight_when_the_hall_stops_fail_and_are_not_sent_again(tmp_path: Path):
    """At the hall's stop (`BidBatcher.close`) a batch still waiting for Redis
    fails at once; it is not sent again on a new connection, even by a client
    that retries (the hall's does)."""
    import redis.asyncio as aioredis
    from redis.backoff import ConstantBackoff
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.retry import Retry

    def make_client(url: str) -> aioredis.Redis:
        return aioredis.Redis.from_url(url, retry=Retry(ConstantBackoff(0.05), 20),
                                       retry_on_error=[RedisConnectionError])
    async with _echo_batcher(tmp_path, make_client) as (batcher, call, control):
        _pause_scripts(control)
        pending = call("late")
        batcher._flush()
        batcher.close()
        with pytest.raises(RedisConnectionError):
            await pending
        control.client_unpause()
        await asyncio.gather(*batcher._tasks, return_exceptions=True)
        names = [c.get("name") for c in control.client_list()]
        assert len(names) == 2, names  # this test's two clients, no new bid line
