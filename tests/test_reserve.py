"""保留价: a hidden reserve; a lot that closes below it is unsold and every
lot deposit goes back."""
from __future__ import annotations

from conftest import Socket


async def test_below_reserve_is_unsold_and_everyone_is_refunded(stack, hall):
    _s, (lot,) = await hall.live_lots(1, ends_in_s=5, extend_window_s=0, start_price=1000,
                                      increment=500, reserve_price=3000, lot_deposit=2000)
    lid = lot["id"]
    assert lot["reserve_met"] is False and "reserve_price" not in lot  # hidden
    a_api, _, a = await hall.paid_bidder(lid, scope="lot", join=True, balance=100_000)
    b_api, _, b = await hall.paid_bidder(lid, scope="lot", join=True, balance=100_000)
    assert (await a.bid(lid, 1000))["type"] == "accepted"
    second = await b.bid(lid, 2500)
    assert second["type"] == "accepted"
    event = await a.wait_for(lambda m: m.get("type") == "bid" and m["seq"] == 2)
    assert event["reserve_met"] is False

    closed = await a.wait_for(lambda m: m.get("type") == "closed", timeout=30)
    assert closed["result"] == "unsold" and closed["winner"] is None and closed["price"] == 2500
    for api, sock in ((a_api, a), (b_api, b)):
        refund = await sock.wait_for(lambda m: m.get("type") == "refund", timeout=30)
        assert refund["amount"] == 2000
        assert (await api.get("/api/me"))["balance"] == 100_000
        assert (await api.get("/api/me/orders"))["orders"] == []
    for s in (a, b):
        await s.close()


async def test_a_bid_reaching_the_reserve_meets_it(stack, hall):
    _s, (lot,) = await hall.live_lots(1, ends_in_s=600, start_price=1000, increment=500,
                                      reserve_price=3000)
    api, _ = await hall.bidder()
    sock = await Socket.connect(stack.ws_url, api.token)
    assert (await hall.pay_deposit(api, sock, lot["id"]))["state"] == "SUCCESS"
    # A proxy maximum above the reserve bids straight up to the reserve.
    answer = await sock.bid(lot["id"], 1000, max_amount=5000)
    assert answer["price"] == 3000 and answer["leading"] is True
    snap = await hall.anon.get(f"/api/lots/{lot['id']}")
    assert snap["reserve_met"] is True and snap["price"] == 3000
    await sock.close()


async def test_proxy_maximum_alone_and_a_leaders_raise(stack, hall):
    """Over the socket: a bid with only `max_amount` bids the minimum; the
    leader raises the maximum without outbidding themself; a challenger is
    answered by the proxy."""
    _s, (lot,) = await hall.live_lots(1, ends_in_s=600, start_price=1000, increment=100)
    lid = lot["id"]
    _, _, a = await hall.paid_bidder(lid, join=True)
    _, _, b = await hall.paid_bidder(lid, join=True)
    ref = "max-only"
    await a.send({"op": "bid", "lot_id": lid, "max_amount": 1500, "ref": ref})
    first = await a.wait_for(lambda m: m.get("ref") == ref)
    assert (first["type"], first["seq"], first["price"]) == ("accepted", 1, 1000)
    ref = "raise"
    await a.send({"op": "bid", "lot_id": lid, "max_amount": 3000, "ref": ref})
    raised = await a.wait_for(lambda m: m.get("ref") == ref)
    assert (raised["type"], raised["seq"], raised["price"], raised["leading"]) == (
        "accepted", 1, 1000, True)
    challenge = await b.bid(lid, 2000)
    assert challenge["type"] == "accepted" and challenge["leading"] is False
    answer = await b.wait_for(lambda m: m.get("type") == "bid" and m["seq"] == 3)
    assert answer["amount"] == 2100  # the proxy's answer: one increment above
    assert (await b.wait_for(lambda m: m.get("type") == "outbid"))["price"] == 2100
    for s in (a, b):
        await s.close()
