"""Money end to end: deposits (balance, WeChat Pay through the simulator),
settlement and refunds, order payment with coupons, forfeiture, history.

Real Redis, real eventlet worker, real hall, real WeChat Pay simulator; every
wait is for a socket message, a task state or a pub/sub message.
"""
from __future__ import annotations

import asyncio
import json
import sqlite3
import time
import uuid
from typing import Any

import redis.asyncio as aioredis
from conftest import Api, Socket

# -- helpers ---------------------------------------------------------------------


def db_rows(stack, sql: str, args: tuple = ()) -> list[tuple]:
    path = stack.env["DATABASE_URL"].split("sqlite:///", 1)[1]
    con = sqlite3.connect(path, timeout=30)
    try:
        with con:
            return con.execute(sql, args).fetchall()
    finally:
        con.close()


def db_exec(stack, sql: str, args: tuple = ()) -> int:
    path = stack.env["DATABASE_URL"].split("sqlite:///", 1)[1]
    con = sqlite3.connect(path, timeout=30)
    try:
        with con:
            return con.execute(sql, args).rowcount
    finally:
        con.close()


def check_money(stack, user_ids: list[int]) -> None:
    """The books balance: globally and per user; every deposit accounted for."""
    # Both sums in one statement, so one snapshot: work left over from an earlier
    # test (a refund, a settlement) may commit between two separate reads.
    (ledger, balances), = db_rows(stack, "SELECT (SELECT COALESCE(SUM(amount), 0) FROM ledgerentry), "
                                         '(SELECT COALESCE(SUM(balance), 0) FROM "user")')
    assert ledger == balances
    for uid in user_ids:
        (lsum, bal), = db_rows(stack, "SELECT (SELECT COALESCE(SUM(amount), 0) FROM ledgerentry "
                                      'WHERE user_id=?), (SELECT balance FROM "user" WHERE id=?)',
                               (uid, uid))
        assert lsum == bal, uid
        deposits = db_rows(stack, "SELECT id, amount, status, credited, credited_to FROM deposit "
                                  "WHERE user_id=?", (uid,))
        for did, amount, status, credited, credited_to in deposits:
            refunds = db_rows(stack, "SELECT amount FROM refund WHERE deposit_id=?", (did,))
            refunded = sum(r[0] for r in refunds)
            assert len(refunds) <= 1
            if status in ("pending", "paid"):
                assert refunded == 0 and credited == 0
            elif status == "refunded":
                assert refunded == amount and credited == 0
            else:  # credited / forfeited
                assert credited_to is not None and credited + refunded == amount, (did, status)
        for oid, amount, premium, credited, due, status in db_rows(
                stack, 'SELECT id, amount, premium, deposit_credited, due, status FROM "order" '
                       "WHERE user_id=?", (uid,)):
            (dsum,), = db_rows(stack, "SELECT COALESCE(SUM(credited), 0) FROM deposit "
                                      "WHERE credited_to=?", (oid,))
            assert dsum == credited and amount + premium - credited == due, oid


async def task_result(sock: Socket, task_id: str) -> dict:
    return await sock.wait_for(lambda m: m.get("type") == "task" and m.get("task_id") == task_id,
                               timeout=30)


async def balance(api: Api) -> int:
    return (await api.get("/api/me"))["balance"]


async def user_with_socket(stack, hall, balance_fen: int = 1_000_000) -> tuple[Api, dict, Socket]:
    api, user = await hall.bidder(balance=balance_fen)
    sock = await Socket.connect(stack.ws_url, api.token)
    return api, user, sock


async def bind_wechat(sim, api: Api) -> dict:
    """Bind the user's WeChat account the way the mini-program does: wx.login's
    code (from the simulator, for this one person) to POST /api/me/wechat; the
    openid is the simulator's, never one a test makes up. Binding again is fine."""
    me = await api.get("/api/me")
    code = (await Api(sim.url).post("/sim/wx/login", {"user": f"hall-user-{me['id']}"}))["code"]
    answer = await api.post("/api/me/wechat", {"code": code})
    assert answer["bound"]["miniprogram"] is True, answer
    return answer


async def wechat_deposit(hall, sim, api: Api, sock: Socket, lot_id: int, scope: str) -> dict:
    """Pay a deposit by WeChat Pay: prepay task, the payer pays at the gateway,
    the signed notification reaches the hall, the worker puts it in force."""
    await bind_wechat(sim, api)  # JSAPI (the default scene) pays with a real openid
    done = await hall.pay_deposit(api, sock, lot_id, scope=scope, method="wechat")
    assert done["state"] == "SUCCESS", done
    result = done["result"]
    assert result["status"] == "awaiting_payment"
    assert {"appId", "timeStamp", "nonceStr", "package", "signType", "paySign",
            "prepay_id"} <= set(result["prepay"])
    mark = len(sock.messages)
    paid = await Api(sim.url).post("/sim/pay", {"out_trade_no": result["out_trade_no"]})
    assert paid["status"] == 200, paid
    dep = await sock.wait_for(lambda m: m.get("type") == "deposit" and m.get("scope") == scope
                              and m.get("method") == "wechat", start=mark, timeout=30)
    assert dep["amount"] == result["amount"]
    return result


async def hammer(hall, lot_id: int) -> None:
    await hall.operator.post(f"/api/admin/lots/{lot_id}/hammer")


