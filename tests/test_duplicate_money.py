"""Money nothing wants goes back where it came from, once (issue 12).

A WeChat payment for a deposit or order already paid (by the balance or by
another trade), and the late payment of a trade we had closed, are refunded
through the gateway exactly once, announced to the payer and the operators,
and never touch a balance. A WeChat deposit whose trade the gateway closed is
paid with a fresh trade number.

Real Redis, the real -P eventlet worker, the real hall, the WeChat Pay v3
simulator; every wait is for a socket message or a polled condition with a
deadline.
"""
from __future__ import annotations

import json
import time

from conftest import Api
from test_money import (
    bind_wechat,
    _sim_order,
    balance,
    check_money,
    db_exec,
    db_rows,
    forged_copy,
    post_notification,
    run_task_twice,
    task_result,
    user_with_socket,
    won_order,
)
from workerctl import until


async def sim_refunds(sim, out_trade_no: str) -> list[dict]:
    """The refunds the gateway itself made of one trade."""
    return [r for r in (await Api(sim.url).get("/sim/refunds"))["refunds"]
            if r["out_trade_no"] == out_trade_no]


def alerts(stack, kind: str, **match: object) -> list[dict]:
    listed = [json.loads(a) for a in stack.sync_redis().lrange("ops:alerts", 0, -1)]
    return [a for a in listed if a.get("kind") == kind
            and all(a.get(k) == v for k, v in match.items())]


def refund_rows(stack, out_trade_no: str) -> list[tuple]:
    return db_rows(stack, "SELECT r.id, r.amount, r.reason, r.status, r.out_refund_no "
                          "FROM paymentrefund r JOIN payment p ON p.id = r.payment_id "
                          "WHERE p.out_trade_no = ?", (out_trade_no,))


async def refunded_once(stack, sim, sock, no: str, amount: int, reason: str,
                        start: int) -> dict:
    """Wait for the payer's `payment_refund` done message of trade `no`, then
    check the books: one row, one refund at the gateway, the same number."""
    pending = await sock.wait_for(lambda m: m.get("type") == "payment_refund"
                                  and m.get("out_trade_no") == no, start=start, timeout=30)
    assert pending["status"] == "pending" and pending["reason"] == reason
    assert pending["amount"] == amount and pending["method"] == "wechat"
    done = await sock.wait_for(lambda m: m.get("type") == "payment_refund"
                               and m.get("out_trade_no") == no and m["status"] == "done",
                               start=start, timeout=30)
    assert done["payment_refund_id"] == pending["payment_refund_id"]
    (row,) = refund_rows(stack, no)
    assert row == (pending["payment_refund_id"], amount, reason, "done", f"RP{no}")
    (gw,) = await sim_refunds(sim, no)
    assert gw["out_refund_no"] == f"RP{no}" and gw["amount"]["refund"] == amount
    assert gw["amount"]["total"] == amount
    return done


