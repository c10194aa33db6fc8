"""Trust: bad payers lose their place (API.md, "Trust").

Each forfeited order (悔拍) is a strike; the third bans its buyer: their next
deposit and their next bid (HTTP and WebSocket) get `banned`, and the audit log
has each strike and the ban. An operator's unban lets them bid again.
"""
from __future__ import annotations

import time

from test_money import db_exec, db_rows, user_with_socket, won_order_for
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