async def post_notification(stack, body: bytes, headers: dict) -> tuple[int, Any]:
    api = Api(stack.base)
    return await api.call("POST", "/api/pay/wechat/notify", raw=body, headers=headers)


def forged_copy(sim, order: dict, **changes: Any) -> tuple[bytes, dict]:
    """A notification the platform key really signs (as if the gateway sent it)."""
    fake = {**order, "trade_state": "SUCCESS",
            "transaction_id": order.get("transaction_id") or "4200" + "7" * 24,
            "success_time": order.get("success_time") or "2026-01-01T00:00:00+08:00",
            "notification_id": str(uuid.uuid4()), **changes}
    return sim.gateway.notification(fake)


# -- 1. deposit by balance: insufficient balance changes nothing -----------------


async def test_insufficient_balance_changes_nothing(stack, hall):
    _, (lot,) = await hall.live_lots(1, ends_in_s=3600, lot_deposit=5_000)
    api, user, sock = await user_with_socket(stack, hall, balance_fen=4_999)
    done = await hall.pay_deposit(api, sock, lot["id"], scope="lot")
    assert done["state"] == "FAILURE" and done["error"]["code"] == "insufficient_balance"
    assert (await api.get(f"/api/tasks/{done['task_id']}"))["state"] == "FAILURE"
    assert await balance(api) == 4_999
    assert db_rows(stack, "SELECT COUNT(*) FROM deposit WHERE user_id=?", (user["id"],)) == [(0,)]
    page = await api.get(f"/api/lots/{lot['id']}/deposit")
    assert page["paid"] is False and page["balance"] == 4_999
    assert (await sock.bid(lot["id"], 1000))["code"] == "no_deposit"
    mine = await api.get("/api/me/deposits")
    assert mine["deposits"] == [] and mine["refunds"] == []
    check_money(stack, [user["id"]])
    await sock.close()


# -- 2. deposit by WeChat Pay -------------------------------------------------------


async def test_wechat_deposit_end_to_end(stack, hall, wechat_sim):
    _, (lot,) = await hall.live_lots(1, ends_in_s=3600, deposit=20_000)
    api, user, sock = await user_with_socket(stack, hall, balance_fen=0)
    await bind_wechat(wechat_sim, api)  # JSAPI pays with a real openid
    result = await wechat_deposit(hall, wechat_sim, api, sock, lot["id"], "session")
    no = result["out_trade_no"]
    assert result["amount"] == 20_000
    # The deposit is in force: bidding is open to this user; no balance moved.
    assert (await sock.bid(lot["id"], 1000))["type"] == "accepted"
    assert await balance(api) == 0
    page = await api.get(f"/api/lots/{lot['id']}/deposit")
    assert page["paid"] is True
    before = db_rows(stack, "SELECT id, status, amount FROM deposit WHERE user_id=?", (user["id"],))
    assert [r[1:] for r in before] == [("paid", 20_000)]
    payments = db_rows(stack, "SELECT status, transaction_id FROM payment WHERE out_trade_no=?", (no,))
    assert payments[0][0] == "paid" and payments[0][1].startswith("4200")

    order = {o["out_trade_no"]: o for o in
             (await Api(wechat_sim.url).get("/sim/orders"))["orders"]}[no]
    # Replays: WeChat re-delivering (same notification id), the exact bytes
    # twice, and the gateway re-delivering on its own: all answered, none applied.
    again = await Api(wechat_sim.url).post("/sim/pay", {"out_trade_no": no})
    assert again["status"] == 200 and "already handled" in again["body"]
    body, headers = wechat_sim.gateway.notification(order)
    for _ in range(2):
        code, answer = await post_notification(stack, body, headers)
        assert code == 200 and answer["code"] == "SUCCESS"

    # Forged: a changed body under the gateway's signature, and a stranger's key.
    envelope = json.loads(body)
    envelope["id"] = str(uuid.uuid4())
    code, answer = await post_notification(stack, json.dumps(envelope).encode(), headers)
    assert code == 401 and answer["code"] == "unauthorized"
    code, _ = await post_notification(stack, body, {**headers, "Wechatpay-Signature": "Zm9yZ2Vk"})
    assert code == 401

    # The worker is idempotent too: the same payment notified afresh (new id,
    # new nonce) is applied once only.
    mark = len(sock.messages)
    body2, headers2 = forged_copy(wechat_sim, order)
    code, _ = await post_notification(stack, body2, headers2)
    assert code == 200
    done = await sock.wait_for(lambda m: m.get("type") == "task" and m.get("kind") == "wechat_payment",
                               start=mark, timeout=30)
    assert done["state"] == "SUCCESS" and done["result"]["status"] == "already_paid"
    after = db_rows(stack, "SELECT id, status, amount FROM deposit WHERE user_id=?", (user["id"],))
    assert after == before and await balance(api) == 0
    assert db_rows(stack, "SELECT COUNT(*) FROM payment WHERE user_id=?", (user["id"],)) == [(1,)]
    check_money(stack, [user["id"]])
    await sock.close()


