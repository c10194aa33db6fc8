"""Faults from outside, against the real stack: whatever was accepted finishes, once.

- A worker SIGKILLed right after the hammers: its leases run out, the stack's
  worker gets the settlements it held, every lot settles and every loser is
  refunded, nothing twice.
- Twenty deposits, then SIGKILL of the worker that took them: every task id
  the hall answered with reaches SUCCESS or FAILURE.
- A task the broker lost before any worker held it: the hall's outbox submits
  it again under the same id.
- The SQLite file held exclusively for longer than the old retry budget (8
  retries): the settlement keeps retrying, operators are alerted, and once
  the lock is gone the lot settles.
"""
from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
import uuid


from conftest import Proc
from test_money import bind_wechat, check_money, db_rows, hammer, user_with_socket
from workerctl import RECOVERY_S, consumers, until



def worker(stack, name: str, queues: str = "money", **env: str) -> Proc:
    return Proc(name, [sys.executable, "-m", "celery", "-A", "workers", "worker", "-P", "eventlet",
                       "-c", "20", "-Q", queues, "--loglevel", "INFO",
                       "-n", f"{name}-{uuid.uuid4().hex[:6]}@%h"],
                {**stack.env, **env}, stack.logs)


def unacked_tasks(stack) -> list[str]:
    """Names of the tasks in the broker's unacknowledged set (held by some worker)."""
    r = stack.sync_redis()
    names = []
    for raw in r.hvals("unacked"):
        message = json.loads(raw)[0]
        names.append(message["headers"]["task"])
    return names


async def test_worker_killed_right_after_hammers_every_lot_settles_once(stack, hall):
    _, lots = await hall.live_lots(4, ends_in_s=3600, lot_deposit=2_000, start_price=10_000)
    people = [await user_with_socket(stack, hall) for _ in range(3)]
    for lot in lots:
        price = 10_000
        for api, user, sock in people:  # the last one leads and wins
            assert (await hall.pay_deposit(api, sock, lot["id"], scope="lot"))["state"] == "SUCCESS"
            await sock.join(lot["id"])
            assert (await sock.bid(lot["id"], price))["type"] == "accepted"
            price += 100
    main = await consumers(stack, "cancel_consumer", "money")
    assert main, "the stack's worker did not answer"
    doomed = worker(stack, "faults-doomed")
    try:
        doomed.start()
        await asyncio.get_running_loop().run_in_executor(None, doomed.wait_for_line, "ready.")
        for lot in lots:
            await hammer(hall, lot["id"])
        # SIGKILL as soon as it holds a settlement (running or prefetched).
        await until(lambda: "workers.tasks.settlement.settle_lot" in unacked_tasks(stack),
                    "the doomed worker took a settlement", timeout=30)
        doomed.kill()
        held = unacked_tasks(stack).count("workers.tasks.settlement.settle_lot")
    finally:
        doomed.kill()
        await consumers(stack, "add_consumer", "money", main)

    winner_sock = people[-1][2]
    for lot in lots:
        won = await winner_sock.wait_for(lambda m, lid=lot["id"]: m.get("type") == "won"
                                         and m.get("lot_id") == lid, timeout=RECOVERY_S)
        assert won["order"]["amount"] == 10_200
    for _, user, sock in people[:-1]:
        for lot in lots:
            await sock.wait_for(lambda m, lid=lot["id"]: m.get("type") == "refund"
                                and m.get("lot_id") == lid and m.get("status") == "done",
                                timeout=RECOVERY_S)
    ids = [lot["id"] for lot in lots]
    marks = ",".join("?" * len(ids))
    assert db_rows(stack, f"SELECT COUNT(*) FROM \"order\" WHERE lot_id IN ({marks})",
                   tuple(ids)) == [(len(ids),)]
    assert db_rows(stack, f"SELECT COUNT(*) FROM refund WHERE deposit_id IN (SELECT id FROM "
                          f"deposit WHERE lot_id IN ({marks}))", tuple(ids)) == [(2 * len(ids),)]
    assert {s for (s,) in db_rows(stack, f"SELECT status FROM lot WHERE id IN ({marks})",
                                  tuple(ids))} == {"settled"}
    check_money(stack, [user["id"] for _, user, _ in people])
    assert held >= 1, "the worker finished everything before it was killed: nothing was tested"
    for _, _, sock in people:
        await sock.close()


