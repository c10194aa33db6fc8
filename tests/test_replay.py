"""Rejoining a room with since_seq: the missed bids once each, then live ones, no gap."""
from __future__ import annotations

import asyncio
import uuid


from conftest import Api, Socket


async def ready(stack, hall, lot_id: int) -> Api:
    api, _ = await hall.bidder()
    sock = await Socket.connect(stack.ws_url, api.token)
    done = await hall.pay_deposit(api, sock, lot_id, scope="session")
    assert done["state"] == "SUCCESS", done
    await sock.close()
    return api


async def http_bid(api: Api, lot_id: int, amount: int) -> dict:
    return await api.post(f"/api/lots/{lot_id}/bids", {"amount": amount, "ref": uuid.uuid4().hex})


async def flush(sock: Socket) -> None:
    """A ping round trip: everything the server sent before the pong has arrived."""
    mark = len(sock.messages)
    await sock.send({"op": "ping"})
    await sock.wait_for(lambda m: m.get("type") == "pong", start=mark)


def bid_seqs(sock: Socket, lot_id: int, start: int = 0) -> list[int]:
    return [m["seq"] for m in sock.messages[start:]
            if m.get("type") == "bid" and m.get("lot_id") == lot_id]


async def test_reconnect_with_since_seq_gets_missed_bids_then_live(stack, hall):
    # Every bid falls inside the (huge) extension window, so each one moves the deadline.
    _, (lot,) = await hall.live_lots(1, ends_in_s=600, extend_window_s=3600, extend_by_s=1200)
    lid = lot["id"]
    alice, bob = await ready(stack, hall, lid), await ready(stack, hall, lid)

    viewer = await Socket.connect(stack.ws_url)
    snap = await viewer.join(lid)
    assert snap["type"] == "snapshot" and snap["seq"] == 0
    await http_bid(alice, lid, 1000)
    await http_bid(bob, lid, 1100)
    seen = await viewer.wait_for(lambda m: m.get("type") == "bid" and m["seq"] == 2)
    last_seq, seen_deadline = seen["seq"], seen["deadline_ms"]
    await viewer.close()

    # While it is away: three more bids, each one a late bid that extends the deadline.
    amounts = {}
    for i, who in enumerate((alice, bob, alice)):
        answer = await http_bid(who, lid, 1200 + 100 * i)
        amounts[answer["seq"]] = 1200 + 100 * i
    current = max(amounts)
    assert current == 5
    away_deadline = answer["deadline_ms"]
    assert away_deadline > seen_deadline

    back = await Socket.connect(stack.ws_url)
    snap = await back.join(lid, since_seq=last_seq)
    assert snap["type"] == "snapshot"
    assert snap["seq"] == current and snap["price"] == 1400
    assert snap["deadline_ms"] == away_deadline
    snap_at = back.messages.index(snap)
    await back.wait_for(lambda m: m.get("type") == "bid" and m["seq"] == current)
    await flush(back)
    replayed = [m for m in back.messages[snap_at:] if m.get("type") == "bid"]
    assert [m["seq"] for m in replayed] == list(range(last_seq + 1, current + 1))
    assert [m["amount"] for m in replayed] == [amounts[s] for s in range(3, 6)]
    assert all("*" in m["bidder"] and m["lot_id"] == lid for m in replayed)
    # Nothing of the replay precedes the snapshot.
    assert bid_seqs(back, lid, 0) == bid_seqs(back, lid, snap_at)
    # The extensions it missed are visible: the replay's last deadline is the one in force.
    assert replayed[-1]["deadline_ms"] == away_deadline
    assert [m for m in back.messages[snap_at:] if m.get("type") == "extended"], back.messages

    # Live events follow without a gap and without repeats.
    live = await http_bid(bob, lid, 1500)
    assert live["seq"] == current + 1
    await back.wait_for(lambda m: m.get("type") == "bid" and m["seq"] == current + 1)
    await flush(back)
    assert bid_seqs(back, lid) == list(range(last_seq + 1, current + 2))

    # The HTTP history agrees with what the socket saw.
    history = (await hall.anon.get(f"/api/lots/{lid}/bids?since_seq={last_seq}"))["bids"]
    assert [(h["seq"], h["amount"]) for h in history] == \
        [(m["seq"], m["amount"]) for m in back.messages if m.get("type") == "bid"]
    await back.close()


