"""Scaling out: ONE hall process vs TWO (two ports), one worker vs two, same run.

    python bench/scaling.py [--clients 100] [--duration 10] [--viewers 1000] [--bids 30]
                            [--lots 200] [--quick]

One private stack (bench/stack.py) plus a second hall process on its own port
(same Redis, database and env), started up front so both phases pay for the
same idle processes:

1. bids: --clients closed-loop bidders (bench/load.py's client, two bidders per
   lot) for --duration s against hall 1 only, then the same bidders split over
   hall 1 and hall 2 (by lot: both bidders of a lot on the same hall; half the
   lots on each) for the same duration. 2 client processes in both phases.
2. fan-out: --viewers anonymous receivers in one room (bench/fanout.py's
   receivers and bidder), all on hall 1, then half on hall 1 and half on hall
   2 (the bidder is on hall 1, so hall 2's half gets the event through Redis
   pub/sub like any other process would).
3. settlement: a session of --lots lots with one deadline (bench/closing.py's
   set-up: deposits, bids on 10 lots) with the stack's one worker, then a
   second worker process is started and another such session runs.

Everything shares the box's cores: the figures say whether a second process
helps HERE; see docs/benchmarks.md for what they mean on a bigger host.
"""
from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import closing  # noqa: E402
import fanout  # noqa: E402
import load  # noqa: E402
from common import cpu_seconds, emit_result, pct  # noqa: E402
from stack import PY, BenchStack, Proc, free_port, raise_nofile  # noqa: E402