async def test_twenty_deposits_then_sigkill_every_task_reaches_a_final_state(stack, hall):
    _, (lot,) = await hall.live_lots(1, ends_in_s=3600, lot_deposit=1_000)
    people = [await user_with_socket(stack, hall, balance_fen=50_000) for _ in range(20)]
    main = await consumers(stack, "cancel_consumer", "money")
    assert main
    doomed = worker(stack, "faults-deposits")
    try:
        answers = await asyncio.gather(*(api.post(f"/api/lots/{lot['id']}/deposit",
                                                  {"scope": "lot", "method": "balance"})
                                          for api, _, _ in people))
        task_ids = [a["task_id"] for a in answers]
        doomed.start()
        await until(lambda: "workers.tasks.deposits.pay_deposit" in unacked_tasks(stack),
                    "the doomed worker took a deposit", timeout=60)
        doomed.kill()
    finally:
        doomed.kill()
        await consumers(stack, "add_consumer", "money", main)

    for (api, user, sock), task_id in zip(people, task_ids):
        done = await sock.wait_for(lambda m, t=task_id: m.get("type") == "task"
                                   and m.get("task_id") == t, timeout=RECOVERY_S)
        assert done["state"] == "SUCCESS", done
        status = await api.get(f"/api/tasks/{task_id}")
        assert status["state"] == "SUCCESS"
        assert (await api.get("/api/me"))["balance"] == 49_000  # debited once
    assert db_rows(stack, "SELECT COUNT(*), SUM(amount) FROM deposit WHERE lot_id=? AND "
                          "status='paid'", (lot["id"],)) == [(20, 20_000)]
    check_money(stack, [user["id"] for _, user, _ in people])
    for _, _, sock in people:
        await sock.close()


async def test_a_task_the_broker_lost_is_submitted_again_under_its_id(stack, hall):
    _, (lot,) = await hall.live_lots(1, ends_in_s=3600, lot_deposit=1_000)
    api, user, sock = await user_with_socket(stack, hall, balance_fen=5_000)
    main = await consumers(stack, "cancel_consumer", "money")
    assert main
    r = stack.sync_redis()
    try:
        answer = await api.post(f"/api/lots/{lot['id']}/deposit", {"scope": "lot", "method": "balance"})
        task_id = answer["task_id"]
        # The broker loses it: gone from the queue before any worker held it.
        lost = [m for m in r.lrange("money", 0, -1) if json.loads(m)["headers"]["id"] == task_id]
        assert len(lost) == 1
        assert r.lrem("money", 0, lost[0]) == 1
        assert r.hexists("tasks:outbox", task_id)
    finally:
        await consumers(stack, "add_consumer", "money", main)
    done = await sock.wait_for(lambda m: m.get("type") == "task" and m.get("task_id") == task_id,
                               timeout=RECOVERY_S)
    assert done["state"] == "SUCCESS"
    assert (await api.get("/api/me"))["balance"] == 4_000
    await until(lambda: not r.hexists("tasks:outbox", task_id), "the outbox entry cleared", 30)
    check_money(stack, [user["id"]])
    await sock.close()


async def test_sqlite_held_exclusively_past_the_retry_budget_then_released_the_lot_settles(
        stack, hall):
    _, (lot,) = await hall.live_lots(1, ends_in_s=3600, lot_deposit=2_000, start_price=10_000)
    lot_id = lot["id"]
    (wa, w, w_sock), (la, loser, l_sock) = [await user_with_socket(stack, hall) for _ in range(2)]
    for api, sock, price in ((la, l_sock, 10_000), (wa, w_sock, 10_100)):
        assert (await hall.pay_deposit(api, sock, lot_id, scope="lot"))["state"] == "SUCCESS"
        await sock.join(lot_id)
        assert (await sock.bid(lot_id, price))["type"] == "accepted"
    r = stack.sync_redis()
    r.delete("ops:alerts")
    main = await consumers(stack, "cancel_consumer", "money")
    assert main
    # Short attempts (1 s busy timeout) so the old budget of 8 retries is used
    # up in well under a minute; the alert comes once it has been passed.
    patient = worker(stack, "faults-patient", HALL_DB_BUSY_TIMEOUT_MS="1000",
                     HALL_RETRY_ALERT_AFTER="9")
    lock = sqlite3.connect(stack.env["DATABASE_URL"].removeprefix("sqlite:///"),
                           isolation_level=None, timeout=30)
    try:
        await hammer(hall, lot_id)  # settlement queued; nobody consumes money yet
        lock.execute("BEGIN EXCLUSIVE")
        patient.start()

        def retried_past_budget() -> bool:
            return any(json.loads(a).get("kind") == "task_retrying"
                       and json.loads(a).get("task") == "workers.tasks.settlement.settle_lot"
                       for a in r.lrange("ops:alerts", 0, -1))
        await until(retried_past_budget, "operators alerted of a settlement retrying", 180)
        # Nothing settled while the database was held: no order, the row not `settled`
        # (the hall's deadline sweep may have marked it `closed` before the lock was taken).
        status, orders = db_rows_while_locked(lock, lot_id)
        assert status in ("live", "closed") and orders == 0, (status, orders)
        lock.execute("ROLLBACK")
        won = await w_sock.wait_for(lambda m: m.get("type") == "won" and m.get("lot_id") == lot_id,
                                    timeout=RECOVERY_S)
        assert won["order"]["amount"] == 10_100
        await l_sock.wait_for(lambda m: m.get("type") == "refund" and m.get("lot_id") == lot_id
                              and m.get("status") == "done", timeout=RECOVERY_S)
    finally:
        if lock.in_transaction:
            lock.execute("ROLLBACK")
        lock.close()
        patient.stop()
        await consumers(stack, "add_consumer", "money", main)
    assert db_rows(stack, "SELECT status FROM lot WHERE id=?", (lot_id,)) == [("settled",)]
    assert db_rows(stack, 'SELECT COUNT(*) FROM "order" WHERE lot_id=?', (lot_id,)) == [(1,)]
    check_money(stack, [w["id"], loser["id"]])
    await w_sock.close()
    await l_sock.close()


