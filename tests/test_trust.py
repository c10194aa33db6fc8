"""Trust: bad payers lose their place, and pre-emption (API.md, "Trust").

Each forfeited order (悔拍) is a strike; the third bans its buyer: their next
deposit and their next bid (HTTP and WebSocket) get `banned`, and the audit log
has each strike and the ban. An operator's unban lets them bid again.
A pre-emption holder (优先购买权人) wins a tie at equal price.
"""
from __future__ import annotations

import time

from test_money import db_exec, db_rows, hammer, user_with_socket, won_order_for
from workerctl import until

async def forfeit(stack, sock, order: dict) -> dict:
    """Past its pay-by time: the money sweep forfeits it (instead of waiting 72 h)."""
    mark = len(sock.messages)
    assert db_exec(stack, 'UPDATE "order" SET pay_by_ms = ? WHERE id = ?',
                   (int(time.time() * 1000) - 1000, order["id"])) == 1
    return await sock.wait_for(lambda m: m.get("type") == "order" and m["order"]["id"] == order["id"]
                               and m["order"]["status"] == "forfeited", start=mark, timeout=30)


async def test_a_third_forfeit_bans_the_buyer_from_deposits_and_bids(stack, hall):
    api, user, sock = await user_with_socket(stack, hall)
    _, (open_lot,) = await hall.live_lots(1, ends_in_s=3600, lot_deposit=100)
    assert (await hall.pay_deposit(api, sock, open_lot["id"], scope="lot"))["state"] == "SUCCESS"
    _, (later_lot,) = await hall.live_lots(1, ends_in_s=3600, lot_deposit=100)

    for n in (1, 2):
        await forfeit(stack, sock, await won_order_for(stack, hall, api, sock, user))
        assert db_rows(stack, 'SELECT strikes, status FROM "user" WHERE id=?',
                       (user["id"],)) == [(n, "active")]
    await sock.join(open_lot["id"])
    assert (await sock.bid(open_lot["id"], 1000))["type"] == "accepted"  # two strikes: still in

    await forfeit(stack, sock, await won_order_for(stack, hall, api, sock, user))
    assert db_rows(stack, 'SELECT strikes, status, ban_reason FROM "user" WHERE id=?',
                   (user["id"],)) == [(3, "banned", "3 forfeited orders (悔拍)")]

    async def refused_as_banned() -> bool:
        # Below the minimum: refused `too_low` while not banned, changing nothing.
        answer = await sock.bid(open_lot["id"], 1)
        return answer.get("code") == "banned"
    await until(refused_as_banned, "bids refused as banned")
    code, body = await api.call("POST", f"/api/lots/{open_lot['id']}/bids", {"amount": 5_000, "ref": "x1"})
    assert (code, body["code"]) == (403, "banned")
    code, body = await api.call("POST", f"/api/lots/{later_lot['id']}/deposit",
                                {"scope": "lot", "method": "balance"})
    assert (code, body["code"]) == (403, "banned")
    assert "banned" in body["message"]

    audit = (await hall.operator.get(f"/api/admin/audit?target=user:{user['id']}"))["entries"]
    assert sorted(e["action"] for e in audit if e["action"].startswith("user.")) == [
        "user.ban", "user.strike", "user.strike", "user.strike"]

    await hall.operator.post(f"/api/admin/users/{user['id']}/unban", {"reason": "paid in person"})

    async def heard_again() -> bool:
        # Still the lot's leader from before the ban: answered as one again.
        answer = await sock.bid(open_lot["id"], 5_000, ref=f"again-{time.time()}")
        return answer.get("code") == "already_leading"
    await until(heard_again, "bids answered again after the unban")
    await sock.close()



