"""充值: a top-up by WeChat Pay against the real stack (hall, eventlet worker,
Redis, SQLite, the WeChat Pay simulator).

The hall answers 202 with a task id; the task's result (the prepay) and the
later `topup` (paid, with the new balance) arrive on the owner's socket. The
balance is credited through the ledger exactly once per trade, however the
payment is told: the notification, a replay of it, a fresh notification of
the same payment, the gateway's query when no notification came, or the
notification and the query at the same moment.
"""
from __future__ import annotations

import asyncio
import re
import time

import requests

from conftest import Api
from test_money import (
    balance,
    bind_wechat,
    check_money,
    db_exec,
    db_rows,
    forged_copy,
    post_notification,
    task_result,
    user_with_socket,
)
from workerctl import RECOVERY_S, until

MAX = 5_000_000  # HALL_TOPUP_MAX_FEN's default


async def start(api: Api, sock, amount: int, scene: str = "native") -> dict:
    answer = await api.post("/api/me/topups", {"amount": amount, "scene": scene})
    done = await task_result(sock, answer["task_id"])
    assert done["state"] == "SUCCESS" and done["kind"] == "topup", done
    return done["result"]


def credits(stack, user_id: int) -> list[tuple]:
    return db_rows(stack, "SELECT kind, amount, ref FROM ledgerentry WHERE user_id=? "
                          "AND kind='topup'", (user_id,))


def topup_audits(stack, user_id: int) -> list[tuple]:
    return db_rows(stack, "SELECT action FROM auditentry WHERE target=? AND action='money.topup'",
                   (f"user:{user_id}",))


async def test_topup_by_a_native_qr_code_credits_the_balance_once(stack, hall, wechat_sim):
    api, user, sock = await user_with_socket(stack, hall, balance_fen=0)
    result = await start(api, sock, 12_345)
    assert result["status"] == "awaiting_payment" and result["scene"] == "native"
    assert result["amount"] == 12_345
    assert result["qr"].startswith("data:image/svg+xml") and result["code_url"].startswith("weixin://")
    assert await balance(api) == 0  # nothing until it is paid
    pending = await api.get("/api/me/topups")
    assert [(t["amount"], t["status"]) for t in pending["topups"]] == [(12_345, "pending")]

    # The payer scans the QR code and pays; the hall is told, the balance rises.
    mark = len(sock.messages)
    paid = await Api(wechat_sim.url).post("/sim/pay", {"code_url": result["code_url"]})
    assert paid["status"] == 200, paid
    msg = await sock.wait_for(lambda m: m.get("type") == "topup", start=mark, timeout=30)
    assert msg["topup"]["status"] == "paid" and msg["balance"] == 12_345
    # The payment task's own result may follow the topup push; take it here so the
    # replays below are judged on their own results.
    first = await sock.wait_for(lambda m: m.get("type") == "task" and m.get("kind") == "wechat_payment",
                                start=mark, timeout=30)
    assert first["state"] == "SUCCESS" and first["result"]["status"] == "paid"
    assert await balance(api) == 12_345
    wallet = await api.get("/api/me/wallet")
    assert wallet["balance"] == 12_345
    assert [(e["kind"], e["amount"], e["balance_after"]) for e in wallet["entries"]] == [
        ("topup", 12_345, 12_345)]
    assert wallet["pending_topups"] == []

    # Replays: WeChat re-delivering (same notification id), the same bytes twice,
    # and the same payment notified afresh (new id and nonce): none credits again.
    no = result["out_trade_no"]
    again = await Api(wechat_sim.url).post("/sim/pay", {"out_trade_no": no})
    assert again["status"] == 200 and "already handled" in again["body"]
    order = {o["out_trade_no"]: o for o in
             (await Api(wechat_sim.url).get("/sim/orders"))["orders"]}[no]
    body, headers = wechat_sim.gateway.notification(order)
    for _ in range(2):
        code, answer = await post_notification(stack, body, headers)
        assert code == 200 and answer["code"] == "SUCCESS"
    mark = len(sock.messages)
    body2, headers2 = forged_copy(wechat_sim, order)
    code, _ = await post_notification(stack, body2, headers2)
    assert code == 200
    done = await sock.wait_for(lambda m: m.get("type") == "task" and m.get("kind") == "wechat_payment",
                               start=mark, timeout=30)
    assert done["state"] == "SUCCESS" and done["result"]["status"] == "already_paid"
    assert await balance(api) == 12_345
    assert [c[:2] for c in credits(stack, user["id"])] == [("topup", 12_345)]
    assert topup_audits(stack, user["id"]) == [("money.topup",)]
    check_money(stack, [user["id"]])
    await sock.close()


