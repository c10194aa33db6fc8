"""Soak: 1,000 connections on 20 lots bid until the lots close, then every
record must agree and every loser must have their deposit back exactly once.

From the first bid on, the worker is SIGKILLed every HALL_SOAK_KILL_EVERY_S
(default 20) seconds (the first time after half the soak, at most 20 s) and
started again at once, as `run.py all` or systemd would: bid-log flushes,
closes and settlements it held come back to its successor (workers/leases.py),
and the records must still agree exactly.

CI runs it for HALL_SOAK_S (default 8) seconds of bidding; the full run is
`HALL_SOAK_S=60 .venv/bin/python -m pytest tests/test_soak.py`.
"""
from __future__ import annotations

import asyncio
import json
import os
import random
import sqlite3

import websockets

from test_concurrency import LeanClient

USERS = 250
SOCKETS_PER_USER = 4   # 1,000 connections
LOTS = 20
SOAK_S = float(os.environ.get("HALL_SOAK_S", "8"))
KILL_EVERY_S = float(os.environ.get("HALL_SOAK_KILL_EVERY_S", "20"))


async def kill_worker_every(stack, first_s: float, every_s: float, kills: list[float]) -> None:
    """SIGKILL the stack's worker on a fixed schedule (the schedule is the
    point: time passing is the event) and start a new one straight away."""
    loop = asyncio.get_running_loop()
    wait = first_s
    while True:
        await asyncio.sleep(wait)
        wait = every_s
        stack.worker.kill()
        kills.append(loop.time())
        stack.worker.start()
        await loop.run_in_executor(None, stack.worker.wait_for_line, "ready.", 120)
LOT_DEPOSIT = 500


async def test_soak(stack, hall):
    kills: list[float] = []
    killers: list[asyncio.Future] = []

    def start_killing() -> None:
        """From the first bid on: the first kill within the short CI soak too."""
        killers.append(asyncio.ensure_future(kill_worker_every(
            stack, min(KILL_EVERY_S, SOAK_S / 2), KILL_EVERY_S, kills)))
    try:
        await soak(stack, hall, start_killing)
    finally:
        for killer in killers:
            killer.cancel()
        if stack.worker.proc.poll() is not None:  # killed last: the suite needs one
            stack.worker.start()
        await asyncio.get_running_loop().run_in_executor(None, stack.worker.wait_for_line,
                                                         "ready.", 120)
    assert kills, "the worker was never killed: the soak ran shorter than the kill period"


