"""The bid batch's packing: hall/bidding.py's pack_evalsha beside redis-py's own packer.

    python bench/packing.py [--calls 4] [--rounds 20000] [--quick]

Both pack the same batch of bid script calls (a bid's real keys and arguments
from auction/engine.py) to the same bytes; prints microseconds per call.
"""
from __future__ import annotations

import argparse
import json
import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from redis.asyncio.connection import Connection  # noqa: E402

from auction import engine  # noqa: E402
from hall.bidding import pack_evalsha  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=4, help="bid script calls per batch")
    ap.add_argument("--rounds", type=int, default=20_000)
    ap.add_argument("--quick", action="store_true", help="200 rounds (what a test can run)")
    a = ap.parse_args(argv)
    if a.quick:
        a.rounds = 200
    ref = "c0ffee" * 5
    keys = engine.bid_keys(12, 3, 4567, ref)
    args = engine.bid_args(12, 4567, "bidder_abc", 12_300, ref, None, 20, "ab12cd34ef56", "k1")
    calls = [(len(keys), *keys, *args)] * a.calls
    sha = "0123456789abcdef0123456789abcdef01234567"
    conn = Connection()
    theirs = b"".join(conn.pack_commands([("EVALSHA", sha, *c) for c in calls]))
    assert pack_evalsha(sha, calls) == theirs, "the two packers disagree"
    per = a.rounds * a.calls
    hall_us = timeit.timeit(lambda: pack_evalsha(sha, calls), number=a.rounds) / per * 1e6
    redis_us = timeit.timeit(lambda: conn.pack_commands([("EVALSHA", sha, *c) for c in calls]),
                             number=a.rounds) / per * 1e6
    print(f"packing {a.calls} bid script calls per batch ({len(calls[0]) + 2} arguments each):")
    print(f"  hall/bidding.py pack_evalsha {hall_us:6.2f} us per call")
    print(f"  redis-py pack_commands       {redis_us:6.2f} us per call")
    print(f"  hall / redis-py: {hall_us / redis_us:.2f}")
    out = {"bench": "packing", "hall_us": hall_us, "redis_py_us": redis_us,
           "ratio": hall_us / redis_us}
    print("RESULT " + json.dumps(out))
    return out


if __name__ == "__main__":
    main()
