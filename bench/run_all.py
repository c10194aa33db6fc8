"""Run every benchmark (each in its own process) and print a summary table.

    python bench/run_all.py [--quick] [--fanout-clients 1000] [--duration 10]
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
    a = ap.parse_args()
    t0 = time.time()
    if a.quick:
        bids = run("bids.py", ["--quick"], 300)
        fan = run("fanout.py", ["--quick"], 300)
    else:
        bids = run("bids.py", ["--duration", str(a.duration)], 900)
        fan = run("fanout.py", ["--clients", str(a.fanout_clients)], 900)
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
    print()
    print(f"{'measure':42} {'hall':>9} {'reference':>10} {'ratio':>6} {'target':>8}  ")
    for name, ours, ref, ratio, target, ok in rows:
        print(f"{name:42} {ours:>9} {ref:>10} {ratio:>6} {target:>8}  {'met' if ok else 'MISSED'}")
    print(f"\ntotal wall time {time.time() - t0:.0f}s")


if __name__ == "__main__":
    main()
