"""Accepted bids from Redis into the database, in batches, without loss.

The bid script appends every accepted bid to one stream (keys.INGEST).
A consumer group tracks what each worker has read; entries are acknowledged
only after the database commit, and entries read by a worker that died are
claimed by the next flush. The (lot, seq) unique index makes a re-insert
harmless, so at-least-once delivery gives exactly-once rows.

Stored bids are then linked into their lot's hash chain (auction/bidchain.py),
in `seq` order: each flush extends every touched lot's chain as far as its bids
are contiguous (a bid still held by a dead consumer leaves a gap that the
flush which claims it closes). A settled lot whose chain has reached its last
bid gets its `chain_head`.
"""
from __future__ import annotations

import logging

import peewee
from peewee import IntegrityError

import settings
from auction import bidchain, keys
from models import Bid, Lot, write_transaction
from workers.publish import client, ensure_group

logger = logging.getLogger(__name__)

CLAIM_IDLE_MS = 30_000


_FIELDS = [Bid.lot, Bid.seq, Bid.user, Bid.amount, Bid.at_ms, Bid.ref]


def _insert_rows(rows: list[tuple]) -> None:
    """Insert rows, ignoring (lot, seq) conflicts; raises peewee's IntegrityError.

    On SQLite, one prepared INSERT run with the driver's executemany (in-process,
    no round trips): peewee's per-value SQL generation for insert_many cost the
    worker more CPU than SQLite itself did (36% against 14%, py-spy under
    bench/bids.py). Over the network (PostgreSQL) one multi-row INSERT per 200
    rows saves the round trips that executemany would make per row.
    """
    database = Bid._meta.database
    database = getattr(database, "obj", database)  # models are bound through a proxy
    if isinstance(database, peewee.SqliteDatabase):
        sql, _ = Bid.insert_many([rows[0]], fields=_FIELDS).on_conflict_ignore().sql()
        with peewee.__exception_wrapper__:  # sqlite3's errors as peewee's
            database.cursor().executemany(sql, rows)
        return
    for i in range(0, len(rows), 200):
        Bid.insert_many(rows[i:i + 200], fields=_FIELDS).on_conflict_ignore().execute()


def _store(entries: list) -> int:
    if not entries:
        return 0
    rows = [(int(f["lot"]), int(f["seq"]), int(f["uid"]), int(f["amount"]), int(f["at"]),
             f.get("ref", "")[:64]) for _id, f in entries if f]
    try:
        if rows:
            with write_transaction():
                _insert_rows(rows)
    except IntegrityError:
        # One bad entry (a lot or user the database does not know) must not
        # block the stream for every lot: store the rest one by one.
        for row in rows:
            try:
                with write_transaction():
                    _insert_rows([row])
            except IntegrityError:
                logger.error("dropping a bid the database cannot hold: %s", row)
    for lot_id in sorted({row[0] for row in rows}):
        extend_chain(lot_id)
    ids = [entry_id for entry_id, _ in entries]
    pipe = client().pipeline(transaction=False)
    pipe.xack(keys.INGEST, keys.INGEST_GROUP, *ids)
    pipe.xdel(keys.INGEST, *ids)
    pipe.execute()
    return len(rows)


def flush(consumer: str, batch: int = 1000, max_rounds: int = 50) -> int:
    """Move everything waiting into the bids table; returns rows handled."""
    ensure_group(keys.INGEST, keys.INGEST_GROUP)
    r = client()
    total = 0
    # Entries another (dead) consumer read but never acknowledged.
    _next, claimed, *_ = r.xautoclaim(keys.INGEST, keys.INGEST_GROUP, consumer,
                                       CLAIM_IDLE_MS, "0-0", count=batch)
    total += _store(claimed)
    # Our own unacknowledged entries (a previous run of ours failed midway).
    own = r.xreadgroup(keys.INGEST_GROUP, consumer, {keys.INGEST: "0"}, count=batch)
    if own and own[0][1]:
        total += _store(own[0][1])
    for _ in range(max_rounds):
        got = r.xreadgroup(keys.INGEST_GROUP, consumer, {keys.INGEST: ">"}, count=batch)
        if not got or not got[0][1]:
            break
        total += _store(got[0][1])
    return total


_ref_key = bidchain.ref_key(settings.HALL_SECRET)


def extend_chain(lot_id: int) -> tuple[int, str]:
    """Link the lot's stored bids after its last linked one, while their seqs
    are contiguous; (last linked seq, its hash). Idempotent: a row is only
    written while its hash is still empty."""
    last = (Bid.select(Bid.seq, Bid.hash).where((Bid.lot == lot_id) & Bid.hash.is_null(False))
            .order_by(Bid.seq.desc()).first())
    seq, prev = (last.seq, last.hash) if last else (0, bidchain.ZERO)
    rows = list(Bid.select(Bid.id, Bid.seq, Bid.user, Bid.amount, Bid.at_ms)
                .where((Bid.lot == lot_id) & (Bid.seq > seq)).order_by(Bid.seq))
    links = []
    for row in rows:
        if row.seq != seq + 1:
            break  # a gap: that bid is not in the database yet
        ref = bidchain.bidder_ref(_ref_key, lot_id, row.user_id)
        prev = bidchain.link(prev, bidchain.entry(lot_id, row.seq, row.amount, ref, row.at_ms))
        seq = row.seq
        links.append((ref, prev, row.id))
    if links:
        with write_transaction():
            for ref, digest, row_id in links:
                Bid.update(bidder_ref=ref, hash=digest).where(
                    (Bid.id == row_id) & Bid.hash.is_null()).execute()
    _head_if_complete(lot_id, seq, prev)
    return seq, prev


def _head_if_complete(lot_id: int, seq: int, head: str) -> None:
    """A settled lot whose chain has reached its last bid publishes its head."""
    lot = Lot.get_or_none(Lot.id == lot_id)
    if lot is None or lot.status != "settled" or lot.chain_head or seq < lot.bid_count:
        return
    with write_transaction():
        Lot.update(chain_head=head).where((Lot.id == lot_id) & Lot.chain_head.is_null()).execute()
    r = client()
    if r.exists(keys.lot(lot_id)):  # the snapshot of a lot still in Redis shows it too
        r.hset(keys.lot(lot_id), "chain_head", head)
