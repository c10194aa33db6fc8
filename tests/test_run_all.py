"""`python run.py all` as a person runs it: Ctrl-C stops every part it started,
a part that crashes is started again and the product goes on, and a part that
cannot start makes it exit non-zero."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import ROOT, Api, Socket, free_port


def _start(tmp_path: Path, log_level: str | None = "WARNING", args: tuple = (),
           **env: str) -> subprocess.Popen:
    """run.py all; `log_level` None: as `make run` starts it (no HALL_LOG_LEVEL)."""
    full = {k: v for k, v in os.environ.items()
            if not k.startswith(("REDIS_", "DATABASE_", "WECHAT_", "HALL_"))}
    full.update({"HALL_DATA_DIR": str(tmp_path / "data"), "HALL_PORT": str(free_port()),
                 "PYTHONUNBUFFERED": "1", **env})
    if log_level:
        full["HALL_LOG_LEVEL"] = log_level
    return subprocess.Popen([sys.executable, "run.py", "all", *args], cwd=ROOT, env=full,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def _children(pid: int) -> list[int]:
    """Every live process in run.py's process group (what it started)."""
    out = subprocess.run(["ps", "-o", "pid=", "-g", str(pid)], capture_output=True, text=True)
    return [int(x) for x in out.stdout.split()]


def _cmdline(pid: int) -> bytes:
    """A process's command line; empty if it has exited since it was listed
    (a part's short-lived helper)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return b""


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


def _read_until(proc: subprocess.Popen, text: str, lines: list[str]) -> None:
    for line in proc.stdout:
        lines.append(line)
        if text in line:
            return
    raise AssertionError(f"run.py ended before {text!r}:\n" + "".join(lines))


async def test_a_crashed_worker_is_restarted_and_work_goes_on(tmp_path):
    port = free_port()
    proc = _start(tmp_path, HALL_PORT=str(port))
    lines: list[str] = []
    try:
        _read_until(proc, "hall ready", lines)
        worker = [pid for pid in _children(proc.pid)  # `celery -A workers worker ...`
                  if b"\0worker\0" in _cmdline(pid)]
        assert len(worker) == 1
        os.kill(worker[0], signal.SIGKILL)
        _read_until(proc, "worker restarted", lines)

        # The operator publishes a sale (the worker does that) and the demo
        # bidder pays a session deposit: the new worker takes both.
        base = f"http://127.0.0.1:{port}"
        admin = await Api(base).post("/api/auth/login", {"username": "admin",
                                                         "password": "admin1234"})
        op = Api(base, admin["token"])
        session = await op.post("/api/admin/sessions", {"title": "after a crash",
                                                        "deposit_amount": 10_000})
        lot = await op.post(f"/api/admin/sessions/{session['id']}/lots", {
            "title": "lot", "start_price": 1000, "increment": 100, "lot_deposit": 100,
            "ends_at_ms": int(time.time() * 1000) + 3_600_000})
        published = await op.post(f"/api/admin/sessions/{session['id']}/publish", {})
        assert published["status"] in ("published", "live")
        lot_id = lot["id"]
        login = await Api(base).post("/api/auth/login", {"username": "alice",
                                                         "password": "demo1234"})
        api = Api(base, login["token"])
        sock = await Socket.connect(f"ws://127.0.0.1:{port}/ws", login["token"])
        task = await api.post(f"/api/lots/{lot_id}/deposit", {"scope": "session",
                                                              "method": "balance"})
        done = await sock.wait_for(lambda m: m.get("type") == "task"
                                   and m.get("task_id") == task["task_id"], timeout=60)
        assert done["state"] == "SUCCESS", done
        await sock.close()
        assert any("worker exited" in line for line in lines)
        os.kill(proc.pid, signal.SIGINT)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0
    assert _children(proc.pid) == []


async def test_make_run_is_quiet_and_its_urls_stay_on_screen(tmp_path):
    """As `make run` starts it: one line per part and the URLs, then nothing
    for task runs and requests (warnings and errors only), while work is done."""
    port = free_port()
    proc = _start(tmp_path, log_level=None, HALL_PORT=str(port))
    lines: list[str] = []
    try:
        _read_until(proc, "hall ready", lines)
        head = len(lines)
        base = f"http://127.0.0.1:{port}"
        admin = await Api(base).post("/api/auth/login", {"username": "admin",
                                                         "password": "admin1234"})
        op = Api(base, admin["token"])
        session = await op.post("/api/admin/sessions", {"title": "quiet", "deposit_amount": 1_000})
        lots = [await op.post(f"/api/admin/sessions/{session['id']}/lots", {
            "title": f"lot {i}", "start_price": 1000, "increment": 100, "lot_deposit": 100,
            "ends_at_ms": int(time.time() * 1000) + 3_600_000}) for i in range(3)]
        await op.post(f"/api/admin/sessions/{session['id']}/publish", {})
        login = await Api(base).post("/api/auth/login", {"username": "alice",
                                                         "password": "demo1234"})
        api = Api(base, login["token"])
        sock = await Socket.connect(f"ws://127.0.0.1:{port}/ws", login["token"])
        for lot in lots:  # task runs and requests that, verbose, each log a line or two
            task = await api.post(f"/api/lots/{lot['id']}/deposit", {"scope": "lot",
                                                                     "method": "balance"})
            await sock.wait_for(lambda m: m.get("type") == "task"
                                and m.get("task_id") == task["task_id"], timeout=60)
            await api.get("/api/sessions")
        await sock.close()
        os.kill(proc.pid, signal.SIGINT)
        rest = proc.communicate(timeout=60)[0]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    out = "".join(lines) + rest
    assert proc.returncode == 0, out
    start = "".join(lines[:head])
    assert f"auction hall: http://127.0.0.1:{port}/" in start, start
    for part in ("redis", "wechat-sim", "worker", "beat", "hall"):
        assert f"run.py: {part} started" in start, (part, start)
    noisy = [line for line in out.splitlines()
             if "Task workers." in line or "succeeded in" in line or " INFO" in line
             or "/INFO" in line or "celery@" in line]
    assert noisy == [], noisy[:5]
    # Start, a few warnings, the shutdown: a screenful, where verbose it is
    # several lines a second (beat's sweeps alone) plus every request.
    assert len(out.splitlines()) < 60, out


def test_verbose_logs_at_info_and_the_worker_banner_only_then():
    import run
    import settings
    try:
        assert run.quiet_logs(verbose=True) is False and settings.LOG_LEVEL == "INFO"
        argv = run.worker_argv([], quiet=False)
        assert "-q" not in argv and argv[argv.index("--loglevel") + 1] == "INFO"
        assert run.worker_argv([], quiet=True)[5] == "-q"
    finally:
        os.environ.pop("HALL_LOG_LEVEL", None)
        settings.export()
