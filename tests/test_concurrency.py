"""Many clients bid at once on several lots; afterwards every record agrees.

200 connections (100 bidders x 2 sockets) on 4 lots. Phase 1: everyone bids
as fast as the hall answers until 3,000 bids have been answered. Phase 2: a few
keep bidding right through the deadline. Then: every accepted bid is in the
history and in the database exactly once, prices rise strictly with seq,
every client saw the same complete sequence, nothing was accepted at or
after the deadline.
"""
from __future__ import annotations

import asyncio
import json
import random
import sqlite3
import uuid

import websockets

BIDDERS = 100
SOCKETS_PER_BIDDER = 2
LOTS = 4
TARGET_BIDS = 3000  # bids placed (answered); accepted ones are whatever wins the races


class LeanClient:
    """A fast room client: keeps every event, tracks prices, awaits answers."""

    def __init__(self, ws, lots: list[int]) -> None:
        self.ws = ws
        self.events: dict[int, list[tuple[int, int, int]]] = {lid: [] for lid in lots}
        self.next_min: dict[int, int] = {}
        self.closed: dict[int, dict] = {}
        self.snapshots: dict[int, dict] = {}
        self.settled: set[int] = set()
        self.all_settled = asyncio.Event()
        self.answers: dict[str, asyncio.Future] = {}
        self.joined = asyncio.Event()
        self.deposited = asyncio.Event()
        self.all_closed = asyncio.Event()
        self._want = len(lots)
        self.reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                m = json.loads(raw)
                t = m["type"]
                if t == "bid":
                    self.events[m["lot_id"]].append((m["seq"], m["amount"], m["at_ms"]))
                    self.next_min[m["lot_id"]] = m["next_min_bid"]
                elif t in ("accepted", "rejected"):
                    fut = self.answers.pop(m["ref"], None)
                    if fut is not None and not fut.done():
                        fut.set_result(m)
                elif t == "snapshot":
                    self.snapshots[m["id"]] = m
                    self.next_min[m["id"]] = m["next_min_bid"]
                    if len(self.snapshots) == self._want:
                        self.joined.set()
                elif t == "closed":
                    self.closed[m["lot_id"]] = m
                    if len(self.closed) == self._want:
                        self.all_closed.set()
                elif t == "deposit":
                    self.deposited.set()
                elif t == "lot_status" and m["status"] == "settled":
                    self.settled.add(m["lot_id"])
                    if len(self.settled) == self._want:
                        self.all_settled.set()
        except websockets.ConnectionClosed:
            pass

    async def bid(self, lot_id: int, amount: int) -> dict:
        ref = uuid.uuid4().hex
        fut = asyncio.get_running_loop().create_future()
        self.answers[ref] = fut
        await self.ws.send(json.dumps({"op": "bid", "lot_id": lot_id, "amount": amount, "ref": ref}))
        return await asyncio.wait_for(fut, 30)


