"""Connection churn: does the hall's memory stay flat while viewers come and go?

    python bench/churn.py [--seconds 60] [--batch 200] [--variants default,python] [--quick]

The hall's collector thresholds (HALL_GC_THRESHOLD, hall/gcpause.py) make full
collections rare, so cyclic garbage that reaches the oldest generation waits
longer to be freed. Closed WebSockets are the likeliest such garbage. This
opens --batch viewers on one live lot, lets each join and receive its snapshot,
closes them all, and repeats for --seconds, one hall per variant:

  default  the hall's own settings (gc.freeze after start-up, 50000,20,100)
  python   HALL_GC_THRESHOLD= (Python's own thresholds, 700,10,10), with the freeze

Every few seconds it samples the hall's RSS and its /metrics `hall_gc_*`.
Reported per variant: connections opened, RSS at the start of churning, its
peak and at the end, RSS growth per 1,000 connections over the second half
(the slope that would go on forever if garbage were never freed), and the full
collections with the longest.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from websockets.asyncio.client import connect  # noqa: E402

from common import emit_result  # noqa: E402
from fanout import gc_figures  # noqa: E402
from idle import rss_kb  # noqa: E402
from stack import BenchStack, raise_nofile  # noqa: E402

VARIANTS = {"default": {}, "python": {"HALL_GC_THRESHOLD": ""}}
SAMPLE_S = 2.0


async def churn(url: str, lot_id: int, batch: int, seconds: float, pid: int, base: str) -> dict:
    samples: list[tuple[float, int, int]] = []  # (elapsed s, connections so far, RSS KB)
    opened = 0

    async def one() -> None:
        ws = await connect(url, compression=None, ping_interval=None, max_size=2**22)
        await ws.send(json.dumps({"op": "join", "lot_id": lot_id}))
        while json.loads(await ws.recv()).get("type") != "snapshot":
            pass
        return ws

    start = time.monotonic()
    next_sample = 0.0
    while (elapsed := time.monotonic() - start) < seconds:
        if elapsed >= next_sample:
            samples.append((elapsed, opened, rss_kb(pid)))
            next_sample += SAMPLE_S
        socks = await asyncio.gather(*(one() for _ in range(batch)))
        opened += len(socks)
        await asyncio.gather(*(ws.close() for ws in socks))
    samples.append((time.monotonic() - start, opened, rss_kb(pid)))
    half = [s for s in samples if s[0] >= seconds / 2]
    slope = ((half[-1][2] - half[0][2]) / max(1, half[-1][1] - half[0][1]) * 1000
             if len(half) >= 2 else 0.0)
    return {"opened": opened, "rss_start_kb": samples[0][2], "rss_peak_kb": max(s[2] for s in samples),
            "rss_end_kb": samples[-1][2], "kb_per_1000_second_half": slope,
            "samples": samples, "gc": gc_figures(base)}


def run_variant(name: str, env: dict, batch: int, seconds: float) -> dict:
    stack = BenchStack()
    stack.env.update(env)  # the hall, worker and beat all run with this dict
    with stack as st:
        _sid, (lot_id,) = st.live_lots(1, [])
        res = asyncio.run(churn(st.ws_url, lot_id, batch, seconds, st.hall.proc.pid, st.base))
    res["variant"] = name
    return res


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--batch", type=int, default=200)
    ap.add_argument("--variants", default="default,python")
    ap.add_argument("--quick", action="store_true", help="6 s, batches of 20")
    a = ap.parse_args(argv)
    if a.quick:
        a.seconds, a.batch = 6.0, 20
    raise_nofile()
    results = [run_variant(v, VARIANTS[v], a.batch, a.seconds) for v in a.variants.split(",")]
    print(f"churn: batches of {a.batch} viewers join one lot and leave, {a.seconds:g} s per variant")
    for r in results:
        g = r["gc"]
        print(f"  {r['variant']:8} {r['opened']:7,} connections; RSS MB start {r['rss_start_kb'] / 1024:.1f}, "
              f"peak {r['rss_peak_kb'] / 1024:.1f}, end {r['rss_end_kb'] / 1024:.1f}; second half "
              f"{r['kb_per_1000_second_half']:+.1f} KB per 1,000 connections; full collections "
              f"{g.get('gen2', '?')}, longest {g.get('gen2_max_ms', 0):.1f} ms")
    out = {"bench": "churn", "batch": a.batch, "seconds": a.seconds,
           "results": [{k: v for k, v in r.items() if k != "samples"} for r in results]}
    emit_result("churn", out)
    return out


if __name__ == "__main__":
    main()
