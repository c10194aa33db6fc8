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
from workers.publish import ack_and_trim, client, ensure_group

logger = logging.getLogger(__name__)

CLAIM_IDLE_MS = 30_000


_FIELDS = [Bid.lot, Bid.seq, Bid.user, Bid.amount, Bid.at_ms, Bid.ref, Bid.bidder_ref, Bid.hash]


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


def _bids_at(pairs: list[tuple[int, int]], columns: str) -> list[tuple]:
    """`columns` of the bids at these (lot, seq) pairs: a join on a VALUES
    list, which SQLite answers through the (lot, seq) index. `(lot, seq) IN
    (...)` made it scan the whole bids table on every flush (py-spy under
    bench/bidlog.py: 16 % of the flush at 60,000 rows, twice the flush's cost
    at 200,000). Written out, not built by peewee: peewee took 1.2 ms to
    generate it for 50 lots, six times the query's own time. VALUES columns
    are column1, column2 in SQLite and PostgreSQL alike."""
    param = Bid._meta.database.obj.param  # ? or %s
    values = ", ".join([f"({param}, {param})"] * len(pairs))
    sql = (f"SELECT {columns} FROM (VALUES {values}) AS at JOIN bid "
           "ON bid.lot_id = at.column1 AND bid.seq = at.column2")
    return Bid._meta.database.execute_sql(sql, [v for pair in pairs for v in pair]).fetchall()


class ChainTips:
    """This process's last known link of each lot's chain: (seq, hash).

    A new bid whose predecessor is the tip is linked before it is inserted, in
    the same INSERT (no UPDATE per row, no query per lot); a tip unknown here
    (another worker stored the bids before) costs one lookup for all lots of
    a flush. Hashes never change once computed, so a tip is never wrong, only
    possibly behind; a tip moves only after its row is committed.
    """

    def __init__(self, limit: int = 50_000) -> None:
        self.tips: dict[int, tuple[int, str]] = {}
        self.refs: dict[tuple[int, int], str] = {}
        self._pending: dict[int, tuple[int, str]] = {}
        self.limit = limit

    def bidder_ref(self, lot_id: int, user_id: int) -> str:
        ref = self.refs.get((lot_id, user_id))
        if ref is None:
            if len(self.refs) > self.limit:
                self.refs.clear()
            ref = self.refs[(lot_id, user_id)] = _pseudonym(lot_id, user_id)
        return ref

    def previous(self, wanted: dict[int, int]) -> dict[int, str]:
        """{lot: hash of seq `wanted[lot]`} where known (seq 0: the zeros)."""
        known, missing = {}, []
        for lot_id, seq in wanted.items():
            tip = self.tips.get(lot_id)
            if seq == 0:
                known[lot_id] = bidchain.ZERO
            elif tip is not None and tip[0] == seq:
                known[lot_id] = tip[1]
            else:
                missing.append((lot_id, seq))
        if missing:
            for lot_id, digest in _bids_at(missing, "bid.lot_id, bid.hash"):
                if digest is not None:
                    known[lot_id] = digest
        return known

    def link(self, rows: list[tuple]) -> list[tuple]:
        """rows (lot, seq, uid, amount, at, ref) in any order -> with (bidder_ref,
        hash) appended, hash None after a gap; the new tips, for `advance`."""
        by_lot: dict[int, list[tuple]] = {}
        for row in sorted(rows, key=lambda r: (r[0], r[1])):
            by_lot.setdefault(row[0], []).append(row)
        prev = self.previous({lot_id: lot_rows[0][1] - 1 for lot_id, lot_rows in by_lot.items()})
        out, self._pending = [], {}
        for lot_id, lot_rows in by_lot.items():
            digest = prev.get(lot_id)
            expected = lot_rows[0][1]
            for lot, seq, uid, amount, at, ref in lot_rows:
                pseudonym = self.bidder_ref(lot, uid)
                if digest is not None and seq == expected:
                    digest = bidchain.link_entry(digest, lot, seq, amount, pseudonym, at)
                    self._pending[lot] = (seq, digest)
                else:
                    digest = None  # a gap: linked later, when it closes (extend_chain)
                out.append((lot, seq, uid, amount, at, ref, pseudonym, digest))
                expected = seq + 1
        return out

    def advance(self) -> dict[int, tuple[int, str]]:
        """The tips of the last `link`, once its rows are committed."""
        pending, self._pending = self._pending, {}
        if len(self.tips) > self.limit:
            self.tips.clear()
        self.tips.update(pending)
        return pending

    def forget(self, lot_ids) -> None:
        self._pending = {}
        for lot_id in lot_ids:
            self.tips.pop(lot_id, None)


_pseudonym = bidchain.bidder_refs(bidchain.ref_key(settings.HALL_SECRET))
_tips = ChainTips()


def _row(entry: tuple) -> tuple | None:
    """(lot, seq, uid, amount, at, ref) from an ingest entry; None (logged) if
    it cannot be read, so one bad entry is dropped instead of blocking the stream.

    The bid script writes one field, b = "lot|seq|uid|amount|at|ref"; entries
    from a hall of the previous release, still in the stream across an
    upgrade, have the six as fields of their own.
    """
    _id, f = entry
    if not f:
        return None
    try:
        packed = f.get("b")
        if packed is not None:
            lot, seq, uid, amount, at, ref = packed.split("|", 5)
        else:
            lot, seq, uid, amount, at = f["lot"], f["seq"], f["uid"], f["amount"], f["at"]
            ref = f.get("ref", "")
        return int(lot), int(seq), int(uid), int(amount), int(at), ref[:64]
    except (KeyError, ValueError):
        logger.error("dropping an ingest entry that cannot be read: %s %s", _id, f)
        return None