def db_rows_while_locked(lock: sqlite3.Connection, lot_id: int) -> tuple[str, int]:
    """The lot's status and its orders, read through the connection holding the lock."""
    (status,), = lock.execute("SELECT status FROM lot WHERE id=?", (lot_id,)).fetchall()
    (orders,), = lock.execute('SELECT COUNT(*) FROM "order" WHERE lot_id=?', (lot_id,)).fetchall()
    return status, orders


async def test_a_task_a_live_worker_holds_past_the_visibility_timeout_runs_once(stack, hall):
    """The lease is renewed: a task waiting in a live worker for its countdown
    (longer than the 6 s visibility timeout here) is not handed out again."""
    from celery import Celery
    task_id = f"lease-{uuid.uuid4().hex}"
    client = Celery(broker=stack.redis.url, backend=stack.redis.url)
    loop = asyncio.get_running_loop()
    countdown = 3 * float(stack.env["HALL_VISIBILITY_TIMEOUT_S"])
    await loop.run_in_executor(None, lambda: client.send_task(
        "workers.tasks.settlement.noop", task_id=task_id, countdown=countdown, queue="money"))
    r = stack.sync_redis()

    def held() -> bool:
        return any(json.loads(raw)[0]["headers"]["id"] == task_id for raw in r.hvals("unacked"))
    await until(held, "the worker took the task", 30)
    state = await loop.run_in_executor(
        None, lambda: client.AsyncResult(task_id).get(timeout=countdown + 30))
    assert state == "ok"
    # No copy left anywhere that could still run: not held, not queued.
    await until(lambda: not held(), "the worker acknowledged it", 30)
    assert not any(json.loads(m)["headers"]["id"] == task_id for m in r.lrange("money", 0, -1))
    log = stack.worker.log_path.read_text(errors="replace")
    assert log.count(f"[{task_id}] succeeded") == 1
    client.close()



async def test_a_wechat_payment_whose_notification_never_comes_is_settled_from_a_query(
        stack, hall, wechat_sim):
    from conftest import Api
    _, (lot,) = await hall.live_lots(1, ends_in_s=3600, lot_deposit=3_000)
    api, user, sock = await user_with_socket(stack, hall, balance_fen=0)
    await bind_wechat(wechat_sim, api)  # JSAPI pays with a real openid
    opened = await hall.pay_deposit(api, sock, lot["id"], scope="lot", method="wechat")
    assert opened["state"] == "SUCCESS" and opened["result"]["status"] == "awaiting_payment"
    no = opened["result"]["out_trade_no"]
    mark = len(sock.messages)
    # Paid at the gateway; its notification is lost on the way (never delivered).
    paid = await Api(wechat_sim.url).post("/sim/pay", {"out_trade_no": no, "deliver": False})
    assert paid["order"]["trade_state"] == "SUCCESS"
    dep = await sock.wait_for(lambda m: m.get("type") == "deposit" and m.get("method") == "wechat",
                              start=mark, timeout=RECOVERY_S)
    assert dep["amount"] == 3_000
    assert db_rows(stack, "SELECT status, transaction_id FROM payment WHERE out_trade_no=?",
                   (no,)) == [("paid", paid["order"]["transaction_id"])]
    await sock.join(lot["id"])
    assert (await sock.bid(lot["id"], 1000))["type"] == "accepted"  # the deposit is in force
    check_money(stack, [user["id"]])
    await sock.close()
