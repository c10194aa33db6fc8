"""WeChat for real (issue 15), against the real stack and the WeChat simulator.

Mini-program login (wx.login code -> jscode2session), binding and its
conflicts, the official-account OAuth, and the three payment scenes: JSAPI
with the user's bound openid (none bound: conflict), Native (code_url, a QR
code, paid by scanning it) and H5 (the cashier page). Every openid here comes
from the simulator; no code path of the product may make one up.
"""
from __future__ import annotations

import asyncio
import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import requests

from conftest import ROOT, Api
from test_money import bind_wechat, check_money, db_rows, task_result, user_with_socket, won_order


async def wx_code(sim, person: str) -> str:
    """What wx.login gives the mini-program of this person."""
    return (await Api(sim.url).post("/sim/wx/login", {"user": person}))["code"]


async def test_mini_program_login_creates_then_logs_in_the_same_user(stack, hall, wechat_sim):
    first = await hall.anon.post("/api/auth/wechat", {"code": await wx_code(wechat_sim, "li")})
    assert first["user"]["role"] == "bidder" and first["user"]["balance"] == 0
    me = await Api(stack.base, first["token"]).get("/api/me")
    assert me["id"] == first["user"]["id"]
    again = await hall.anon.post("/api/auth/wechat", {"code": await wx_code(wechat_sim, "li")})
    assert again["user"]["id"] == first["user"]["id"] and again["token"] != first["token"]
    bound = await Api(stack.base, again["token"]).get("/api/me/wechat")
    assert bound == {"bound": {"miniprogram": True, "official_account": True}}  # one dev app id
    other = await hall.anon.post("/api/auth/wechat", {"code": await wx_code(wechat_sim, "wang")})
    assert other["user"]["id"] != first["user"]["id"]
    # The session_key WeChat handed out is nowhere: not in answers, not in logs.
    keys = wechat_sim.gateway.session_keys
    assert keys
    logs = stack.hall.log_path.read_text(errors="replace") + stack.worker.log_path.read_text(
        errors="replace")
    assert not [k for k in keys if k in logs or k in str(first) + str(again) + str(other)]


async def test_a_bad_or_used_code_is_invalid_not_a_login(stack, hall, wechat_sim):
    code = await wx_code(wechat_sim, "zhao")
    assert (await hall.anon.call("POST", "/api/auth/wechat", {"code": code}))[0] == 200
    status, body = await hall.anon.call("POST", "/api/auth/wechat", {"code": code})
    assert (status, body["code"]) == (400, "invalid")
    for bad in ({"code": "no spaces allowed"}, {"code": 12345678}, {}):
        status, body = await hall.anon.call("POST", "/api/auth/wechat", bad)
        assert (status, body["code"]) == (400, "invalid"), bad
    status, body = await hall.anon.call("POST", "/api/me/wechat",
                                        {"code": await wx_code(wechat_sim, "zhao")})
    assert (status, body["code"]) == (401, "unauthorized")


async def test_binding_conflicts(stack, hall, wechat_sim):
    a, _ = await hall.bidder(balance=0)
    b, _ = await hall.bidder(balance=0)
    assert (await a.post("/api/me/wechat", {"code": await wx_code(wechat_sim, "qian")}))[
        "bound"]["miniprogram"]
    # The same WeChat person again: fine. Another account: conflict.
    await a.post("/api/me/wechat", {"code": await wx_code(wechat_sim, "qian")})
    status, body = await b.call("POST", "/api/me/wechat", {"code": await wx_code(wechat_sim, "qian")})
    assert (status, body["code"]) == (409, "conflict")
    # A second WeChat person on an account that has one: conflict too.
    status, body = await a.call("POST", "/api/me/wechat", {"code": await wx_code(wechat_sim, "sun")})
    assert (status, body["code"]) == (409, "conflict")
    assert (await b.get("/api/me/wechat"))["bound"]["miniprogram"] is False
    # Logging in by that WeChat account is logging in as its owner.
    login = await hall.anon.post("/api/auth/wechat", {"code": await wx_code(wechat_sim, "qian")})
    assert login["user"]["id"] == (await a.get("/api/me"))["id"]