async def test_deposit_paid_by_balance_then_the_wechat_trade_paid_is_refunded_once(
        stack, hall, wechat_sim):
    """The bidder opens WeChat Pay, pays from the balance instead (the trade
    is closed), and the payment already under way at WeChat goes through."""
    _, (lot,) = await hall.live_lots(1, ends_in_s=3600, deposit=20_000)
    api, user, sock = await user_with_socket(stack, hall, balance_fen=50_000)
    await bind_wechat(wechat_sim, api)  # JSAPI pays with a real openid
    opened = await hall.pay_deposit(api, sock, lot["id"], method="wechat")
    assert opened["result"]["status"] == "awaiting_payment", opened
    no = opened["result"]["out_trade_no"]
    done = await hall.pay_deposit(api, sock, lot["id"])
    assert done["state"] == "SUCCESS" and done["result"]["deposit"]["method"] == "balance", done
    assert (await _sim_order(wechat_sim, no))["trade_state"] == "CLOSED"

    mark = len(sock.messages)
    paid = await Api(wechat_sim.url).post("/sim/pay", {"out_trade_no": no, "after_close": True})
    assert paid["status"] == 200 and paid["order"]["trade_state"] == "SUCCESS", paid
    task = await sock.wait_for(lambda m: m.get("type") == "task"
                               and m.get("kind") == "wechat_payment", start=mark, timeout=30)
    assert task["state"] == "SUCCESS" and task["result"]["status"] == "duplicate", task
    assert task["result"]["payment_refund"]["reason"] == "trade_closed"
    await refunded_once(stack, wechat_sim, sock, no, 20_000, "trade_closed", mark)

    # The deposit stays in force, paid from the balance; the balance is untouched
    # by the refund (the money goes back to WeChat, where it came from).
    assert await balance(api) == 30_000
    (mine,) = (await api.get("/api/me/deposits"))["deposits"]
    assert (mine["method"], mine["status"], mine["duplicate_refunded"]) == ("balance", "paid", 20_000)
    assert (await sock.bid(lot["id"], 1000))["type"] == "accepted"
    assert not [m for m in sock.messages[mark:] if m.get("type") == "deposit"]
    assert db_rows(stack, "SELECT status FROM payment WHERE out_trade_no=?", (no,)) == [("paid",)]
    recorded = alerts(stack, "unmatched_payment", out_trade_no=no)
    assert [(a["action"], a["reason"], a["amount"], a["deposit_id"]) for a in recorded] == [
        ("refund", "trade_closed", 20_000, mine["id"])]
    assert len(alerts(stack, "payment_refunded", out_trade_no=no)) == 1

    # Redelivered: the gateway again (same notification id), a fresh notification
    # of the same payment, and the worker's task twice with one task id.
    again = await Api(wechat_sim.url).post("/sim/pay", {"out_trade_no": no, "after_close": True})
    assert "already handled" in again["body"]
    mark = len(sock.messages)
    body, headers = forged_copy(wechat_sim, await _sim_order(wechat_sim, no))
    assert (await post_notification(stack, body, headers))[0] == 200
    task = await sock.wait_for(lambda m: m.get("type") == "task"
                               and m.get("kind") == "wechat_payment", start=mark, timeout=30)
    assert task["result"]["status"] == "duplicate"
    order = await _sim_order(wechat_sim, no)
    first, second = await run_task_twice(stack, "workers.tasks.deposits.wechat_paid", {
        "out_trade_no": no, "transaction_id": order["transaction_id"], "trade_state": "SUCCESS",
        "total": 20_000})
    assert first["status"] == second["status"] == "duplicate"
    assert len(await sim_refunds(wechat_sim, no)) == 1 and len(refund_rows(stack, no)) == 1
    assert len(alerts(stack, "unmatched_payment", out_trade_no=no)) == 1
    assert await balance(api) == 30_000
    check_money(stack, [user["id"]])
    await sock.close()


async def test_a_second_trade_paid_for_an_order_is_refunded_once(stack, hall, wechat_sim):
    """Two WeChat attempts for one order, both paid: the second goes back."""
    api, user, sock, order = await won_order(stack, hall, price=4_000, lot_deposit=500)
    await bind_wechat(wechat_sim, api)  # JSAPI pays with a real openid
    before = await balance(api)
    trades = []
    for _ in range(2):
        answer = await api.post(f"/api/orders/{order['id']}/pay", {"method": "wechat"})
        prepay = await task_result(sock, answer["task_id"])
        assert prepay["result"]["status"] == "awaiting_payment", prepay
        trades.append(prepay["result"]["out_trade_no"])
    first_no, second_no = trades
    assert first_no != second_no
    mark = len(sock.messages)
    await Api(wechat_sim.url).post("/sim/pay", {"out_trade_no": first_no})
    await sock.wait_for(lambda m: m.get("type") == "order" and m["order"]["status"] == "paid",
                        start=mark, timeout=30)

    mark = len(sock.messages)
    await Api(wechat_sim.url).post("/sim/pay", {"out_trade_no": second_no})
    await refunded_once(stack, wechat_sim, sock, second_no, 3_500, "duplicate", mark)
    assert await sim_refunds(wechat_sim, first_no) == []  # the money that paid stays
    (mine,) = (await api.get("/api/me/orders"))["orders"]
    assert (mine["status"], mine["duplicate_refunded"]) == ("paid", 3_500)
    assert [(a["order_status"], a["amount"]) for a in
            alerts(stack, "unmatched_payment", order_id=order["id"])] == [("paid", 3_500)]

    sim_order = await _sim_order(wechat_sim, second_no)
    first, second = await run_task_twice(stack, "workers.tasks.deposits.wechat_paid", {
        "out_trade_no": second_no, "transaction_id": sim_order["transaction_id"],
        "trade_state": "SUCCESS", "total": 3_500})
    assert first["status"] == second["status"] == "duplicate"
    assert len(await sim_refunds(wechat_sim, second_no)) == 1
    assert len(refund_rows(stack, second_no)) == 1
    assert await balance(api) == before
    check_money(stack, [user["id"]])
    await sock.close()


