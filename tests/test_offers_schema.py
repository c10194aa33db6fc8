"""The schema of second-chance offers on SQLite and PostgreSQL: a database made
before them (one order per lot, ever: `order_lot_id` unique; no offer table)
is brought up to date by `run.py initdb` (models.create_tables), after which
a lot may have a forfeited order and one more, never two live ones, and at
most one pending offer. The offer rules (auction/offers.py) run on each database:
who is next, decline, accept (the order, once), nobody left."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import pg
from conftest import free_port

ROOT = Path(__file__).resolve().parent.parent

OLD_SCHEMA = """
import models
from models import db
models.init_db(URL)
models.create_tables()
with db.connection_context():
    db.execute_sql('DROP TABLE offer')
    db.execute_sql('DROP INDEX order_one_live_per_lot')
    db.execute_sql('DROP INDEX order_lot_id')
    db.execute_sql('CREATE UNIQUE INDEX order_lot_id ON "order" (lot_id)')
    assert {i.name: i.unique for i in db.get_indexes("order")}["order_lot_id"] is True
"""

CHECK = """
import models
from peewee import IntegrityError
from models import db, AuctionSession, Lot, Offer, Order, User
models.init_db(URL)
with db.connection_context():
    indexes = {i.name: i.unique for i in db.get_indexes("order")}
    assert indexes["order_lot_id"] is False and indexes["order_one_live_per_lot"] is True, indexes
    user = User.create(username="schema-check", password_hash="x")
    other = User.create(username="schema-check-2", password_hash="x")
    session = AuctionSession.create(title="s")
    lot = Lot.create(auction_session=session, title="l", start_price=1, increment=1, ends_at_ms=1)
    def order(who, status):
        return Order.create(user=who, lot=lot, amount=1, due=1, pay_by_ms=1, status=status)
    order(user, "forfeited")
    order(other, "unpaid")  # a second-chance sale after the forfeit
    try:
        with db.atomic():
            order(user, "unpaid")
    except IntegrityError:
        pass
    else:
        raise AssertionError("two live orders for one lot")
    Offer.create(lot=lot, user=other, amount=1, expires_ms=1, status="declined")
    Offer.create(lot=lot, user=user, amount=1, expires_ms=1, status="pending")
    try:
        with db.atomic():
            Offer.create(lot=lot, user=other, amount=1, expires_ms=1, status="pending")
    except IntegrityError:
        pass
    else:
        raise AssertionError("two pending offers for one lot")

# The rules on this database (auction/offers.py), PostgreSQL's row lock included.
from auction import offers
from auction.errors import Refused
from models import Bid, write_transaction
lot2 = Lot.create(auction_session=session, title="l2", start_price=1, increment=1, ends_at_ms=1,
                  reserve_price=150, buyer_premium_bp=1000)
third = User.create(username="schema-check-3", password_hash="x")
low = User.create(username="schema-check-4", password_hash="x")
for seq, (who, amount) in enumerate([(low, 100), (third, 200), (other, 300), (third, 250),
                                     (user, 400)], 1):
    Bid.create(lot=lot2, seq=seq, user=who, amount=amount, at_ms=seq)
Order.create(user=user, lot=lot2, amount=400, due=400, pay_by_ms=1, status="forfeited")
with write_transaction():
    first = offers.pass_on(lot2.id, 1000)
assert (first.kind, first.offer.user_id, first.offer.amount) == ("offer", other.id, 300), first
with write_transaction():
    assert offers.pass_on(lot2.id, 1000).kind == "nothing"  # one pending offer at a time
with write_transaction():
    offers.decline(other.id, first.offer.id, 2000)
with write_transaction():
    second = offers.pass_on(lot2.id, 2000)
# third's own best bid (250, not their later one), low's 100 is under the reserve
assert (second.offer.user_id, second.offer.amount) == (third.id, 250), second
try:
    with write_transaction():
        offers.accept(other.id, second.offer.id, 3000)
except Refused as exc:
    assert exc.code == "not_found"
else:
    raise AssertionError("someone else's offer accepted")
with write_transaction():
    got = offers.accept(third.id, second.offer.id, 3000)
assert (got.order.amount, got.order.premium, got.order.due, got.created) == (250, 25, 275, True)
with write_transaction():
    again = offers.accept(third.id, second.offer.id, 3001)
assert again.order.id == got.order.id and not again.created
Order.update(status="forfeited").where(Order.id == got.order.id).execute()
with write_transaction():
    last = offers.pass_on(lot2.id, 4000)
assert last.kind == "none_left" and sorted(last.forfeited_by) == sorted([user.id, third.id]), last
with write_transaction():
    assert offers.pass_on(lot2.id, 4000).kind == "nothing"  # said once
print("ok")
"""


def run(url: str, code: str) -> str:
    out = subprocess.run([sys.executable, "-c", f"URL = {url!r}\n" + code], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def migrate_and_check(url: str) -> None:
    run(url, OLD_SCHEMA)
    run(url, "import models\nmodels.init_db(URL)\nmodels.create_tables()\nmodels.create_tables()\n")
    assert run(url, CHECK).strip() == "ok"


def test_an_old_sqlite_database_is_migrated(tmp_path):
    migrate_and_check(f"sqlite:///{tmp_path / 'old.db'}")


@pytest.mark.skipif(not pg.available(), reason="PostgreSQL server binaries not installed")
def test_an_old_postgres_database_is_migrated():
    server = pg.Postgres(free_port()).start()
    try:
        migrate_and_check(server.url)
    finally:
        server.remove()
