"""Bad input: every rejection carries the contract's code and status and changes nothing."""
from __future__ import annotations

import asyncio
import json
import time
import uuid

import jwt
import pytest

from conftest import Api, Socket


async def lot_state(hall, lot_id: int) -> tuple:
    """What a user can see of a lot: price, seq, bid count, leader and its bid history."""
    snap = await hall.anon.get(f"/api/lots/{lot_id}")
    # The chain's fields (bidder_ref, hash) arrive a moment after each bid (the
    # bid log links it): that is the record catching up, not a change a bid made.
    bids = [{k: v for k, v in b.items() if k not in ("bidder_ref", "hash")}
            for b in (await hall.anon.get(f"/api/lots/{lot_id}/bids"))["bids"]]
    # closed -> settled is the worker finishing the paperwork, not a change a bid made
    status = "closed" if snap["status"] == "settled" else snap["status"]
    return snap["price"], snap["seq"], snap["bid_count"], snap["leader"], status, bids


async def balance(api: Api) -> int:
    return (await api.get("/api/me"))["balance"]


async def ready_bidder(stack, hall, lot_id: int) -> tuple[Api, dict, Socket]:
    """A bidder with a session deposit paid and a socket in the lot's room."""
    api, user = await hall.bidder()
    sock = await Socket.connect(stack.ws_url, api.token)
    done = await hall.pay_deposit(api, sock, lot_id, scope="session")
    assert done["state"] == "SUCCESS", done
    await sock.join(lot_id)
    return api, user, sock


def assert_error(code: int, body, status: int, err: str) -> None:
    assert code == status, (code, body)
    assert isinstance(body, dict) and body["code"] == err, body
    assert isinstance(body.get("message"), str) and "Traceback" not in body["message"]


@pytest.fixture(scope="module")
async def live(stack, hall):
    session, (lot,) = await hall.live_lots(1, ends_in_s=3600)
    api, user, sock = await ready_bidder(stack, hall, lot["id"])
    # One accepted bid so the lot has a price, a seq and a history to protect.
    code, body = await api.call("POST", f"/api/lots/{lot['id']}/bids",
                                {"amount": 1000, "ref": "first"})
    assert code == 200 and body["seq"] == 1
    yield session, lot, api, user, sock
    await sock.close()


BAD_AMOUNTS = ["100", 100.0, 1000.0, True, None, -100, 0, 10**12 + 1, 10**30, [1100], {"a": 1}]


@pytest.mark.parametrize("amount", BAD_AMOUNTS, ids=repr)
async def test_http_bid_bad_amount_is_invalid_and_changes_nothing(stack, hall, live, amount):
    _, lot, api, _, _ = live
    before = await lot_state(hall, lot["id"])
    code, body = await api.call("POST", f"/api/lots/{lot['id']}/bids",
                                {"amount": amount, "ref": uuid.uuid4().hex})
    assert_error(code, body, 400, "invalid")
    assert await lot_state(hall, lot["id"]) == before


@pytest.mark.parametrize("raw", [b"{not json", b"[1100, \"x\"]", b"\"text\"", b"17", b"null",
                                 b"\xff\xfe\x00", b'{"amount": 1100, "ref": "a"'], ids=repr)
async def test_http_bid_malformed_body_is_invalid(stack, hall, live, raw):
    _, lot, api, _, _ = live
    before = await lot_state(hall, lot["id"])
    code, body = await api.call("POST", f"/api/lots/{lot['id']}/bids", raw=raw)
    assert_error(code, body, 400, "invalid")
    assert await lot_state(hall, lot["id"]) == before


@pytest.mark.parametrize("fields", [{"amount": 1100}, {"amount": 1100, "ref": ""},
                                    {"amount": 1100, "ref": "x" * 65},
                                    {"amount": 1100, "ref": 12345},
                                    {"amount": 1100, "ref": None},
                                    {"amount": 1200, "max_amount": 1100, "ref": "maxlow"},
                                    {"amount": 1100, "max_amount": "2000", "ref": "maxstr"}],
                         ids=repr)
