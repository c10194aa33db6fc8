"""Roles: the operator API is for operators; users see only their own tasks and orders."""
from __future__ import annotations

import asyncio
import time
import uuid

from conftest import Api, Socket


def admin_calls(session_id: int, draft_session_id: int, lot_id: int, user_id: int) -> list:
    now = int(time.time() * 1000)
    return [
        ("POST", "/api/admin/sessions", {"title": "sneaky", "deposit_amount": 1}),
        ("POST", f"/api/admin/sessions/{draft_session_id}/lots",
         {"title": "sneaky lot", "start_price": 1, "increment": 1, "lot_deposit": 0,
          "ends_at_ms": now + 3_600_000}),
        ("POST", f"/api/admin/sessions/{draft_session_id}/publish", {}),
        ("POST", f"/api/admin/lots/{lot_id}/open", None),
        ("POST", f"/api/admin/lots/{lot_id}/pause", None),
        ("POST", f"/api/admin/lots/{lot_id}/resume", None),
        ("POST", f"/api/admin/lots/{lot_id}/fair-warning", None),
        ("POST", f"/api/admin/lots/{lot_id}/hammer", None),
        ("POST", f"/api/admin/users/{user_id}/credit", {"amount": 123_456}),
        ("GET", "/api/admin/overview", None),
        # the back office (issue 13)
        ("GET", "/api/admin/sessions", None),
        ("GET", "/api/admin/audit", None),
        ("POST", f"/api/admin/sessions/{draft_session_id}/reorder", {"lot_ids": []}),
        ("GET", f"/api/admin/sessions/{session_id}/results.csv", None),
        ("GET", "/api/admin/users", None),
        ("GET", f"/api/admin/users/{user_id}", None),
        ("POST", f"/api/admin/users/{user_id}/ban", {"reason": "x"}),
        ("POST", f"/api/admin/users/{user_id}/unban", {"reason": "x"}),
        ("GET", "/api/admin/orders", None),
        ("GET", "/api/admin/orders/1", None),
        ("GET", "/api/admin/jobs", None),
        ("POST", "/api/admin/jobs/some-task-id/rerun", None),
        ("GET", f"/api/admin/lots/{lot_id}", None),
        # also for ids that do not exist: the role is checked first
        ("POST", "/api/admin/lots/987654321/hammer", None),
        ("POST", "/api/admin/users/987654321/credit", {"amount": 1}),
    ]


async def world(hall, lot_id: int, draft_session_id: int, user_api: Api) -> tuple:
    """What the calls above could change, as users and the operator see it."""
    snap = await hall.anon.get(f"/api/lots/{lot_id}")
    bids = (await hall.anon.get(f"/api/lots/{lot_id}/bids"))["bids"]
    draft = await hall.operator.get(f"/api/sessions/{draft_session_id}")
    sessions = (await hall.operator.get("/api/sessions"))["sessions"]
    me = await user_api.get("/api/me")
    return (snap["status"], snap["deadline_ms"], snap["seq"], snap["price"], len(bids),
            draft["status"], len(draft["lots"]), len(sessions), me["balance"], me["role"])


async def test_bidder_and_anonymous_get_no_operator_api(stack, hall):
    session, (lot,) = await hall.live_lots(1, ends_in_s=3600)
    draft_session, _ = await hall.session_with_lots(1, ends_in_s=3600)
    api, user = await hall.bidder(balance=50_000)
    watcher = await Socket.connect(stack.ws_url)
    await watcher.join(lot["id"])
    before = await world(hall, lot["id"], draft_session["id"], api)
    assert before[0] == "live" and before[5] == "draft" and before[8] == 50_000

    for method, path, body in admin_calls(session["id"], draft_session["id"], lot["id"], user["id"]):
        code, data = await api.call(method, path, body)
        assert code == 403 and data["code"] == "forbidden", (path, code, data)
        code, data = await hall.anon.call(method, path, body)
        assert code == 401 and data["code"] == "unauthorized", (path, code, data)
        code, data = await hall.anon.call(method, path, body, token="not-a-token")
        assert code == 401 and data["code"] == "unauthorized", (path, code, data)
    # Even a malformed body is refused for the role, not parsed.
    code, data = await api.call("POST", f"/api/admin/users/{user['id']}/credit", raw=b"{oops")
    assert code == 403 and data["code"] == "forbidden"

    assert await world(hall, lot["id"], draft_session["id"], api) == before
    # The room saw no status change and no closing.
    await watcher.send({"op": "ping"})
    await watcher.wait_for(lambda m: m.get("type") == "pong")
    assert not [m for m in watcher.messages if m.get("type") in ("lot_status", "closed")]
    # The bidder is still a bidder and can still bid normally.
    assert (await api.get("/api/me"))["role"] == "bidder"
    await watcher.close()