async def test_wechat_amount_mismatch_changes_nothing(stack, hall, wechat_sim):
    _, (lot,) = await hall.live_lots(1, ends_in_s=3600, lot_deposit=7_000)
    api, user, sock = await user_with_socket(stack, hall, balance_fen=0)
    await bind_wechat(wechat_sim, api)  # JSAPI pays with a real openid
    done = await hall.pay_deposit(api, sock, lot["id"], scope="lot", method="wechat")
    assert done["state"] == "SUCCESS" and done["result"]["status"] == "awaiting_payment"
    no = done["result"]["out_trade_no"]
    order = {o["out_trade_no"]: o for o in
             (await Api(wechat_sim.url).get("/sim/orders"))["orders"]}[no]
    mark = len(sock.messages)
    body, headers = forged_copy(wechat_sim, order, total=order["total"] - 1)
    code, _ = await post_notification(stack, body, headers)
    assert code == 200  # authentic, so acknowledged; the worker refuses to apply it
    failed = await sock.wait_for(lambda m: m.get("type") == "task"
                                 and m.get("kind") == "wechat_payment", start=mark, timeout=30)
    assert failed["state"] == "FAILURE" and failed["error"]["code"] == "invalid"
    assert db_rows(stack, "SELECT status FROM deposit WHERE user_id=?", (user["id"],)) == [("pending",)]
    assert db_rows(stack, "SELECT status FROM payment WHERE out_trade_no=?", (no,)) == [("pending",)]
    assert (await sock.bid(lot["id"], 1000, ref=uuid.uuid4().hex))["code"] == "no_deposit"
    assert not sock.of_type("deposit")
    # Asking to pay again while the payment is open gives the same payment.
    again = await hall.pay_deposit(api, sock, lot["id"], scope="lot", method="wechat")
    assert again["result"]["out_trade_no"] == no
    assert again["result"]["prepay"]["prepay_id"] == done["result"]["prepay"]["prepay_id"]
    # Paying by balance meanwhile, with no balance, is refused and leaves the
    # WeChat payment open (see the balance-instead test for the switch).
    bal = await hall.pay_deposit(api, sock, lot["id"], scope="lot", method="balance")
    assert bal["state"] == "FAILURE" and bal["error"]["code"] == "insufficient_balance"
    # The real payment then goes through.
    mark = len(sock.messages)
    await Api(wechat_sim.url).post("/sim/pay", {"out_trade_no": no})
    await sock.wait_for(lambda m: m.get("type") == "deposit", start=mark, timeout=30)
    assert db_rows(stack, "SELECT status FROM deposit WHERE user_id=?", (user["id"],)) == [("paid",)]
    check_money(stack, [user["id"]])
    await sock.close()


# -- 3. settlement: orders, credits, refunds the way they came --------------------


async def _sim_order(sim, no: str) -> dict:
    return {o["out_trade_no"]: o for o in (await Api(sim.url).get("/sim/orders"))["orders"]}[no]


async def test_an_open_wechat_deposit_can_be_paid_by_balance_instead(stack, hall, wechat_sim):
    """The bidder opens WeChat Pay, leaves it, and pays from the balance."""
    _, (lot,) = await hall.live_lots(1, ends_in_s=3600, deposit=20_000)
    api, user, sock = await user_with_socket(stack, hall, balance_fen=15_000)
    await bind_wechat(wechat_sim, api)  # JSAPI pays with a real openid
    opened = await hall.pay_deposit(api, sock, lot["id"], method="wechat")
    assert opened["result"]["status"] == "awaiting_payment", opened
    no = opened["result"]["out_trade_no"]

    # Short of balance: refused, and WeChat Pay stays open.
    short = await hall.pay_deposit(api, sock, lot["id"])
    assert short["state"] == "FAILURE" and short["error"]["code"] == "insufficient_balance"
    assert (await _sim_order(wechat_sim, no))["trade_state"] == "NOTPAY"

    await hall.operator.post(f"/api/admin/users/{user['id']}/credit", {"amount": 10_000})
    done = await hall.pay_deposit(api, sock, lot["id"])
    assert done["state"] == "SUCCESS" and done["result"]["status"] == "paid", done
    assert done["result"]["deposit"]["method"] == "balance"
    assert await balance(api) == 5_000
    assert (await sock.bid(lot["id"], 1000))["type"] == "accepted"
    # The WeChat order was closed at the gateway: the payer cannot pay it now,
    # and a forged "paid" notification for it moves no money.
    assert (await _sim_order(wechat_sim, no))["trade_state"] == "CLOSED"
    code, answer = await Api(wechat_sim.url).call("POST", "/sim/pay", {"out_trade_no": no})
    assert code == 400 and answer["code"] == "ORDER_CLOSED"
    body, headers = forged_copy(wechat_sim, await _sim_order(wechat_sim, no))
    assert (await post_notification(stack, body, headers))[0] == 200
    assert db_rows(stack, "SELECT status FROM payment WHERE out_trade_no=?", (no,)) == [("closed",)]
    assert db_rows(stack, "SELECT method, status, amount FROM deposit WHERE user_id=?",
                   (user["id"],)) == [("balance", "paid", 20_000)]
    assert await balance(api) == 5_000
    check_money(stack, [user["id"]])
    await sock.close()