async def test_http_bid_bad_ref_or_max_is_invalid(stack, hall, live, fields):
    _, lot, api, _, _ = live
    before = await lot_state(hall, lot["id"])
    code, body = await api.call("POST", f"/api/lots/{lot['id']}/bids", fields)
    assert_error(code, body, 400, "invalid")
    assert await lot_state(hall, lot["id"]) == before


async def test_ref_of_64_chars_is_accepted(stack, hall, live):
    _, lot, _, _, _ = live
    other, _, sock = await ready_bidder(stack, hall, lot["id"])
    before = await lot_state(hall, lot["id"])
    code, body = await other.call("POST", f"/api/lots/{lot['id']}/bids",
                                  {"amount": before[0] + 100, "ref": "r" * 64})
    assert code == 200 and body["seq"] == before[1] + 1, body
    await sock.close()


async def test_bid_on_unknown_lot_is_not_found(stack, hall, live):
    _, _, api, _, _ = live
    for lid in (987654321, 2**62):
        code, body = await api.call("POST", f"/api/lots/{lid}/bids",
                                    {"amount": 1000, "ref": uuid.uuid4().hex})
        assert_error(code, body, 404, "not_found")
        code, body = await api.call("GET", f"/api/lots/{lid}")
        assert_error(code, body, 404, "not_found")


async def test_bid_without_token_or_with_bad_token_is_unauthorized(stack, hall, live):
    _, lot, api, user, _ = live
    before = await lot_state(hall, lot["id"])
    bid = {"amount": before[0] + 100, "ref": uuid.uuid4().hex}
    code, body = await hall.anon.call("POST", f"/api/lots/{lot['id']}/bids", bid)
    assert_error(code, body, 401, "unauthorized")
    now = int(time.time())
    forged = jwt.encode({"sub": str(user["id"]), "name": user["username"], "role": "operator",
                         "iat": now, "exp": now + 3600}, "not-the-secret-but-long-enough-for-hs256!!", algorithm="HS256")
    expired = jwt.encode({"sub": str(user["id"]), "name": user["username"], "role": "bidder",
                          "iat": now - 7200, "exp": now - 3600}, stack.env["HALL_SECRET"],
                         algorithm="HS256")
    tampered = api.token[:-4] + ("AAAA" if not api.token.endswith("AAAA") else "BBBB")
    for tok in (forged, expired, tampered, "garbage", "a.b.c", "x" * 5000):
        code, body = await hall.anon.call("POST", f"/api/lots/{lot['id']}/bids", bid, token=tok)
        assert_error(code, body, 401, "unauthorized")
        code, body = await hall.anon.call("GET", "/api/me", token=tok)
        assert_error(code, body, 401, "unauthorized")
    # A forged operator token does not open the operator API either.
    code, body = await hall.anon.call("POST", f"/api/admin/lots/{lot['id']}/hammer", token=forged)
    assert_error(code, body, 401, "unauthorized")
    assert await lot_state(hall, lot["id"]) == before


async def test_bid_without_deposit(stack, hall, live):
    _, lot, _, _, _ = live
    api, _ = await hall.bidder()
    before = await lot_state(hall, lot["id"])
    code, body = await api.call("POST", f"/api/lots/{lot['id']}/bids",
                                {"amount": before[0] + 100, "ref": uuid.uuid4().hex})
    assert_error(code, body, 409, "no_deposit")
    assert await lot_state(hall, lot["id"]) == before
    assert await balance(api) == 10_000_000