async def test_topup_amounts_that_are_not_whole_fen_in_range_are_invalid(stack, hall, wechat_sim):
    api, user, sock = await user_with_socket(stack, hall, balance_fen=0)
    for bad in (12.5, "100", 0, -100, True, None, MAX + 1, 10**30, [100], {"fen": 1}):
        body = {"scene": "native"} if bad is None else {"amount": bad, "scene": "native"}
        code, data = await api.call("POST", "/api/me/topups", body)
        assert code == 400 and data["code"] == "invalid", (bad, code, data)
        assert "amount" in data["message"], data
    code, data = await api.call("POST", "/api/me/topups", {"amount": 100, "scene": "alipay"})
    assert code == 400 and data["code"] == "invalid" and "scene" in data["message"]
    # JSAPI needs the user's own WeChat openid: none bound, a conflict at once.
    code, data = await api.call("POST", "/api/me/topups", {"amount": 100, "scene": "jsapi"})
    assert code == 409 and data["code"] == "conflict"
    code, data = await hall.anon.call("POST", "/api/me/topups", {"amount": 100})
    assert code == 401
    assert db_rows(stack, "SELECT COUNT(*) FROM topup WHERE user_id=?", (user["id"],)) == [(0,)]
    assert await balance(api) == 0
    # The largest allowed amount goes through.
    result = await start(api, sock, MAX)
    assert result["status"] == "awaiting_payment" and result["amount"] == MAX
    await sock.close()


async def test_topup_on_a_phone_pays_at_the_h5_cashier(stack, hall, wechat_sim):
    api, user, sock = await user_with_socket(stack, hall, balance_fen=500)
    result = await start(api, sock, 8_800, scene="h5")
    assert result["scene"] == "h5" and result["h5_url"].startswith(wechat_sim.url + "/sim/h5/")
    loop = asyncio.get_running_loop()
    page = await loop.run_in_executor(None, lambda: requests.get(result["h5_url"], timeout=10))
    assert "¥88.00" in page.text
    mark = len(sock.messages)
    back = f"{stack.base}/me"
    paid = await loop.run_in_executor(None, lambda: requests.post(
        result["h5_url"].split("?")[0], data={"redirect_url": back}, allow_redirects=False,
        timeout=10))
    assert paid.status_code == 302 and paid.headers["Location"] == back
    msg = await sock.wait_for(lambda m: m.get("type") == "topup", start=mark, timeout=30)
    assert msg["balance"] == 9_300
    check_money(stack, [user["id"]])
    await sock.close()


async def test_topup_inside_wechat_pays_by_jsapi_with_the_bound_openid(stack, hall, wechat_sim):
    api, user, sock = await user_with_socket(stack, hall, balance_fen=0)
    await bind_wechat(wechat_sim, api)
    result = await start(api, sock, 2_000, scene="jsapi")
    assert result["scene"] == "jsapi" and result["prepay"]["package"].startswith("prepay_id=")
    mark = len(sock.messages)
    await Api(wechat_sim.url).post("/sim/pay", {"out_trade_no": result["out_trade_no"]})
    msg = await sock.wait_for(lambda m: m.get("type") == "topup", start=mark, timeout=30)
    assert msg["balance"] == 2_000
    await sock.close()