async def test_balance_payment_after_an_unnotified_wechat_payment_keeps_the_wechat_one(
        stack, hall, wechat_sim):
    """Paid at the gateway, notification not here yet: the WeChat money counts."""
    _, (lot,) = await hall.live_lots(1, ends_in_s=3600, deposit=20_000)
    api, user, sock = await user_with_socket(stack, hall, balance_fen=50_000)
    await bind_wechat(wechat_sim, api)  # JSAPI pays with a real openid
    opened = await hall.pay_deposit(api, sock, lot["id"], method="wechat")
    no = opened["result"]["out_trade_no"]
    paid = await Api(wechat_sim.url).post("/sim/pay", {"out_trade_no": no, "deliver": False})
    assert paid["order"]["trade_state"] == "SUCCESS"

    again = await hall.pay_deposit(api, sock, lot["id"])
    assert again["state"] == "FAILURE" and again["error"]["code"] == "already_paid", again
    assert await balance(api) == 50_000
    assert db_rows(stack, "SELECT method, status FROM deposit WHERE user_id=?",
                   (user["id"],)) == [("wechat", "paid")]
    assert (await sock.bid(lot["id"], 1000))["type"] == "accepted"
    check_money(stack, [user["id"]])
    await sock.close()


async def test_settlement_orders_and_refunds(stack, hall, wechat_sim):
    _, (l1, l2) = await hall.live_lots(2, ends_in_s=3600, deposit=10_000, lot_deposit=5_000,
                                             buyer_premium_bp=1000)
    w_api, w, w_sock = await user_with_socket(stack, hall)  # wins L1 (lot deposit > due)
    a_api, a, a_sock = await user_with_socket(stack, hall)  # loses L1 (balance deposit)
    b_api, b, b_sock = await user_with_socket(stack, hall)  # loses L1 (WeChat deposit)
    c_api, c, c_sock = await user_with_socket(stack, hall)  # wins L2, WeChat session deposit
    d_api, d, d_sock = await user_with_socket(stack, hall)  # loses L2, balance session deposit
    users = [w, a, b, c, d]
    for api, sock in ((w_api, w_sock), (a_api, a_sock)):
        assert (await hall.pay_deposit(api, sock, l1["id"], scope="lot"))["state"] == "SUCCESS"
    b_pay = await wechat_deposit(hall, wechat_sim, b_api, b_sock, l1["id"], "lot")
    c_pay = await wechat_deposit(hall, wechat_sim, c_api, c_sock, l2["id"], "session")
    assert (await hall.pay_deposit(d_api, d_sock, l2["id"], scope="session"))["state"] == "SUCCESS"

    for sock, lot_id in ((a_sock, l1), (b_sock, l1), (w_sock, l1), (d_sock, l2), (c_sock, l2)):
        await sock.join(lot_id["id"])
    assert (await a_sock.bid(l1["id"], 1000))["type"] == "accepted"
    assert (await b_sock.bid(l1["id"], 1100))["type"] == "accepted"
    assert (await w_sock.bid(l1["id"], 3000))["type"] == "accepted"
    assert (await d_sock.bid(l2["id"], 1000))["type"] == "accepted"
    assert (await c_sock.bid(l2["id"], 2000))["type"] == "accepted"

    await hammer(hall, l1["id"])
    won = await w_sock.wait_for(lambda m: m.get("type") == "won", timeout=30)
    # 3,000 + 10 % premium = 3,300 due; the 5,000 deposit pays it all and 1,700 comes back.
    assert won["order"]["amount"] == 3000 and won["order"]["premium"] == 300
    assert won["order"]["deposit_credited"] == 3300 and won["order"]["due"] == 0
    assert won["order"]["status"] == "paid"
    w_refund = await w_sock.wait_for(lambda m: m.get("type") == "refund", timeout=30)
    assert w_refund["amount"] == 1700 and w_refund["method"] == "balance"
    a_refund = await a_sock.wait_for(lambda m: m.get("type") == "refund", timeout=30)
    assert a_refund["amount"] == 5000 and a_refund["status"] == "done"
    b_done = await b_sock.wait_for(lambda m: m.get("type") == "refund" and m["status"] == "done",
                                   timeout=30)
    assert b_done["amount"] == 5000 and b_done["method"] == "wechat"
    assert await balance(a_api) == 1_000_000
    assert await balance(w_api) == 1_000_000 - 3300

    # The session has one more lot: session deposits wait for it.
    assert not c_sock.of_type("refund") and not d_sock.of_type("refund")
    await hammer(hall, l2["id"])
    c_won = await c_sock.wait_for(lambda m: m.get("type") == "won", timeout=30)
    assert c_won["order"]["due"] == 2200
    # The session deposit (10,000) pays the 2,200 due; 7,800 goes back to WeChat.
    c_done = await c_sock.wait_for(lambda m: m.get("type") == "refund" and m["status"] == "done",
                                   timeout=30)
    assert c_done["amount"] == 7800 and c_done["scope"] == "session"
    d_refund = await d_sock.wait_for(lambda m: m.get("type") == "refund", timeout=30)
    assert d_refund["amount"] == 10_000 and d_refund["scope"] == "session"
    assert await balance(d_api) == 1_000_000
    c_orders = (await c_api.get("/api/me/orders"))["orders"]
    assert [(o["amount"], o["deposit_credited"], o["due"], o["status"]) for o in c_orders] == [
        (2000, 2200, 0, "paid")]

    # The gateway saw exactly one refund per WeChat deposit, of the right amount.
    gw = (await Api(wechat_sim.url).get("/sim/refunds"))["refunds"]
    mine = {r["out_trade_no"]: r["amount"]["refund"] for r in gw
            if r["out_trade_no"] in (b_pay["out_trade_no"], c_pay["out_trade_no"])}
    assert mine == {b_pay["out_trade_no"]: 5000, c_pay["out_trade_no"]: 7800}
    assert len([r for r in gw if r["out_trade_no"] in mine]) == 2

    # History.
    b_hist = await b_api.get("/api/me/deposits")
    assert [(d_["scope"], d_["status"]) for d_ in b_hist["deposits"]] == [("lot", "refunded")]
    assert [(r["amount"], r["method"], r["status"]) for r in b_hist["refunds"]] == [
        (5000, "wechat", "done")]
    w_hist = await w_api.get("/api/me/deposits")
    assert [(d_["status"], d_["credited"]) for d_ in w_hist["deposits"]] == [("credited", 3300)]
    assert [r["amount"] for r in w_hist["refunds"]] == [1700]
    assert [e["kind"] for e in w_hist["ledger"]][:2] == ["refund", "deposit"]

    # Settling again changes nothing.
    snapshot = db_rows(stack, "SELECT id, user_id, amount, status FROM refund ORDER BY id")
    for lot in (l1, l2):
        await settle_again(stack, lot["id"])
    assert db_rows(stack, "SELECT id, user_id, amount, status FROM refund ORDER BY id") == snapshot
    check_money(stack, [u["id"] for u in users])
    for s in (w_sock, a_sock, b_sock, c_sock, d_sock):
        await s.close()


