"""Property test of settlement: plain functions against a real SQLite file and
a small private Redis (so no message reaches the shared stack's users).

Random sessions (lots, deposit amounts, buyer's premium), random deposits
(session or lot scope, balance or WeChat Pay), random bid histories, lots
settled in a random order, some twice. Then: money is conserved (ledger sum ==
balances; every deposit is refunded, or credited + refunded == its amount);
every loser is refunded exactly once; orders are right; WeChat refunds go to
the gateway once each; settling everything again changes nothing.
"""
from __future__ import annotations

import itertools
import uuid
from pathlib import Path

import pytest
from conftest import RedisServer, free_port
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

_seq = itertools.count(1)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def money_env(request, tmp_path_factory: pytest.TempPathFactory):
    """The same property on both databases the product supports."""
    tmp = tmp_path_factory.mktemp("money-property")
    pg_server = None
    if request.param == "postgresql":
        import pg
        if not pg.available():
            pytest.skip("PostgreSQL server binaries not installed")
        pg_server = pg.Postgres(free_port()).start()
        db_url = pg_server.url
    else:
        db_url = f"sqlite:///{tmp / 'money.db'}"
    server = RedisServer(tmp / "redis", tmp).start()
    import models
    import settings as hall_settings
    from workers import publish
    from workers import dispatch
    old_url, old_client = hall_settings.REDIS_URL, publish._client
    hall_settings.REDIS_URL, publish._client = server.url, None
    # SMS tasks are dropped, not queued: this property is about money, and
    # queueing each through Celery's client was most of its time (the second
    # settlements it makes on purpose queue every refund's SMS again).
    old_sms, dispatch.user_sms = dispatch.user_sms, lambda *args: None
    models.init_db(db_url)
    models.create_tables()
    yield tmp
    dispatch.user_sms = old_sms
    hall_settings.REDIS_URL, publish._client = old_url, old_client
    models.db.close()
    server.stop()
    if pg_server is not None:
        pg_server.remove()


class FakeGateway:
    """Stands for WeChat Pay's refund API: idempotent by out_refund_no."""

    def __init__(self) -> None:
        self.refunds: dict[str, tuple[str, int, int]] = {}
        self.calls = 0

    def refund(self, out_trade_no: str, out_refund_no: str, refund_fen: int, total_fen: int,
               reason: str = "") -> dict:
        self.calls += 1
        assert 0 < refund_fen <= total_fen
        old = self.refunds.setdefault(out_refund_no, (out_trade_no, refund_fen, total_fen))
        assert old == (out_trade_no, refund_fen, total_fen)
        return {"status": "SUCCESS", "refund_id": "50" + out_refund_no}


scenario = st.fixed_dictionaries({
    "n_users": st.integers(2, 5),
    "n_lots": st.integers(1, 3),
    "session_deposit": st.integers(1, 30_000),
    "lot_deposits": st.lists(st.integers(1, 30_000), min_size=3, max_size=3),
    "premium_bp": st.sampled_from([0, 500, 1000, 1500]),
    # per user: None (nothing), "s:balance", "s:wechat", or per-lot choices
    "deposits": st.lists(st.one_of(
        st.sampled_from(["s:balance", "s:wechat"]),
        st.lists(st.sampled_from([None, "balance", "wechat"]), min_size=3, max_size=3)),
        min_size=5, max_size=5),
    "bids": st.lists(st.tuples(st.integers(0, 4), st.integers(0, 2), st.integers(1, 40)),
                     max_size=25),
    "order": st.randoms(use_true_random=False),
    "twice": st.lists(st.booleans(), min_size=3, max_size=3),
    "forfeit": st.lists(st.booleans(), min_size=3, max_size=3),  # 悔拍 per lot's order
})


def snapshot() -> tuple:
    from models import Deposit, LedgerEntry, Order, Refund, User
    return (
        [tuple(r) for r in User.select(User.id, User.balance).tuples()],
        [tuple(r) for r in LedgerEntry.select(LedgerEntry.id, LedgerEntry.amount).tuples()],
        [tuple(r) for r in Deposit.select(Deposit.id, Deposit.status, Deposit.credited,
                                          Deposit.credited_to).tuples()],
        [tuple(r) for r in Refund.select(Refund.id, Refund.deposit, Refund.amount,
                                         Refund.status).tuples()],
        [tuple(r) for r in Order.select(Order.id, Order.deposit_credited, Order.due,
                                        Order.status).tuples()],
    )