async def test_a_lost_notification_is_settled_by_the_query_once(stack, hall, wechat_sim):
    api, user, sock = await user_with_socket(stack, hall, balance_fen=0)
    result = await start(api, sock, 4_200)
    no = result["out_trade_no"]
    mark = len(sock.messages)
    # Paid at the gateway; the notification never reaches the hall.
    paid = await Api(wechat_sim.url).post("/sim/pay", {"out_trade_no": no, "deliver": False})
    assert paid["order"]["trade_state"] == "SUCCESS"
    msg = await sock.wait_for(lambda m: m.get("type") == "topup", start=mark, timeout=RECOVERY_S)
    assert msg["balance"] == 4_200
    # The notification arrives late after all: nothing more.
    mark = len(sock.messages)
    order = {o["out_trade_no"]: o for o in
             (await Api(wechat_sim.url).get("/sim/orders"))["orders"]}[no]
    body, headers = wechat_sim.gateway.notification(order)
    code, _ = await post_notification(stack, body, headers)
    assert code == 200
    done = await sock.wait_for(lambda m: m.get("type") == "task" and m.get("kind") == "wechat_payment",
                               start=mark, timeout=30)
    assert done["result"]["status"] == "already_paid"
    assert await balance(api) == 4_200
    assert len(credits(stack, user["id"])) == 1
    check_money(stack, [user["id"]])
    await sock.close()


async def test_notification_and_query_at_the_same_moment_credit_once(stack, hall, wechat_sim):
    """The notification's task and the reconciliation's query run side by side
    (several copies of each, as redelivery makes): one credit."""
    from celery import Celery
    api, user, sock = await user_with_socket(stack, hall, balance_fen=0)
    result = await start(api, sock, 7_700)
    no = result["out_trade_no"]
    paid = await Api(wechat_sim.url).post("/sim/pay", {"out_trade_no": no, "deliver": False})
    tx = paid["order"]["transaction_id"]
    celery = Celery(broker=stack.redis.url, backend=stack.redis.url)
    sent = []
    for _ in range(3):
        sent.append(celery.send_task("workers.tasks.deposits.wechat_paid", kwargs={
            "out_trade_no": no, "transaction_id": tx, "trade_state": "SUCCESS", "total": 7_700},
            queue="money"))
        sent.append(celery.send_task("workers.tasks.deposits.reconcile_payment", args=(no,),
                                     queue="money"))
    loop = asyncio.get_running_loop()
    answers = [await loop.run_in_executor(None, lambda r=r: r.get(timeout=60, propagate=False))
               for r in sent]
    statuses = [a["status"] for a in answers]
    assert statuses.count("paid") == 1, statuses
    assert set(statuses) <= {"paid", "already_paid", "unchanged"}, statuses
    assert await balance(api) == 7_700
    assert [c[:2] for c in credits(stack, user["id"])] == [("topup", 7_700)]
    assert topup_audits(stack, user["id"]) == [("money.topup",)]
    check_money(stack, [user["id"]])
    await sock.close()


async def test_a_redelivered_topup_task_opens_one_trade(stack, hall, wechat_sim):
    from test_money import run_task_twice
    api, user, sock = await user_with_socket(stack, hall, balance_fen=0)
    first, second = await run_task_twice(stack, "workers.tasks.topups.start_topup", {
        "user_id": user["id"], "amount": 3_100, "scene": "native"})
    assert first["status"] == second["status"] == "awaiting_payment"
    assert first["out_trade_no"] == second["out_trade_no"]
    assert first["code_url"] == second["code_url"]
    assert db_rows(stack, "SELECT COUNT(*) FROM topup WHERE user_id=?", (user["id"],)) == [(1,)]
    assert db_rows(stack, "SELECT COUNT(*) FROM payment WHERE user_id=?", (user["id"],)) == [(1,)]
    # A copy of the task arriving after the payment: paid, nothing to pay.
    mark = len(sock.messages)
    await Api(wechat_sim.url).post("/sim/pay", {"out_trade_no": first["out_trade_no"]})
    await sock.wait_for(lambda m: m.get("type") == "topup", start=mark, timeout=30)
    assert await balance(api) == 3_100
    check_money(stack, [user["id"]])
    await sock.close()


