"""The multi-node setup on one machine: PostgreSQL, one Redis, two hall
processes and two eventlet workers; clients split across both halls.

The hall talks to PostgreSQL through asyncpg (playhouse.pwasyncio), the
workers through psycopg2 made cooperative with psycogreen under eventlet.
"""
from __future__ import annotations

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
    server = pg.Postgres(tmp / "pg", free_port()).start()
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
        server.stop()


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
        # Each refunded deposit has exactly one refund record, and only those.
        cur.execute("SELECT d.id FROM deposit d LEFT JOIN refund r ON r.deposit_id = d.id "
                    "WHERE (d.status = 'refunded') <> (r.id IS NOT NULL)")
        assert cur.fetchall() == []