async def test_a_preemption_holder_wins_a_tie_and_nobody_learns_who_holds(stack, hall):
    """优先购买权 (the court-auction rule): a holder may bid the current price itself
    and then leads; a lower rank beats a higher one at the same price; a bidder
    without the right still needs the next increment. Holders registered on a
    draft lot reach the engine at publishing (load.lua), on a scheduled lot at
    once (preempt.lua), and not at all once the lot is live."""
    from conftest import Socket
    session, (lot,) = await hall.session_with_lots(1, ends_in_s=3600, lot_deposit=100)
    lot_id = lot["id"]
    people = [await user_with_socket(stack, hall) for _ in range(3)]
    (plain_api, _plain, plain), (h1_api, holder1, h1), (h2_api, holder2, h2) = people
    op = hall.operator
    code, body = await plain_api.call("POST", f"/api/admin/lots/{lot_id}/preemption",
                                      {"user_id": holder1["id"], "rank": 1})
    assert (code, body["code"]) == (403, "forbidden")  # bidders never see or set holders
    for bad in ({"user_id": holder1["id"], "rank": 0}, {"user_id": holder1["id"], "rank": 1.5},
                {"user_id": str(holder1["id"]), "rank": 1}, {"user_id": holder1["id"]}):
        code, body = await op.call("POST", f"/api/admin/lots/{lot_id}/preemption", bad)
        assert (code, body["code"]) == (400, "invalid"), (bad, body)
    code, body = await op.call("POST", f"/api/admin/lots/{lot_id}/preemption",
                               {"user_id": 2**40, "rank": 1})
    assert (code, body["code"]) == (404, "not_found")
    for user, rank in ((holder1, 1), (holder2, 2)):
        code, body = await op.call("POST", f"/api/admin/lots/{lot_id}/preemption",
                                   {"user_id": user["id"], "rank": rank})
        assert code == 201 and body == {"lot_id": lot_id, "user_id": user["id"], "rank": rank}
    assert [h["rank"] for h in (await op.get(f"/api/admin/lots/{lot_id}/preemption"))["holders"]] \
        == [1, 2]

    watcher = await Socket.connect(stack.ws_url)
    await op.post(f"/api/admin/sessions/{session['id']}/publish", {})
    snap = await watcher.join(lot_id)
    if snap["status"] != "live":
        await watcher.wait_for(lambda m: m.get("type") == "lot_status" and m.get("status") == "live")
    await watcher.close()
    snap = await hall.anon.get(f"/api/lots/{lot_id}")
    assert snap["preemption"] is True
    code, body = await op.call("POST", f"/api/admin/lots/{lot_id}/preemption",
                               {"user_id": _plain["id"], "rank": 3})
    assert (code, body["code"]) == (409, "conflict")  # fixed once the lot is live

    for api, _user, sock in people:
        assert (await hall.pay_deposit(api, sock, lot_id, scope="lot"))["state"] == "SUCCESS"
    assert (await plain.bid(lot_id, 1000))["leading"] is True
    took = await h2.bid(lot_id, 1000)       # the same price: a holder takes the lead
    assert took["type"] == "accepted" and took["leading"] is True and took["price"] == 1000
    again = await plain.bid(lot_id, 1000)   # without the right, the same price is too low
    assert again["type"] == "rejected" and again["code"] == "too_low"
    assert (await h1.bid(lot_id, 1000))["leading"] is True  # rank 1 over rank 2 at 1000
    refused = await h2.bid(lot_id, 1000)
    assert refused["type"] == "rejected" and refused["code"] == "too_low"
    assert (await plain.bid(lot_id, 1100))["leading"] is True
    assert (await h1.bid(lot_id, 1100))["leading"] is True

    await hammer(hall, lot_id)
    await until(lambda: db_rows(stack, "SELECT status FROM lot WHERE id=?", (lot_id,))
                == [("settled",)], "the lot settled")
    order = db_rows(stack, 'SELECT user_id, amount FROM "order" WHERE lot_id=?', (lot_id,))
    assert order == [(holder1["id"], 1100)]   # the holder buys at the price it matched
    public = [await hall.anon.get(f"/api/lots/{lot_id}"),
              await hall.anon.get(f"/api/lots/{lot_id}/bids")]
    for doc in public:
        text = str(doc)
        assert "rank" not in text and "holder" not in text  # who holds never leaves the admin API
    for _api, _user, sock in people:
        await sock.close()


async def test_a_holder_registered_on_a_scheduled_lot_counts_at_once(stack, hall):
    """A published lot waiting for its start is in Redis already: the holder is
    added there too (the snapshot says so before the lot opens)."""
    far = int(time.time() * 1000) + 3_600_000
    session = await hall.operator.post("/api/admin/sessions", {
        "title": "scheduled with a holder", "deposit_amount": 100, "starts_at_ms": far})
    lot = await hall.operator.post(f"/api/admin/sessions/{session['id']}/lots", {
        "title": "court lot", "start_price": 1000, "increment": 100, "lot_deposit": 100,
        "ends_at_ms": far + 3_600_000})
    await hall.operator.post(f"/api/admin/sessions/{session['id']}/publish", {})
    lot_id = lot["id"]
    assert (await hall.anon.get(f"/api/lots/{lot_id}"))["status"] == "scheduled"
    assert (await hall.anon.get(f"/api/lots/{lot_id}"))["preemption"] is False
    _api, user = await hall.bidder(balance=0)
    code, _ = await hall.operator.call("POST", f"/api/admin/lots/{lot_id}/preemption",
                                       {"user_id": user["id"], "rank": 1})
    assert code == 201
    assert (await hall.anon.get(f"/api/lots/{lot_id}"))["preemption"] is True