async def test_the_wallet_statement_names_wechat_money_too(stack, hall, wechat_sim):
    """WeChat money never touches the balance, but the statement shows it: a
    deposit paid by WeChat and its refund after losing, each with its lot."""
    from test_money import hammer, wechat_deposit
    _, (lot,) = await hall.live_lots(1, ends_in_s=3600, lot_deposit=2_500, start_price=10_000,
                                     title="清光绪粉彩百子图碗")
    api, user, sock = await user_with_socket(stack, hall, balance_fen=0)
    winner, _, wsock = await user_with_socket(stack, hall)
    await wechat_deposit(hall, wechat_sim, api, sock, lot["id"], "lot")
    assert (await hall.pay_deposit(winner, wsock, lot["id"], scope="lot"))["state"] == "SUCCESS"
    for s in (sock, wsock):
        await s.join(lot["id"])
    assert (await sock.bid(lot["id"], 10_000))["type"] == "accepted"
    assert (await wsock.bid(lot["id"], 10_100))["type"] == "accepted"
    mark = len(sock.messages)
    await hammer(hall, lot["id"])
    await sock.wait_for(lambda m: m.get("type") == "refund" and m.get("status") == "done",
                        start=mark, timeout=60)
    wallet = await api.get("/api/me/wallet")
    assert wallet["balance"] == 0
    seen = [(e["kind"], e["amount"], e["via"], e["lot_title"], e["balance_after"])
            for e in wallet["entries"]]
    assert seen == [("refund", 2_500, "wechat", "清光绪粉彩百子图碗", None),
                    ("deposit", -2_500, "wechat", "清光绪粉彩百子图碗", None)], seen
    assert all(e["lot_id"] == lot["id"] for e in wallet["entries"])
    deposits = (await api.get("/api/me/deposits"))["deposits"]
    assert [(d["status"], d["lot_title"], d["refund_status"]) for d in deposits] == [
        ("refunded", "清光绪粉彩百子图碗", "done")]
    check_money(stack, [user["id"]])
    for s in (sock, wsock):
        await s.close()


def sim_order(wechat_sim, no: str) -> dict:
    return dict(wechat_sim.gateway.orders[no])


def expire_now(stack, topup_id: int) -> None:
    """The top-up's expiry is now past (as if HALL_TOPUP_EXPIRE_S went by)."""
    assert db_exec(stack, "UPDATE topup SET expires_at_ms = ? WHERE id = ?",
                   (int(time.time() * 1000) - 1, topup_id)) == 1