async def settle_again(stack, lot_id: int) -> None:
    """Queue another settlement of an already settled lot and wait for it."""
    from celery import Celery
    celery = Celery(broker=stack.redis.url, backend=stack.redis.url)
    result = celery.send_task("workers.tasks.settlement.settle_lot", kwargs={"lot_id": lot_id},
                              queue="money")
    loop = asyncio.get_running_loop()
    out = await loop.run_in_executor(None, lambda: result.get(timeout=30))
    assert out["settled"] is True


# -- 4. order payment: balance, WeChat Pay, coupons --------------------------------


async def won_order(stack, hall, price: int = 10_000, lot_deposit: int = 500,
                    balance_fen: int = 1_000_000) -> tuple[Api, dict, Socket, dict]:
    """A user who has just won a lot (lot deposit credited) and its unpaid order."""
    _, (lot,) = await hall.live_lots(1, ends_in_s=3600, lot_deposit=lot_deposit,
                                     start_price=price)
    api, user, sock = await user_with_socket(stack, hall, balance_fen=balance_fen)
    assert (await hall.pay_deposit(api, sock, lot["id"], scope="lot"))["state"] == "SUCCESS"
    await sock.join(lot["id"])
    assert (await sock.bid(lot["id"], price))["type"] == "accepted"
    await hammer(hall, lot["id"])
    won = await sock.wait_for(lambda m: m.get("type") == "won", timeout=30)
    order = won["order"]
    assert order["status"] == "unpaid" and order["due"] == price - lot_deposit
    return api, user, sock, order


def add_coupon(stack, user_id: int, kind: str, value: int, min_spend: int = 0,
               expires_in_ms: int = 3_600_000, used: bool = False) -> int:
    now = int(time.time() * 1000)
    path = stack.env["DATABASE_URL"].split("sqlite:///", 1)[1]
    con = sqlite3.connect(path, timeout=30)
    try:
        with con:
            cur = con.execute("INSERT INTO coupon (user_id, kind, value, min_spend, expires_at_ms, "
                              "used_at_ms) VALUES (?, ?, ?, ?, ?, ?)",
                              (user_id, kind, value, min_spend, now + expires_in_ms,
                               now - 1000 if used else None))
            return cur.lastrowid
    finally:
        con.close()


