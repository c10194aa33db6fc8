"""The bid batch's packing: hall/bidding.py's beside redis-py's own packer.

    python bench/packing.py [--calls 4] [--rounds 20000] [--quick]

All pack the same batch of bid script calls (a bid's real keys and arguments
from auction/engine.py) to the same bytes; prints microseconds per call:
`pack_evalsha` from the keys and arguments, `BidCommands.pack` (what the bid
path uses) from a bid's changing parts and a template per bidder and lot, the
keys and arguments built each time for the other two as the bid path did.
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
from hall.auth import Identity  # noqa: E402
from hall.bidding import BidCommands, pack_evalsha  # noqa: E402


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
    user = Identity(id=4567, name="bidder_abc", role="bidder")
    commands = BidCommands()

    def template_pack() -> bytes:
        return b"".join(commands.pack(sha, 12, 3, user, 12_300, ref, None, 20, "ab12cd34ef56", "k1")
                        for _ in range(a.calls))
    assert template_pack() == theirs, "the template disagrees"

    def built() -> list[tuple]:
        out = []
        for _ in range(a.calls):
            k = engine.bid_keys(12, 3, 4567, ref)
            out.append((len(k), *k, *engine.bid_args(12, 4567, "bidder_abc", 12_300, ref, None, 20,
                                                     "ab12cd34ef56", "k1")))
        return out
    per = a.rounds * a.calls
    hall_us = timeit.timeit(lambda: pack_evalsha(sha, built()), number=a.rounds) / per * 1e6
    tpl_us = timeit.timeit(template_pack, number=a.rounds) / per * 1e6
    redis_us = timeit.timeit(lambda: conn.pack_commands([("EVALSHA", sha, *c) for c in built()]),
                             number=a.rounds) / per * 1e6
    print(f"packing {a.calls} bid script calls per batch ({len(calls[0]) + 2} arguments each), "
          f"the keys and arguments built as well:")
    print(f"  hall/bidding.py pack_evalsha {hall_us:6.2f} us per call")
    print(f"  hall/bidding.py BidCommands  {tpl_us:6.2f} us per call")
    print(f"  redis-py pack_commands       {redis_us:6.2f} us per call")
    print(f"  hall / redis-py: {hall_us / redis_us:.2f} (pack_evalsha), "
          f"{tpl_us / redis_us:.2f} (BidCommands)")
    out = {"bench": "packing", "hall_us": hall_us, "template_us": tpl_us, "redis_py_us": redis_us,
           "ratio": hall_us / redis_us, "ratio_template": tpl_us / redis_us}
    print("RESULT " + json.dumps(out))
    return out


if __name__ == "__main__":
    main()
