"""Two hall processes on one Redis: same order everywhere; losing a hall loses nothing."""
from __future__ import annotations

import asyncio
import random
import sys

import pytest_asyncio

from conftest import Proc, Socket, free_port


@pytest_asyncio.fixture
async def second_hall(stack, tmp_path):
    port = free_port()
    proc = Proc("hall-b", [sys.executable, "run.py", "hall", "--port", str(port)], stack.env,
                tmp_path)
    proc.start()
    proc.wait_for_line("hall ready")
    proc.ws_url = f"ws://127.0.0.1:{port}/ws"
    yield proc
    proc.kill()


async def test_bids_through_either_hall_reach_every_client_in_one_order(stack, hall, second_hall):
    _s, (lot,) = await hall.live_lots(1, ends_in_s=600, extend_window_s=0)
    lid = lot["id"]
    socks = [(await hall.paid_bidder(lid, url=stack.ws_url if i % 2 == 0 else second_hall.ws_url,
                                     join=True))[2] for i in range(4)]
    viewers = [await Socket.connect(u) for u in (stack.ws_url, second_hall.ws_url) * 3]
    for v in viewers:
        await v.join(lid)

    rnd = random.Random(7)
    price = 0
    leader = None
    lost = [0, 0, 0, 0]  # how often each bidder lost the lead
    for _ in range(40):
        i = rnd.randrange(4)
        answer = await socks[i].bid(lid, max(1000, price + 100))
        if answer["type"] == "accepted":
            price = answer["price"]
            if leader is not None:
                lost[leader] += 1
            leader = i
    seq = (await hall.anon.get(f"/api/lots/{lid}"))["seq"]
    assert seq > 10
    for v in viewers + socks:
        await v.wait_for(lambda m: m.get("type") == "bid" and m["seq"] == seq)
    expected = [(m["seq"], m["amount"]) for m in viewers[0].of_type("bid", lid)]
    assert [s for s, _ in expected] == list(range(1, seq + 1))
    for v in viewers + socks:
        assert [(m["seq"], m["amount"]) for m in v.of_type("bid", lid)] == expected

    # One `outbid` per lost lead, whichever hall took the bid: a bidder's own hall
    # delivers it at once, the other from pub/sub, and nobody gets it twice. A
    # pause published after every bid reaches each socket behind any late copy.
    await hall.operator.post(f"/api/admin/lots/{lid}/pause")
    for sock, n in zip(socks, lost):
        await sock.wait_for(lambda m: m.get("type") == "lot_status" and m["status"] == "paused")
        assert len(sock.of_type("outbid", lid)) == n, (n, sock.of_type("outbid", lid))
    for s in viewers + socks:
        await s.close()


async def test_a_client_that_loses_its_hall_resumes_on_the_other(stack, hall, second_hall):
    _s, (lot,) = await hall.live_lots(1, ends_in_s=600, extend_window_s=0)
    lid = lot["id"]
    _, _, a = await hall.paid_bidder(lid)
    _, _, b = await hall.paid_bidder(lid)
    viewer = await Socket.connect(second_hall.ws_url)
    await viewer.join(lid)
    assert (await a.bid(lid, 1000))["seq"] == 1
    await viewer.wait_for(lambda m: m.get("type") == "bid" and m["seq"] == 1)

    second_hall.kill()  # the viewer's hall dies
    await asyncio.wait_for(viewer._reader, 10)
    assert (await b.bid(lid, 1100))["seq"] == 2
    assert (await a.bid(lid, 1200))["seq"] == 3

    back = await Socket.connect(stack.ws_url)
    snap = await back.join(lid, since_seq=1)
    assert snap["seq"] == 3
    await back.wait_for(lambda m: m.get("type") == "bid" and m["seq"] == 3)
    assert [m["amount"] for m in back.of_type("bid", lid)] == [1100, 1200]
    for s in (a, b, back):
        await s.close()
