"""`python run.py all` as a person runs it: Ctrl-C stops every part it started,
and a part that cannot start makes it exit non-zero."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from conftest import ROOT, free_port


def _start(tmp_path: Path, **env: str) -> subprocess.Popen:
    full = {k: v for k, v in os.environ.items()
            if not k.startswith(("REDIS_", "DATABASE_", "WECHAT_", "HALL_"))}
    full.update({"HALL_DATA_DIR": str(tmp_path / "data"), "HALL_PORT": str(free_port()),
                 "HALL_LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1", **env})
    return subprocess.Popen([sys.executable, "run.py", "all"], cwd=ROOT, env=full,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def _children(pid: int) -> list[int]:
    """Every live process in run.py's process group (what it started)."""
    out = subprocess.run(["ps", "-o", "pid=", "-g", str(pid)], capture_output=True, text=True)
    return [int(x) for x in out.stdout.split()]


def test_ctrl_c_stops_every_part(tmp_path):
    proc = _start(tmp_path)
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line)
            if "hall ready" in line:
                break
        assert any("hall ready" in line for line in lines), "".join(lines)
        assert len(_children(proc.pid)) >= 5  # redis, simulator, worker, beat, hall (+ us)
        os.kill(proc.pid, signal.SIGINT)  # Ctrl-C, to run.py alone
        rest = proc.communicate(timeout=60)[0]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, "".join(lines) + rest
    assert _children(proc.pid) == []  # nothing left behind


def test_a_part_that_cannot_start_is_a_failure(tmp_path):
    # Production refuses the default secret: the hall exits, so must run.py.
    proc = _start(tmp_path, HALL_ENV="production")
    try:
        out = proc.communicate(timeout=90)[0]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode != 0, out
    assert "HALL_SECRET" in out
    assert _children(proc.pid) == []