async def bidding_storm(stack, hall, ws_urls: list[str], bidders: int, sockets_per_bidder: int,
                        lots: int, target_bids: int, db_rows) -> None:
    """The scenario and its checks; `db_rows(lot_id)` reads (bids, orders) from the database.

    Sockets are spread round-robin over `ws_urls` (one or several hall processes).
    """
    gate = asyncio.Semaphore(8)  # registration hashes passwords (argon2): not all at once

    async def new_bidder():
        async with gate:
            return await hall.bidder(balance=100_000)

    users = await asyncio.gather(*(new_bidder() for _ in range(bidders)))
    session, lots = await hall.live_lots(lots, ends_in_s=25, extend_window_s=0, extend_by_s=0,
                                         start_price=1000, increment=100, deposit=1000)
    lot_ids = [lot["id"] for lot in lots]
    deadlines = {lot["id"]: lot["deadline_ms"] for lot in lots}
    clients: list[LeanClient] = []
    for i, (api, _user) in enumerate(users):
        for j in range(sockets_per_bidder):
            url = ws_urls[(i * sockets_per_bidder + j) % len(ws_urls)]
            ws = await websockets.connect(f"{url}?token={api.token}", max_size=2**22)
            clients.append(LeanClient(ws, lot_ids))
    # Session deposits through the real worker(s).
    for api, _user in users:
        await api.post(f"/api/lots/{lot_ids[0]}/deposit", {"scope": "session", "method": "balance"})
    for c in clients:
        for lid in lot_ids:
            await c.ws.send(json.dumps({"op": "join", "lot_id": lid}))
    await asyncio.gather(*(asyncio.wait_for(c.joined.wait(), 60) for c in clients))
    # Every owner's sockets hear their `deposit` message once it is in force.
    await asyncio.gather(*(asyncio.wait_for(c.deposited.wait(), 60) for c in clients))
    for api, _user in users[:5]:
        assert (await api.get("/api/me"))["balance"] == 100_000 - 1000

    accepted: list[tuple[int, int, int]] = []  # (lot, seq, amount)
    codes: dict[str, int] = {}
    answered = [0]
    stop_phase1 = asyncio.Event()

    async def bidder(c: LeanClient, keep_going: bool) -> None:
        rnd = random.Random(id(c))
        while True:
            if stop_phase1.is_set() and not keep_going:
                return
            open_lots = [lid for lid in lot_ids if lid not in c.closed]
            if not open_lots:
                return
            lid = rnd.choice(open_lots)
            amount = c.next_min.get(lid, 1000) + 100 * rnd.randint(0, 2)
            ans = await c.bid(lid, amount)
            answered[0] += 1
            if answered[0] >= target_bids:
                stop_phase1.set()
            if ans["type"] == "accepted":
                accepted.append((lid, ans["seq"], amount))
            else:
                codes[ans["code"]] = codes.get(ans["code"], 0) + 1
            if stop_phase1.is_set() and keep_going:
                await asyncio.sleep(0.02)  # pacing: a few bidders ride into the deadline

    runners = [asyncio.ensure_future(bidder(c, i < 8)) for i, c in enumerate(clients)]
    await asyncio.wait_for(asyncio.gather(*runners), 120)
    assert answered[0] >= target_bids and len(accepted) >= 100, (answered, len(accepted))

    # Every client sees the close of every lot.
    await asyncio.gather(*(asyncio.wait_for(c.all_closed.wait(), 60) for c in clients))
    assert codes.get("no_deposit", 0) == 0, codes
    # A late phone still sending bids after the close: refused, nothing placed.
    for c in clients[:8]:
        for lid in lot_ids:
            late = await c.bid(lid, c.next_min[lid])
            assert (late["type"], late.get("code")) == ("rejected", "lot_closed"), late
    final_seq = {}
    for lid in lot_ids:
        snap = await hall.anon.get(f"/api/lots/{lid}")
        assert snap["status"] in ("closed", "settled")
        final_seq[lid] = snap["seq"]

    by_lot: dict[int, dict[int, int]] = {lid: {} for lid in lot_ids}
    for lid, seq, amount in accepted:
        assert seq not in by_lot[lid], "one seq accepted twice"
        by_lot[lid][seq] = amount
    for lid in lot_ids:
        n = final_seq[lid]
        assert sorted(by_lot[lid]) == list(range(1, n + 1))
        # History API: complete, in order, strictly rising, before the deadline.
        history, since = [], 0
        while True:
            page = (await hall.anon.get(f"/api/lots/{lid}/bids?since_seq={since}&limit=1000"))["bids"]
            if not page:
                break
            history += page
            since = page[-1]["seq"]
        amounts = [h["amount"] for h in history]
        assert [h["seq"] for h in history] == list(range(1, n + 1))
        assert amounts == [by_lot[lid][s] for s in range(1, n + 1)]
        assert all(a < b for a, b in zip(amounts, amounts[1:]))
        assert all(h["at_ms"] < deadlines[lid] for h in history)
        # Every client saw exactly the same sequence.
        expected = [(s, by_lot[lid][s]) for s in range(1, n + 1)]
        for c in clients:
            assert [(s, a) for s, a, _ in c.events[lid]] == expected
        assert len({json.dumps(c.closed[lid], sort_keys=True)
                    for c in clients}) <= 2  # same event; only "mine" differs for the winner

    # The database has every accepted bid exactly once, once settlement ran
    # (settlement drains the bid stream first, then writes the order).
    await asyncio.gather(*(asyncio.wait_for(c.all_settled.wait(), 60) for c in clients[:1]))
    for lid in lot_ids:
        bids, orders = db_rows(lid)
        assert bids == [(s, by_lot[lid][s]) for s in range(1, final_seq[lid] + 1)]
        assert orders == [(by_lot[lid][final_seq[lid]],)]
    for c in clients:
        await c.ws.close()


def sqlite_rows(stack):
    path = stack.env["DATABASE_URL"].removeprefix("sqlite:///")

    def rows(lot_id: int):
        conn = sqlite3.connect(path)
        try:
            bids = conn.execute("SELECT seq, amount FROM bid WHERE lot_id = ? ORDER BY seq",
                                (lot_id,)).fetchall()
            orders = conn.execute('SELECT amount FROM "order" WHERE lot_id = ?', (lot_id,)).fetchall()
            return bids, orders
        finally:
            conn.close()
    return rows


async def test_many_clients_bid_at_once(stack, hall):
    await bidding_storm(stack, hall, [stack.ws_url], BIDDERS, SOCKETS_PER_BIDDER, LOTS,
                        TARGET_BIDS, sqlite_rows(stack))
