"""Crash safety: a worker SIGKILLed in the middle of a settlement.

The stack's worker stops consuming the `money` queue for the test; a second
worker (`-Q money`, the app of tests/settle_pause.py) takes the settlement,
refunds one loser, announces its pause on the Redis list `test:settle:paused`
and is SIGKILLed there: after the refund was announced, or between its commit
and its announcement. A third worker gets the unacked task redelivered
(acks_late) once the dead worker's lease on it has run out, and finishes it.
Every loser is told of their refund, every order and refund exists exactly
once, and the books balance.
"""
from __future__ import annotations

import asyncio
import json
import sys
import uuid

import pytest
import redis.asyncio as aioredis
from celery import Celery
from conftest import Proc
from test_money import check_money, db_rows, hammer, user_with_socket, wechat_deposit


def money_worker(stack, name: str, app: str = "workers", **env: str) -> Proc:
    return Proc(name, [sys.executable, "-m", "celery", "-A", app, "worker", "-P", "eventlet",
                       "-c", "8", "-Q", "money", "--loglevel", "INFO",
                       "-n", f"{name}-{uuid.uuid4().hex[:6]}@%h"],
                {**stack.env, **env}, stack.logs)


@pytest.mark.parametrize("pause_at", ["refunded", "unannounced"])
async def test_settlement_survives_a_killed_worker(stack, hall, wechat_sim, pause_at):
    """`unannounced`: killed after the first refund's commit, before its
    after-commit hook told its owner; the rescuer's run must tell them."""
    _, (lot,) = await hall.live_lots(1, ends_in_s=3600, lot_deposit=5_000,
                                           start_price=10_000)
    lot_id = lot["id"]
    people = [await user_with_socket(stack, hall) for _ in range(5)]
    (_, w, w_sock), *losers = people
    # Two losers paid by balance, two by WeChat Pay; the winner by balance.
    for api, user, sock in (people[0], people[1], people[2]):
        assert (await hall.pay_deposit(api, sock, lot_id, scope="lot"))["state"] == "SUCCESS"
    wechat_nos = {}
    for api, user, sock in (people[3], people[4]):
        wechat_nos[user["id"]] = (await wechat_deposit(hall, wechat_sim, api, sock, lot_id,
                                                       "lot"))["out_trade_no"]
    price = 10_000  # above the deposit: the winner's is credited in full
    for api, user, sock in losers + [people[0]]:
        await sock.join(lot_id)
        assert (await sock.bid(lot_id, price))["type"] == "accepted"
        price += 100

    control = Celery(broker=stack.redis.url)
    r = aioredis.from_url(stack.redis.url, decode_responses=True)
    await r.delete("test:settle:paused")
    loop = asyncio.get_running_loop()
    replies = await loop.run_in_executor(None, lambda: control.control.cancel_consumer(
        "money", reply=True, timeout=5))
    main_workers = [name for reply in replies for name in reply]
    assert main_workers, "the stack's worker did not answer"
    doomed = money_worker(stack, "crash-doomed", app="tests.settle_pause",
                          SETTLE_PAUSE_AT=pause_at)
    rescuer = money_worker(stack, "crash-rescuer")
    try:
        await hammer(hall, lot_id)  # settlement queued; only `doomed` will take it
        doomed.start()
        got = await r.blpop("test:settle:paused", timeout=60)
        assert got is not None, doomed.tail()
        paused = json.loads(got[1])
        assert paused == {"pid": doomed.proc.pid, "lot_id": lot_id, "refunds": 1}
        doomed.kill()  # SIGKILL mid-settlement: one refund done, three to go
        assert len(db_rows(stack, "SELECT id FROM refund WHERE deposit_id IN "
                                  "(SELECT id FROM deposit WHERE lot_id=?)", (lot_id,))) == 1

        rescuer.start()
        won = await w_sock.wait_for(lambda m: m.get("type") == "won", timeout=60)
        assert won["order"]["amount"] == 10_400
        assert won["order"]["deposit_credited"] == 5_000
        for api, user, sock in losers:
            want_done = (lambda m: m.get("type") == "refund" and m.get("status") == "done")
            msg = await sock.wait_for(want_done, timeout=60)
            assert msg["amount"] == 5000
    finally:
        rescuer.stop()
        doomed.kill()
        await loop.run_in_executor(None, lambda: control.control.add_consumer(
            "money", destination=main_workers, reply=True, timeout=5))
        await r.aclose()

    # Exactly once: one order, one refund per loser, one ledger entry per refund.
    assert db_rows(stack, 'SELECT user_id, amount FROM "order" WHERE lot_id=?', (lot_id,)) == [
        (w["id"], 10_400)]
    refunds = db_rows(stack, "SELECT r.user_id, r.amount, r.method, r.status FROM refund r "
                             "JOIN deposit d ON d.id = r.deposit_id WHERE d.lot_id=? "
                             "ORDER BY r.user_id", (lot_id,))
    assert sorted(refunds) == sorted(
        (u["id"], 5000, "wechat" if u["id"] in wechat_nos else "balance", "done")
        for _, u, _ in losers)
    for _, u, _ in losers:
        entries = db_rows(stack, "SELECT COUNT(*) FROM ledgerentry WHERE user_id=? AND kind='refund'",
                          (u["id"],))
        assert entries == [(0 if u["id"] in wechat_nos else 1,)]
    gateway = [x for x in wechat_sim.gateway.refunds.values()
               if x["out_trade_no"] in wechat_nos.values()]
    assert sorted(x["out_trade_no"] for x in gateway) == sorted(wechat_nos.values())
    check_money(stack, [u["id"] for _, u, _ in people])
    for _, _, sock in people:
        await sock.close()