async def test_order_pay_by_balance_with_coupons(stack, hall):
    api, user, sock, order = await won_order(stack, hall)
    _, other, other_sock = await user_with_socket(stack, hall)
    bad = {
        "expired": (add_coupon(stack, user["id"], "fixed", 1000, expires_in_ms=-1000), 409, "conflict"),
        "used": (add_coupon(stack, user["id"], "fixed", 1000, used=True), 409, "conflict"),
        "someone else's": (add_coupon(stack, other["id"], "fixed", 1000), 404, "not_found"),
        "below min spend": (add_coupon(stack, user["id"], "percent", 50, min_spend=10_001),
                            409, "conflict"),
        "no such coupon": (987_654_321, 404, "not_found"),
    }
    before = await balance(api)
    for why, (cid, status, code) in bad.items():
        got, body = await api.call("POST", f"/api/orders/{order['id']}/pay",
                                   {"method": "balance", "coupon_id": cid})
        assert (got, body["code"]) == (status, code), why
    for bad_body in ({"method": "balance", "coupon_id": "1"}, {"method": "balance", "coupon_id": 0},
                     {"method": "cash"}):
        got, body = await api.call("POST", f"/api/orders/{order['id']}/pay", bad_body)
        assert (got, body["code"]) == (400, "invalid"), bad_body
    assert await balance(api) == before
    assert (await api.get("/api/me/orders"))["orders"][0]["status"] == "unpaid"

    # A good 10 % coupon (min spend 10,000 = the hammer price): 9,500 - 950.
    good = add_coupon(stack, user["id"], "percent", 10, min_spend=10_000)
    answer = await api.post(f"/api/orders/{order['id']}/pay", {"method": "balance", "coupon_id": good})
    done = await task_result(sock, answer["task_id"])
    assert done["state"] == "SUCCESS" and done["kind"] == "order_payment", done
    assert done["result"]["paid"] == 8550
    assert await balance(api) == before - 8550
    assert (await api.get(f"/api/tasks/{answer['task_id']}"))["state"] == "SUCCESS"
    mine = (await api.get("/api/me/orders"))["orders"]
    assert [(o["status"], o["coupon_id"]) for o in mine] == [("paid", good)]
    assert db_rows(stack, "SELECT used_at_ms IS NOT NULL FROM coupon WHERE id=?", (good,)) == [(1,)]
    # Paid: paying again is refused and moves nothing.
    got, body = await api.call("POST", f"/api/orders/{order['id']}/pay", {"method": "balance"})
    assert (got, body["code"]) == (409, "already_paid")
    # The coupon is single use: not on another order either.
    api2_order = await won_order_for(stack, hall, api, sock, user)
    got, body = await api.call("POST", f"/api/orders/{api2_order['id']}/pay",
                               {"method": "balance", "coupon_id": good})
    assert (got, body["code"]) == (409, "conflict")
    # Insufficient balance: the task fails and nothing moves.
    left = await balance(api)
    db_exec(stack, 'UPDATE "user" SET balance = 0 WHERE id=?', (user["id"],))
    db_exec(stack, "INSERT INTO ledgerentry (user_id, amount, balance_after, kind, ref, memo, "
                   "created_at_ms) VALUES (?, ?, 0, 'credit', ?, 'test: empty the balance', ?)",
            (user["id"], -left, f"test:{uuid.uuid4()}", int(time.time() * 1000)))
    answer = await api.post(f"/api/orders/{api2_order['id']}/pay", {"method": "balance"})
    done = await task_result(sock, answer["task_id"])
    assert done["state"] == "FAILURE" and done["error"]["code"] == "insufficient_balance"
    assert (await api.get("/api/me/orders"))["orders"][1]["status"] == "unpaid"
    check_money(stack, [user["id"], other["id"]])
    await sock.close()
    await other_sock.close()


async def won_order_for(stack, hall, api: Api, sock: Socket, user: dict,
                        price: int = 5_000) -> dict:
    _, (lot,) = await hall.live_lots(1, ends_in_s=3600, lot_deposit=100, start_price=price)
    assert (await hall.pay_deposit(api, sock, lot["id"], scope="lot"))["state"] == "SUCCESS"
    await sock.join(lot["id"])
    assert (await sock.bid(lot["id"], price))["type"] == "accepted"
    mark = len(sock.messages)
    await hammer(hall, lot["id"])
    won = await sock.wait_for(lambda m: m.get("type") == "won" and m["lot_id"] == lot["id"],
                              start=mark, timeout=30)
    return won["order"]


async def test_order_pay_by_wechat_with_coupon(stack, hall, wechat_sim):
    api, user, sock, order = await won_order(stack, hall, price=20_000, lot_deposit=1_000)
    await bind_wechat(wechat_sim, api)  # JSAPI pays with a real openid
    before = await balance(api)
    coupon = add_coupon(stack, user["id"], "fixed", 3_000, min_spend=20_000)
    answer = await api.post(f"/api/orders/{order['id']}/pay", {"method": "wechat",
                                                                "coupon_id": coupon})
    done = await task_result(sock, answer["task_id"])
    assert done["state"] == "SUCCESS", done
    result = done["result"]
    assert result["status"] == "awaiting_payment" and result["amount"] == 19_000 - 3_000
    assert result["prepay"]["package"].startswith("prepay_id=")
    # Reserved for this order: not usable elsewhere meanwhile; the order is still unpaid.
    assert (await api.get("/api/me/orders"))["orders"][0]["status"] == "unpaid"
    mark = len(sock.messages)
    paid = await Api(wechat_sim.url).post("/sim/pay", {"out_trade_no": result["out_trade_no"]})
    assert paid["status"] == 200
    msg = await sock.wait_for(lambda m: m.get("type") == "order"
                              and m["order"]["status"] == "paid", start=mark, timeout=30)
    assert msg["order"]["id"] == order["id"]
    assert await balance(api) == before  # WeChat paid it, not the balance
    orders = (await api.get("/api/me/orders"))["orders"]
    assert [(o["status"], o["coupon_id"]) for o in orders] == [("paid", coupon)]
    # A replay (the gateway re-delivering) changes nothing.
    again = await Api(wechat_sim.url).post("/sim/pay", {"out_trade_no": result["out_trade_no"]})
    assert "already handled" in again["body"]
    got, body = await api.call("POST", f"/api/orders/{order['id']}/pay", {"method": "wechat"})
    assert (got, body["code"]) == (409, "already_paid")
    check_money(stack, [user["id"]])
    await sock.close()


# -- 5. forfeiture (悔拍) ------------------------------------------------------------


