"""Accepted bids reach the database through the ingest stream (workers/bidlog.py).

Rows are written by a beat-driven worker flush, so there is no event to await:
the test polls the database until the rows are there (with a deadline).
"""
from __future__ import annotations

from test_concurrency import sqlite_rows
from workerctl import until

from auction import bidchain, keys


async def test_bids_reach_the_database_and_a_bad_entry_blocks_none(stack, hall):
    _s, (lot,) = await hall.live_lots(1, ends_in_s=600, extend_window_s=0,
                                      start_price=1000, increment=100)
    lid = lot["id"]
    _, _, a = await hall.paid_bidder(lid)
    _, bob_user, b = await hall.paid_bidder(lid)

    # An entry the database cannot hold (no such lot) lands in the stream
    # first; the bids behind it must still be stored, and it must not stay.
    r = stack.sync_redis()
    # It is in the previous release's shape (six fields, not the packed "b"),
    # as entries left in the stream across an upgrade are; one that cannot be
    # read at all follows it.
    bad = r.xadd(keys.INGEST, {"lot": 2**31 - 1, "seq": 1, "uid": bob_user["id"],
                                 "amount": 100, "at": 0, "ref": "no-such-lot"})
    unreadable = r.xadd(keys.INGEST, {"b": "not|a|bid"})
    amounts = [1000, 1100, 1200, 1300]
    for i, amount in enumerate(amounts):
        assert (await (a if i % 2 == 0 else b).bid(lid, amount))["type"] == "accepted"

    rows = sqlite_rows(stack)
    bids = await until(lambda: rows(lid)[0] if len(rows(lid)[0]) == 4 else None,
                        "all four bids in the database")
    assert bids == [(1, 1000), (2, 1100), (3, 1200), (4, 1300)]
    await until(lambda: not r.xrange(keys.INGEST, bad, bad), "the bad entry dropped")
    await until(lambda: not r.xrange(keys.INGEST, unreadable, unreadable), "the unreadable one too")
    log = stack.worker.log_path.read_text(errors="replace")
    assert "dropping a bid the database cannot hold" in log
    assert "dropping an ingest entry that cannot be read" in log
    for s in (a, b):
        await s.close()


def test_the_bid_logs_prepared_pseudonyms_are_the_published_ones():
    # The bid log computes bidder_ref with its HMAC key state made once; the
    # verifier and the hall use bidder_ref itself. Both must give the same.
    key = bidchain.ref_key("some hall secret")
    fast = bidchain.bidder_refs(key)
    for lot_id, user_id in ((1, 1), (7, 123456), (2**31 - 1, 42)):
        assert fast(lot_id, user_id) == bidchain.bidder_ref(key, lot_id, user_id)


def test_acknowledged_entries_are_trimmed_and_pending_ones_kept(stack):
    """The bid log's and the notices' streams are kept short by trimming what
    the group has acknowledged, never an entry a consumer still holds: a
    worker that died holding the oldest entries keeps them, and everything
    behind them, until they are claimed and acknowledged."""
    from workers.publish import ack_and_trim
    r = stack.sync_redis()
    stream, group = "test:trim:stream", "g"
    r.delete(stream)
    r.xgroup_create(stream, group, id="0", mkstream=True)
    ids = [r.xadd(stream, {"n": n}) for n in range(10)]
    held = [i for i, _ in r.xreadgroup(group, "dead", {stream: ">"}, count=3)[0][1]]
    read = [i for i, _ in r.xreadgroup(group, "live", {stream: ">"}, count=5)[0][1]]
    assert held == ids[:3] and read == ids[3:8]

    ack_and_trim(stream, group, read, r)
    assert [i for i, _ in r.xrange(stream)] == ids, "nothing trimmed past a held entry"

    claimed = r.xautoclaim(stream, group, "live", 0, "0-0")[1]
    assert [i for i, _ in claimed] == held
    ack_and_trim(stream, group, held, r)
    # Everything delivered is acknowledged: gone; the two never read are kept.
    assert [i for i, _ in r.xrange(stream)] == ids[8:]
    assert r.xpending(stream, group)["pending"] == 0
    r.delete(stream)