async def test_a_topup_left_unpaid_past_its_expiry_is_closed(stack, hall, wechat_sim):
    from auction.wechatpay import rfc3339
    api, user, sock = await user_with_socket(stack, hall, balance_fen=300)
    result = await start(api, sock, 6_600)
    no, topup_id = result["out_trade_no"], result["topup_id"]
    # The trade is opened with its expiry (time_expire) at the gateway.
    assert result["expires_at_ms"] > time.time() * 1000
    assert sim_order(wechat_sim, no)["time_expire"] == rfc3339(result["expires_at_ms"])
    assert [t["status"] for t in (await api.get("/api/me/topups"))["topups"]] == ["pending"]
    # Past its time_expire the payer can no longer pay it at WeChat (the order
    # stays NOTPAY there until the merchant closes it).
    wechat_sim.gateway.orders[no]["time_expire"] = rfc3339(int(time.time() * 1000) - 1000)
    code, answer = await Api(wechat_sim.url).call("POST", "/sim/pay",
                                                  {"code_url": result["code_url"]})
    assert code == 400 and answer["code"] == "ORDER_EXPIRED"
    assert sim_order(wechat_sim, no)["trade_state"] == "NOTPAY"

    mark = len(sock.messages)
    expire_now(stack, topup_id)
    msg = await sock.wait_for(lambda m: m.get("type") == "topup", start=mark, timeout=RECOVERY_S)
    assert msg["topup"]["id"] == topup_id and msg["topup"]["status"] == "closed", msg
    assert msg["balance"] == 300
    # Closed at the gateway: the QR code the payer still holds can no longer be paid.
    assert sim_order(wechat_sim, no)["trade_state"] == "CLOSED"
    code, answer = await Api(wechat_sim.url).call("POST", "/sim/pay",
                                                  {"code_url": result["code_url"]})
    assert code == 400 and answer["code"] == "ORDER_CLOSED"
    topups = (await api.get("/api/me/topups"))["topups"]
    assert [(t["id"], t["status"]) for t in topups] == [(topup_id, "closed")]
    assert topups[0]["closed_at_ms"] >= topups[0]["expires_at_ms"]
    wallet = await api.get("/api/me/wallet")
    assert wallet["pending_topups"] == []
    assert [t["id"] for t in wallet["closed_topups"]] == [topup_id]
    assert wallet["balance"] == 300
    assert [e["kind"] for e in wallet["entries"]] == ["credit"]  # the 300 it started with
    assert db_rows(stack, "SELECT status FROM payment WHERE out_trade_no=?", (no,)) == [("closed",)]
    assert credits(stack, user["id"]) == []
    check_money(stack, [user["id"]])

    # A payment already under way when the trade closed goes through anyway
    # (the race closing cannot rule out): it is not credited to the closed
    # top-up but refunded to the payer, as for a deposit's closed trade.
    mark = len(sock.messages)
    paid = await Api(wechat_sim.url).post("/sim/pay", {"out_trade_no": no, "after_close": True})
    assert paid["status"] == 200, paid
    back = await sock.wait_for(lambda m: m.get("type") == "payment_refund"
                               and m.get("status") == "done", start=mark, timeout=60)
    assert back["amount"] == 6_600 and back["reason"] == "trade_closed"
    assert back["topup_id"] == topup_id
    refunds = (await Api(wechat_sim.url).get("/sim/refunds"))["refunds"]
    assert [(r["out_trade_no"], r["amount"]["refund"]) for r in refunds
            if r["out_trade_no"] == no] == [(no, 6_600)]
    assert await balance(api) == 300
    assert credits(stack, user["id"]) == []
    wallet = await api.get("/api/me/wallet")
    assert [(e["kind"], e["amount"], e["via"], e.get("topup_id")) for e in wallet["entries"]
            if e["kind"] != "credit"] == [
        ("payment_refund", 6_600, "wechat", topup_id),
        ("topup_closed", -6_600, "wechat", topup_id)], wallet["entries"]
    assert [t["status"] for t in (await api.get("/api/me/topups"))["topups"]] == ["closed"]
    check_money(stack, [user["id"]])
    await sock.close()


async def test_a_redelivered_topup_task_after_its_trade_closed_opens_nothing(stack, hall, wechat_sim):
    from celery import Celery
    api, user, sock = await user_with_socket(stack, hall, balance_fen=0)
    celery = Celery(broker=stack.redis.url, backend=stack.redis.url)
    task_id = f"redeliver-{user['id']}"
    loop = asyncio.get_running_loop()

    async def run() -> dict:
        sent = celery.send_task("workers.tasks.topups.start_topup", task_id=task_id, queue="money",
                                kwargs={"user_id": user["id"], "amount": 1_200, "scene": "native"})
        return await loop.run_in_executor(None, lambda: sent.get(timeout=30, propagate=False))

    first = await run()
    assert first["status"] == "awaiting_payment", first
    mark = len(sock.messages)
    expire_now(stack, first["topup_id"])
    await sock.wait_for(lambda m: m.get("type") == "topup" and m["topup"]["status"] == "closed",
                        start=mark, timeout=RECOVERY_S)
    celery.AsyncResult(task_id).forget()  # so the answer read next is the second run's
    again = await run()  # the broker hands the same task out again
    assert again["status"] == "closed" and again["topup"]["id"] == first["topup_id"], again
    assert "code_url" not in again  # nothing to pay
    mine = [o for o in wechat_sim.gateway.orders.values() if o["out_trade_no"] == first["out_trade_no"]]
    assert [o["trade_state"] for o in mine] == ["CLOSED"]
    assert db_rows(stack, "SELECT COUNT(*) FROM topup WHERE user_id=?", (user["id"],)) == [(1,)]
    assert await balance(api) == 0
    await sock.close()


