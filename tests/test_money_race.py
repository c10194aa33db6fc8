"""Two copies of one money task at the same moment (the outbox re-submitted it,
or the broker redelivered it while the first still ran): the copy that loses
the race answers what the winner did, not `already_paid`, and money moves once.

Under `-P eventlet` on SQLite one worker's database calls never interleave, so
the race is forced here: the losing copy's first look finds nothing, and the
winning copy commits right then, before the loser writes.
"""
from __future__ import annotations

import uuid

import pytest

from test_money_property import money_env  # noqa: F401  (the fixture)


def _bidder_and_lot(balance: int, lot_deposit: int):
    from models import AuctionSession, LedgerEntry, Lot, User, now_ms
    u = User.create(username=f"race_{uuid.uuid4().hex[:8]}", password_hash="x", balance=balance)
    LedgerEntry.create(user=u, amount=balance, balance_after=balance, kind="credit",
                       ref=f"credit:{uuid.uuid4()}")
    session = AuctionSession.create(title="race", deposit_amount=0, status="live")
    lot = Lot.create(auction_session=session, position=0, title="lot", start_price=100,
                     increment=10, lot_deposit=lot_deposit, ends_at_ms=now_ms() + 3_600_000,
                     status="live")
    return u, lot


def test_a_deposit_copy_that_loses_the_race_answers_like_the_winner(money_env, monkeypatch):  # noqa: F811
    from models import Deposit, LedgerEntry, User
    from workers import deposits
    user, lot = _bidder_and_lot(5_000, 1_000)
    task_id = str(uuid.uuid4())
    real = Deposit.get_or_none
    winner: list[dict] = []

    def first_look_misses(*args, **kwargs):
        monkeypatch.setattr(Deposit, "get_or_none", real)
        winner.append(deposits.pay_deposit(user.id, lot.id, "lot", "balance", task_id))
        return None

    monkeypatch.setattr(Deposit, "get_or_none", first_look_misses)
    loser = deposits.pay_deposit(user.id, lot.id, "lot", "balance", task_id)
    assert winner and winner[0]["status"] == "paid"
    assert loser["status"] == "paid" and loser["deposit"] == winner[0]["deposit"]
    assert User.get_by_id(user.id).balance == 4_000
    assert LedgerEntry.select().where(LedgerEntry.user == user.id).count() == 2

    # A different task for the same scope is still refused.
    with pytest.raises(Exception) as refused:
        deposits.pay_deposit(user.id, lot.id, "lot", "balance", str(uuid.uuid4()))
    assert getattr(refused.value, "code", None) == "already_paid"


def test_an_order_copy_that_loses_the_race_answers_like_the_winner(money_env, monkeypatch):  # noqa: F811
    from models import LedgerEntry, Order, User, now_ms
    from workers import orders
    user, lot = _bidder_and_lot(50_000, 0)
    order = Order.create(user=user, lot=lot, amount=10_000, premium=0, due=10_000,
                         pay_by_ms=now_ms() + 3_600_000)
    task_id = str(uuid.uuid4())
    real = Order.get_or_none
    winner: list[dict] = []

    def first_look_sees_it_unpaid(*args, **kwargs):
        monkeypatch.setattr(Order, "get_or_none", real)
        unpaid = real(*args, **kwargs)
        winner.append(orders.pay_order(user.id, order.id, "balance", None, task_id))
        return unpaid

    monkeypatch.setattr(Order, "get_or_none", first_look_sees_it_unpaid)
    loser = orders.pay_order(user.id, order.id, "balance", None, task_id)
    assert winner and winner[0]["status"] == "paid"
    assert loser == winner[0]
    assert User.get_by_id(user.id).balance == 40_000
    assert LedgerEntry.select().where(LedgerEntry.user == user.id).count() == 2