async def test_unpaid_order_is_forfeited(stack, hall):
    api, user, sock, order = await won_order(stack, hall, price=8_000, lot_deposit=2_000)
    before = await balance(api)
    r = aioredis.from_url(stack.redis.url, decode_responses=True)
    pubsub = r.pubsub()
    await pubsub.subscribe("ops")
    # Past its pay-by time (instead of waiting 72 h): the money sweep forfeits it.
    mark = len(sock.messages)
    assert db_exec(stack, 'UPDATE "order" SET pay_by_ms = ? WHERE id = ?',
                   (int(time.time() * 1000) - 1000, order["id"])) == 1
    msg = await sock.wait_for(lambda m: m.get("type") == "order"
                              and m["order"]["status"] == "forfeited", start=mark, timeout=30)
    assert msg["order"]["id"] == order["id"] and msg["forfeited_deposit"] == 2_000

    async def alert() -> dict:
        async for m in pubsub.listen():
            if m["type"] == "message":
                data = json.loads(m["data"])
                if data.get("kind") == "order_forfeited" and data["order_id"] == order["id"]:
                    return data
    published = await asyncio.wait_for(alert(), 30)
    assert published["deposit_forfeited"] == 2_000 and published["user_id"] == user["id"]
    listed = [json.loads(x) for x in await r.lrange("ops:alerts", 0, -1)]
    assert any(a.get("order_id") == order["id"] and a["kind"] == "order_forfeited" for a in listed)
    await pubsub.unsubscribe("ops")
    await pubsub.aclose()
    await r.aclose()

    assert (await api.get("/api/me/orders"))["orders"][0]["status"] == "forfeited"
    deps = (await api.get("/api/me/deposits"))["deposits"]
    assert [(d["status"], d["credited"], d["credited_to"]) for d in deps] == [
        ("forfeited", 2_000, order["id"])]
    assert (await api.get("/api/me/deposits"))["refunds"] == []
    assert await balance(api) == before  # the deposit is not refunded
    got, body = await api.call("POST", f"/api/orders/{order['id']}/pay", {"method": "balance"})
    assert (got, body["code"]) == (409, "conflict")
    check_money(stack, [user["id"]])
    await sock.close()


# -- edges: money arriving after it is wanted ------------------------------------


async def test_wechat_deposit_paid_after_the_lot_settled_is_refunded(stack, hall, wechat_sim):
    _, (lot,) = await hall.live_lots(1, ends_in_s=3600, lot_deposit=6_000)
    api, user, sock = await user_with_socket(stack, hall, balance_fen=0)
    await bind_wechat(wechat_sim, api)  # JSAPI pays with a real openid
    done = await hall.pay_deposit(api, sock, lot["id"], scope="lot", method="wechat")
    no = done["result"]["out_trade_no"]
    watcher = await Socket.connect(stack.ws_url)
    await watcher.join(lot["id"])
    await hammer(hall, lot["id"])  # no bids: unsold, settled without this deposit
    await watcher.wait_for(lambda m: m.get("type") == "lot_status" and m.get("status") == "settled",
                           timeout=30)
    await watcher.close()
    mark = len(sock.messages)
    await Api(wechat_sim.url).post("/sim/pay", {"out_trade_no": no})
    first = await sock.wait_for(lambda m: m.get("type") == "refund", start=mark, timeout=30)
    assert first["reason"] == "late_payment" and first["amount"] == 6_000
    await sock.wait_for(lambda m: m.get("type") == "refund" and m["status"] == "done",
                        start=mark, timeout=30)
    assert not [m for m in sock.messages[mark:] if m.get("type") == "deposit"]
    assert db_rows(stack, "SELECT status FROM deposit WHERE user_id=?", (user["id"],)) == [
        ("refunded",)]
    refunds = [r for r in (await Api(wechat_sim.url).get("/sim/refunds"))["refunds"]
               if r["out_trade_no"] == no]
    assert [r["amount"]["refund"] for r in refunds] == [6_000]
    check_money(stack, [user["id"]])
    await sock.close()


async def test_wechat_payment_for_an_order_already_paid_alerts_operators(stack, hall, wechat_sim):
    api, user, sock, order = await won_order(stack, hall, price=4_000, lot_deposit=500)
    await bind_wechat(wechat_sim, api)  # JSAPI pays with a real openid
    answer = await api.post(f"/api/orders/{order['id']}/pay", {"method": "wechat"})
    prepay = await task_result(sock, answer["task_id"])
    assert prepay["result"]["status"] == "awaiting_payment"
    answer = await api.post(f"/api/orders/{order['id']}/pay", {"method": "balance"})
    assert (await task_result(sock, answer["task_id"]))["state"] == "SUCCESS"
    mark = len(sock.messages)
    await Api(wechat_sim.url).post("/sim/pay", {"out_trade_no": prepay["result"]["out_trade_no"]})
    done = await sock.wait_for(lambda m: m.get("type") == "task"
                               and m.get("kind") == "wechat_payment", start=mark, timeout=30)
    assert done["state"] == "SUCCESS"
    r = stack.sync_redis()
    alerts = [json.loads(a) for a in r.lrange("ops:alerts", 0, -1)]
    assert any(a["kind"] == "unmatched_payment" and a["order_id"] == order["id"]
               and a["amount"] == 3_500 for a in alerts)
    orders = (await api.get("/api/me/orders"))["orders"]
    assert [o["status"] for o in orders] == ["paid"]
    check_money(stack, [user["id"]])
    await sock.close()


