"""While no worker closes lots, a lot past its deadline reads as closed.

Bids after the deadline are refused by the bid script on Redis' clock; the
close itself (event, settlement) waits for a worker. Meanwhile the snapshot
must not say `live`: it shows the lot closed, with the result the close will
give. When the worker is back, the real close follows with that result.
"""
from __future__ import annotations

import asyncio

import redis
from celery import Celery
from kombu.exceptions import OperationalError

from conftest import Socket
from test_money import user_with_socket


async def consumers(stack, action: str, queue: str, destination: list | None = None) -> list:
    """cancel_consumer / add_consumer on the stack's workers; the names that answered.

    A fresh control connection each time, tried again once: earlier tests
    restart Redis, and a connection kombu pooled before that is dead."""
    def call() -> list:
        for attempt in range(3):
            control = Celery(broker=stack.redis.url, broker_pool_limit=0)
            try:
                kw = {"destination": destination} if destination else {}
                return getattr(control.control, action)(queue, reply=True, timeout=5, **kw)
            except (redis.exceptions.ConnectionError, OperationalError):
                if attempt == 2:
                    raise
            finally:
                control.close()
        return []
    replies = await asyncio.get_running_loop().run_in_executor(None, call)
    return [name for reply in replies for name in reply]


async def test_a_lot_past_its_deadline_reads_closed_while_no_worker_closes_it(stack, hall):
    _, (lot,) = await hall.live_lots(1, ends_in_s=8, extend_window_s=0, extend_by_s=0)
    lot_id = lot["id"]
    api, user, sock = await user_with_socket(stack, hall)
    assert (await hall.pay_deposit(api, sock, lot_id, scope="lot"))["state"] == "SUCCESS"
    await sock.join(lot_id)
    assert (await sock.bid(lot_id, 1000))["type"] == "accepted"

    workers = await consumers(stack, "cancel_consumer", "lots")  # nobody closes lots now
    assert workers
    try:
        snap = await hall.anon.get(f"/api/lots/{lot_id}")
        assert snap["status"] == "live"
        # Time passing is the event here: wait out the deadline by the hall's clock.
        await asyncio.sleep((snap["deadline_ms"] - snap["server_time_ms"]) / 1000 + 0.3)
        snap = await hall.anon.get(f"/api/lots/{lot_id}")
        assert snap["server_time_ms"] >= snap["deadline_ms"]
        assert snap["status"] == "closed"
        assert snap["result"] == "sold" and snap["winner"] == snap["leader"]
        late = await sock.bid(lot_id, 1100)
        assert late["type"] == "rejected" and late["code"] == "lot_closed"
        assert not any(m.get("type") == "closed" for m in sock.messages)  # not closed yet
    finally:
        await consumers(stack, "add_consumer", "lots", workers)
    closed = await sock.wait_for(lambda m: m.get("type") == "closed", timeout=30)
    assert closed["result"] == "sold" and closed["price"] == 1000
    await sock.close()


async def test_publish_with_no_worker_says_it_is_queued_and_happens_once(stack, hall):
    session, _ = await hall.session_with_lots(1, ends_in_s=3600)
    op_sock = await Socket.connect(stack.ws_url, hall.operator.token)
    workers = await consumers(stack, "cancel_consumer", "lots")
    assert workers
    try:
        code, body = await hall.operator.call("POST",
                                              f"/api/admin/sessions/{session['id']}/publish", {})
        # Not an error that reads "nothing happened": queued, with the task to follow.
        assert code == 202 and body["status"] == "draft" and body["task_id"]
        state = await hall.operator.get(f"/api/tasks/{body['task_id']}")
        assert state["state"] == "PENDING" and state["kind"] == "publish"
    finally:
        await consumers(stack, "add_consumer", "lots", workers)
    done = await op_sock.wait_for(lambda m: m.get("type") == "task"
                                  and m.get("task_id") == body["task_id"], timeout=30)
    assert done["state"] == "SUCCESS"
    after = await hall.anon.get(f"/api/sessions/{session['id']}")
    assert after["status"] in ("published", "live")
    code, again = await hall.operator.call("POST",
                                           f"/api/admin/sessions/{session['id']}/publish", {})
    assert code == 409 and again["code"] == "conflict"  # a retry cannot publish twice
    await op_sock.close()