async def test_bid_on_closed_paused_scheduled_and_draft_lots(stack, hall):
    session, (closing, pausing) = await hall.live_lots(2, ends_in_s=3600)
    api, _, sock = await ready_bidder(stack, hall, closing["id"])
    await sock.join(pausing["id"])

    # closed by the operator's hammer
    assert (await sock.bid(closing["id"], 1000, ref="cross-lot"))["type"] == "accepted"
    # The same ref on another lot is another bid (refs are per user and lot).
    other_lot = await sock.bid(pausing["id"], 1000, ref="cross-lot")
    assert other_lot["type"] == "accepted" and other_lot["seq"] == 1
    closed = await hall.operator.post(f"/api/admin/lots/{closing['id']}/hammer")
    assert closed["status"] in ("closed", "settled")
    await sock.wait_for(lambda m: m.get("type") == "closed" and m.get("lot_id") == closing["id"])
    before = await lot_state(hall, closing["id"])
    code, body = await api.call("POST", f"/api/lots/{closing['id']}/bids",
                                {"amount": 1100, "ref": uuid.uuid4().hex})
    assert_error(code, body, 409, "lot_closed")
    assert (await sock.bid(closing["id"], 1200))["code"] == "lot_closed"
    assert await lot_state(hall, closing["id"]) == before

    # paused
    paused = await hall.operator.post(f"/api/admin/lots/{pausing['id']}/pause")
    assert paused["status"] == "paused"
    before = await lot_state(hall, pausing["id"])
    code, body = await api.call("POST", f"/api/lots/{pausing['id']}/bids",
                                {"amount": 1000, "ref": uuid.uuid4().hex})
    assert_error(code, body, 409, "lot_not_open")
    assert (await sock.bid(pausing["id"], 1000))["code"] == "lot_not_open"
    assert await lot_state(hall, pausing["id"]) == before

    # scheduled (published to start in an hour) and draft (never published)
    now_ms = int(time.time() * 1000)
    s2 = await hall.operator.post("/api/admin/sessions", {
        "title": "later", "deposit_amount": 10_000, "starts_at_ms": now_ms + 3_600_000})
    scheduled = await hall.operator.post(f"/api/admin/sessions/{s2['id']}/lots", {
        "title": "later lot", "start_price": 1000, "increment": 100, "lot_deposit": 5000,
        "ends_at_ms": now_ms + 7_200_000})
    s3, (draft,) = await hall.session_with_lots(1, ends_in_s=7200)
    await hall.operator.post(f"/api/admin/sessions/{s2['id']}/publish", {})
    snap = await hall.anon.get(f"/api/lots/{scheduled['id']}")
    assert snap["status"] == "scheduled"
    for lot in (scheduled, draft):
        code, body = await api.call("POST", f"/api/lots/{lot['id']}/bids",
                                    {"amount": 1000, "ref": uuid.uuid4().hex})
        assert_error(code, body, 409, "lot_not_open")
    snap = await hall.anon.get(f"/api/lots/{scheduled['id']}")
    assert snap["seq"] == 0 and snap["price"] is None
    await sock.close()


