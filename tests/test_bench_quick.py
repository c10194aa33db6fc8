"""Every benchmark script runs with --quick, exits 0 and prints its figures.

No speed assertions: on a shared box the numbers say nothing in a test. The
scripts run as subprocesses, all at once (each starts its own private stack
on free ports), so the module takes about as long as the slowest one.
Deselect with `-m "not bench"`.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"

# script -> lines (substrings) its figures are printed on
EXPECT = {
    "bids.py": ["accepted/s / echo replies/s", "p99 hall / p99 echo", "peer (bench/peer.py)",
                "hall/peer answers/s", "hall/peer p99"],
    "fanout.py": ["hall/ref: last-receiver p50", "server CPU per delivered event"],
    "money.py": ["ratio deposit / bare"],
    "closing.py": ["closed-after-deadline p99", "close_lot outcomes"],
    "idle.py": ["hall/ref KB per connection", "hall (one process)", "websockets server (ref)"],
    "curve.py": ["| 200 | KB per connection |", "| 500 | last receiver p99 ms |",
                 "| 500 | server CPU us per delivered event |"],
    "scaling.py": ["2 halls / 1 hall: accepted/s", "2 halls / 1 hall: last-receiver",
                   "2 workers / 1 worker: all settled"],
    # Also checks that every one of the bids was accepted by each script.
    "bidscript.py": ["hall  Redis time in EVALSHA", "hall / peer server CPU per bid"],
    "churn.py": ["default ", "python ", "KB per 1,000 connections; full collections"],
    "packing.py": ["hall/bidding.py pack_evalsha", "hall / redis-py"],
    "relay.py": ["hall/subscription.py", "hall / redis-py"],
    "framereads.py": ["stock Tornado", "+ SteadyReadStream", "+ SteadyFrames (the room socket)",
                      "+ on_message a coroutine (the hall's)"],
}
TIMEOUT_S = 240


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "bench: runs the benchmark scripts (deselect: -m 'not bench')")


# pytest calls hooks only from conftest files and plugins, not from a test
# module: register this module as a plugin (pytest_configure is a historic
# hook, so it runs at once) before `pytest.mark.bench` is looked up below.
_config = getattr(pytest.mark, "_config", None)
if _config is not None and not _config.pluginmanager.is_registered(sys.modules[__name__]):
    _config.pluginmanager.register(sys.modules[__name__], "bench-quick-markers")

pytestmark = pytest.mark.bench


@pytest.fixture(scope="module")
def runs() -> dict:
    """Start every present script with --quick at once; collect their output."""
    procs = {}
    for script in EXPECT:
        if (BENCH / script).exists():
            procs[script] = subprocess.Popen([sys.executable, str(BENCH / script), "--quick"], cwd=ROOT,
                                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out = {}
    deadline = time.monotonic() + TIMEOUT_S
    for script, p in procs.items():
        try:
            stdout, stderr = p.communicate(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            stdout, stderr = p.communicate()
            out[script] = (None, stdout, stderr)
            continue
        out[script] = (p.returncode, stdout, stderr)
    return out


@pytest.mark.parametrize("script", list(EXPECT))
def test_quick(runs: dict, script: str) -> None:
    if script not in runs:
        pytest.skip(f"bench/{script} is not in this checkout")
    code, stdout, stderr = runs[script]
    assert code is not None, f"bench/{script} --quick timed out after {TIMEOUT_S}s:\n{stdout[-2000:]}"
    assert code == 0, f"bench/{script} --quick exited {code}:\n{stdout[-2000:]}\n{stderr[-4000:]}"
    for needle in EXPECT[script]:
        assert needle in stdout, f"bench/{script} did not print {needle!r}:\n{stdout[-2000:]}"
    results = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
    if results:  # the machine-readable summary, where the script emits one
        json.loads(results[-1][len("RESULT "):])


def _result(runs: dict, script: str) -> dict:
    if script not in runs or runs[script][0] != 0:
        pytest.skip(f"bench/{script} did not run (see test_quick)")
    line = [l for l in runs[script][1].splitlines() if l.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def test_quick_peer_answers_bids(runs: dict) -> None:
    """The peer reference took the same client's bids and answered them."""
    peer = _result(runs, "bids.py")["peer"]
    assert peer["counts"]["answers"] > 0
    assert peer["counts"].get("timeout", 0) == 0


def test_quick_curve_every_receiver_gets_every_bid(runs: dict) -> None:
    """Both servers were measured at each size, and no viewer missed a bid event."""
    curve = _result(runs, "curve.py")
    assert curve["sizes"] == [200, 500]
    for who in ("hall", "ref"):
        rows = curve["runs"][0][who]
        assert [r["size"] for r in rows] == [200, 500]
        assert all(r["bids"] == 5 and r["missing"] == 0 for r in rows), rows


def test_the_cpu_sampler_counts_where_the_cpu_went(tmp_path: Path) -> None:
    """bench/cpuprof: between two SIGUSR2 a process's CPU time is sampled, and
    the function that burned it has most of the samples (bench/profshare.py)."""
    out = tmp_path / "cpu.txt"
    script = (
        "import os, signal, time\n"
        "def burn():\n"
        "    end = time.process_time() + 0.5\n"
        "    while time.process_time() < end:\n"
        "        sum(range(1000))\n"
        "def idle():\n"
        "    time.sleep(0.5)\n"
        "os.kill(os.getpid(), signal.SIGUSR2)\n"
        "burn(); idle()\n"
        "os.kill(os.getpid(), signal.SIGUSR2)\n"
        "sum(range(10))\n"  # a bytecode after the signal: its handler runs
    )
    env = {**os.environ, "PYTHONPATH": str(BENCH / "cpuprof"),
           "BENCH_CPU_PROFILE": str(out)}
    subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=60)
    sys.path.insert(0, str(BENCH))
    from profshare import shares
    total, own, _ = shares(str(out))
    burned = sum(n for frame, n in own.items() if frame.startswith("burn "))
    assert total > 100 and burned / total > 0.9, own.most_common(5)
    assert not any(frame.startswith("idle ") for frame in own), "idle time was sampled"