def _store(entries: list, redelivered: bool = False) -> int:
    """Insert a batch of ingest entries; ack them once committed.

    Fresh entries are linked into their chains as they are inserted. Entries
    read again (claimed from a dead consumer, or our own unacknowledged ones)
    may already be rows, perhaps unlinked: those lots take the slow path.
    """
    if not entries:
        return 0
    rows = [row for row in map(_row, entries) if row is not None]
    lots = sorted({row[0] for row in rows})
    linked = [] if redelivered else _tips.link(rows)
    try:
        if rows:
            with write_transaction():
                _insert_rows(linked or [row + (None, None) for row in rows])
        tips = _tips.advance()
    except IntegrityError:
        # One bad entry (a lot or user the database does not know) must not
        # block the stream for every lot: store the rest one by one, unlinked.
        _tips.forget(lots)
        tips = {}
        for row in rows:
            try:
                with write_transaction():
                    _insert_rows([row + (None, None)])
            except IntegrityError:
                logger.error("dropping a bid the database cannot hold: %s", row)
    # The slow path for lots whose chain did not reach this batch's last bid,
    # or that already have a later bid stored (unlinked, behind a gap this
    # batch may have closed); and chain heads for lots settled meanwhile.
    last = {}
    for row in rows:
        last[row[0]] = max(last.get(row[0], 0), row[1])
    slow = {lot_id for lot_id in lots if tips.get(lot_id, (0,))[0] != last[lot_id]}
    fast = [(lot_id, last[lot_id] + 1) for lot_id in lots if lot_id not in slow]
    if fast:
        slow.update(lot_id for (lot_id,) in _bids_at(fast, "bid.lot_id"))
    for lot_id in sorted(slow):
        extend_chain(lot_id)
    settled = (Lot.select(Lot.id, Lot.bid_count).where(
        Lot.id.in_([lot_id for lot_id in lots if lot_id not in slow])
        & (Lot.status == "settled") & Lot.chain_head.is_null()).tuples()) if lots else []
    for lot_id, bid_count in settled:
        if lot_id in tips and tips[lot_id][0] >= bid_count:
            _publish_head(lot_id, tips[lot_id][1])
    ids = [entry_id for entry_id, _ in entries]
    ack_and_trim(keys.INGEST, keys.INGEST_GROUP, ids)
    return len(rows)


def flush(consumer: str, batch: int = 1000, max_rounds: int = 50) -> int:
    """Move everything waiting into the bids table; returns rows handled."""
    ensure_group(keys.INGEST, keys.INGEST_GROUP)
    r = client()
    total = 0
    # Entries another (dead) consumer read but never acknowledged.
    _next, claimed, *_ = r.xautoclaim(keys.INGEST, keys.INGEST_GROUP, consumer,
                                       CLAIM_IDLE_MS, "0-0", count=batch)
    total += _store(claimed, redelivered=True)
    # Our own unacknowledged entries (a previous run of ours failed midway).
    own = r.xreadgroup(keys.INGEST_GROUP, consumer, {keys.INGEST: "0"}, count=batch)
    if own and own[0][1]:
        total += _store(own[0][1], redelivered=True)
    for _ in range(max_rounds):
        got = r.xreadgroup(keys.INGEST_GROUP, consumer, {keys.INGEST: ">"}, count=batch)
        if not got or not got[0][1]:
            break
        total += _store(got[0][1])
    return total


def extend_chain(lot_id: int) -> tuple[int, str]:
    """Link the lot's stored bids after its last linked one, while their seqs
    are contiguous; (last linked seq, its hash). Idempotent: a row is only
    written while its hash is still empty. The slow path (gaps, redelivered
    bids, settlement); fresh bids are linked as they are inserted."""
    last = (Bid.select(Bid.seq, Bid.hash).where((Bid.lot == lot_id) & Bid.hash.is_null(False))
            .order_by(Bid.seq.desc()).first())
    seq, prev = (last.seq, last.hash) if last else (0, bidchain.ZERO)
    rows = list(Bid.select(Bid.id, Bid.seq, Bid.user, Bid.amount, Bid.at_ms)
                .where((Bid.lot == lot_id) & (Bid.seq > seq)).order_by(Bid.seq))
    links = []
    for row in rows:
        if row.seq != seq + 1:
            break  # a gap: that bid is not in the database yet
        ref = _tips.bidder_ref(lot_id, row.user_id)
        prev = bidchain.link_entry(prev, lot_id, row.seq, row.amount, ref, row.at_ms)
        seq = row.seq
        links.append((ref, prev, row.id))
    if links:
        with write_transaction():
            for ref, digest, row_id in links:
                Bid.update(bidder_ref=ref, hash=digest).where(
                    (Bid.id == row_id) & Bid.hash.is_null()).execute()
    if seq:
        _tips.tips[lot_id] = (seq, prev)
    _head_if_complete(lot_id, seq, prev)
    return seq, prev


def _head_if_complete(lot_id: int, seq: int, head: str) -> None:
    """A settled lot whose chain has reached its last bid publishes its head."""
    lot = Lot.get_or_none(Lot.id == lot_id)
    if lot is None or lot.status != "settled" or lot.chain_head or seq < lot.bid_count:
        return
    _publish_head(lot_id, head)


def _publish_head(lot_id: int, head: str) -> None:
    with write_transaction():
        Lot.update(chain_head=head).where((Lot.id == lot_id) & Lot.chain_head.is_null()).execute()
    r = client()
    if r.exists(keys.lot(lot_id)):  # the snapshot of a lot still in Redis shows it too
        r.hset(keys.lot(lot_id), "chain_head", head)