async def test_join_since_zero_replays_all_and_beyond_current_replays_nothing(stack, hall):
    _, (lot,) = await hall.live_lots(1, ends_in_s=3600)
    lid = lot["id"]
    alice, bob = await ready(stack, hall, lid), await ready(stack, hall, lid)
    for i in range(6):
        await http_bid((alice, bob)[i % 2], lid, 1000 + 100 * i)

    everything = await Socket.connect(stack.ws_url)
    snap = await everything.join(lid, since_seq=0)
    assert snap["seq"] == 6
    await everything.wait_for(lambda m: m.get("type") == "bid" and m["seq"] == 6)
    await flush(everything)
    assert bid_seqs(everything, lid) == [1, 2, 3, 4, 5, 6]
    assert [m["amount"] for m in everything.messages if m.get("type") == "bid"] == \
        [1000 + 100 * i for i in range(6)]

    plain = await Socket.connect(stack.ws_url)
    snap = await plain.join(lid)  # no since_seq: snapshot only
    assert snap["seq"] == 6 and snap["price"] == 1500
    await flush(plain)
    assert bid_seqs(plain, lid) == []

    ahead = await Socket.connect(stack.ws_url)
    snap = await ahead.join(lid, since_seq=50)
    assert snap["type"] == "snapshot" and snap["seq"] == 6
    await flush(ahead)
    assert bid_seqs(ahead, lid) == []

    at_current = await Socket.connect(stack.ws_url)
    await at_current.join(lid, since_seq=6)
    await flush(at_current)
    assert bid_seqs(at_current, lid) == []

    # All of them then see the next bid exactly once.
    await http_bid(alice, lid, 1600)
    for s in (everything, plain, at_current):
        await s.wait_for(lambda m: m.get("type") == "bid" and m["seq"] == 7)
        await flush(s)
    assert bid_seqs(everything, lid) == [1, 2, 3, 4, 5, 6, 7]
    assert bid_seqs(plain, lid) == [7]
    assert bid_seqs(at_current, lid) == [7]
    for s in (everything, plain, ahead, at_current):
        await s.close()


async def test_join_during_bidding_misses_nothing_and_repeats_nothing(stack, hall):
    _, (lot,) = await hall.live_lots(1, ends_in_s=3600)
    lid = lot["id"]
    alice, bob = await ready(stack, hall, lid), await ready(stack, hall, lid)
    total = 30

    async def bidding() -> None:
        for i in range(total):
            await http_bid((alice, bob)[i % 2], lid, 1000 + 100 * i)

    sockets = []
    runner = asyncio.ensure_future(bidding())
    # Joins (and rejoins from the last seen seq) while bids keep landing.
    for _ in range(6):
        s = await Socket.connect(stack.ws_url)
        snap = await s.join(lid, since_seq=0)
        sockets.append((s, snap))
    await runner
    for s, snap in sockets:
        await s.wait_for(lambda m: m.get("type") == "bid" and m["seq"] == total)
        await flush(s)
        assert bid_seqs(s, lid) == list(range(1, total + 1)), (snap["seq"], bid_seqs(s, lid))
        await s.close()