async def test_a_topup_paid_at_the_last_second_is_credited_not_closed(stack, hall, wechat_sim):
    api, user, sock = await user_with_socket(stack, hall, balance_fen=100)
    result = await start(api, sock, 5_500)
    no, topup_id = result["out_trade_no"], result["topup_id"]
    # Paid just before the expiry; the notification is still on its way when
    # the sweep comes (here: it never comes).
    paid = await Api(wechat_sim.url).post("/sim/pay", {"out_trade_no": no, "deliver": False})
    assert paid["order"]["trade_state"] == "SUCCESS"
    mark = len(sock.messages)
    expire_now(stack, topup_id)
    msg = await sock.wait_for(lambda m: m.get("type") == "topup", start=mark, timeout=RECOVERY_S)
    assert msg["topup"]["status"] == "paid" and msg["balance"] == 5_600, msg
    # Credited, never closed: later sweeps leave it alone.
    await until(lambda: db_rows(stack, "SELECT status FROM topup WHERE id=?", (topup_id,))
                == [("paid",)], "the top-up paid")
    assert sim_order(wechat_sim, no)["trade_state"] == "SUCCESS"
    assert await balance(api) == 5_600
    assert [c[:2] for c in credits(stack, user["id"])] == [("topup", 5_500)]
    wallet = await api.get("/api/me/wallet")
    assert wallet["pending_topups"] == [] and wallet["closed_topups"] == []
    # Its notification arrives at last: nothing more.
    late = len(sock.messages)
    body, headers = wechat_sim.gateway.notification(sim_order(wechat_sim, no))
    code, _ = await post_notification(stack, body, headers)
    assert code == 200
    done = await sock.wait_for(lambda m: m.get("type") == "task" and m.get("kind") == "wechat_payment",
                               start=late, timeout=30)
    assert done["result"]["status"] == "already_paid"
    assert not [m for m in sock.messages[mark:] if m.get("type") == "topup"
                and m["topup"]["status"] == "closed"]
    assert await balance(api) == 5_600
    assert [c[:2] for c in credits(stack, user["id"])] == [("topup", 5_500)]
    check_money(stack, [user["id"]])
    await sock.close()


async def test_the_wallet_says_a_closed_topup_and_no_longer_offers_to_pay_it(stack, hall, wechat_sim):
    """/me in Chromium: the QR code of a top-up that expires while it is shown
    goes away, the page says in words that it closed and nothing was charged
    (zh-CN, then English after a reload), and no button or code pays it; a
    payment that raced the close shows in the statement as going back."""
    from playwright.async_api import async_playwright, expect
    from test_backoffice_pages import DESKTOP, PHONE, check_a11y
    from test_pages import ARGS, CHROMIUM, log_in, shot
    api, user = await hall.bidder(balance=0, prefix="exp")
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        ctx = await browser.new_context(**DESKTOP)
        await log_in(ctx, stack.base, api.token, "zh")
        page = await ctx.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await page.goto(f"{stack.base}/me")
        await expect(page.get_by_test_id("balance")).to_have_text("¥0.00")
        await page.get_by_test_id("topup-amount").fill("88")
        await page.get_by_test_id("topup-submit").click()
        qr = page.get_by_test_id("topup-box").get_by_test_id("wechat-qr")
        await expect(qr).to_be_visible()
        message = page.get_by_test_id("topup-message")
        await expect(message).to_contain_text("前完成微信支付")  # with the time it is valid until
        (topup_id,), = db_rows(stack, "SELECT id FROM topup WHERE user_id=?", (user["id"],))

        expire_now(stack, topup_id)
        await expect(message).to_have_text("该充值订单已超时关闭，未扣款。如需充值，请重新发起。")
        await expect(page.get_by_test_id("topup-box").get_by_test_id("wechat-pay")).to_have_count(0)
        await expect(page.get_by_test_id("topup-closed")).to_have_text(
            re.compile(r"^1 笔充值已超时关闭（未支付，未扣款）：¥88\.00 \("))
        await expect(page.get_by_test_id("topup-pending")).to_be_hidden()
        await expect(page.get_by_test_id("balance")).to_have_text("¥0.00")
        await check_a11y(page, "me: top-up closed")
        await shot(page, "me-topup-closed-desktop", full_page=False)
        await ctx.close()

        # A payment already under way when it closed goes through: it goes back.
        (no,), = db_rows(stack, "SELECT out_trade_no FROM topup WHERE id=?", (topup_id,))
        await Api(wechat_sim.url).post("/sim/pay", {"out_trade_no": no, "after_close": True})
        await until(lambda: db_rows(stack, "SELECT status FROM paymentrefund WHERE user_id=?",
                                    (user["id"],)) == [("done",)], "the late payment refunded")

        ctx = await browser.new_context(**PHONE)
        await log_in(ctx, stack.base, api.token, "en")
        page = await ctx.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await page.goto(f"{stack.base}/me")
        await expect(page.get_by_test_id("topup-closed")).to_have_text(re.compile(
            r"^1 top-up\(s\) closed unpaid at their expiry \(nothing was charged\): ¥88\.00 \("))
        await expect(page.get_by_test_id("topup-pending")).to_be_hidden()
        await expect(page.get_by_test_id("wechat-pay")).to_have_count(0)
        rows = page.get_by_test_id("ledger-row")
        await expect(rows.get_by_test_id("ledger-what")).to_have_text(
            ["Payment of a closed trade returned", "Closed top-up (refunded)"])
        await expect(rows.get_by_test_id("ledger-amount")).to_have_text(["+¥88.00", "−¥88.00"])
        await check_a11y(page, "me phone: top-up closed")
        await shot(page, "me-topup-closed-phone")
        assert not errors, errors
        await ctx.close()
        await browser.close()
    assert await balance(api) == 0
    check_money(stack, [user["id"]])


