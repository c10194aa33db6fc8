"""A/B: one benchmark on several commits, interleaved in one run.

    python bench/ab.py REV [REV ...] [--runs 3] [--bench bids.py] [-- BENCH ARGS]

Each REV (any git revision; `WORK` for the working tree) is checked out into
a temporary worktree; the benchmark then runs round-robin (A B C, A B C, ...)
so slow drift of the machine (other load, thermal) hits every variant alike.
Prints each variant's figures per run and their median. The same virtualenv
runs every variant: a REV that needs other dependencies is not comparable.
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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# (label, path into the bench's RESULT) for the benches that have them.
FIGURES = {
    "bids.py": [("accepted/s", ("hall", "accepted_per_s")), ("p99 ms", ("hall", "p99_ms")),
                ("hall us/bid", ("hall", "cpu_us_per_bid")),
                ("hall sys us/bid", ("hall", "sys_us_per_bid")),
                ("redis us/bid", ("hall", "redis_cpu_us_per_bid")),
                ("worker us/bid", ("hall", "worker_cpu_us_per_bid")),
                ("echo/s", ("echo", "answers_per_s")), ("vs echo", ("ratio_accepted_vs_echo",))],
    "fanout.py": [("hall CPU us/delivery", ("hall", "cpu_us_per_delivery")),
                  ("ref CPU us/delivery", ("ref", "cpu_us_per_delivery")),
                  ("last p50 hall/ref", ("ratio_last_p50",)), ("last p99 hall/ref", ("ratio_last_p99",))],
    "framereads.py": [("stock us/message", ("stock_us_per_message",)),
                      ("room socket us/message", ("hall_us_per_message",)),
                      ("room socket/stock", ("ratio_hall_vs_stock",))],
    "bidscript.py": [("hall script Redis CPU us/bid", ("median", "hall", "cpu_us")),
                     ("peer script Redis CPU us/bid", ("median", "peer", "cpu_us")),
                     ("hall/peer", ("ratio_cpu",))],
}


def dig(data: dict, path: tuple) -> float | None:
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data if isinstance(data, (int, float)) else None


def checkout(rev: str, into: Path) -> Path:
    if rev == "WORK":
        return ROOT
    path = into / rev.replace("/", "_")
    subprocess.run(["git", "worktree", "add", "--detach", "-f", str(path), rev], cwd=ROOT,
                   check=True, capture_output=True)
    return path


def run(tree: Path, bench: str, args: list[str]) -> dict:
    proc = subprocess.run([sys.executable, str(tree / "bench" / bench), *args], cwd=tree,
                          env={**os.environ, "PYTHONPATH": str(tree)}, capture_output=True,
                          text=True, timeout=1800)
    lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        sys.stderr.write(proc.stdout[-2000:] + proc.stderr[-3000:])
        raise SystemExit(f"{bench} failed in {tree}")
    return json.loads(lines[-1][len("RESULT "):])


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    extra: list[str] = []
    if "--" in argv:
        at = argv.index("--")
        argv, extra = argv[:at], argv[at + 1:]
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("revs", nargs="+")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--bench", default="bids.py")
    a = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="bench-ab-"))
    trees: dict[str, Path] = {}
    try:
        for rev in a.revs:
            trees[rev] = checkout(rev, tmp)
        results: dict[str, list[dict]] = {rev: [] for rev in a.revs}
        for i in range(a.runs):
            for rev in a.revs:
                print(f"run {i + 1}/{a.runs}: {rev}", flush=True)
                results[rev].append(run(trees[rev], a.bench, extra))
        figures = FIGURES.get(a.bench, [])
        print(f"\n$ python bench/ab.py {' '.join(a.revs)} --runs {a.runs} --bench {a.bench}"
              + (f" -- {' '.join(extra)}" if extra else ""))
        print("| figure | " + " | ".join(a.revs) + " |")
        print("|---|" + "---|" * len(a.revs))
        for label, path in figures:
            cells = []
            for rev in a.revs:
                vals = [v for v in (dig(r, path) for r in results[rev]) if v is not None]
                if vals:
                    cells.append(f"**{statistics.median(vals):.4g}** ("
                                 + ", ".join(f"{v:.4g}" for v in vals) + ")")
                else:
                    cells.append("–")
            print(f"| {label} | " + " | ".join(cells) + " |")
        print("RESULT " + json.dumps({"bench": "ab", "of": a.bench, "results": results}))
    finally:
        for tree in trees.values():
            if tree != ROOT:
                subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT,
                               capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