async def soak(stack, hall, start_killing) -> None:
    gate = asyncio.Semaphore(8)

    async def new_bidder():
        async with gate:
            return await hall.bidder(balance=50_000)

    users = await asyncio.gather(*(new_bidder() for _ in range(USERS)))
    # Deadlines: after the setup (deposits, 1,000 joins) plus the soak itself.
    _s, lots = await hall.live_lots(LOTS, ends_in_s=40 + SOAK_S, extend_window_s=0,
                                    start_price=1000, increment=100, deposit=0,
                                    lot_deposit=LOT_DEPOSIT)
    lot_ids = [lot["id"] for lot in lots]
    deadlines = {lot["id"]: lot["deadline_ms"] for lot in lots}
    pay_gate, connect_gate = asyncio.Semaphore(16), asyncio.Semaphore(64)

    async def pay(i: int, api) -> None:
        async with pay_gate:
            await api.post(f"/api/lots/{lot_ids[i % LOTS]}/deposit", {"scope": "lot", "method": "balance"})

    async def connect(i: int, api) -> tuple[LeanClient, int]:
        lid = lot_ids[i % LOTS]
        async with connect_gate:
            ws = await websockets.connect(f"{stack.ws_url}?token={api.token}", max_size=2**22)
            c = LeanClient(ws, [lid])
            await ws.send(json.dumps({"op": "join", "lot_id": lid}))
            await asyncio.wait_for(c.joined.wait(), 120)
        return c, lid

    clients = await asyncio.gather(*(connect(i, api) for i, (api, _u) in enumerate(users)
                                     for _ in range(SOCKETS_PER_USER)))
    # Sockets first: each owner's sockets hear the `deposit` message.
    await asyncio.gather(*(pay(i, api) for i, (api, _u) in enumerate(users)))
    await asyncio.gather(*(asyncio.wait_for(c.deposited.wait(), 120) for c, _ in clients))

    accepted: list[tuple[int, int, int]] = []
    codes: dict[str, int] = {}

    async def bidder(c: LeanClient, lid: int) -> None:
        rnd = random.Random(id(c))
        while lid not in c.closed:
            amount = c.next_min.get(lid, 1000) + 100 * rnd.randint(0, 1)
            ans = await c.bid(lid, amount)
            if ans["type"] == "accepted":
                accepted.append((lid, ans["seq"], amount))
            else:
                codes[ans["code"]] = codes.get(ans["code"], 0) + 1
            await asyncio.sleep(rnd.uniform(0.05, 0.3))  # a person's pace, not a tight loop

    start_killing()
    await asyncio.wait_for(asyncio.gather(*(bidder(c, lid) for c, lid in clients)), 300 + SOAK_S)
    assert set(codes) <= {"too_low", "already_leading", "lot_closed"}, codes
    assert len(accepted) > LOTS, (len(accepted), codes)
    for c, lid in clients[:LOTS * 4:4]:  # a late bid on each lot after its close
        late = await c.bid(lid, c.next_min[lid])
        assert (late["type"], late.get("code")) == ("rejected", "lot_closed"), late

    # Records agree: answers, history, every client, the database.
    by_lot: dict[int, dict[int, int]] = {lid: {} for lid in lot_ids}
    for lid, seq, amount in accepted:
        assert seq not in by_lot[lid]
        by_lot[lid][seq] = amount
    # Settlement runs through worker kills too: a dead worker's share comes back
    # once its leases run out (HALL_VISIBILITY_TIMEOUT_S, 6 s here).
    await asyncio.gather(*(asyncio.wait_for(c.all_settled.wait(), 300) for c, _ in clients[:LOTS * 4:4]))
    path = stack.env["DATABASE_URL"].removeprefix("sqlite:///")
    db = sqlite3.connect(path)
    try:
        for lid in lot_ids:
            n = len(by_lot[lid])
            expected = [(s, by_lot[lid][s]) for s in range(1, n + 1)]
            assert sorted(by_lot[lid]) == list(range(1, n + 1))
            history = (await hall.anon.get(f"/api/lots/{lid}/bids?limit=1000"))["bids"]
            assert [(h["seq"], h["amount"]) for h in history] == expected
            assert all(h["at_ms"] < deadlines[lid] for h in history)
            amounts = [a for _, a in expected]
            assert all(a < b for a, b in zip(amounts, amounts[1:]))
            for c, clid in clients:
                if clid == lid:
                    assert [(s, a) for s, a, _ in c.events[lid]] == expected
            assert db.execute("SELECT seq, amount FROM bid WHERE lot_id = ? ORDER BY seq",
                              (lid,)).fetchall() == expected
            # Every lot deposit but the winner's came back, once.
            winner = db.execute("SELECT winner_id FROM lot WHERE id = ?", (lid,)).fetchone()[0]
            rows = db.execute("SELECT d.user_id, d.status, COUNT(r.id) FROM deposit d "
                              "LEFT JOIN refund r ON r.deposit_id = d.id WHERE d.lot_id = ? "
                              "GROUP BY d.id", (lid,)).fetchall()
            for user_id, status, refunds in rows:
                if user_id == winner:
                    assert (status, refunds) != ("refunded", 1)
                else:
                    assert (status, refunds) == ("refunded", 1), (lid, user_id, status, refunds)
        # Money is conserved: every balance equals the sum of its ledger entries.
        bad = db.execute('SELECT u.id FROM "user" u LEFT JOIN ledgerentry l ON l.user_id = u.id '
                         "GROUP BY u.id HAVING u.balance <> COALESCE(SUM(l.amount), 0)").fetchall()
        assert bad == []
        # Every money movement of the soak's bidders has exactly one audit
        # entry, naming its ledger ref (other tests' users are not this test's).
        ids = [u["id"] for _api, u in users]
        marks = ",".join("?" * len(ids))
        refs = sorted(r for (r,) in db.execute(
            f"SELECT ref FROM ledgerentry WHERE user_id IN ({marks})", ids))
        audited = sorted(json.loads(a).get("ref") for (a,) in db.execute(
            f"SELECT after FROM auditentry WHERE action LIKE 'money.%' AND target IN ({marks})",
            [f"user:{i}" for i in ids]))
        assert audited == refs
    finally:
        db.close()
    for c, _ in clients:
        await c.ws.close()
