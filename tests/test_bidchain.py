"""The verifiable bid log: a settled lot's history checks against its chain_head,
with the standalone verifier (`run.py verify`) speaking only the public API;
a bid changed in the database afterwards (its amount, its order, or gone) is
caught."""
from __future__ import annotations

import subprocess
import sys

from auction import bidchain
from procs import ROOT
from test_money import db_exec, db_rows, hammer, user_with_socket


def verify(stack, lot_id: int) -> tuple[int, str]:
    done = subprocess.run([sys.executable, "run.py", "verify", str(lot_id), "--base", stack.base],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    return done.returncode, done.stdout + done.stderr


async def test_a_settled_lots_history_checks_against_its_chain_and_tampering_is_caught(stack, hall):
    _, (lot,) = await hall.live_lots(1, ends_in_s=3600, lot_deposit=100, start_price=1000)
    lot_id = lot["id"]
    people = [await user_with_socket(stack, hall) for _ in range(2)]
    for api, _user, sock in people:
        assert (await hall.pay_deposit(api, sock, lot_id, scope="lot"))["state"] == "SUCCESS"
        await sock.join(lot_id)
    sa, sb = people[0][2], people[1][2]
    price = 1000
    for i in range(5):
        sock = (sa, sb)[i % 2]
        assert (await sock.bid(lot_id, price))["type"] == "accepted"
        price += 100
    await hammer(hall, lot_id)
    await sa.wait_for(lambda m: m.get("type") == "lot_status" and m.get("lot_id") == lot_id
                      and m.get("status") == "settled", timeout=60)
    snap = await hall.anon.get(f"/api/lots/{lot_id}")
    assert snap["status"] == "settled"
    assert db_rows(stack, "SELECT chain_head FROM lot WHERE id=?", (lot_id,)) == [(snap["chain_head"],)]
    history = (await hall.anon.get(f"/api/lots/{lot_id}/bids"))["bids"]
    assert [h["seq"] for h in history] == [1, 2, 3, 4, 5]
    refs = {h["bidder_ref"] for h in history}
    assert len(refs) == 2 and all(len(r) == 16 for r in refs)  # two bidders, pseudonymous
    assert bidchain.verify(lot_id, history, snap["chain_head"]) == (True, snap["chain_head"])

    code, out = verify(stack, lot_id)
    assert code == 0 and "chain intact" in out, out

    # An amount changed afterwards.
    assert db_exec(stack, "UPDATE bid SET amount = amount + 1 WHERE lot_id=? AND seq=3", (lot_id,)) == 1
    code, out = verify(stack, lot_id)
    assert code == 1 and "bid 3" in out, out
    db_exec(stack, "UPDATE bid SET amount = amount - 1 WHERE lot_id=? AND seq=3", (lot_id,))
    assert verify(stack, lot_id)[0] == 0

    # Two bids swapped in order.
    db_exec(stack, "UPDATE bid SET seq = 99 WHERE lot_id=? AND seq=2", (lot_id,))
    db_exec(stack, "UPDATE bid SET seq = 2 WHERE lot_id=? AND seq=4", (lot_id,))
    db_exec(stack, "UPDATE bid SET seq = 4 WHERE lot_id=? AND seq=99", (lot_id,))
    code, out = verify(stack, lot_id)
    assert code == 1, out
    db_exec(stack, "UPDATE bid SET seq = 99 WHERE lot_id=? AND seq=2", (lot_id,))
    db_exec(stack, "UPDATE bid SET seq = 2 WHERE lot_id=? AND seq=4", (lot_id,))
    db_exec(stack, "UPDATE bid SET seq = 4 WHERE lot_id=? AND seq=99", (lot_id,))
    assert verify(stack, lot_id)[0] == 0

    # A bid gone.
    db_exec(stack, "DELETE FROM bid WHERE lot_id=? AND seq=5", (lot_id,))
    code, out = verify(stack, lot_id)
    assert code == 1 and "chain_head" in out, out
    for sock in (sa, sb):
        await sock.close()