async def test_idempotent_ref_across_http_and_ws(stack, hall, live):
    _, lot, _, _, _ = live
    api, _, sock = await ready_bidder(stack, hall, lot["id"])
    lid = lot["id"]
    price = (await lot_state(hall, lid))[0]

    # An accepted first answer is repeated and nothing new is placed.
    code, first = await api.call("POST", f"/api/lots/{lid}/bids", {"amount": price + 100, "ref": "same-1"})
    assert code == 200 and first["accepted"] is True
    after_first = await lot_state(hall, lid)
    code, again = await api.call("POST", f"/api/lots/{lid}/bids", {"amount": price + 500, "ref": "same-1"})
    assert code == 200 and again == first
    ws_again = await sock.bid(lid, price + 900, ref="same-1")
    assert ws_again["type"] == "accepted" and ws_again["seq"] == first["seq"]
    assert await lot_state(hall, lid) == after_first

    # A rejected first answer (too low) is repeated too, even with a now-valid amount.
    code, rej = await api.call("POST", f"/api/lots/{lid}/bids", {"amount": price, "ref": "same-2"})
    assert code == 409 and rej["code"] in ("too_low", "already_leading"), rej
    code, rej2 = await api.call("POST", f"/api/lots/{lid}/bids", {"amount": price + 5000, "ref": "same-2"})
    assert code == 409 and rej2["code"] == rej["code"]
    ws_rej = await sock.bid(lid, price + 5000, ref="same-2")
    assert ws_rej["type"] == "rejected" and ws_rej["code"] == rej["code"]
    assert await lot_state(hall, lid) == after_first

    # First over WebSocket, then over HTTP.
    other, _, osock = await ready_bidder(stack, hall, lid)
    ws_first = await osock.bid(lid, after_first[0] + 100, ref="ws-first")
    assert ws_first["type"] == "accepted"
    mid = await lot_state(hall, lid)
    code, http_again = await other.call("POST", f"/api/lots/{lid}/bids",
                                        {"amount": after_first[0] + 300, "ref": "ws-first"})
    assert code == 200 and http_again["seq"] == ws_first["seq"]
    assert await lot_state(hall, lid) == mid
    # The ref is per user: another user's "same-1" is a new bid of its own.
    code, fresh = await other.call("POST", f"/api/lots/{lid}/bids",
                                   {"amount": mid[0] + 100, "ref": "same-1"})
    assert code == 409 and fresh["code"] == "already_leading"
    code, fresh = await api.call("POST", f"/api/lots/{lid}/bids",
                                 {"amount": mid[0] + 100, "ref": "ws-first"})
    assert code == 200 and fresh["seq"] == mid[1] + 1
    await sock.close()
    await osock.close()


async def test_deposit_bad_scope_method_and_twice(stack, hall, live):
    _, lot, _, _, _ = live
    api, _ = await hall.bidder()
    sock = await Socket.connect(stack.ws_url, api.token)
    for body in ({"scope": "everything", "method": "balance"}, {"scope": "lot", "method": "cash"},
                 {"scope": None, "method": "balance"}, {"method": "balance"}, {"scope": "lot"},
                 {"scope": ["lot"], "method": "balance"}):
        code, data = await api.call("POST", f"/api/lots/{lot['id']}/deposit", body)
        assert_error(code, data, 400, "invalid")
    code, data = await api.call("POST", f"/api/lots/{lot['id']}/deposit", raw=b"[1]")
    assert_error(code, data, 400, "invalid")
    code, data = await api.call("POST", "/api/lots/987654321/deposit",
                                {"scope": "lot", "method": "balance"})
    assert_error(code, data, 404, "not_found")
    assert await balance(api) == 10_000_000
    assert (await api.get(f"/api/lots/{lot['id']}/deposit"))["paid"] is False

    done = await hall.pay_deposit(api, sock, lot["id"], scope="lot")
    assert done["state"] == "SUCCESS", done
    paid_balance = await balance(api)
    assert paid_balance == 10_000_000 - lot["deposit"]["lot_amount"]
    code, data = await api.call("POST", f"/api/lots/{lot['id']}/deposit",
                                {"scope": "lot", "method": "balance"})
    if code == 202:  # allowed: the task fails with already_paid
        result = await sock.wait_for(lambda m: m.get("type") == "task"
                                     and m.get("task_id") == data["task_id"])
        assert result["state"] == "FAILURE" and result["error"]["code"] == "already_paid"
    else:
        assert_error(code, data, 409, "already_paid")
    assert await balance(api) == paid_balance
    await sock.close()


