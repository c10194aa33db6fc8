"""Notifications against the real stack: outbid SMS, closing soon, retries, watch list.

The SMS gateway is devsim/sms.py (Alibaba Cloud SendSms, signature checked),
started by conftest's Stack with HALL_CLOSING_SOON_S=4. Socket messages are
awaited; the simulator's record is polled with a deadline only where no event
exists (an SMS leaves no trace on any socket).
"""
from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
import time
import uuid
from typing import Callable

from conftest import ROOT, Api, Socket

OUTBID_TEMPLATE = "SMS_480010001"
CLOSING_TEMPLATE = "SMS_480010002"


def new_phone() -> str:
    return "139" + "".join(random.choice("0123456789") for _ in range(8))


async def phone_bidder(hall, phone: str | None = None, balance: int = 10_000_000,
                       prefix: str = "n") -> tuple[Api, dict, str | None]:
    """A registered bidder with a phone number (register's optional field)."""
    name = f"{prefix}{uuid.uuid4().hex[:10]}"
    body = {"username": name, "password": "secret123"}
    if phone:
        body["phone"] = phone
    data = await hall.anon.post("/api/auth/register", body)
    api = Api(hall.stack.base, data["token"])
    if balance:
        await hall.operator.post(f"/api/admin/users/{data['user']['id']}/credit",
                                 {"amount": balance})
    return api, data["user"], phone


async def sms_to(stack, phone: str) -> list[dict]:
    return (await Api(stack.sms.url).get(f"/sim/messages?phone={phone}"))["messages"]


async def sms_attempts(stack, phone: str) -> list[dict]:
    return (await Api(stack.sms.url).get(f"/sim/requests?phone={phone}"))["requests"]


async def poll_sms(stack, phone: str, pred: Callable[[list[dict]], bool],
                   timeout: float = 20) -> list[dict]:
    """The simulator's record for `phone` once `pred` holds (an SMS has no event)."""
    deadline = time.monotonic() + timeout
    while True:
        msgs = await sms_to(stack, phone)
        if pred(msgs):
            return msgs
        if time.monotonic() > deadline:
            raise AssertionError(f"SMS to {phone} never matched; got {msgs}")
        await asyncio.sleep(0.1)


async def test_outbid_sms_once_per_lost_lead(stack, hall):
    (a_api, alice, a_phone), (b_api, bob, b_phone), (c_api, carol, c_phone) = [
        await phone_bidder(hall, new_phone()) for _ in range(3)]
    session, (lot,) = await hall.live_lots(1, ends_in_s=120, extend_window_s=1, extend_by_s=1,
                                           start_price=1000, increment=100)
    lid = lot["id"]
    socks = {}
    for name, api in (("a", a_api), ("b", b_api), ("c", c_api)):
        socks[name] = s = await Socket.connect(stack.ws_url, api.token)
        await hall.pay_deposit(api, s, lid, scope="session")
        await s.join(lid)
    a, b, c = socks["a"], socks["b"], socks["c"]

    assert (await a.bid(lid, 1000))["type"] == "accepted"
    assert (await b.bid(lid, 1100))["type"] == "accepted"
    # The socket push is the Lua script's; the SMS comes from the notify worker.
    await a.wait_for(lambda m: m.get("type") == "outbid" and m.get("price") == 1100)
    msgs = await poll_sms(stack, a_phone, lambda m: len(m) >= 1)
    assert len(msgs) == 1
    sms = msgs[0]
    assert sms["template_code"] == OUTBID_TEMPLATE
    assert sms["params"]["price"] == "11.00" and sms["params"]["lot"] == lot["title"]
    assert sms["out_id"].startswith(f"outbid:{lid}:{alice['id']}:")

    assert (await a.bid(lid, 1200))["type"] == "accepted"      # bob loses the lead
    await poll_sms(stack, b_phone, lambda m: len(m) >= 1)
    assert (await b.bid(lid, 1300))["type"] == "accepted"      # alice again: deduped
    await a.wait_for(lambda m: m.get("type") == "outbid" and m.get("price") == 1300)
    assert (await c.bid(lid, 1400))["type"] == "accepted"      # bob again: deduped
    assert (await a.bid(lid, 1500))["type"] == "accepted"      # carol: her first
    # Carol's entry comes after the deduped ones in notify:events, so once her
    # SMS is through, theirs have been decided.
    await poll_sms(stack, c_phone, lambda m: len(m) >= 1)
    assert len(await sms_to(stack, a_phone)) == 1
    assert len(await sms_to(stack, b_phone)) == 1
    assert len(await sms_to(stack, c_phone)) == 1
    # Everything read from the stream was acknowledged.
    r = stack.sync_redis()
    assert r.xpending("notify:events", "notify")["pending"] == 0
    for s in socks.values():
        await s.close()


