"""Second-chance offers (API.md, "Trust"): a forfeited lot (悔拍) is offered to
the next highest other bidder at their own best bid, at or above the reserve.

Real stack: the money sweep forfeits the order, the workers pass the lot on
and push `offer` to the bidder's sockets, the hall takes accept and decline,
the offer sweep expires what is past its deadline. Money balances after
every flow (check_money).
"""
from __future__ import annotations

import json
import time

from auction.snapshot import mask_name
from conftest import Api, Socket
from test_money import check_money, db_exec, db_rows, hammer, task_result, user_with_socket
from test_trust import forfeit
from workerctl import until


class Bidder:
    def __init__(self, api: Api, user: dict, sock: Socket) -> None:
        self.api, self.user, self.sock = api, user, sock

    @property
    def id(self) -> int:
        return self.user["id"]

    async def offers(self) -> list[dict]:
        return (await self.api.get("/api/me/offers"))["offers"]


async def sale(stack, hall, bids: list[int], bidders: list[Bidder] | None = None,
               **lot_fields) -> tuple[dict, list[Bidder], dict]:
    """A lot where bidder i bids bids[i], in that order; the last one wins.
    The lot, the bidders (`bidders` first, then new ones), and the winner's
    unpaid order. A bid of 0 is the start price."""
    fields = {"lot_deposit": 100, "start_price": 1_000, "increment": 100, **lot_fields}
    _, (lot,) = await hall.live_lots(1, ends_in_s=3600, **fields)
    known = list(bidders or [])
    bidders = []
    for i, amount in enumerate(bids):
        amount = amount or fields["start_price"]
        b = known[i] if i < len(known) else Bidder(*await user_with_socket(stack, hall))
        assert (await hall.pay_deposit(b.api, b.sock, lot["id"], scope="lot"))["state"] == "SUCCESS"
        await b.sock.join(lot["id"])
        assert (await b.sock.bid(lot["id"], amount))["type"] == "accepted", amount
        bidders.append(b)
    winner = bidders[-1]
    mark = len(winner.sock.messages)
    await hammer(hall, lot["id"])
    won = await winner.sock.wait_for(lambda m: m.get("type") == "won" and m["lot_id"] == lot["id"],
                                     start=mark, timeout=30)
    return lot, bidders, won["order"]


async def offer_for(b: Bidder, lot_id: int, start: int = 0) -> dict:
    return await b.sock.wait_for(lambda m: m.get("type") == "offer" and m["lot_id"] == lot_id,
                                 start=start, timeout=30)


def lot_audit(stack, lot_id: int) -> list[str]:
    return [a for (a,) in db_rows(stack, "SELECT action FROM auditentry WHERE target=? "
                                         "AND action LIKE 'offer.%' ORDER BY id", (f"lot:{lot_id}",))]