async def test_someone_elses_task_and_order(stack, hall, live):
    _, lot, owner_api, _, _ = live
    api, _ = await hall.bidder()
    sock = await Socket.connect(stack.ws_url, api.token)
    answer = await api.post(f"/api/lots/{lot['id']}/deposit", {"scope": "lot", "method": "balance"})
    task_id = answer["task_id"]
    await sock.wait_for(lambda m: m.get("type") == "task" and m.get("task_id") == task_id)
    assert (await api.get(f"/api/tasks/{task_id}"))["state"] == "SUCCESS"
    code, body = await owner_api.call("GET", f"/api/tasks/{task_id}")
    assert_error(code, body, 404, "not_found")
    code, body = await hall.anon.call("GET", f"/api/tasks/{task_id}")
    assert_error(code, body, 401, "unauthorized")
    for bogus in (uuid.uuid4().hex, "x" * 64, "not-a-task"):
        code, body = await api.call("GET", f"/api/tasks/{bogus}")
        assert_error(code, body, 404, "not_found")
    code, body = await api.call("GET", "/api/tasks/" + "y" * 65)
    assert_error(code, body, 404, "not_found")
    # paying an order that does not exist / is not yours
    code, body = await api.call("POST", "/api/orders/987654321/pay", {"method": "balance"})
    assert_error(code, body, 404, "not_found")
    await sock.close()


async def test_pay_someone_elses_order(stack, hall):
    # Start price above the deposit: the order stays unpaid after settlement.
    _, (lot,) = await hall.live_lots(1, ends_in_s=3600, start_price=50_000)
    winner, _, wsock = await ready_bidder(stack, hall, lot["id"])
    thief, _ = await hall.bidder()
    assert (await wsock.bid(lot["id"], 50_000))["type"] == "accepted"
    await hall.operator.post(f"/api/admin/lots/{lot['id']}/hammer")

    async def order() -> dict:
        mark = 0
        while True:
            orders = (await winner.get("/api/me/orders"))["orders"]
            if orders:
                return orders[0]
            mark = len(wsock.messages)
            await wsock.wait_for(lambda m: m.get("type") in ("won", "task", "refund"), start=mark,
                                 timeout=30)
    o = await asyncio.wait_for(order(), 40)
    thief_balance = await balance(thief)
    code, body = await thief.call("POST", f"/api/orders/{o['id']}/pay", {"method": "balance"})
    assert_error(code, body, 404, "not_found")
    assert (await thief.get("/api/me/orders"))["orders"] == []
    assert await balance(thief) == thief_balance
    assert (await winner.get("/api/me/orders"))["orders"][0]["status"] == "unpaid"
    # bad method on one's own order
    code, body = await winner.call("POST", f"/api/orders/{o['id']}/pay", {"method": "gold"})
    assert_error(code, body, 400, "invalid")
    assert (await winner.get("/api/me/orders"))["orders"][0]["status"] == "unpaid"
    await wsock.close()


async def test_register_taken_username_and_bad_fields(stack, hall):
    name = f"dup{uuid.uuid4().hex[:8]}"
    data = await hall.anon.post("/api/auth/register", {"username": name, "password": "secret123"})
    code, body = await hall.anon.call("POST", "/api/auth/register",
                                      {"username": name, "password": "other-pass"})
    assert_error(code, body, 409, "conflict")
    # The original account still logs in with its own password, not the new one.
    await hall.anon.post("/api/auth/login", {"username": name, "password": "secret123"})
    code, body = await hall.anon.call("POST", "/api/auth/login",
                                      {"username": name, "password": "other-pass"})
    assert_error(code, body, 401, "unauthorized")
    for bad in ({"username": name + "x"}, {"username": 5, "password": "secret123"},
                {"username": "a b c", "password": "secret123"},
                {"username": "u" * 33, "password": "secret123"},
                {"username": name + "y", "password": "123"}):
        code, body = await hall.anon.call("POST", "/api/auth/register", bad)
        assert_error(code, body, 400, "invalid")
    code, body = await hall.anon.call("POST", "/api/auth/register", raw=b"{oops")
    assert_error(code, body, 400, "invalid")
    me = await Api(stack.base, data["token"]).get("/api/me")
    assert me["username"] == name and me["balance"] == 0