async def test_http_bid_history_since_and_limit(stack, hall):
    _, (lot,) = await hall.live_lots(1, ends_in_s=3600)
    lid = lot["id"]
    alice, bob = await ready(stack, hall, lid), await ready(stack, hall, lid)
    for i in range(5):
        await http_bid((alice, bob)[i % 2], lid, 1000 + 100 * i)

    async def seqs(query: str) -> list[int]:
        bids = (await hall.anon.get(f"/api/lots/{lid}/bids?{query}"))["bids"]
        return [b["seq"] for b in bids]

    full = (await hall.anon.get(f"/api/lots/{lid}/bids"))["bids"]
    assert [b["seq"] for b in full] == [1, 2, 3, 4, 5]
    assert [b["amount"] for b in full] == [1000, 1100, 1200, 1300, 1400]
    assert all("*" in b["bidder"] and b["at_ms"] > 0 for b in full)
    assert await seqs("since_seq=0") == [1, 2, 3, 4, 5]
    assert await seqs("since_seq=2") == [3, 4, 5]
    assert await seqs("since_seq=2&limit=2") == [3, 4]
    assert await seqs("limit=1") == [1]
    assert await seqs("since_seq=5") == []
    assert await seqs("since_seq=500") == []
    assert await seqs("limit=1000") == [1, 2, 3, 4, 5]
    for q in ("limit=0", "limit=1001", "limit=-1", "since_seq=-1", "since_seq=x", "limit=ten"):
        code, body = await hall.anon.call("GET", f"/api/lots/{lid}/bids?{q}")
        assert code == 400 and body["code"] == "invalid", (q, code, body)
    code, body = await hall.anon.call("GET", "/api/lots/987654321/bids")
    assert code == 404 and body["code"] == "not_found"

    # A viewer's replay from since_seq matches the history page for page.
    s = await Socket.connect(stack.ws_url)
    await s.join(lid, since_seq=1)
    await s.wait_for(lambda m: m.get("type") == "bid" and m["seq"] == 5)
    await flush(s)
    ws_bids = [(m["seq"], m["amount"], m["bidder"], m["at_ms"])
               for m in s.messages if m.get("type") == "bid"]
    assert ws_bids == [(b["seq"], b["amount"], b["bidder"], b["at_ms"]) for b in full[1:]]
    await s.close()


async def test_huge_since_seq_is_not_a_backend_error(stack, hall):
    _, (lot,) = await hall.live_lots(1, ends_in_s=3600)
    lid = lot["id"]
    s = await Socket.connect(stack.ws_url)
    for since in (2**53, 10**20):
        mark = len(s.messages)
        await s.send({"op": "join", "lot_id": lid, "since_seq": since})
        msg = await s.wait_for(lambda m: m.get("type") in ("snapshot", "error"), start=mark)
        assert msg["type"] == "snapshot" or msg["code"] == "invalid", msg
    await flush(s)
    assert bid_seqs(s, lid) == []
    code, body = await hall.anon.call("GET", f"/api/lots/{lid}/bids?since_seq={10**20}")
    assert code == 400 and body["code"] == "invalid"
    await s.close()


async def test_replay_marks_own_bids_as_mine(stack, hall):
    _, (lot,) = await hall.live_lots(1, ends_in_s=3600)
    lid = lot["id"]
    alice, bob = await ready(stack, hall, lid), await ready(stack, hall, lid)
    me = await Socket.connect(stack.ws_url, alice.token)
    await me.join(lid)
    assert (await me.bid(lid, 1000))["seq"] == 1
    await me.wait_for(lambda m: m.get("type") == "bid" and m["seq"] == 1)
    await me.close()
    # Away: bob, then alice from another device, then bob.
    await http_bid(bob, lid, 1100)
    await http_bid(alice, lid, 1200)
    await http_bid(bob, lid, 1300)

    back = await Socket.connect(stack.ws_url, alice.token)
    snap = await back.join(lid, since_seq=1)
    assert snap["seq"] == 4 and snap["price"] == 1300
    await back.wait_for(lambda m: m.get("type") == "bid" and m["seq"] == 4)
    await flush(back)
    replayed = [m for m in back.messages if m.get("type") == "bid"]
    assert [(m["seq"], m["amount"]) for m in replayed] == [(2, 1100), (3, 1200), (4, 1300)]
    assert [m.get("mine", False) for m in replayed] == [False, True, False]
    await back.close()