async def test_a_jsapi_deposit_needs_a_bound_openid(stack, hall, wechat_sim):
    _, (lot,) = await hall.live_lots(1, ends_in_s=3600, lot_deposit=4_000)
    api, user, sock = await user_with_socket(stack, hall, balance_fen=0)
    for body in ({"scope": "lot", "method": "wechat"},
                 {"scope": "lot", "method": "wechat", "scene": "jsapi"}):
        status, answer = await api.call("POST", f"/api/lots/{lot['id']}/deposit", body)
        assert (status, answer["code"]) == (409, "conflict"), answer
    status, answer = await api.call("POST", f"/api/lots/{lot['id']}/deposit",
                                    {"scope": "lot", "method": "wechat", "scene": "card"})
    assert (status, answer["code"]) == (400, "invalid")
    assert db_rows(stack, "SELECT COUNT(*) FROM deposit WHERE user_id=?", (user["id"],)) == [(0,)]
    # The worker checks too (a task queued by anything but the hall).
    from test_money import run_task_twice
    first, _ = await run_task_twice(stack, "workers.tasks.deposits.pay_deposit", {
        "user_id": user["id"], "lot_id": lot["id"], "scope": "lot", "method": "wechat",
        "scene": "jsapi"})
    assert getattr(first, "args", (None,))[0] == "conflict", first
    # Bound through the real login flow: the deposit completes by a signed notification.
    await bind_wechat(wechat_sim, api)
    done = await hall.pay_deposit(api, sock, lot["id"], scope="lot", method="wechat")
    result = done["result"]
    assert result["scene"] == "jsapi" and result["prepay"]["package"].startswith("prepay_id=")
    order = next(o for o in (await Api(wechat_sim.url).get("/sim/orders"))["orders"]
                 if o["out_trade_no"] == result["out_trade_no"])
    assert order["trade_type"] == "JSAPI" and order["openid"] in wechat_sim.gateway.openids.values()
    mark = len(sock.messages)
    paid = await Api(wechat_sim.url).post("/sim/pay", {"out_trade_no": result["out_trade_no"]})
    assert paid["status"] == 200
    dep = await sock.wait_for(lambda m: m.get("type") == "deposit", start=mark, timeout=30)
    assert (dep["amount"], dep["method"]) == (4_000, "wechat")
    await sock.close()


async def test_a_native_deposit_shows_a_code_paid_by_scanning_it(stack, hall, wechat_sim):
    _, (lot,) = await hall.live_lots(1, ends_in_s=3600, lot_deposit=2_500)
    api, user, sock = await user_with_socket(stack, hall, balance_fen=0)  # no WeChat bound
    answer = await api.post(f"/api/lots/{lot['id']}/deposit",
                            {"scope": "lot", "method": "wechat", "scene": "native"})
    result = (await task_result(sock, answer["task_id"]))["result"]
    assert result["status"] == "awaiting_payment" and result["scene"] == "native"
    assert result["code_url"].startswith("weixin://wxpay/bizpayurl?pr=")
    assert result["qr"].startswith("data:image/svg+xml")
    mark = len(sock.messages)
    paid = await Api(wechat_sim.url).post("/sim/pay", {"code_url": result["code_url"]})
    assert paid["status"] == 200 and paid["order"]["trade_type"] == "NATIVE"
    dep = await sock.wait_for(lambda m: m.get("type") == "deposit", start=mark, timeout=30)
    assert dep["amount"] == 2_500
    assert (await api.get(f"/api/lots/{lot['id']}/deposit"))["paid"] is True
    check_money(stack, [user["id"]])
    await sock.close()


async def test_an_h5_deposit_completes_at_the_cashier(stack, hall, wechat_sim):
    _, (lot,) = await hall.live_lots(1, ends_in_s=3600, deposit=3_300)
    api, user, sock = await user_with_socket(stack, hall, balance_fen=0)
    answer = await api.post(f"/api/lots/{lot['id']}/deposit",
                            {"scope": "session", "method": "wechat", "scene": "h5"})
    result = (await task_result(sock, answer["task_id"]))["result"]
    assert result["scene"] == "h5" and result["h5_url"].startswith(wechat_sim.url + "/sim/h5/")
    loop = asyncio.get_running_loop()
    page = await loop.run_in_executor(None, lambda: requests.get(result["h5_url"], timeout=10))
    assert "¥33.00" in page.text
    mark = len(sock.messages)
    back = f"{stack.base}/lots/{lot['id']}"
    paid = await loop.run_in_executor(None, lambda: requests.post(
        result["h5_url"].split("?")[0], data={"redirect_url": back}, allow_redirects=False,
        timeout=10))
    assert paid.status_code == 302 and paid.headers["Location"] == back
    dep = await sock.wait_for(lambda m: m.get("type") == "deposit", start=mark, timeout=30)
    assert (dep["scope"], dep["amount"]) == ("session", 3_300)
    await sock.close()


async def test_moving_from_native_to_jsapi_closes_the_first_trade(stack, hall, wechat_sim):
    _, (lot,) = await hall.live_lots(1, ends_in_s=3600, lot_deposit=1_800)
    api, user, sock = await user_with_socket(stack, hall, balance_fen=0)
    await bind_wechat(wechat_sim, api)
    body = {"scope": "lot", "method": "wechat", "scene": "native"}
    first = (await task_result(sock, (await api.post(f"/api/lots/{lot['id']}/deposit", body))[
        "task_id"]))["result"]
    body["scene"] = "jsapi"
    second = (await task_result(sock, (await api.post(f"/api/lots/{lot['id']}/deposit", body))[
        "task_id"]))["result"]
    assert second["scene"] == "jsapi" and second["out_trade_no"] != first["out_trade_no"]
    orders = {o["out_trade_no"]: o for o in (await Api(wechat_sim.url).get("/sim/orders"))["orders"]}
    assert orders[first["out_trade_no"]]["trade_state"] == "CLOSED"
    mark = len(sock.messages)
    await Api(wechat_sim.url).post("/sim/pay", {"out_trade_no": second["out_trade_no"]})
    await sock.wait_for(lambda m: m.get("type") == "deposit", start=mark, timeout=30)
    await sock.close()


