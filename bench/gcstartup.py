"""A full garbage collection in a fresh hall process, before and after gc.freeze.
    python bench/gcstartup.py [--rounds 5]

Imports what a hall process imports (the application, its routes, the Celery
client), then times gc.collect() with every start-up object still tracked and
again after gc.freeze() (hall/gcpause.py), best of --rounds each, beside a
reference in the same run: a full collection of an empty interpreter's heap
(`python -c` in a child process). CPU time (process_time)."""
from __future__ import annotations

import argparse
import gc
import importlib
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BARE = ("import gc, time\nbest = 1e9\nfor _ in range({r}):\n    t = time.process_time(); gc.collect()\n"
        "    best = min(best, time.process_time() - t)\nprint(len(gc.get_objects()), best)")


def best_collect(rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        t = time.process_time()
        gc.collect()
        best = min(best, time.process_time() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    out = subprocess.run([sys.executable, "-c", BARE.format(r=a.rounds)], capture_output=True,
                         text=True, check=True).stdout.split()
    bare_objects, bare_s = int(out[0]), float(out[1])
    # What a hall process imports (run.py hall): the server, its routes, the Celery client.
    for name in ("hall.server", "hall.urls", "workers.celery"):
        importlib.import_module(name)
    objects = len(gc.get_objects())
    before = best_collect(a.rounds)
    gc.freeze()
    after = best_collect(a.rounds)
    print(f"tracked objects: hall {objects:,}, bare interpreter {bare_objects:,}")
    print(f"full collection: hall {before * 1000:.2f} ms, after gc.freeze {after * 1000:.3f} ms "
          f"(frozen {gc.get_freeze_count():,}); bare interpreter {bare_s * 1000:.2f} ms")


if __name__ == "__main__":
    main()