async def test_a_closed_trade_is_paid_again_with_a_fresh_trade_number(stack, hall, wechat_sim):
    """The payer lets WeChat Pay time out; paying again opens a new trade; the
    old one stays closed, and its money, should it still arrive, goes back."""
    _, (lot,) = await hall.live_lots(1, ends_in_s=3600, lot_deposit=6_000)
    api, user, sock = await user_with_socket(stack, hall, balance_fen=0)
    await bind_wechat(wechat_sim, api)  # JSAPI pays with a real openid
    opened = await hall.pay_deposit(api, sock, lot["id"], scope="lot", method="wechat")
    old = opened["result"]["out_trade_no"]
    expired = await Api(wechat_sim.url).post("/sim/expire", {"out_trade_no": old})
    assert expired["order"]["trade_state"] == "CLOSED"

    again = await hall.pay_deposit(api, sock, lot["id"], scope="lot", method="wechat")
    assert again["state"] == "SUCCESS" and again["result"]["status"] == "awaiting_payment", again
    fresh = again["result"]["out_trade_no"]
    assert fresh != old and again["result"]["amount"] == 6_000
    assert again["result"]["prepay"]["prepay_id"] != opened["result"]["prepay"]["prepay_id"]
    assert db_rows(stack, "SELECT out_trade_no, status FROM payment WHERE user_id=? ORDER BY id",
                   (user["id"],)) == [(old, "closed"), (fresh, "pending")]
    # Asking once more gives the fresh trade's prepay, no third trade.
    third = await hall.pay_deposit(api, sock, lot["id"], scope="lot", method="wechat")
    assert third["result"]["out_trade_no"] == fresh
    # The old trade stays closed at the gateway: the payer cannot pay it.
    code, answer = await Api(wechat_sim.url).call("POST", "/sim/pay", {"out_trade_no": old})
    assert (code, answer["code"]) == (400, "ORDER_CLOSED")

    mark = len(sock.messages)
    await Api(wechat_sim.url).post("/sim/pay", {"out_trade_no": fresh})
    dep = await sock.wait_for(lambda m: m.get("type") == "deposit", start=mark, timeout=30)
    assert (dep["scope"], dep["method"], dep["amount"]) == ("lot", "wechat", 6_000)
    assert (await sock.bid(lot["id"], 1000))["type"] == "accepted"

    # The old trade's payment arrives after all: that is the duplicate.
    mark = len(sock.messages)
    await Api(wechat_sim.url).post("/sim/pay", {"out_trade_no": old, "after_close": True})
    await refunded_once(stack, wechat_sim, sock, old, 6_000, "trade_closed", mark)
    assert await sim_refunds(wechat_sim, fresh) == []
    (mine,) = (await api.get("/api/me/deposits"))["deposits"]
    assert (mine["method"], mine["status"], mine["duplicate_refunded"]) == ("wechat", "paid", 6_000)
    assert await balance(api) == 0
    check_money(stack, [user["id"]])
    await sock.close()


async def test_a_refund_the_gateway_does_not_answer_is_sent_by_the_money_sweep(
        stack, hall, wechat_sim):
    """The gateway fails every refund call for a while: the row stays pending,
    the money sweep re-queues it, and once the gateway answers it is refunded,
    once."""
    api, user, sock, order = await won_order(stack, hall, price=3_000, lot_deposit=500)
    await bind_wechat(wechat_sim, api)  # JSAPI pays with a real openid
    trades = []
    for _ in range(2):
        answer = await api.post(f"/api/orders/{order['id']}/pay", {"method": "wechat"})
        trades.append((await task_result(sock, answer["task_id"]))["result"]["out_trade_no"])
    mark = len(sock.messages)
    await Api(wechat_sim.url).post("/sim/pay", {"out_trade_no": trades[0]})
    await sock.wait_for(lambda m: m.get("type") == "order" and m["order"]["status"] == "paid",
                        start=mark, timeout=30)

    await Api(wechat_sim.url).post("/sim/fail", {"status": 500, "count": 100_000})
    try:
        mark = len(sock.messages)
        await Api(wechat_sim.url).post("/sim/pay", {"out_trade_no": trades[1]})
        pending = await sock.wait_for(lambda m: m.get("type") == "payment_refund",
                                      start=mark, timeout=30)
        rid = pending["payment_refund_id"]
        # As if it had been stuck for minutes: the sweep looks at rows older than 60 s.
        assert db_exec(stack, "UPDATE paymentrefund SET created_at_ms = ? WHERE id = ?",
                       (int(time.time() * 1000) - 120_000, rid)) == 1
        r = stack.sync_redis()
        await until(lambda: r.exists(f"payrefund:retry:{rid}"), "the sweep re-queued it")
        assert refund_rows(stack, trades[1])[0][3] == "pending"
        assert await sim_refunds(wechat_sim, trades[1]) == []
    finally:
        await Api(wechat_sim.url).post("/sim/fail", {"clear": True})
    await refunded_once(stack, wechat_sim, sock, trades[1], 2_500, "duplicate", mark)
    check_money(stack, [user["id"]])
    await sock.close()