async def test_operator_can_use_the_operator_api(stack, hall):
    op = hall.operator
    api, user = await hall.bidder(balance=0)
    credited = await op.post(f"/api/admin/users/{user['id']}/credit", {"amount": 70_000})
    assert credited["balance"] == 70_000
    assert (await api.get("/api/me"))["balance"] == 70_000
    code, data = await op.call("POST", f"/api/admin/users/{user['id']}/credit", {"amount": "5"})
    assert code == 400 and data["code"] == "invalid"
    code, data = await op.call("POST", "/api/admin/users/987654321/credit", {"amount": 5})
    assert code == 404 and data["code"] == "not_found"
    assert (await api.get("/api/me"))["balance"] == 70_000

    session = await op.post("/api/admin/sessions", {"title": "ops", "deposit_amount": 1000})
    assert session["status"] == "draft"
    lot = await op.post(f"/api/admin/sessions/{session['id']}/lots", {
        "title": "ops lot", "start_price": 1000, "increment": 100, "lot_deposit": 500,
        "ends_at_ms": int(time.time() * 1000) + 3_600_000})
    assert lot["status"] == "draft"
    watcher = await Socket.connect(stack.ws_url)
    published = await op.post(f"/api/admin/sessions/{session['id']}/publish", {})
    assert published["status"] in ("published", "live")
    snap = await watcher.join(lot["id"])
    if snap["status"] != "live":
        await watcher.wait_for(lambda m: m.get("type") == "lot_status" and m.get("status") == "live")
    lid = lot["id"]

    async def control(action: str, status: str) -> dict:
        mark = len(watcher.messages)
        answer = await op.post(f"/api/admin/lots/{lid}/{action}")
        assert answer["status"] == status, (action, answer)
        return answer, mark

    _, mark = await control("pause", "paused")
    await watcher.wait_for(lambda m: m.get("type") == "lot_status" and m["status"] == "paused",
                           start=mark)
    _, mark = await control("resume", "live")
    await watcher.wait_for(lambda m: m.get("type") == "lot_status" and m["status"] == "live",
                           start=mark)
    _, mark = await control("fair-warning", "live")
    await watcher.wait_for(lambda m: m.get("type") == "lot_status", start=mark)
    _, mark = await control("open", "live")  # already live: stays live
    overview = await op.get("/api/admin/overview")
    assert isinstance(overview, dict) and overview
    mark = len(watcher.messages)
    hammered = await op.post(f"/api/admin/lots/{lid}/hammer")
    assert hammered["status"] in ("closed", "settled")
    closed = await watcher.wait_for(lambda m: m.get("type") == "closed", start=mark)
    assert closed["lot_id"] == lid and closed["result"] == "unsold"
    # Hammering again is harmless (the same result, no second `closed`); reopening is a conflict.
    again = await op.post(f"/api/admin/lots/{lid}/hammer")
    assert again["status"] in ("closed", "settled")
    for action in ("resume", "pause", "open", "fair-warning"):
        code, data = await op.call("POST", f"/api/admin/lots/{lid}/{action}")
        assert code == 409 and data["code"] == "conflict", (action, code, data)
    code, data = await op.call("POST", f"/api/admin/sessions/{session['id']}/publish", {})
    assert code == 409 and data["code"] == "conflict"
    await watcher.send({"op": "ping"})
    await watcher.wait_for(lambda m: m.get("type") == "pong", start=mark)
    assert len([m for m in watcher.messages if m.get("type") == "closed"]) == 1
    snap = await hall.anon.get(f"/api/lots/{lid}")
    assert snap["status"] in ("closed", "settled")
    await watcher.close()


async def test_tasks_and_orders_are_private(stack, hall):
    # The start price is above the lot deposit, so the order stays unpaid
    # (a deposit that covers the whole order pays it).
    _, (lot,) = await hall.live_lots(1, ends_in_s=3600, start_price=50_000)
    lid = lot["id"]
    alice, _ = await hall.bidder(prefix="alice")
    bob, _ = await hall.bidder(prefix="bob")
    a = await Socket.connect(stack.ws_url, alice.token)
    b = await Socket.connect(stack.ws_url, bob.token)
    await a.join(lid)
    await b.join(lid)
    a_task = await hall.pay_deposit(alice, a, lid, scope="lot")
    b_task = await hall.pay_deposit(bob, b, lid, scope="lot")
    assert a_task["state"] == b_task["state"] == "SUCCESS"
    # Each sees its own task; never the other's (404, as if it did not exist).
    assert (await alice.get(f"/api/tasks/{a_task['task_id']}"))["state"] == "SUCCESS"
    for who, task in ((alice, b_task), (bob, a_task)):
        code, data = await who.call("GET", f"/api/tasks/{task['task_id']}")
        assert code == 404 and data["code"] == "not_found"
    code, data = await hall.operator.call("GET", f"/api/tasks/{a_task['task_id']}")
    assert code == 404 and data["code"] == "not_found"
    # The other's task messages never reached this socket.
    assert a_task["task_id"] not in [m.get("task_id") for m in b.messages]
    assert b_task["task_id"] not in [m.get("task_id") for m in a.messages]

    assert (await a.bid(lid, 50_000))["type"] == "accepted"
    assert (await b.bid(lid, 50_100))["type"] == "accepted"
    mark = len(b.messages)
    await hall.operator.post(f"/api/admin/lots/{lid}/hammer")
    await b.wait_for(lambda m: m.get("type") == "closed", start=mark)

    async def bobs_orders() -> list:
        while True:
            mark = len(b.messages)  # before the read: a message during it still wakes us
            orders = (await bob.get("/api/me/orders"))["orders"]
            if orders:
                return orders
            await b.wait_for(lambda m: m.get("type") in ("won", "task", "refund", "order"),
                             start=mark, timeout=30)
    orders = await asyncio.wait_for(bobs_orders(), 40)
    assert [(o["lot_id"], o["amount"]) for o in orders] == [(lid, 50_100)]
    assert (await alice.get("/api/me/orders"))["orders"] == []
    code, data = await alice.call("POST", f"/api/orders/{orders[0]['id']}/pay", {"method": "balance"})
    assert code == 404 and data["code"] == "not_found"
    code, data = await hall.anon.call("GET", "/api/me/orders")
    assert code == 401 and data["code"] == "unauthorized"
    assert (await bob.get("/api/me/orders"))["orders"][0]["status"] == "unpaid"
    for s in (a, b):
        await s.close()