@pytest.mark.parametrize("method,path", [
    ("GET", "/api/nope"), ("GET", "/api/lots/abc"), ("GET", "/api/lots/-1"),
    ("GET", "/api/lots/0"), ("GET", "/api/lots/1.5"), ("GET", "/api/lots/99999999999999999999"),
    ("GET", "/api/lots/9223372036854775807"), ("GET", "/api/lots/abc/bids"),
    ("POST", "/api/lots/abc/bids"), ("GET", "/api/sessions/xyz"), ("GET", "/api/sessions/0"),
    ("POST", "/api/orders/abc/pay"), ("GET", "/api/lots/%00"), ("GET", "/api/lots/1/nothing"),
    ("POST", "/api/admin/lots/abc/hammer"), ("DELETE", "/api/nope/deeper"),
])
async def test_unknown_paths_are_json_404(stack, hall, live, method, path):
    _, _, api, _, _ = live
    code, body = await api.call(method, path, body={} if method == "POST" else None)
    assert code == 404, (code, body)
    assert isinstance(body, dict) and body["code"] == "not_found", body


async def test_bad_query_arguments(stack, hall, live):
    _, lot, _, _, _ = live
    for q in ("since_seq=abc", "since_seq=-1", "limit=abc", "limit=0", "limit=1001", "limit=1.5"):
        code, body = await hall.anon.call("GET", f"/api/lots/{lot['id']}/bids?{q}")
        assert_error(code, body, 400, "invalid")
    code, body = await hall.anon.call("GET", "/api/sessions?status=bogus")
    assert_error(code, body, 400, "invalid")


async def test_metrics_and_health_answer(stack, hall):
    code, body = await hall.anon.call("GET", "/metrics")
    assert code == 200 and isinstance(body, str) and body
    code, _ = await hall.anon.call("GET", "/healthz")
    assert code == 200


# -- WebSocket ------------------------------------------------------------------

async def ping(sock: Socket) -> dict:
    mark = len(sock.messages)
    await sock.send({"op": "ping"})
    return await sock.wait_for(lambda m: m.get("type") == "pong", start=mark)


async def next_error(sock: Socket, frame) -> dict:
    mark = len(sock.messages)
    await sock.send(frame)
    return await sock.wait_for(lambda m: m.get("type") in ("error", "rejected", "accepted"),
                               start=mark)


@pytest.mark.parametrize("frame", ["{nope", "", "[1,2]", "\"op\"", "42", "null",
                                   json.dumps({"op": "dance"}), json.dumps({"op": None}),
                                   json.dumps({"op": ["bid"]}), json.dumps({"no_op": 1}),
                                   json.dumps({"op": "join", "lot_id": "1"}),
                                   json.dumps({"op": "join", "lot_id": -5}),
                                   json.dumps({"op": "join", "lot_id": 1, "since_seq": -1}),
                                   json.dumps({"op": "join", "lot_id": 1, "since_seq": "3"}),
                                   json.dumps({"op": "leave"})], ids=repr)
async def test_ws_bad_frames_get_error_and_socket_stays_usable(stack, hall, frame):
    sock = await Socket.connect(stack.ws_url)
    err = await next_error(sock, frame)
    assert err["type"] == "error" and err["code"] == "invalid", err
    assert (await ping(sock))["type"] == "pong"
    await sock.close()


async def test_ws_join_unknown_lot(stack, hall):
    sock = await Socket.connect(stack.ws_url)
    err = await sock.join(987654321)
    assert err["type"] == "error" and err["code"] == "not_found", err
    assert (await ping(sock))["type"] == "pong"
    await sock.close()