async def test_a_forfeited_lot_is_offered_to_the_runner_up_who_accepts_and_pays(stack, hall):
    # x's 1,000 is below the reserve; y is the runner-up; w wins and does not pay.
    lot, (x, y, w), order = await sale(stack, hall, [1_000, 1_100, 1_200], reserve_price=1_050,
                                       buyer_premium_bp=1_000)
    mark = len(y.sock.messages)
    await forfeit(stack, w.sock, order)
    offer = await offer_for(y, lot["id"], mark)
    assert offer["amount"] == 1_100 and offer["expires_ms"] > time.time() * 1000 + 3_600_000
    assert [(o["offer_id"], o["lot_id"], o["amount"], o["status"]) for o in await y.offers()] == [
        (offer["offer_id"], lot["id"], 1_100, "pending")]
    assert await x.offers() == [] and await w.offers() == []

    # Someone else's offer is not theirs to see or take.
    for who in (w, x):
        for action in ("accept", "decline"):
            code, body = await who.api.call("POST", f"/api/offers/{offer['offer_id']}/{action}")
            assert (code, body["code"]) == (404, "not_found")

    before = (await y.api.get("/api/me"))["balance"]
    bought = await y.api.post(f"/api/offers/{offer['offer_id']}/accept")
    assert (bought["lot_id"], bought["amount"], bought["premium"], bought["deposit_credited"],
            bought["due"], bought["status"]) == (lot["id"], 1_100, 110, 0, 1_210, "unpaid")
    again = await y.api.post(f"/api/offers/{offer['offer_id']}/accept")
    assert again["id"] == bought["id"]  # the same order, not a second one
    code, body = await y.api.call("POST", f"/api/offers/{offer['offer_id']}/decline")
    assert (code, body["code"]) == (409, "conflict")
    assert [o["status"] for o in await y.offers()] == ["accepted"]

    paid = await y.api.post(f"/api/orders/{bought['id']}/pay", {"method": "balance"})
    done = await task_result(y.sock, paid["task_id"])
    assert done["state"] == "SUCCESS" and done["result"]["paid"] == 1_210, done
    assert (await y.api.get("/api/me"))["balance"] == before - 1_210
    assert [(o["id"], o["status"]) for o in (await y.api.get("/api/me/orders"))["orders"]] == [
        (bought["id"], "paid")]
    code, body = await y.api.call("POST", f"/api/orders/{bought['id']}/pay", {"method": "balance"})
    assert (code, body["code"]) == (409, "already_paid")
    assert db_rows(stack, 'SELECT user_id, status FROM "order" WHERE lot_id=? ORDER BY id',
                   (lot["id"],)) == [(w.id, "forfeited"), (y.id, "paid")]
    assert lot_audit(stack, lot["id"]) == ["offer.create", "offer.accept"]
    check_money(stack, [b.id for b in (x, y, w)])
    for b in (x, y, w):
        await b.sock.close()


async def test_declined_expired_and_forfeited_offers_pass_on_until_nobody_is_left(stack, hall):
    lot, (x, y, z, w), order = await sale(stack, hall, [1_000, 1_100, 1_200, 1_300])
    lid = lot["id"]
    r = stack.sync_redis()

    # w forfeits: z (1,200) is offered the lot, accepts, and forfeits in turn.
    mark = len(z.sock.messages)
    await forfeit(stack, w.sock, order)
    z_offer = await offer_for(z, lid, mark)
    assert z_offer["amount"] == 1_200
    # The room no longer names w the buyer: it says the lot is offered on.
    snap = await hall.anon.get(f"/api/lots/{lid}")
    assert (snap["result"], snap.get("forfeited"), snap.get("second_chance")) == ("sold", True, None)
    z_order = await z.api.post(f"/api/offers/{z_offer['offer_id']}/accept")
    snap = await hall.anon.get(f"/api/lots/{lid}")
    assert (snap["winner"], snap["second_chance"], snap["sale_price"]) == (
        mask_name(z.user["username"]), True, 1_200)
    mark = len(y.sock.messages)
    await forfeit(stack, z.sock, z_order)
    assert db_rows(stack, 'SELECT strikes FROM "user" WHERE id=?', (z.id,)) == [(1,)]

    # y (1,100) is offered it and declines: it passes to x (1,000).
    y_offer = await offer_for(y, lid, mark)
    assert y_offer["amount"] == 1_100
    snap = await hall.anon.get(f"/api/lots/{lid}")  # z is no buyer either now
    assert (snap.get("second_chance"), snap.get("forfeited")) == (None, True)
    mark = len(x.sock.messages)
    declined = await y.api.post(f"/api/offers/{y_offer['offer_id']}/decline")
    assert declined["status"] == "declined"
    assert (await y.api.post(f"/api/offers/{y_offer['offer_id']}/decline"))["status"] == "declined"
    code, body = await y.api.call("POST", f"/api/offers/{y_offer['offer_id']}/accept")
    assert (code, body["code"]) == (409, "conflict")
    x_offer = await offer_for(x, lid, mark)
    assert x_offer["amount"] == 1_000

    # x is banned meanwhile: accepting is refused as such.
    await hall.operator.post(f"/api/admin/users/{x.id}/ban", {"reason": "test"})
    code, body = await x.api.call("POST", f"/api/offers/{x_offer['offer_id']}/accept")
    assert (code, body["code"]) == (403, "banned")

    # x's deadline passes: too late to accept; nobody is left (w, z had
    # their orders, y declined): the operators are told, the lot stays unsold.
    assert db_exec(stack, "UPDATE offer SET expires_ms=? WHERE id=?",
                   (int(time.time() * 1000) - 1000, x_offer["offer_id"])) == 1
    code, body = await x.api.call("POST", f"/api/offers/{x_offer['offer_id']}/accept")
    assert (code, body["code"]) == (409, "offer_expired")

    def none_left() -> list:
        return [a for a in map(json.loads, r.lrange("ops:alerts", 0, -1))
                if a.get("kind") == "offer_none_left" and a.get("lot_id") == lid]
    await until(lambda: bool(none_left()), "operators alerted that nobody is left")
    assert sorted(none_left()[0]["forfeited_by"]) == sorted([w.id, z.id])
    snap = await hall.anon.get(f"/api/lots/{lid}")  # unsold after all, in the room too
    assert (snap["result"], snap["winner"], snap["forfeited"]) == ("unsold", None, True)
    assert [o["status"] for o in await x.offers()] == ["expired"]
    assert [o["status"] for o in await z.offers()] == ["accepted"]
    assert lot_audit(stack, lid) == ["offer.create", "offer.accept", "offer.create",
                                     "offer.decline", "offer.create", "offer.expire",
                                     "offer.none_left"]
    assert db_rows(stack, "SELECT COUNT(*) FROM offer WHERE lot_id=? AND status='pending'",
                   (lid,)) == [(0,)]
    assert db_rows(stack, 'SELECT user_id, status FROM "order" WHERE lot_id=? ORDER BY id',
                   (lid,)) == [(w.id, "forfeited"), (z.id, "forfeited")]
    check_money(stack, [b.id for b in (x, y, z, w)])
    await hall.operator.post(f"/api/admin/users/{x.id}/unban", {"reason": "test over"})
    for b in (x, y, z, w):
        await b.sock.close()


