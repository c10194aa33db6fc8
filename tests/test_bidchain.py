"""The verifiable bid log: a settled lot's history checks against its chain_head,
with the standalone verifier (`run.py verify`) speaking only the public API;
a bid changed in the database afterwards (its amount, its order, or gone) is
caught. Receipts: every accepted bid carries one signed by a key of
GET /api/keys, and a receipt catches even a history whose chain was rebuilt."""
from __future__ import annotations

import base64
import json
import subprocess
import sys

from nacl.signing import VerifyKey

from auction import bidchain, keys, receipts
from procs import ROOT
from test_money import db_exec, db_rows, hammer, user_with_socket
from workerctl import consumers, until


async def lot_with_two_bidders(stack, hall) -> tuple[int, list]:
    """A live lot and two bidders with its deposit paid, in its room."""
    _, (lot,) = await hall.live_lots(1, ends_in_s=3600, lot_deposit=100, start_price=1000)
    people = [await user_with_socket(stack, hall) for _ in range(2)]
    for api, _user, sock in people:
        assert (await hall.pay_deposit(api, sock, lot["id"], scope="lot"))["state"] == "SUCCESS"
        await sock.join(lot["id"])
    return lot["id"], people


def verify(stack, lot_id: int, *extra: str) -> tuple[int, str]:
    done = subprocess.run([sys.executable, "run.py", "verify", str(lot_id), "--base", stack.base,
                           *extra], cwd=ROOT, capture_output=True, text=True, timeout=60)
    return done.returncode, done.stdout + done.stderr


async def test_a_settled_lots_history_checks_against_its_chain_and_tampering_is_caught(stack, hall):
    lot_id, people = await lot_with_two_bidders(stack, hall)
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



def test_the_bid_logs_fast_link_is_the_canonical_entry():
    """The bid log links bids without the JSON encoder; the bytes must be the
    contract's canonical JSON, or no outside verifier would agree."""
    for args in [(1, 1, 0, "0" * 16, 0), (2**31, 10**6, 10**15, "9f3a" * 4, 1764600000123)]:
        lot_id, seq, amount, ref, at_ms = args
        assert bidchain.link_entry("a" * 64, lot_id, seq, amount, ref, at_ms) == \
            bidchain.link("a" * 64, bidchain.entry(lot_id, seq, amount, ref, at_ms))


async def test_bids_held_by_a_dead_consumer_leave_a_gap_that_their_claim_closes(stack, hall):
    """Bids 3 and 4 are read by a consumer that never acknowledges them (a worker
    killed mid-flush); 5 and 6 reach the database first and cannot be linked.
    Once 3 and 4 are claimed, the chain runs through all six, as the verifier
    sees it."""
    lot_id, people = await lot_with_two_bidders(stack, hall)
    socks = [p[2] for p in people]
    r = stack.sync_redis()

    def stored() -> list:
        return db_rows(stack, "SELECT seq, hash FROM bid WHERE lot_id=? ORDER BY seq", (lot_id,))

    async def bid(seq: int) -> None:
        assert (await socks[seq % 2].bid(lot_id, 900 + 100 * seq))["type"] == "accepted"

    for seq in (1, 2):
        await bid(seq)
    await until(lambda: len(stored()) == 2 and all(h for _, h in stored()), "bids 1-2 linked")
    flushers = await consumers(stack, "cancel_consumer", "lots")
    try:
        for seq in (3, 4):
            await bid(seq)
        held = r.xreadgroup(keys.INGEST_GROUP, "killed-worker", {keys.INGEST: ">"}, count=10)
        mine = [f["b"].split("|") for _id, f in held[0][1]]  # b = lot|seq|uid|amount|at|ref
        assert [int(seq) for lot, seq, *_ in mine if int(lot) == lot_id] == [3, 4]
        for seq in (5, 6):
            await bid(seq)
    finally:
        await consumers(stack, "add_consumer", "lots", flushers)
    rows = await until(lambda: stored() if len(stored()) == 4 else None, "bids 5-6 stored")
    assert [(seq, bool(h)) for seq, h in rows] == [(1, True), (2, True), (5, False), (6, False)]
    # The dead consumer's entries become claimable (as after CLAIM_IDLE_MS idle).
    ids = [entry_id for entry_id, _ in held[0][1]]
    r.xclaim(keys.INGEST, keys.INGEST_GROUP, "killed-worker", 0, ids, idle=3_600_000)
    rows = await until(lambda: stored() if len(stored()) == 6 and all(h for _, h in stored())
                       else None, "the claim closes the gap and links 3-6")
    await hammer(hall, lot_id)
    await socks[0].wait_for(lambda m: m.get("type") == "lot_status" and m.get("lot_id") == lot_id
                            and m.get("status") == "settled", timeout=60)
    await until(lambda: db_rows(stack, "SELECT chain_head FROM lot WHERE id=?", (lot_id,))[0][0],
                "chain_head")
    assert db_rows(stack, "SELECT chain_head FROM lot WHERE id=?", (lot_id,))[0][0] == rows[-1][1]
    code, out = verify(stack, lot_id)
    assert code == 0, out