# -- bids over several halls: bench/load.py's client processes, one URL each -------
def run_load_split(parts: list[tuple[str, list]], duration: float, warmup: float, probe) -> dict:
    """parts: [(ws_url, conns)], one client process each (bench/load.py)."""
    res = load.run_load("", [], "hall", duration, warmup=warmup, probe=probe, split=parts)
    lat, counts = res["lat"], res["counts"]
    p0, p1 = res["probe"]
    n = max(1, counts.get("answers", 0))
    return {"accepted_per_s": counts.get("accepted", 0) / duration, "p50_ms": pct(lat, 50) * 1000,
            "p99_ms": pct(lat, 99) * 1000, "counts": dict(counts),
            "hall_cpu_us_per_bid": (p1 - p0) / n * 1e6, "hall_cpu_util": (p1 - p0) / duration}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=100)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--viewers", type=int, default=1000)
    ap.add_argument("--bids", type=int, default=30)
    ap.add_argument("--lots", type=int, default=200, help="lots of the settlement session")
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args(argv)
    if a.quick:
        a.clients, a.duration, a.warmup, a.viewers, a.bids, a.lots = 4, 1.0, 0.2, 20, 6, 10
    raise_nofile()
    t0 = time.time()
    gap = max(0.1, a.viewers / 5000)
    with BenchStack() as st:
        port2 = free_port()
        hall2 = Proc("hall2", [PY, "run.py", "hall", "--port", str(port2)], st.env, st.logs).start()
        try:
            hall2.wait_for_line("hall ready")
            url1, url2 = st.ws_url, f"ws://127.0.0.1:{port2}/ws"
            pid1, pid2 = st.hall.proc.pid, hall2.proc.pid

            # 1. bids
            users = st.bidders(a.clients + 4)
            bidders, settle_users = users[:a.clients], users[a.clients:]
            n_lots = max(1, a.clients // 2)
            _sid, lot_ids = st.live_lots(n_lots, bidders)
            conns = [(u["token"], lot_ids[i % n_lots]) for i, u in enumerate(bidders)]
            one = run_load_split([(url1, conns[0::2]), (url1, conns[1::2])], a.duration, a.warmup,
                                 lambda: cpu_seconds(pid1) + cpu_seconds(pid2))
            by_hall: list[list] = [[], []]
            for c in conns:
                by_hall[lot_ids.index(c[1]) % 2].append(c)
            two = run_load_split([(url1, by_hall[0]), (url2, by_hall[1])], a.duration, a.warmup,
                                 lambda: cpu_seconds(pid1) + cpu_seconds(pid2))

            # 2. fan-out
            fan_users = bidders[:2]
            _sid, fan_lots = st.live_lots(2, fan_users)  # a fresh lot per phase
            tokens = [u["token"] for u in fan_users]

            def trig(lot: int):
                def t() -> object:
                    return fanout.trigger_hall(url1, tokens, lot, a.bids + fanout.WARMUP_BIDS, gap)
                return t
            fan_one = fanout.measure([url1], fan_lots[0], a.viewers, 2, trig(fan_lots[0]), [pid1, pid2])
            fan_two = fanout.measure([url1, url2], fan_lots[1], a.viewers, 2, trig(fan_lots[1]), [pid1, pid2])

            # 3. settlement: one worker, then two
            margin = 12.0 if a.quick else 8 + 0.15 * a.lots + 4
            bid_lots = min(10, max(1, a.lots // 5))
            set1 = closing.run_round(st, settle_users, a.lots, bid_lots, margin, 180)
            worker2 = Proc("worker2", [PY, "-m", "celery", "-A", "workers", "worker", "-P", "eventlet",
                                       "-c", "50", "--loglevel", "INFO",
                                       "-n", f"bench2-{uuid.uuid4().hex[:6]}@%h"], st.env, st.logs).start()
            try:
                worker2.wait_for_line("ready.")
                set2 = closing.run_round(st, settle_users, a.lots, bid_lots, margin, 180)
            finally:
                worker2.stop()
        finally:
            hall2.stop()

    print(f"scaling: ONE vs TWO hall processes (ports), same load, same run; "
          f"one vs two workers; all on {len(__import__('os').sched_getaffinity(0))} shared cores")
    r = two["accepted_per_s"] / one["accepted_per_s"] if one["accepted_per_s"] else float("nan")
    print(f"  bids ({a.clients} bidders, {n_lots} lots, {a.duration:g}s):")
    print(f"    {'':10} {'accepted/s':>11} {'p50 ms':>8} {'p99 ms':>8} {'hall CPU us/bid':>16} {'hall CPU':>9}")
    for name, x in (("1 hall", one), ("2 halls", two)):
        print(f"    {name:10} {x['accepted_per_s']:11.0f} {x['p50_ms']:8.2f} {x['p99_ms']:8.2f} "
              f"{x['hall_cpu_us_per_bid']:16.0f} {x['hall_cpu_util']:8.0%}")
    print(f"    2 halls / 1 hall: accepted/s {r:.2f}x, p99 {two['p99_ms'] / one['p99_ms']:.2f}x "
          f"(codes: 1 hall {one['counts']}, 2 halls {two['counts']})")
    print(f"  fan-out ({a.viewers} viewers in one room, {a.bids} bids, bidder on hall 1):")
    print(f"    {'':10} {'last p50':>9} {'last p99':>9} {'client p99':>11} {'missing':>8} {'CPU us/deliv':>13}")
    for name, x in (("1 hall", fan_one), ("2 halls", fan_two)):
        print(f"    {name:10} {x['last_p50_ms']:9.2f} {x['last_p99_ms']:9.2f} {x['client_p99_ms']:11.2f} "
              f"{x['missing']:8d} {x['cpu_us_per_delivery']:13.1f}")
    print(f"    2 halls / 1 hall: last-receiver p50 {fan_two['last_p50_ms'] / fan_one['last_p50_ms']:.2f}x, "
          f"p99 {fan_two['last_p99_ms'] / fan_one['last_p99_ms']:.2f}x")
    print(f"  settlement ({a.lots} lots, one deadline, bids on {bid_lots}+5):")
    print(f"    {'':10} {'close p50 ms':>13} {'close p99 ms':>13} {'all settled s':>14}")
    for name, x in (("1 worker", set1), ("2 workers", set2)):
        print(f"    {name:10} {x['recv_p50_ms']:13.0f} {x['recv_p99_ms']:13.0f} {x['all_settled_s']:14.2f}")
    print(f"    2 workers / 1 worker: all settled {set2['all_settled_s'] / set1['all_settled_s']:.2f}x, "
          f"close p99 {set2['recv_p99_ms'] / set1['recv_p99_ms']:.2f}x")
    print(f"  wall time {time.time() - t0:.1f}s")
    out = {"bids": {"one": one, "two": two, "ratio": r}, "fanout": {"one": fan_one, "two": fan_two},
           "settlement": {"one": set1, "two": set2}}
    emit_result("scaling", out)
    return out


if __name__ == "__main__":
    main()
