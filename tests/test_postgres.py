"""The multi-node setup on one machine: PostgreSQL, one Redis, two hall
processes and two eventlet workers; clients split across both halls.

The hall talks to PostgreSQL through asyncpg (playhouse.pwasyncio), the
workers through psycopg2 made cooperative with psycogreen under eventlet.
"""
from __future__ import annotations

import json
import sys
import uuid

import psycopg2
import pytest
import pytest_asyncio

import pg
from conftest import Hall, Proc, Stack, free_port
from test_concurrency import bidding_storm

pytestmark = pytest.mark.skipif(not pg.available(), reason="PostgreSQL server binaries not installed")


@pytest.fixture(scope="module")
def pg_stack(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pgstack")
    server = pg.Postgres(free_port()).start()
    stack = Stack(tmp)
    stack.env["DATABASE_URL"] = server.url  # the Procs share this env dict
    py = sys.executable
    port_b = free_port()
    stack.hall_b = Proc("hall-b", [py, "run.py", "hall", "--port", str(port_b)], stack.env, stack.logs)
    stack.worker_b = Proc("worker-b", [py, "-m", "celery", "-A", "workers", "worker", "-P", "eventlet",
                                       "-c", "50", "--loglevel", "INFO",
                                       "-n", f"pg-b-{uuid.uuid4().hex[:6]}@%h"],
                          stack.env, stack.logs)
    stack.ws_url_b = f"ws://127.0.0.1:{port_b}/ws"
    try:
        stack.start()
        stack.hall_b.start()
        stack.worker_b.start()
        stack.hall_b.wait_for_line("hall ready")
        stack.worker_b.wait_for_line("ready.")
        yield stack, server
    finally:
        for p in (stack.hall_b, stack.worker_b):
            p.stop()
        stack.stop()
        server.remove()


@pytest_asyncio.fixture(scope="module")
async def pg_hall(pg_stack):
    return await Hall(pg_stack[0]).setup()


def pg_rows(url: str):
    def rows(lot_id: int):
        with psycopg2.connect(url) as conn, conn.cursor() as cur:
            cur.execute("SELECT seq, amount FROM bid WHERE lot_id = %s ORDER BY seq", (lot_id,))
            bids = cur.fetchall()
            cur.execute('SELECT amount FROM "order" WHERE lot_id = %s', (lot_id,))
            return bids, cur.fetchall()
    return rows


async def test_two_halls_two_workers_on_postgres(pg_stack, pg_hall):
    stack, server = pg_stack
    await bidding_storm(stack, pg_hall, [stack.ws_url, stack.ws_url_b], bidders=30,
                        sockets_per_bidder=2, lots=3, target_bids=1200, db_rows=pg_rows(server.url))
    # Money is conserved: every balance is the sum of its ledger entries.
    with psycopg2.connect(server.url) as conn, conn.cursor() as cur:
        cur.execute('SELECT u.id, u.balance, COALESCE(SUM(l.amount), 0) FROM "user" u '
                    "LEFT JOIN ledgerentry l ON l.user_id = u.id GROUP BY u.id, u.balance")
        for uid, balance, ledger in cur.fetchall():
            assert balance == ledger, (uid, balance, ledger)
        # Every money movement has exactly one audit entry, naming its ledger ref.
        cur.execute("SELECT ref FROM ledgerentry")
        refs = sorted(r for (r,) in cur.fetchall())
        cur.execute("SELECT after FROM auditentry WHERE action LIKE 'money.%%'")
        assert sorted(json.loads(a)["ref"] for (a,) in cur.fetchall()) == refs
        # Each refunded deposit has exactly one refund record, and only those.
        cur.execute("SELECT d.id FROM deposit d LEFT JOIN refund r ON r.deposit_id = d.id "
                    "WHERE (d.status = 'refunded') <> (r.id IS NOT NULL)")
        assert cur.fetchall() == []


async def test_database_outage_tasks_retry_and_nothing_is_half_written(pg_stack, pg_hall):
    """Stop PostgreSQL while a deposit is paid: the hall answers 503 (never 500),
    the task retries, and once the database is back the deposit lands once."""
    from conftest import Socket
    stack, server = pg_stack
    api, user = await pg_hall.bidder(balance=50_000)
    _s, (lot,) = await pg_hall.live_lots(1, ends_in_s=600, deposit=20_000)
    sock = await Socket.connect(stack.ws_url, api.token)

    server.stop()
    with pytest.raises(psycopg2.OperationalError):
        psycopg2.connect(server.url, connect_timeout=2)
    code, body = await api.call("GET", "/api/me")
    assert (code, body["code"]) == (503, "unavailable")
    answer = await api.post(f"/api/lots/{lot['id']}/deposit", {"scope": "session", "method": "balance"})
    # The worker is retrying against the dead database; bring it back.
    server.run()
    done = await sock.wait_for(lambda m: m.get("type") == "task"
                               and m.get("task_id") == answer["task_id"], timeout=60)
    assert done["state"] == "SUCCESS", done
    assert (await api.get("/api/me"))["balance"] == 30_000
    with psycopg2.connect(server.url) as conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(*), SUM(amount) FROM ledgerentry WHERE user_id = %s", (user["id"],))
        assert cur.fetchone() == (2, 30_000)  # the credit and the one deposit debit
        cur.execute("SELECT action FROM auditentry WHERE target = %s ORDER BY id",
                    (f"user:{user['id']}",))
        assert [a for (a,) in cur.fetchall()] == ["money.credit", "money.deposit"]
        cur.execute("SELECT COUNT(*) FROM deposit WHERE user_id = %s", (user["id"],))
        assert cur.fetchone()[0] == 1
    await sock.close()