# -- redelivery: the same task run twice moves money once -------------------------


async def run_task_twice(stack, name: str, kwargs: dict) -> list:
    """Deliver one task id twice (as the broker does after a worker dies)."""
    from celery import Celery
    celery = Celery(broker=stack.redis.url, backend=stack.redis.url)
    task_id = str(uuid.uuid4())
    loop = asyncio.get_running_loop()
    out = []
    for _ in range(2):
        result = celery.send_task(name, kwargs=kwargs, task_id=task_id, queue="money")
        out.append(await loop.run_in_executor(
            None, lambda r=result: r.get(timeout=30, propagate=False)))
    return out


async def test_redelivered_money_tasks_move_money_once(stack, hall, wechat_sim):
    _, (l1, l2) = await hall.live_lots(2, ends_in_s=3600, lot_deposit=3_000)
    api, user, sock = await user_with_socket(stack, hall, balance_fen=100_000)
    await bind_wechat(wechat_sim, api)  # JSAPI pays with a real openid
    first, second = await run_task_twice(stack, "workers.tasks.deposits.pay_deposit", {
        "user_id": user["id"], "lot_id": l1["id"], "scope": "lot", "method": "balance"})
    assert first["status"] == second["status"] == "paid"
    assert first["deposit"]["id"] == second["deposit"]["id"]
    assert await balance(api) == 97_000
    first, second = await run_task_twice(stack, "workers.tasks.deposits.pay_deposit", {
        "user_id": user["id"], "lot_id": l2["id"], "scope": "lot", "method": "wechat"})
    assert first["status"] == second["status"] == "awaiting_payment"
    assert first["out_trade_no"] == second["out_trade_no"]
    assert first["prepay"]["prepay_id"] == second["prepay"]["prepay_id"]
    assert db_rows(stack, "SELECT COUNT(*) FROM payment WHERE user_id=?", (user["id"],)) == [(1,)]
    assert db_rows(stack, "SELECT COUNT(*) FROM deposit WHERE user_id=?", (user["id"],)) == [(2,)]
    await sock.close()

    api, user, sock, order = await won_order(stack, hall, price=6_000, lot_deposit=1_000)
    before = await balance(api)
    first, second = await run_task_twice(stack, "workers.tasks.orders.pay_order", {
        "user_id": user["id"], "order_id": order["id"], "method": "balance"})
    assert first["status"] == second["status"] == "paid" and first["paid"] == second["paid"] == 5_000
    assert await balance(api) == before - 5_000
    check_money(stack, [user["id"]])
    await sock.close()


# -- the audit log: WeChat money moves no balance, and has its entries all the same --


async def test_wechat_money_in_and_out_and_a_forfeit_each_have_one_audit_entry(
        stack, hall, wechat_sim):
    _, (lot,) = await hall.live_lots(1, ends_in_s=3600, lot_deposit=2_500, start_price=10_000)
    (wa, w, w_sock), (la, loser, l_sock) = [await user_with_socket(stack, hall) for _ in range(2)]
    no = (await wechat_deposit(hall, wechat_sim, la, l_sock, lot["id"], "lot"))["out_trade_no"]
    assert (await hall.pay_deposit(wa, w_sock, lot["id"], scope="lot"))["state"] == "SUCCESS"
    for sock, price in ((l_sock, 10_000), (w_sock, 10_100)):
        await sock.join(lot["id"])
        assert (await sock.bid(lot["id"], price))["type"] == "accepted"
    await hammer(hall, lot["id"])
    await l_sock.wait_for(lambda m: m.get("type") == "refund" and m.get("status") == "done",
                          timeout=30)
    won = await w_sock.wait_for(lambda m: m.get("type") == "won", timeout=30)
    # The winner does not pay: forfeited, the lot deposit (balance) kept.
    db_exec(stack, 'UPDATE "order" SET pay_by_ms = ? WHERE id = ?',
            (int(time.time() * 1000) - 1000, won["order"]["id"]))
    await w_sock.wait_for(lambda m: m.get("type") == "order" and m["order"]["status"] == "forfeited",
                          timeout=30)

    def money(user_id: int) -> list[tuple]:
        rows = db_rows(stack, "SELECT action, after FROM auditentry WHERE target=? AND action "
                              "LIKE 'money.%' ORDER BY id", (f"user:{user_id}",))
        return [(a, json.loads(after).get("method"), json.loads(after)["amount"]) for a, after in rows]
    assert money(loser["id"]) == [("money.credit", None, 1_000_000),
                                  ("money.deposit", "wechat", 2_500),
                                  ("money.refund", "wechat", 2_500)]
    assert money(w["id"])[-1] == ("money.forfeit", None, 2_500)
    assert [a for a, _m, _x in money(w["id"])].count("money.forfeit") == 1
    (entry,) = [json.loads(a) for (a,) in db_rows(
        stack, "SELECT after FROM auditentry WHERE action='money.deposit' AND target=?",
        (f"user:{loser['id']}",))]
    assert entry["out_trade_no"] == no
    check_money(stack, [w["id"], loser["id"]])
    for sock in (w_sock, l_sock):
        await sock.close()
