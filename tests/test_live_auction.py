"""End to end: deposits, a live room, bidding, soft close, closing, the order."""
from __future__ import annotations

import asyncio

from conftest import Socket


async def test_two_bidders_full_auction(stack, hall):
    alice_api, alice = await hall.bidder(prefix="alice")
    bob_api, bob = await hall.bidder(prefix="bob")
    # Closes ~6 s after going live; every bid in the 30 s window pushes the
    # deadline to bid time + 8 s, so the first bid visibly extends it.
    session, (lot,) = await hall.live_lots(1, ends_in_s=6, extend_window_s=30, extend_by_s=8,
                                           start_price=10_000, increment=500)
    lot_id = lot["id"]
    assert lot["status"] == "live" and lot["price"] is None and lot["next_min_bid"] == 10_000

    a = await Socket.connect(stack.ws_url, alice_api.token)
    b = await Socket.connect(stack.ws_url, bob_api.token)
    watcher = await Socket.connect(stack.ws_url)  # anonymous viewer

    # Bidding before paying the deposit is refused.
    await a.join(lot_id)
    refused = await a.bid(lot_id, 10_000)
    assert refused["type"] == "rejected" and refused["code"] == "no_deposit"

    done = await hall.pay_deposit(alice_api, a, lot_id, scope="session")
    assert done["state"] == "SUCCESS", done
    deposit_msg = await a.wait_for(lambda m: m.get("type") == "deposit")
    assert deposit_msg["scope"] == "session" and deposit_msg["amount"] == 10_000
    done = await hall.pay_deposit(bob_api, b, lot_id, scope="lot")
    assert done["state"] == "SUCCESS", done
    me = await alice_api.get("/api/me")
    assert me["balance"] == 10_000_000 - 10_000

    await b.join(lot_id)
    await watcher.join(lot_id)

    first = await a.bid(lot_id, 10_000)
    assert first["type"] == "accepted" and first["seq"] == 1
    extended = await watcher.wait_for(lambda m: m.get("type") == "extended")
    assert extended["deadline_ms"] > lot["deadline_ms"]

    assert (await a.bid(lot_id, 10_500))["code"] == "already_leading"
    assert (await b.bid(lot_id, 10_400))["code"] == "too_low"
    assert (await b.bid(lot_id, 10_700))["code"] == "invalid"
    assert (await b.bid(lot_id, 11_000))["type"] == "accepted"
    outbid = await a.wait_for(lambda m: m.get("type") == "outbid")
    assert outbid == {**outbid, "lot_id": lot_id, "price": 11_000}
    assert (await a.bid(lot_id, 12_000))["seq"] == 3

    # Everyone sees the same bids; names masked; the bidder's own are "mine".
    bid_events = await watcher.wait_for(lambda m: m.get("type") == "bid" and m["seq"] == 3)
    assert "*" in bid_events["bidder"] and "mine" not in bid_events
    mine = await a.wait_for(lambda m: m.get("type") == "bid" and m["seq"] == 3)
    assert mine["mine"] is True

    # The lot closes by itself at its (extended) deadline.
    closed = [await s.wait_for(lambda m: m.get("type") == "closed", timeout=30)
              for s in (a, b, watcher)]
    for c in closed:
        assert {k: c[k] for k in ("lot_id", "result", "price", "winner")} == {
            "lot_id": lot_id, "result": "sold", "price": 12_000, "winner": closed[2]["winner"]}
    assert closed[2]["winner"].startswith(alice["username"][0]) and "*" in closed[2]["winner"]
    assert (await b.bid(lot_id, 13_000))["code"] == "lot_closed"

    # Settlement: alice has an order; bob's lot deposit comes back.
    async def settled() -> list:
        while True:
            orders = (await alice_api.get("/api/me/orders"))["orders"]
            if orders:
                return orders
            await a.wait_for(lambda m: m.get("type") == "won", timeout=30)
    orders = await asyncio.wait_for(settled(), 30)
    assert len(orders) == 1
    order = orders[0]
    assert order["lot_id"] == lot_id and order["amount"] == 12_000 and order["status"] == "unpaid"
    assert order["pay_by_ms"] > closed[0]["server_time_ms"]
    refund = await b.wait_for(lambda m: m.get("type") == "refund", timeout=30)
    assert refund["amount"] == 5_000
    assert (await bob_api.get("/api/me"))["balance"] == 10_000_000
    history = (await hall.anon.get(f"/api/lots/{lot_id}/bids"))["bids"]
    assert [h["amount"] for h in history] == [10_000, 11_000, 12_000]
    for s in (a, b, watcher):
        await s.close()


async def test_bids_sent_back_to_back_are_decided_in_the_order_sent(stack, hall):
    """A client that does not wait for answers (a double tap, a script) has
    its bids decided in the order it sent them: the first is accepted and
    the second, from the leader, refused, never the other way round."""
    session, lots = await hall.live_lots(3, start_price=1000, increment=100)
    _api, _user, sock = await hall.paid_bidder(lots[0]["id"])
    for lot in lots:
        lot_id = lot["id"]
        mark = len(sock.messages)
        for ref, amount in (("first", 1000), ("second", 1100), ("third", 1200)):
            await sock.send({"op": "bid", "lot_id": lot_id, "amount": amount,
                             "ref": f"{ref}-{lot_id}"})
        answers = {}
        for ref in ("first", "second", "third"):
            answers[ref] = await sock.wait_for(
                lambda m, r=f"{ref}-{lot_id}": m.get("ref") == r, start=mark)
        assert answers["first"]["type"] == "accepted", answers
        assert answers["first"]["receipt"]["amount"] == 1000
        assert [answers[r].get("code") for r in ("second", "third")] == \
            ["already_leading", "already_leading"], answers
        snap = await hall.anon.get(f"/api/lots/{lot_id}")
        assert snap["price"] == 1000 and snap["next_min_bid"] == 1100
    await sock.close()
