"""Run every benchmark (each in its own process) and print a summary table.

    python bench/run_all.py [--quick] [--fanout-clients 1000] [--duration 10] [--curve]

--curve adds bench/curve.py (its default sizes take several minutes; with
--quick its quick form).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent


def run(script: str, args: list[str], timeout: float) -> dict:
    print(f"$ python bench/{script} {' '.join(args)}", flush=True)
    proc = subprocess.run([sys.executable, str(BENCH / script), *args], cwd=BENCH.parent,
                          capture_output=True, text=True, timeout=timeout)
    sys.stdout.write("".join(l + "\n" for l in proc.stdout.splitlines() if not l.startswith("RESULT ")))
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f"bench/{script} failed ({proc.returncode})")
    line = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--fanout-clients", type=int, default=1000)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--curve", action="store_true", help="also run bench/curve.py")
    a = ap.parse_args()
    t0 = time.time()
    if a.quick:
        bids = run("bids.py", ["--quick"], 300)
        fan = run("fanout.py", ["--quick"], 300)
    else:
        bids = run("bids.py", ["--duration", str(a.duration)], 900)
        fan = run("fanout.py", ["--clients", str(a.fanout_clients)], 900)
    curve = run("curve.py", ["--quick"] if a.quick else [], 3600) if a.curve else None
    h, e = bids["hall"], bids["echo"]
    fh, fr = fan["hall"], fan["ref"]
    rows = [
        ("bids: accepted/s vs echo replies/s", f"{h['accepted_per_s']:.0f}", f"{e['answers_per_s']:.0f}",
         f"{bids['ratio_accepted_vs_echo']:.2f}", ">= 0.35", bids["ratio_accepted_vs_echo"] >= 0.35),
        ("bids: p99 bid->answer (ms)", f"{h['p99_ms']:.1f}", f"{e['p99_ms']:.1f}",
         f"{bids['ratio_p99']:.2f}", "<= 2.0", bids["ratio_p99"] <= 2.0),
        (f"fan-out {fan['clients']}: last-receiver p50 (ms)", f"{fh['last_p50_ms']:.1f}",
         f"{fr['last_p50_ms']:.1f}", f"{fan['ratio_last_p50']:.2f}", "<= 1.0", fan["ratio_last_p50"] <= 1.0),
        (f"fan-out {fan['clients']}: last-receiver p99 (ms)", f"{fh['last_p99_ms']:.1f}",
         f"{fr['last_p99_ms']:.1f}", f"{fan['ratio_last_p99']:.2f}", "<= 1.0", fan["ratio_last_p99"] <= 1.0),
        (f"fan-out {fan['clients']}: per-client p99 (ms)", f"{fh['client_p99_ms']:.1f}",
         f"{fr['client_p99_ms']:.1f}", f"{fan['ratio_client_p99']:.2f}", "<= 1.0", fan["ratio_client_p99"] <= 1.0),
    ]
    if "peer" in bids:
        rows[2:2] = [
            ("bids: answers/s vs the peer's", f"{h['answers_per_s']:.0f}",
             f"{bids['peer']['answers_per_s']:.0f}", f"{bids['ratio_answers_vs_peer']:.2f}", ">= 2.0",
             bids["ratio_answers_vs_peer"] >= 2.0),
            ("bids: p99 vs the peer's (ms)", f"{h['p99_ms']:.1f}", f"{bids['peer']['p99_ms']:.1f}",
             f"{bids['ratio_p99_vs_peer']:.2f}", "<= 0.7", bids["ratio_p99_vs_peer"] <= 0.7),
        ]
    for i, size in enumerate(curve["sizes"] if curve else []):
        ch, cr = curve["runs"][0]["hall"][i], curve["runs"][0]["ref"][i]
        rows.append((f"curve {size}: last-receiver p99 (ms)", f"{ch['last_p99_ms']:.1f}",
                     f"{cr['last_p99_ms']:.1f}", f"{ch['last_p99_ms'] / cr['last_p99_ms']:.2f}", "<= 1.0",
                     ch["last_p99_ms"] <= cr["last_p99_ms"]))
        rows.append((f"curve {size}: KB per connection", f"{ch['kb_per_conn']:.1f}",
                     f"{cr['kb_per_conn']:.1f}", "", "<= 20 KB", ch["kb_per_conn"] <= 20))
    print()
    print(f"{'measure':42} {'hall':>9} {'reference':>10} {'ratio':>6} {'target':>8}  ")
    for name, ours, ref, ratio, target, ok in rows:
        print(f"{name:42} {ours:>9} {ref:>10} {ratio:>6} {target:>8}  {'met' if ok else 'MISSED'}")
    print(f"\ntotal wall time {time.time() - t0:.0f}s")


if __name__ == "__main__":
    main()