async def test_failing_provider_is_retried_and_never_blocks_bids(stack, hall):
    (d_api, _dave, d_phone), (e_api, _erin, _) = [await phone_bidder(hall, new_phone()),
                                                 await phone_bidder(hall)]
    session, (lot,) = await hall.live_lots(1, ends_in_s=120, extend_window_s=1, extend_by_s=1)
    lid = lot["id"]
    d = await Socket.connect(stack.ws_url, d_api.token)
    e = await Socket.connect(stack.ws_url, e_api.token)
    await hall.pay_deposit(d_api, d, lid, scope="lot")
    await hall.pay_deposit(e_api, e, lid, scope="lot")
    await d.join(lid)
    await e.join(lid)
    sim = Api(stack.sms.url)
    # The gateway is down (503), then throttles this phone (HTTP 200, flow-control code).
    await sim.post("/sim/fail", {"count": 2, "status": 503, "phone": d_phone})
    await sim.post("/sim/fail", {"count": 1, "status": 200, "code": "isv.BUSINESS_LIMIT_CONTROL",
                                 "phone": d_phone})

    assert (await d.bid(lid, 1000))["type"] == "accepted"
    started = time.monotonic()
    assert (await e.bid(lid, 1100))["type"] == "accepted"
    await d.wait_for(lambda m: m.get("type") == "outbid")
    # Bidding goes on at full speed while the SMS is failing.
    assert (await d.bid(lid, 1200))["type"] == "accepted"
    assert (await e.bid(lid, 1300))["type"] == "accepted"
    assert time.monotonic() - started < 5

    msgs = await poll_sms(stack, d_phone, lambda m: len(m) >= 1, timeout=40)
    assert len(msgs) == 1 and msgs[0]["params"]["price"] == "11.00"
    attempts = await sms_attempts(stack, d_phone)
    assert [x["code"] for x in attempts] == [
        "ServiceUnavailable", "ServiceUnavailable", "isv.BUSINESS_LIMIT_CONTROL", "OK"]
    # Backed off: 1 s, 2 s, 4 s (HALL_NOTIFY_SMS_RETRY_BACKOFF_S=1), each jittered to 50-100 %.
    assert attempts[-1]["at_ms"] - attempts[0]["at_ms"] >= 2000
    await d.close()
    await e.close()


async def test_closing_soon_to_bidders_and_watchers_once_per_deadline(stack, hall):
    a_api, alice, a_phone = await phone_bidder(hall, new_phone(), prefix="cs")   # session deposit
    b_api, bob, _ = await phone_bidder(hall, prefix="cs")                        # lot deposit
    w_api, wendy, w_phone = await phone_bidder(hall, new_phone(), prefix="cs")   # watcher
    u_api, _uma, u_phone = await phone_bidder(hall, new_phone(), prefix="cs")    # unwatches
    z_api, _zed, _ = await phone_bidder(hall, prefix="cs")                       # bystander
    socks = {n: await Socket.connect(stack.ws_url, api.token)
             for n, api in (("a", a_api), ("b", b_api), ("w", w_api), ("u", u_api), ("z", z_api))}
    # HALL_CLOSING_SOON_S=4: the notice comes ~4 s before the deadline. A bid in
    # the last 10 s moves the deadline to bid time + 6 s (a new notice).
    session, (lot,) = await hall.live_lots(1, ends_in_s=14, extend_window_s=10, extend_by_s=6)
    lid = lot["id"]
    d1 = lot["deadline_ms"]
    await hall.pay_deposit(a_api, socks["a"], lid, scope="session")
    await hall.pay_deposit(b_api, socks["b"], lid, scope="lot")
    assert (await w_api.post(f"/api/lots/{lid}/watch"))["watching"] is True
    await u_api.post(f"/api/lots/{lid}/watch")
    code, body = await u_api.call("DELETE", f"/api/lots/{lid}/watch")
    assert code == 200 and body == {"lot_id": lid, "watching": False}
    await socks["a"].join(lid)
    await socks["b"].join(lid)

    def closing(deadline: int) -> Callable[[dict], bool]:
        return lambda m: (m.get("type") == "closing_soon" and m.get("lot_id") == lid
                          and m.get("deadline_ms") == deadline)

    first = {n: await socks[n].wait_for(closing(d1), timeout=30) for n in ("a", "b", "w")}
    for m in first.values():
        assert 0 < m["deadline_ms"] - m["server_time_ms"] <= 4000 + 500
        assert set(m) >= {"type", "lot_id", "deadline_ms", "server_time_ms"}

    # A late bid extends the deadline: the notice is re-armed for the new one.
    mark = len(socks["b"].messages)
    assert (await socks["b"].bid(lid, lot["next_min_bid"]))["type"] == "accepted"
    extended = await socks["b"].wait_for(lambda m: m.get("type") == "extended", start=mark)
    d2 = extended["deadline_ms"]
    assert d2 > d1
    for n in ("a", "b", "w"):
        await socks[n].wait_for(closing(d2), timeout=30)
    await socks["a"].wait_for(lambda m: m.get("type") == "closed" and m.get("lot_id") == lid,
                              timeout=30)
    await socks["b"].wait_for(lambda m: m.get("type") == "closed" and m.get("lot_id") == lid,
                              timeout=30)
    # Everything published before the close has been relayed by now (one
    # pub/sub connection, in order). Exactly one notice per deadline.
    for n in ("a", "b", "w"):
        got = [m["deadline_ms"] for m in socks[n].of_type("closing_soon", lid)]
        assert got == [d1, d2], (n, got)
    for n in ("u", "z"):
        assert socks[n].of_type("closing_soon", lid) == []

    # SMS to bidders and watchers with a phone, one per out_id.
    for user, phone in ((alice, a_phone), (wendy, w_phone)):
        msgs = await poll_sms(stack, phone, lambda ms, u=user: any(
            m["out_id"] == f"closing:{lid}:{d1}:{u['id']}" for m in ms))
        assert all(m["template_code"] == CLOSING_TEMPLATE for m in msgs)
        assert len({m["out_id"] for m in msgs}) == len(msgs)
    assert await sms_to(stack, u_phone) == []
    for s in socks.values():
        await s.close()