@hsettings(max_examples=25, deadline=None,
           suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(sc=scenario)
def test_settlement_conserves_money(money_env: Path, sc: dict) -> None:
    from peewee import fn

    from models import (
        AuctionSession,
        Deposit,
        LedgerEntry,
        Lot,
        Order,
        Payment,
        Refund,
        User,
        now_ms,
    )
    from workers import deposits, refunds, settlement

    tag = next(_seq)
    start_balance = 1_000_000
    users = []
    for i in range(sc["n_users"]):
        u = User.create(username=f"p{tag}_{i}_{uuid.uuid4().hex[:6]}", password_hash="x",
                        balance=start_balance)
        LedgerEntry.create(user=u, amount=start_balance, balance_after=start_balance,
                           kind="credit", ref=f"credit:{uuid.uuid4()}")
        users.append(u)
    session = AuctionSession.create(title=f"prop {tag}", deposit_amount=sc["session_deposit"],
                                    status="live")
    lots = [Lot.create(auction_session=session, position=j, title=f"lot {j}", start_price=100,
                       increment=10, lot_deposit=sc["lot_deposits"][j],
                       buyer_premium_bp=sc["premium_bp"], ends_at_ms=now_ms() + 3_600_000,
                       status="live") for j in range(sc["n_lots"])]

    # Deposits, through the real payment function for balance; WeChat ones as
    # a verified notification leaves them (payment paid, deposit paid).
    eligible: dict[int, set[int]] = {lot.id: set() for lot in lots}
    for i, user in enumerate(users):
        choice = sc["deposits"][i]
        wanted = ([("session", choice[2:], lots[0])] if isinstance(choice, str) else
                  [("lot", m, lots[j]) for j, m in enumerate(choice[:len(lots)]) if m])
        for scope, method, lot in wanted:
            if method == "balance":
                deposits.pay_deposit(user.id, lot.id, scope, "balance", f"t-{uuid.uuid4()}")
            else:
                no = f"D{uuid.uuid4().hex[:30]}"
                dep = Deposit.create(user=user, auction_session=session, scope=scope,
                                     lot=lot.id if scope == "lot" else None,
                                     scope_key=deposits.scope_key(scope, session.id, lot.id, user.id),
                                     amount=(sc["session_deposit"] if scope == "session"
                                             else lot.lot_deposit),
                                     method="wechat", status="paid", out_trade_no=no,
                                     paid_at_ms=now_ms())
                Payment.create(user=user, deposit=dep, method="wechat", amount=dep.amount,
                               out_trade_no=no, transaction_id="4200" + no[1:25], status="paid")
            for lot_ in (lots if scope == "session" else [lot]):
                eligible[lot_.id].add(user.id)

    # Bid histories: an eligible user raises the price; the last bidder leads.
    price = {lot.id: 0 for lot in lots}
    leader: dict[int, int | None] = {lot.id: None for lot in lots}
    count = {lot.id: 0 for lot in lots}
    for ui, lj, steps in sc["bids"]:
        if ui >= len(users) or lj >= len(lots):
            continue
        lot, uid = lots[lj], users[ui].id
        if uid not in eligible[lot.id] or leader[lot.id] == uid:
            continue
        price[lot.id] = (price[lot.id] or 90) + 10 * steps
        leader[lot.id] = uid
        count[lot.id] += 1

    dispatched: list[int] = []
    order = list(lots)
    sc["order"].shuffle(order)
    for lot in order:
        args = {"sold": leader[lot.id] is not None, "price": price[lot.id],
                "winner_id": leader[lot.id], "closed_at": now_ms(), "bid_count": count[lot.id],
                "dispatcher": dispatched.append}
        settlement.settle_closed(lot.id, **args)
        if sc["twice"][lot.position]:
            before = snapshot()
            settlement.settle_closed(lot.id, **args)
            assert snapshot() == before

    gateway = FakeGateway()
    for rid in dispatched:
        assert refunds.send_refund(rid, client=gateway)["status"] == "done"
        assert refunds.send_refund(rid, client=gateway)["status"] == "done"  # a redelivery
    assert gateway.calls == len(dispatched)

    # --- the properties --------------------------------------------------------
    uids = [u.id for u in users]
    assert AuctionSession.get_by_id(session.id).status == "ended"
    (ledger_sum,), = LedgerEntry.select(fn.SUM(LedgerEntry.amount)).tuples()
    (balance_sum,), = User.select(fn.SUM(User.balance)).tuples()
    assert ledger_sum == balance_sum
    orders = {o.lot_id: o for o in Order.select().where(Order.lot.in_([lot.id for lot in lots]))}
    assert set(orders) == {lot.id for lot in lots if leader[lot.id] is not None}
    for lot in lots:
        o = orders.get(lot.id)
        if o is None:
            continue
        premium = price[lot.id] * sc["premium_bp"] // 10000
        credited = Deposit.select(fn.COALESCE(fn.SUM(Deposit.credited), 0)).where(
            Deposit.credited_to == o.id).scalar()
        assert (o.user_id, o.amount, o.premium) == (leader[lot.id], price[lot.id], premium)
        assert o.deposit_credited == credited and o.due == o.amount + o.premium - credited >= 0
        assert o.status == ("paid" if o.due == 0 else "unpaid")
    winners_of = {lot.id: leader[lot.id] for lot in lots}
    for dep in Deposit.select().where(Deposit.user.in_(uids)):
        rows = list(Refund.select().where(Refund.deposit == dep.id))
        assert len(rows) <= 1
        refunded = rows[0].amount if rows else 0
        if rows:
            assert rows[0].method == dep.method and rows[0].status == "done"
        if dep.scope == "lot" and winners_of[dep.lot_id] != dep.user_id:
            # a loser (or an unsold lot): refunded in full, exactly once
            assert dep.status == "refunded" and refunded == dep.amount
        elif dep.status == "refunded":
            assert refunded == dep.amount and dep.credited == 0
        else:
            assert dep.status == "credited" and dep.credited + refunded == dep.amount
            assert dep.credited > 0 and dep.credited_to in {o.id for o in orders.values()}
    for user in users:
        u = User.get_by_id(user.id)
        assert LedgerEntry.select(fn.SUM(LedgerEntry.amount)).where(
            LedgerEntry.user == u.id).scalar() == u.balance
        kept = Deposit.select(fn.COALESCE(fn.SUM(Deposit.credited), 0)).where(
            (Deposit.user == u.id) & (Deposit.method == "balance")).scalar()
        assert u.balance == start_balance - kept
    # WeChat refunds: one gateway refund per refunded WeChat deposit, right amounts.
    for rid in dispatched:
        r = Refund.get_by_id(rid)
        dep = Deposit.get_by_id(r.deposit_id)
        assert gateway.refunds[refunds.out_refund_no(dep)] == (dep.out_trade_no, r.amount,
                                                               dep.amount)
    assert len(dispatched) == len(set(dispatched)) == Refund.select().where(
        (Refund.user.in_(uids)) & (Refund.method == "wechat")).count()

    # Settling everything again (and the session) changes nothing at all.
    before = snapshot()
    for lot in lots:
        settlement.settle_closed(lot.id, sold=leader[lot.id] is not None, price=price[lot.id],
                                 winner_id=leader[lot.id], closed_at=now_ms(),
                                 bid_count=count[lot.id], dispatcher=dispatched.append)
    settlement.settle_session_if_done(session.id, dispatched.append)
    assert snapshot() == before

    # 悔拍: some winners never pay. Their unpaid orders and the deposits credited
    # to them are forfeited; no balance moves; doing it again changes nothing.
    from workers import orders as order_fns
    balances = {u.id: User.get_by_id(u.id).balance for u in users}
    later = now_ms() + 100 * 24 * 3600 * 1000
    doomed = [o for o in orders.values()
              if sc["forfeit"][Lot.get_by_id(o.lot_id).position] and o.status == "unpaid"]
    for o in doomed:
        assert order_fns.forfeit_order(o.id, later)
        assert not order_fns.forfeit_order(o.id, later)
        assert Order.get_by_id(o.id).status == "forfeited"
        credited = list(Deposit.select().where(Deposit.credited_to == o.id))
        assert all(d.status == "forfeited" for d in credited)
        assert sum(d.credited for d in credited) == o.deposit_credited
    for o in orders.values():
        if o not in doomed:
            assert not order_fns.forfeit_order(o.id, now_ms() - 1)  # not due: untouched
    assert {u.id: User.get_by_id(u.id).balance for u in users} == balances
    (ledger_sum,), = LedgerEntry.select(fn.SUM(LedgerEntry.amount)).tuples()
    (balance_sum,), = User.select(fn.SUM(User.balance)).tuples()
    assert ledger_sum == balance_sum
