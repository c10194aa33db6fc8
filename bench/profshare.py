"""Shares of a profile's samples, per function: its own, and with what it calls.

    python bench/profshare.py FILE [--top 40] [--under NAME]

FILE is py-spy's raw format (one `frame;frame;... count` line per stack), as
`bench/bids.py --profile` (py-spy) and `--profile-cpu` (bench/cpuprof) write
it. A function is its name and file; its line numbers are merged. With
--under, only the stacks that pass through a function whose name contains NAME.
"""
from __future__ import annotations

import argparse
import re
from collections import Counter

_LINE = re.compile(r":\d+\)$")


def shares(path: str, under: str | None = None) -> tuple[int, Counter, Counter]:
    """(samples, own samples per function, samples per function with its callees)."""
    total, own, inclusive = 0, Counter(), Counter()
    with open(path) as f:
        for line in f:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not stack:
                continue
            frames = [_LINE.sub(")", frame) for frame in stack.split(";")]
            if under and not any(under in frame.split(" (")[0] for frame in frames):
                continue
            n = int(count)
            total += n
            own[frames[-1]] += n
            for frame in set(frames):
                inclusive[frame] += n
    return total, own, inclusive


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("file")
    ap.add_argument("--top", type=int, default=40)
    ap.add_argument("--under", help="only stacks through a function whose name contains this")
    a = ap.parse_args()
    total, own, inclusive = shares(a.file, a.under)
    print(f"{total} samples" + (f" through {a.under!r}" if a.under else ""))
    for title, counts in (("own", own), ("with callees", inclusive)):
        print(f"\n{title}:")
        for frame, n in counts.most_common(a.top):
            print(f"{100 * n / max(1, total):5.1f} %  {frame}")


if __name__ == "__main__":
    main()