async def test_replay_includes_proxy_answers_and_marks_own_bids(stack, hall):
    _, (lot,) = await hall.live_lots(1, ends_in_s=3600)
    lid = lot["id"]
    alice, bob = await ready(stack, hall, lid), await ready(stack, hall, lid)
    me = await Socket.connect(stack.ws_url, alice.token)
    await me.join(lid)
    assert (await me.bid(lid, 1000))["seq"] == 1
    await me.wait_for(lambda m: m.get("type") == "bid" and m["seq"] == 1)
    await me.close()

    # Away: bob bids with a proxy maximum; alice's tab (another device) bids against it,
    # and the engine answers for bob: two bid events for that one action.
    answer = await bob.post(f"/api/lots/{lid}/bids",
                            {"amount": 1100, "max_amount": 2000, "ref": uuid.uuid4().hex})
    assert answer["seq"] == 2
    await http_bid(alice, lid, 1500)
    snap_now = await hall.anon.get(f"/api/lots/{lid}")
    assert snap_now["seq"] == 4 and snap_now["price"] == 1600

    back = await Socket.connect(stack.ws_url, alice.token)
    snap = await back.join(lid, since_seq=1)
    assert snap["seq"] == 4 and snap["price"] == 1600
    await back.wait_for(lambda m: m.get("type") == "bid" and m["seq"] == 4)
    await flush(back)
    replayed = [m for m in back.messages if m.get("type") == "bid"]
    assert [(m["seq"], m["amount"]) for m in replayed] == [(2, 1100), (3, 1500), (4, 1600)]
    assert [m.get("mine", False) for m in replayed] == [False, True, False]
    history = (await hall.anon.get(f"/api/lots/{lid}/bids?since_seq=1"))["bids"]
    assert [(h["seq"], h["amount"]) for h in history] == [(2, 1100), (3, 1500), (4, 1600)]
    await back.close()


async def test_a_big_room_gets_every_bid_once_in_order_and_the_bidders_own_marked(stack, hall):
    """From BIG_ROOM sockets a broadcast is sent to each socket at once
    instead of queued (hall/rooms.py): still every event once, in order, with
    the bidder's own sockets seeing "mine" and a join during the bidding
    missing nothing."""
    from hall.rooms import BIG_ROOM
    _, (lot,) = await hall.live_lots(1, ends_in_s=3600)
    lid = lot["id"]
    alice, bob = await ready(stack, hall, lid), await ready(stack, hall, lid)
    mine = await Socket.connect(stack.ws_url, alice.token)
    await mine.join(lid)
    viewers = []
    for _ in range(BIG_ROOM + 4):
        v = await Socket.connect(stack.ws_url)
        await v.join(lid)
        viewers.append(v)
    total = 8
    late = None
    for i in range(total):
        if i % 2 == 0:
            assert (await mine.bid(lid, 1000 + 100 * i))["type"] == "accepted"
        else:
            assert "seq" in await http_bid(bob, lid, 1000 + 100 * i)
        if i == 3:
            late = await Socket.connect(stack.ws_url)
            await late.join(lid, since_seq=0)
    for s in (*viewers, late, mine):
        await s.wait_for(lambda m: m.get("type") == "bid" and m["seq"] == total)
        await flush(s)
        assert bid_seqs(s, lid) == list(range(1, total + 1))
    own = [m for m in mine.messages if m.get("type") == "bid"]
    assert [m.get("mine", False) for m in own] == [True, False] * (total // 2)
    assert not any(m.get("mine") for m in viewers[0].messages if m.get("type") == "bid")
    for s in (*viewers, late, mine):
        await s.close()