async def test_ws_bad_bid_fields_with_readable_ref(stack, hall, live):
    _, lot, api, _, sock = live
    before = await lot_state(hall, lot["id"])
    for amount in ("100", 100.0, True, None, -1, 0, 10**12 + 1, 10**30):
        ans = await sock.bid(lot["id"], amount, ref=f"bad-{uuid.uuid4().hex[:8]}")
        assert ans["type"] == "rejected" and ans["code"] == "invalid", ans
    ans = await sock.bid("abc", 1100, ref="bad-lot")
    assert ans["type"] == "rejected" and ans["code"] == "invalid"
    ans = await sock.bid(lot["id"], 1200, ref="bad-max", max_amount=1100)
    assert ans["type"] == "rejected" and ans["code"] == "invalid"
    # no readable ref: still an answer, still nothing placed
    mark = len(sock.messages)
    await sock.send({"op": "bid", "lot_id": lot["id"], "amount": before[0] + 100, "ref": "r" * 65})
    ans = await sock.wait_for(lambda m: m.get("type") in ("rejected", "error", "accepted"), start=mark)
    assert ans["type"] in ("rejected", "error") and ans["code"] == "invalid", ans
    assert await lot_state(hall, lot["id"]) == before


async def test_ws_anonymous_bid_is_unauthorized(stack, hall, live):
    _, lot, _, _, _ = live
    before = await lot_state(hall, lot["id"])
    for token in (None, "junk-token"):
        sock = await Socket.connect(stack.ws_url, token)
        await sock.join(lot["id"])
        ans = await sock.bid(lot["id"], before[0] + 100, ref="anon")
        assert ans["type"] == "rejected" and ans["code"] == "unauthorized" and ans["ref"] == "anon"
        await sock.close()
    assert await lot_state(hall, lot["id"]) == before


async def test_ws_oversized_frames(stack, hall, live):
    _, lot, _, _, sock = live
    before = await lot_state(hall, lot["id"])
    s = await Socket.connect(stack.ws_url)
    big = json.dumps({"op": "ping", "pad": "x" * 5000})
    err = await next_error(s, big)
    assert err["type"] == "error" and err["code"] in ("invalid", "payload_too_large")
    assert (await ping(s))["type"] == "pong"
    await s.send(json.dumps({"op": "bid", "lot_id": lot["id"], "amount": 1, "pad": "y" * 100_000}))
    await asyncio.wait_for(s._reader, 20)
    assert s.ws.close_code == 1009
    # other sockets are unaffected
    assert (await ping(sock))["type"] == "pong"
    assert await lot_state(hall, lot["id"]) == before


