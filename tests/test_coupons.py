"""Coupons (优惠券) through the API: an operator issues, the owner lists them and
spends one on an order (once), bidders and strangers cannot issue."""
from __future__ import annotations

import time

from conftest import Socket


def in_ms(seconds: float) -> int:
    return int(time.time() * 1000 + seconds * 1000)


async def test_issue_list_and_permissions(stack, hall):
    api, user = await hall.bidder(balance=0)
    other_api, other = await hall.bidder(balance=0)
    path = f"/api/admin/users/{user['id']}/coupons"
    expires = in_ms(3600)

    fixed = await hall.operator.post(path, {"kind": "fixed", "value": 2_000, "min_spend": 10_000,
                                            "expires_at_ms": expires})
    assert {k: fixed[k] for k in ("kind", "value", "min_spend", "expires_at_ms", "used_at_ms",
                                  "usable")} == {"kind": "fixed", "value": 2_000,
                                                 "min_spend": 10_000, "expires_at_ms": expires,
                                                 "used_at_ms": None, "usable": True}
    code, pct = await hall.operator.call("POST", path, {"kind": "percent", "value": 15,
                                                        "expires_at_ms": expires})
    assert code == 201 and pct["min_spend"] == 0 and pct["kind"] == "percent"

    mine = (await api.get("/api/me/coupons"))["coupons"]
    assert sorted(c["id"] for c in mine) == sorted([fixed["id"], pct["id"]])
    assert all(set(c) >= {"id", "kind", "value", "min_spend", "expires_at_ms", "used_at_ms",
                          "usable"} and c["usable"] for c in mine)
    assert (await other_api.get("/api/me/coupons")) == {"coupons": []}  # own only

    # A bidder cannot issue (to themselves either); anonymous is 401.
    good = {"kind": "fixed", "value": 100, "expires_at_ms": expires}
    code, body = await api.call("POST", path, good)
    assert (code, body["code"]) == (403, "forbidden")
    code, body = await hall.anon.call("POST", path, good)
    assert (code, body["code"]) == (401, "unauthorized")
    code, body = await hall.anon.call("GET", "/api/me/coupons")
    assert (code, body["code"]) == (401, "unauthorized")
    code, body = await hall.operator.call("POST", "/api/admin/users/987654321/coupons", good)
    assert (code, body["code"]) == (404, "not_found")

    bad = [
        {"kind": "cash", "value": 100, "expires_at_ms": expires},
        {"value": 100, "expires_at_ms": expires},
        {"kind": "fixed", "value": 0, "expires_at_ms": expires},
        {"kind": "fixed", "value": -5, "expires_at_ms": expires},
        {"kind": "fixed", "value": 10**12 + 1, "expires_at_ms": expires},
        {"kind": "fixed", "value": 100.0, "expires_at_ms": expires},
        {"kind": "fixed", "value": "100", "expires_at_ms": expires},
        {"kind": "fixed", "value": True, "expires_at_ms": expires},
        {"kind": "percent", "value": 0, "expires_at_ms": expires},
        {"kind": "percent", "value": 101, "expires_at_ms": expires},
        {"kind": "percent", "value": 10.5, "expires_at_ms": expires},
        {"kind": "fixed", "value": 100, "expires_at_ms": in_ms(-1)},
        {"kind": "fixed", "value": 100},
        {"kind": "fixed", "value": 100, "expires_at_ms": "tomorrow"},
        {"kind": "fixed", "value": 100, "min_spend": -1, "expires_at_ms": expires},
        {"kind": "fixed", "value": 100, "min_spend": 1.5, "expires_at_ms": expires},
    ]
    for body_in in bad:
        code, body = await hall.operator.call("POST", path, body_in)
        assert (code, body["code"]) == (400, "invalid"), body_in
    code, body = await hall.operator.call("POST", path, raw=b"[1,2]")
    assert (code, body["code"]) == (400, "invalid")
    assert len((await api.get("/api/me/coupons"))["coupons"]) == 2  # nothing more issued


async def test_pay_an_order_with_an_issued_coupon_once(stack, hall):
    api, user = await hall.bidder(balance=1_000_000)
    sock = await Socket.connect(stack.ws_url, api.token)
    _, lots = await hall.live_lots(2, ends_in_s=3600, start_price=50_000)
    orders = []
    for lot in lots:
        # A lot deposit: credited when the lot settles, so the `won` order's due is final.
        assert (await hall.pay_deposit(api, sock, lot["id"], scope="lot"))["state"] == "SUCCESS"
        await sock.join(lot["id"])
        assert (await sock.bid(lot["id"], 50_000))["type"] == "accepted"
        mark = len(sock.messages)
        await hall.operator.post(f"/api/admin/lots/{lot['id']}/hammer")
        won = await sock.wait_for(lambda m, lid=lot["id"]: m.get("type") == "won"
                                  and m.get("lot_id") == lid, start=mark, timeout=30)
        orders.append(won["order"])
    first, second = orders
    assert first["status"] == "unpaid" and first["due"] == 50_000 - 5_000

    coupon = await hall.operator.post(f"/api/admin/users/{user['id']}/coupons", {
        "kind": "percent", "value": 20, "min_spend": 50_000, "expires_at_ms": in_ms(3600)})
    before = (await api.get("/api/me"))["balance"]
    answer = await api.post(f"/api/orders/{first['id']}/pay",
                            {"method": "balance", "coupon_id": coupon["id"]})
    done = await sock.wait_for(lambda m: m.get("type") == "task"
                               and m.get("task_id") == answer["task_id"], timeout=30)
    assert done["state"] == "SUCCESS", done
    expected = first["due"] - first["due"] * 20 // 100
    assert done["result"]["paid"] == expected < first["due"]
    assert (await api.get("/api/me"))["balance"] == before - expected
    paid = {o["id"]: o for o in (await api.get("/api/me/orders"))["orders"]}[first["id"]]
    assert (paid["status"], paid["coupon_id"]) == ("paid", coupon["id"])
    (listed,) = [c for c in (await api.get("/api/me/coupons"))["coupons"]
                 if c["id"] == coupon["id"]]
    assert listed["usable"] is False and listed["used_at_ms"] is not None

    # Single use: refused on the other order, and nothing moves.
    code, body = await api.call("POST", f"/api/orders/{second['id']}/pay",
                                {"method": "balance", "coupon_id": coupon["id"]})
    assert (code, body["code"]) == (409, "conflict")
    assert (await api.get("/api/me"))["balance"] == before - expected
    # Someone else's coupon is not theirs to spend.
    other_api, other = await hall.bidder(balance=0)
    theirs = await hall.operator.post(f"/api/admin/users/{other['id']}/coupons", {
        "kind": "fixed", "value": 1_000, "expires_at_ms": in_ms(3600)})
    code, body = await api.call("POST", f"/api/orders/{second['id']}/pay",
                                {"method": "balance", "coupon_id": theirs["id"]})
    assert (code, body["code"]) == (404, "not_found")
    await sock.close()