async def test_a_topup_paid_between_the_query_and_the_close_is_credited(stack, hall, wechat_sim,
                                                                        monkeypatch):
    """The sweep asks, hears NOTPAY, and closes; the payer's payment lands in
    between, so WeChat refuses the close (ORDERPAID): the sweep asks again,
    credits the payment once, and does not close the top-up."""
    import devsim.wechatpay as sim
    api, user, sock = await user_with_socket(stack, hall, balance_fen=0)
    result = await start(api, sock, 2_300)
    no = result["out_trade_no"]
    close, refused = sim.CloseHandler.post, []

    async def paid_just_before(self, trade_no: str) -> None:
        order = self.gw.orders.get(trade_no)
        if trade_no == no and order["trade_state"] == "NOTPAY":
            refused.append(trade_no)
            await self.gw.pay(order, deliver=False)  # its notification still on its way
        close(self, trade_no)

    monkeypatch.setattr(sim.CloseHandler, "post", paid_just_before)
    mark = len(sock.messages)
    expire_now(stack, result["topup_id"])
    msg = await sock.wait_for(lambda m: m.get("type") == "topup", start=mark, timeout=RECOVERY_S)
    assert msg["topup"]["status"] == "paid" and msg["balance"] == 2_300, msg
    assert refused == [no]  # the sweep did try to close it
    assert sim_order(wechat_sim, no)["trade_state"] == "SUCCESS"
    assert [t["status"] for t in (await api.get("/api/me/topups"))["topups"]] == ["paid"]
    assert [c[:2] for c in credits(stack, user["id"])] == [("topup", 2_300)]
    assert db_rows(stack, "SELECT status FROM payment WHERE out_trade_no=?", (no,)) == [("paid",)]
    check_money(stack, [user["id"]])
    await sock.close()


async def test_an_expired_topup_is_closed_once_wechat_answers_again(stack, hall, wechat_sim):
    """WeChat Pay down when the sweep comes: the top-up stays pending (not
    closed on our side alone) and is closed at the gateway a round later."""
    api, user, sock = await user_with_socket(stack, hall, balance_fen=0)
    result = await start(api, sock, 900)
    no = result["out_trade_no"]
    down = await Api(wechat_sim.url).post("/sim/fail", {"status": 500, "count": 3})
    assert down["pending_faults"] == 3
    mark = len(sock.messages)
    expire_now(stack, result["topup_id"])
    msg = await sock.wait_for(lambda m: m.get("type") == "topup", start=mark, timeout=RECOVERY_S)
    assert msg["topup"]["status"] == "closed"
    assert not wechat_sim.gateway.faults  # the failed answers were all spent first
    assert sim_order(wechat_sim, no)["trade_state"] == "CLOSED"
    assert [t["status"] for t in (await api.get("/api/me/topups"))["topups"]] == ["closed"]
    await sock.close()