async def test_more_bad_input_never_500(stack, hall, live):
    """Odd values in every field: each answer is a contract error, never a 500."""
    session, lot, api, user, _ = live
    op = hall.operator
    before = await lot_state(hall, lot["id"])
    balance_before = await balance(api)
    big = "9223372036854775807"
    now = int(time.time() * 1000)
    calls = [
        (api, "POST", f"/api/lots/{big}/bids", {"amount": 1000, "ref": "x"}, 404, "not_found"),
        (api, "POST", f"/api/lots/{big}/deposit", {"scope": "lot", "method": "balance"}, 404, "not_found"),
        (api, "GET", f"/api/lots/{big}/deposit", None, 404, "not_found"),
        (api, "GET", f"/api/lots/{big}/bids", None, 404, "not_found"),
        (api, "POST", f"/api/orders/{big}/pay", {"method": "balance"}, 404, "not_found"),
        (api, "GET", f"/api/sessions/{big}", None, 404, "not_found"),
        (api, "POST", "/api/orders/1/pay", {"method": "balance", "coupon_id": "1"}, 400, "invalid"),
        (op, "POST", f"/api/admin/lots/{big}/hammer", None, 404, "not_found"),
        (op, "POST", f"/api/admin/lots/{big}/pause", None, 404, "not_found"),
        (op, "POST", f"/api/admin/users/{big}/credit", {"amount": 1}, 404, "not_found"),
        (op, "POST", f"/api/admin/sessions/{big}/publish", {}, 404, "not_found"),
        (op, "POST", f"/api/admin/sessions/{big}/lots", {"title": "t", "start_price": 1,
                                                          "increment": 1, "lot_deposit": 0,
                                                          "ends_at_ms": now + 60_000}, 404, "not_found"),
        (op, "POST", f"/api/admin/users/{user['id']}/credit", {"amount": 0}, 400, "invalid"),
        (op, "POST", f"/api/admin/users/{user['id']}/credit", {"amount": -5}, 400, "invalid"),
        (op, "POST", f"/api/admin/users/{user['id']}/credit", {"amount": 1.5}, 400, "invalid"),
        (op, "POST", f"/api/admin/users/{user['id']}/credit", {"amount": 10**30}, 400, "invalid"),
        (op, "POST", f"/api/admin/users/{user['id']}/credit", {}, 400, "invalid"),
        (op, "POST", "/api/admin/sessions", {"title": 5, "deposit_amount": 1}, 400, "invalid"),
        (op, "POST", "/api/admin/sessions", {"title": "t", "deposit_amount": "1"}, 400, "invalid"),
        (op, "POST", "/api/admin/sessions", {"title": "t", "deposit_amount": 1,
                                             "starts_at_ms": 10**30}, 400, "invalid"),
        (hall.anon, "POST", "/api/auth/login", {"username": ["a"], "password": "x"}, 400, "invalid"),
        (hall.anon, "POST", "/api/auth/login", {"username": "nobody-here", "password": 5}, 400, "invalid"),
        (hall.anon, "POST", "/api/auth/login", [], 400, "invalid"),
    ]
    for who, method, path, body, status, err in calls:
        code, data = await who.call(method, path, body)
        assert (code, data.get("code") if isinstance(data, dict) else data) == (status, err), \
            (method, path, body, code, data)
    draft_session, _ = await hall.session_with_lots(1, ends_in_s=3600)
    for bad in ({"increment": "100"}, {"increment": [[500, 10], [400, 20]]},
                {"increment": [[None, 10], [500, 20]]}, {"increment": [[500, 0]]},
                {"increment": []}, {"increment": 0}, {"ends_at_ms": now - 1000},
                {"ends_at_ms": "soon"}, {"start_price": 0}, {"images": "x"},
                {"reserve_price": -1}, {"title": ""}, {"extend_window_s": -1}):
        body = {"title": "t", "start_price": 1000, "increment": 100, "lot_deposit": 0,
                "ends_at_ms": now + 3_600_000, **bad}
        code, data = await op.call("POST", f"/api/admin/sessions/{draft_session['id']}/lots", body)
        assert code == 400 and data["code"] == "invalid", (bad, code, data)
    assert len((await op.get(f"/api/sessions/{draft_session['id']}"))["lots"]) == 1
    assert await lot_state(hall, lot["id"]) == before
    assert await balance(api) == balance_before


async def test_ws_odd_frames(stack, hall, live):
    _, lot, _, _, sock = live
    s = await Socket.connect(stack.ws_url)
    await s.ws.send(b"\xff\xfe\xfd")  # a binary frame that is not UTF-8 JSON
    err = await s.wait_for(lambda m: m.get("type") == "error")
    assert err["code"] == "invalid"
    for frame in ({"op": "join", "lot_id": True}, {"op": "join", "lot_id": 2**70},
                  {"op": "join", "lot_id": 1.0}, {"op": "leave", "lot_id": "x"}):
        e = await next_error(s, json.dumps(frame))
        assert e["type"] == "error" and e["code"] == "invalid", (frame, e)
    # leaving a lot one never joined is harmless
    mark = len(s.messages)
    await s.send({"op": "leave", "lot_id": lot["id"]})
    assert (await ping(s))["type"] == "pong"
    assert not [m for m in s.messages[mark:] if m.get("type") == "error"
                and m.get("code") == "internal"]
    await s.close()