async def test_an_expired_offer_passes_on_by_the_sweep(stack, hall):
    lot, (x, y, w), order = await sale(stack, hall, [1_000, 1_100, 1_200])
    mark = len(y.sock.messages)
    await forfeit(stack, w.sock, order)
    y_offer = await offer_for(y, lot["id"], mark)
    mark = len(x.sock.messages)
    # Nobody answers before the deadline: the offer sweep expires it and x is next.
    assert db_exec(stack, "UPDATE offer SET expires_ms=? WHERE id=?",
                   (int(time.time() * 1000) - 1000, y_offer["offer_id"])) == 1
    x_offer = await offer_for(x, lot["id"], mark)
    assert x_offer["amount"] == 1_000
    assert [o["status"] for o in await y.offers()] == ["expired"]
    code, body = await y.api.call("POST", f"/api/offers/{y_offer['offer_id']}/accept")
    assert (code, body["code"]) == (409, "offer_expired")
    code, body = await y.api.call("POST", f"/api/offers/{y_offer['offer_id']}/decline")
    assert (code, body["code"]) == (409, "offer_expired")
    check_money(stack, [b.id for b in (x, y, w)])
    for b in (x, y, w):
        await b.sock.close()


async def test_nobody_at_or_above_the_reserve_means_no_offer_and_an_alert(stack, hall):
    lot, (x, w), order = await sale(stack, hall, [1_000, 1_500], reserve_price=1_200)
    await forfeit(stack, w.sock, order)
    r = stack.sync_redis()
    await until(lambda: any(a.get("kind") == "offer_none_left" and a.get("lot_id") == lot["id"]
                            for a in map(json.loads, r.lrange("ops:alerts", 0, -1))),
                "operators alerted that nobody is left")
    assert await x.offers() == []
    assert not x.sock.of_type("offer")
    assert lot_audit(stack, lot["id"]) == ["offer.none_left"]
    check_money(stack, [x.id, w.id])
    for b in (x, w):
        await b.sock.close()