async def test_receipts_are_signed_and_catch_a_rewritten_history(stack, hall, tmp_path):
    """The chain alone proves nothing against the hall itself: it could rewrite
    a bid and recompute every hash after it. A bidder's signed receipt cannot
    be recomputed: the verifier, given it, finds the bid altered."""
    lot_id, people = await lot_with_two_bidders(stack, hall)
    published = (await hall.anon.get("/api/keys"))["keys"]
    assert [k["alg"] for k in published] == ["Ed25519"]
    public = {k["kid"]: base64.b64decode(k["public_key"]) for k in published}
    assert all(len(v) == 32 for v in public.values())
    got = []
    for i in range(4):
        sock = people[i % 2][2]
        answer = await sock.bid(lot_id, 1000 + 100 * i, ref=f"r{i}")
        assert answer["type"] == "accepted", answer
        r = answer["receipt"]
        assert (r["lot_id"], r["seq"], r["amount"]) == (lot_id, i + 1, 1000 + 100 * i)
        assert receipts.verify(r, public) == (True, "signature valid")
        got.append(r)
    # The same bid sent again (same ref) answers with the same receipt.
    again = await people[1][2].bid(lot_id, 1300, ref="r3")
    assert again["receipt"] == got[3]
    # Over HTTP too; a leader only raising a private maximum places no bid: no receipt.
    http = await people[0][0].post(f"/api/lots/{lot_id}/bids", {"amount": 1400, "ref": "h1"})
    assert receipts.verify(http["receipt"], public)[0] and http["receipt"]["seq"] == 5
    raise_only = await people[0][0].post(f"/api/lots/{lot_id}/bids",
                                         {"max_amount": 9000, "ref": "h2"})
    assert raise_only["accepted"] is True and "receipt" not in raise_only
    # A receipt with a field changed is refused by its signature.
    forged = dict(got[1], amount=got[1]["amount"] - 100)
    assert receipts.verify(forged, public)[0] is False

    await hammer(hall, lot_id)
    await people[0][2].wait_for(lambda m: m.get("type") == "lot_status" and m.get("lot_id") == lot_id
                                and m.get("status") == "settled", timeout=60)
    head = await until(lambda: db_rows(stack, "SELECT chain_head FROM lot WHERE id=?",
                                       (lot_id,))[0][0], "chain_head")
    # The winner's sale confirmation is signed by the same key over its fields.
    winner_api = people[0][0]
    (order,) = [o for o in (await winner_api.get("/api/me/orders"))["orders"]
                if o["lot_id"] == lot_id]
    resp = await winner_api.http.fetch(f"{winner_api.base}/api/orders/{order['id']}/confirmation.pdf",
                                       headers={"Authorization": f"Bearer {winner_api.token}"})
    text = subprocess.run(["pdftotext", "-", "-"], input=resp.body, capture_output=True,
                          check=True).stdout.decode()
    (sig,) = [line.split()[1] for line in text.splitlines() if line.startswith("SIGNATURE ")]
    (session_id, session_title, lot_title, closed_at), = db_rows(
        stack, "SELECT s.id, s.title, l.title, l.closed_at_ms FROM lot l "
               "JOIN auctionsession s ON s.id = l.session_id WHERE l.id=?", (lot_id,))
    (winner_name,), = db_rows(stack, 'SELECT username FROM "user" WHERE id=?', (people[0][1]["id"],))
    stated = {"order_id": order["id"], "lot_id": lot_id, "lot_title": lot_title,
              "session_id": session_id, "session_title": session_title, "hammer": order["amount"],
              "premium": order["premium"], "deposit_credited": order["deposit_credited"],
              "due": order["due"], "winner": winner_name, "closed_at_ms": closed_at,
              "chain_head": head, "kid": got[0]["kid"]}
    body = json.dumps(stated, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    VerifyKey(public[got[0]["kid"]]).verify(body, base64.b64decode(sig))  # raises if not the hall's
    assert head in text.replace("\n", "")

    saved = tmp_path / "receipt.json"
    saved.write_text(json.dumps(got[1]))
    code, out = verify(stack, lot_id, "--receipt", str(saved))
    assert code == 0 and "1 receipts signed" in out, out

    # The hall rewrites bid 2 and rebuilds the chain after it, head included.
    db_exec(stack, "UPDATE bid SET amount = amount - 50 WHERE lot_id=? AND seq=2", (lot_id,))
    rows = db_rows(stack, "SELECT seq, amount, bidder_ref, at_ms FROM bid WHERE lot_id=? ORDER BY seq",
                   (lot_id,))
    prev = bidchain.ZERO
    for seq, amount, ref, at_ms in rows:
        prev = bidchain.link(prev, bidchain.entry(lot_id, seq, amount, ref, at_ms))
        db_exec(stack, "UPDATE bid SET hash=? WHERE lot_id=? AND seq=?", (prev, lot_id, seq))
    db_exec(stack, "UPDATE lot SET chain_head=? WHERE id=?", (prev, lot_id))
    stack.sync_redis().hset(keys.lot(lot_id), "chain_head", prev)
    assert prev != head
    code, out = verify(stack, lot_id)
    assert code == 0, out  # the rebuilt chain is consistent with itself
    code, out = verify(stack, lot_id, "--receipt", str(saved))
    assert code == 1 and "receipt for bid 2" in out and "amount" in out, out
    for _api, _user, sock in people:
        await sock.close()
