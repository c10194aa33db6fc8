"""Reading pub/sub: the hall's reader (hall/subscription.py) beside redis-py's PubSub.

    python bench/relay.py [--messages 50000] [--rounds 3] [--quick]

One Redis server; a publisher process sends bid-sized messages to one
channel, one at a time (`paced`: every message its own round trip, as bids
mostly come) or 50 to a pipeline (`burst`). The reader in this process counts
them with either reader; prints the reader thread's CPU per message, the two
readers alternating round by round, median of the rounds.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import redis.asyncio as aioredis  # noqa: E402

from hall.subscription import Subscription  # noqa: E402
from tests.procs import RedisServer  # noqa: E402

CHANNEL = "lot:1"
PAYLOAD = json.dumps({"type": "bid", "lot_id": 1, "seq": 123, "amount": 12_300,
                      "bidder": "bidder_abc", "at": 1_764_650_000_000, "next_min": 12_400,
                      "ends_at": 1_764_650_300_000, "count": 123}).encode()

PUBLISHER = """
import sys, redis
url, n, pipe = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
r = redis.Redis.from_url(url)
payload = sys.stdin.buffer.read()
sys.stdout.write("ready\\n"); sys.stdout.flush()
sys.stdin.close()
for start in range(0, n, pipe):
    p = r.pipeline(transaction=False)
    for _ in range(min(pipe, n - start)):
        p.publish("%s", payload)
    p.execute()
""" % CHANNEL


async def redis_py_reader(url: str, n: int, started: asyncio.Event) -> None:
    r = aioredis.from_url(url)
    pubsub = r.pubsub()
    await pubsub.subscribe(CHANNEL)
    started.set()
    got = 0
    while got < n:
        msg = await pubsub.get_message(timeout=None)
        if msg is not None and msg["type"] == "message":
            got += 1
    await pubsub.aclose()
    await r.aclose()


async def hall_reader(url: str, n: int, started: asyncio.Event) -> None:
    r = aioredis.from_url(url)
    sub = Subscription(r.connection_pool)
    await sub.open([CHANNEL])
    done = asyncio.get_running_loop().create_future()
    got = 0

    def handle(reply: list) -> None:
        nonlocal got
        if reply[0] == b"message":
            reply[1].decode()  # as the relay does
            got += 1
            if got == n:
                done.set_result(None)

    sub.deliver_to(handle)
    started.set()
    await done
    sub.close()
    await r.aclose()


async def one(reader, url: str, n: int, pipe: int) -> float:
    started = asyncio.Event()
    task = asyncio.ensure_future(reader(url, n, started))
    await started.wait()
    pub = subprocess.Popen([sys.executable, "-c", PUBLISHER, url, str(n), str(pipe)],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    pub.stdin.write(PAYLOAD)
    pub.stdin.close()
    await asyncio.get_running_loop().run_in_executor(None, pub.stdout.readline)
    cpu0 = time.thread_time()
    await task
    cpu = time.thread_time() - cpu0
    pub.wait()
    return cpu / n * 1e6


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=50_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="2,000 messages, 1 round")
    a = ap.parse_args(argv)
    if a.quick:
        a.messages, a.rounds = 2_000, 1
    with tempfile.TemporaryDirectory() as tmp:
        srv = RedisServer(Path(tmp) / "data", Path(tmp), aof=False).start()
        try:
            out: dict = {"bench": "relay", "messages": a.messages}
            for mode, pipe in (("paced", 1), ("burst", 50)):
                runs: dict[str, list[float]] = {"hall": [], "redis_py": []}
                for i in range(a.rounds):
                    order = [("hall", hall_reader), ("redis_py", redis_py_reader)]
                    for name, reader in (order if i % 2 == 0 else order[::-1]):
                        runs[name].append(asyncio.run(one(reader, srv.url, a.messages, pipe)))
                hall_us = statistics.median(runs["hall"])
                redis_us = statistics.median(runs["redis_py"])
                print(f"{mode} ({pipe} per publish round trip), reader CPU per message:")
                print(f"  hall/subscription.py  {hall_us:6.2f} us")
                print(f"  redis-py PubSub       {redis_us:6.2f} us")
                print(f"  hall / redis-py: {hall_us / redis_us:.2f}")
                out[mode] = {"hall_us": hall_us, "redis_py_us": redis_us,
                             "ratio": hall_us / redis_us}
        finally:
            srv.stop()
    print("RESULT " + json.dumps(out))
    return out


if __name__ == "__main__":
    main()