async def test_an_order_paid_by_native(stack, hall, wechat_sim):
    api, user, sock, order = await won_order(stack, hall, price=6_000, lot_deposit=500)
    answer = await api.post(f"/api/orders/{order['id']}/pay", {"method": "wechat",
                                                                "scene": "native"})
    result = (await task_result(sock, answer["task_id"]))["result"]
    assert result["scene"] == "native" and result["amount"] == order["due"]
    mark = len(sock.messages)
    await Api(wechat_sim.url).post("/sim/pay", {"code_url": result["code_url"]})
    paid = await sock.wait_for(lambda m: m.get("type") == "order"
                               and m["order"]["status"] == "paid", start=mark, timeout=30)
    assert paid["order"]["id"] == order["id"]
    status, body = await api.call("POST", f"/api/orders/{order['id']}/pay",
                                  {"method": "wechat", "scene": "jsapi"})
    assert status == 409  # paid already
    await sock.close()


def _oauth_round(stack, sim, session: requests.Session, nxt: str) -> requests.Response:
    """The browser's trip: the hall -> WeChat's OAuth page -> the hall's callback."""
    start = session.get(f"{stack.base}/api/auth/wechat/oauth", params={"next": nxt},
                        allow_redirects=False, timeout=10)
    assert start.status_code == 302, start.text
    to_wechat = start.headers["Location"]
    assert to_wechat.startswith(sim.url + "/connect/oauth2/authorize?")
    assert parse_qs(urlsplit(to_wechat).query)["scope"] == ["snsapi_base"]
    back = session.get(to_wechat.split("#")[0], allow_redirects=False, timeout=10)
    assert back.status_code == 302
    return session.get(back.headers["Location"], allow_redirects=False, timeout=10)


async def test_official_account_oauth_logs_a_wechat_browser_in(stack, hall, wechat_sim):
    loop = asyncio.get_running_loop()
    browser = requests.Session()
    done = await loop.run_in_executor(None, _oauth_round, stack, wechat_sim, browser, "/lots/7")
    assert done.status_code == 302
    where = urlsplit(done.headers["Location"])
    assert where.path == "/login" and parse_qs(where.query)["next"] == ["/lots/7"]
    ticket = parse_qs(where.query)["wechat_ticket"][0]
    session = await hall.anon.post("/api/auth/wechat/ticket", {"ticket": ticket})
    assert (await Api(stack.base, session["token"]).get("/api/me"))["id"] == session["user"]["id"]
    status, body = await hall.anon.call("POST", "/api/auth/wechat/ticket", {"ticket": ticket})
    assert (status, body["code"]) == (401, "unauthorized")  # once only
    # The same WeChat browser again: the same user.
    again = await loop.run_in_executor(None, _oauth_round, stack, wechat_sim, browser, "/")
    ticket2 = parse_qs(urlsplit(again.headers["Location"]).query)["wechat_ticket"][0]
    assert (await hall.anon.post("/api/auth/wechat/ticket", {"ticket": ticket2}))["user"][
        "id"] == session["user"]["id"]
    # A callback this browser did not start, or an outside `next`, gets nowhere.
    stray = await loop.run_in_executor(None, lambda: requests.get(
        f"{stack.base}/api/auth/wechat/oauth/callback?code=0abcdefgh&state=x",
        allow_redirects=False, timeout=10))
    assert stray.status_code == 400 and stray.json()["code"] == "invalid"
    outside = await loop.run_in_executor(None, _oauth_round, stack, wechat_sim,
                                         requests.Session(), "//evil.example/")
    assert parse_qs(urlsplit(outside.headers["Location"]).query)["next"] == ["/"]


def test_no_code_path_makes_up_an_openid():
    """Only WeChat issues openids: the product reads them from WeChatIdentity
    rows (written from WeChat's answers) and passes them on, never builds one."""
    made_up = re.compile(r"""openid["']?\s*[:=]\s*f["']|f["']openid-|["']openid-\{""")
    offenders = []
    for path in [*ROOT.glob("auction/**/*.py"), *ROOT.glob("hall/**/*.py"),
                 *ROOT.glob("workers/**/*.py"), ROOT / "models.py", ROOT / "run.py"]:
        for n, line in enumerate(Path(path).read_text().splitlines(), 1):
            if made_up.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert offenders == []
    # Every JSAPI prepay goes through the payer, whose openid is a WeChatIdentity's.
    calls = [p for p in [*ROOT.glob("workers/**/*.py"), *ROOT.glob("hall/**/*.py")]
             if "jsapi_prepay(" in p.read_text()]
    assert [p.relative_to(ROOT).as_posix() for p in calls] == ["workers/gateway.py"]
    gateway = (ROOT / "workers/gateway.py").read_text()
    assert "openid=bound[appids[kind]].openid" in gateway