async def test_watch_list_and_roles(stack, hall):
    session, lots = await hall.live_lots(2, ends_in_s=300)
    lid, lid2 = lots[0]["id"], lots[1]["id"]
    anon = hall.anon
    for method, path in (("POST", f"/api/lots/{lid}/watch"), ("DELETE", f"/api/lots/{lid}/watch"),
                         ("GET", "/api/me/watches")):
        code, body = await anon.call(method, path)
        assert code == 401 and body["code"] == "unauthorized", (method, path, body)
    code, body = await anon.call("POST", f"/api/lots/{lid}/watch", token="not-a-token")
    assert code == 401

    api, _user, _ = await phone_bidder(hall, balance=0)
    other, _o, _ = await phone_bidder(hall, balance=0)
    code, body = await api.call("POST", "/api/lots/999999999/watch")
    assert code == 404 and body["code"] == "not_found"
    draft_session, (draft,) = await hall.session_with_lots(1)
    code, body = await api.call("POST", f"/api/lots/{draft['id']}/watch")
    assert code == 404  # a draft lot is invisible to bidders

    assert await api.get("/api/me/watches") == {"watches": []}
    assert await api.post(f"/api/lots/{lid}/watch") == {"lot_id": lid, "watching": True}
    assert await api.post(f"/api/lots/{lid}/watch") == {"lot_id": lid, "watching": True}
    await api.post(f"/api/lots/{lid2}/watch")
    watches = (await api.get("/api/me/watches"))["watches"]
    assert [w["lot_id"] for w in watches] == [lid2, lid]  # newest first, no duplicates
    w = watches[1]
    assert w["status"] == "live" and w["title"] == lots[0]["title"]
    assert w["deadline_ms"] == lots[0]["deadline_ms"] and w["session_id"] == session["id"]
    assert (await other.get("/api/me/watches")) == {"watches": []}

    code, body = await api.call("DELETE", f"/api/lots/{lid}/watch")
    assert code == 200 and body == {"lot_id": lid, "watching": False}
    code, _ = await api.call("DELETE", f"/api/lots/{lid}/watch")  # idempotent
    assert code == 200
    assert [w["lot_id"] for w in (await api.get("/api/me/watches"))["watches"]] == [lid2]
    # Operators are users too.
    assert (await hall.operator.post(f"/api/lots/{lid}/watch"))["watching"] is True


async def test_settlement_hooks_send_sms(stack, hall):
    """notify.lot_won / notify.deposit_refunded as settlement calls them (in a worker
    process): each queues one SMS, however often called."""
    api, user, phone = await phone_bidder(hall, new_phone(), balance=0)
    order = {"id": 1, "lot_id": 77, "amount": 150000, "due": 145000, "pay_by_ms": 1_900_000_000_000}
    code = ("from workers import notify; import json, sys; a = json.loads(sys.argv[1]);"
            "[notify.lot_won(a['uid'], 77, a['order']) for _ in range(2)];"
            "notify.deposit_refunded(a['uid'], 5000, lot_id=77);"
            "notify.deposit_refunded(a['uid'], 10000, session_id=5)")
    subprocess.run([sys.executable, "-c", code, json.dumps({"uid": user["id"], "order": order})],
                   env=stack.env, cwd=ROOT, check=True)
    msgs = await poll_sms(stack, phone, lambda m: len(m) >= 3)
    by_id = {m["out_id"]: m for m in msgs}
    assert set(by_id) == {f"won:77:{user['id']}", f"refund:lot:77:{user['id']}",
                          f"refund:session:5:{user['id']}"}
    assert by_id[f"won:77:{user['id']}"]["params"]["amount"] == "1450.00"
    assert by_id[f"refund:lot:77:{user['id']}"]["params"]["amount"] == "50.00"
    # The duplicate lot_won was queued too; its send finds the out_id claimed
    # or sent and never reaches the gateway.
    assert len(msgs) == 3