async def test_user_cannot_become_operator(stack, hall):
    name = f"wannabe{uuid.uuid4().hex[:6]}"
    code, data = await hall.anon.call("POST", "/api/auth/register",
                                      {"username": name, "password": "secret123",
                                       "role": "operator", "balance": 10**9})
    assert code == 201 and data["user"]["role"] == "bidder"
    api = Api(stack.base, data["token"])
    me = await api.get("/api/me")
    assert me["role"] == "bidder" and me["balance"] == 0
    code, data = await api.call("GET", "/api/admin/overview")
    assert code == 403 and data["code"] == "forbidden"


async def test_second_chance_offers_are_for_bidders_only(stack, hall):
    """GET /api/me/offers and POST /api/offers/{id}/accept|decline: anonymous
    401, an operator 403 (offers are bidders'), a bidder's unknown id 404."""
    calls = [("GET", "/api/me/offers", None), ("POST", "/api/offers/1/accept", None),
             ("POST", "/api/offers/1/decline", None),
             ("POST", "/api/offers/1/accept", {"junk": [1, 2]})]
    for method, path, body in calls:
        code, data = await hall.anon.call(method, path, body)
        assert (code, data["code"]) == (401, "unauthorized"), path
        code, data = await hall.anon.call(method, path, body, token="not-a-token")
        assert (code, data["code"]) == (401, "unauthorized"), path
        code, data = await hall.operator.call(method, path, body)
        assert (code, data["code"]) == (403, "forbidden"), path
    api, _ = await hall.bidder(balance=0)
    for action in ("accept", "decline"):
        code, data = await api.call("POST", f"/api/offers/987654321/{action}")
        assert (code, data["code"]) == (404, "not_found")
    assert (await api.get("/api/me/offers"))["offers"] == []


async def test_top_ups_and_wallets_are_private(stack, hall, wechat_sim):
    """充值 (issue 14): only a logged-in user tops up, for themselves; one's
    top-ups, wallet and top-up task are nobody else's business."""
    for method, path in (("POST", "/api/me/topups"), ("GET", "/api/me/topups"),
                         ("GET", "/api/me/wallet")):
        code, data = await hall.anon.call(method, path, {"amount": 100, "scene": "native"}
                                          if method == "POST" else None)
        assert (code, data["code"]) == (401, "unauthorized"), path
    alice, a_user = await hall.bidder(balance=0, prefix="alice")
    bob, _ = await hall.bidder(balance=0, prefix="bob")
    a = await Socket.connect(stack.ws_url, alice.token)
    b = await Socket.connect(stack.ws_url, bob.token)
    # A user id in the body changes nothing: the top-up is the caller's own.
    task = await alice.post("/api/me/topups", {"amount": 4_400, "scene": "native",
                                               "user_id": 987654321})
    done = await a.wait_for(lambda m: m.get("type") == "task" and m.get("task_id") == task["task_id"],
                            timeout=30)
    assert done["state"] == "SUCCESS"
    code, data = await bob.call("GET", f"/api/tasks/{task['task_id']}")
    assert (code, data["code"]) == (404, "not_found")
    assert [t["amount"] for t in (await alice.get("/api/me/topups"))["topups"]] == [4_400]
    assert (await bob.get("/api/me/topups"))["topups"] == []
    mark = len(a.messages)
    await Api(wechat_sim.url).post("/sim/pay", {"code_url": done["result"]["code_url"]})
    await a.wait_for(lambda m: m.get("type") == "topup", start=mark, timeout=30)
    assert (await alice.get("/api/me"))["balance"] == 4_400
    assert (await bob.get("/api/me/wallet"))["entries"] == []
    assert (await bob.get("/api/me"))["balance"] == 0
    assert not [m for m in b.messages if m.get("type") == "topup"]
    assert a_user["id"] != (await bob.get("/api/me"))["id"]
    for s in (a, b):
        await s.close()
