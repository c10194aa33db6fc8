"""The system of record: users, money, auction sessions, lots, bids, orders.

Money is an integer number of fen everywhere. Times are epoch milliseconds.
`db` is created unbound and initialised at start: the hall binds it to an
async database (playhouse.pwasyncio) so queries never block the IOLoop; the
workers bind it to plain peewee.
"""
from __future__ import annotations

import json
import time
from contextvars import ContextVar
from typing import Any, Callable

from peewee import (
    BigIntegerField, CharField, DatabaseProxy, ForeignKeyField,
    IntegerField, TextField,
)
from playhouse.db_url import parse as parse_db_url
from playhouse.pwasyncio import AsyncModel

import settings

db = DatabaseProxy()


def now_ms() -> int:
    return int(time.time() * 1000)


class JSONField(TextField):
    def db_value(self, value: Any) -> str | None:
        return None if value is None else json.dumps(value, separators=(",", ":"))

    def python_value(self, value: str | None) -> Any:
        return None if value is None else json.loads(value)


class BaseModel(AsyncModel):
    class Meta:
        database = db


class User(BaseModel):
    username = CharField(max_length=32, unique=True)
    password_hash = CharField(max_length=255)
    phone = CharField(max_length=20, null=True)
    role = CharField(max_length=16, default="bidder")  # bidder | operator
    balance = BigIntegerField(default=0)
    created_at_ms = BigIntegerField(default=now_ms)
    # Trust: a banned user may not deposit or bid (API.md, "Trust"); strikes
    # count forfeited orders.
    status = CharField(max_length=8, default="active")  # active | banned
    strikes = IntegerField(default=0)
    ban_reason = CharField(max_length=200, null=True)

    def public(self) -> dict:
        return {"id": self.id, "username": self.username, "role": self.role,
                "balance": self.balance}


class LedgerEntry(BaseModel):
    """Every change of a balance, so the sum of entries always equals balances.

    `ref` makes each movement idempotent: the same money movement (a deposit,
    a refund, a credit) can be written only once.
    """
    user = ForeignKeyField(User, backref="ledger")
    amount = BigIntegerField()  # signed: + credit, - debit
    balance_after = BigIntegerField()
    kind = CharField(max_length=24)  # credit | deposit | refund | order | forfeit | topup
    ref = CharField(max_length=96, unique=True)
    memo = CharField(max_length=255, default="")
    created_at_ms = BigIntegerField(default=now_ms)


class AuctionSession(BaseModel):
    """专场: a sale of several lots under one session deposit."""
    title = CharField(max_length=200)
    description = TextField(default="")
    deposit_amount = BigIntegerField(default=0)
    starts_at_ms = BigIntegerField(null=True)
    stagger_s = IntegerField(default=0)
    status = CharField(max_length=16, default="draft")  # draft published live ended
    publish_at_ms = BigIntegerField(null=True)
    published_at_ms = BigIntegerField(null=True)
    ended_at_ms = BigIntegerField(null=True)
    created_at_ms = BigIntegerField(default=now_ms)

    def public(self, lot_count: int | None = None) -> dict:
        d = {"id": self.id, "title": self.title, "description": self.description,
             "status": self.status, "starts_at_ms": self.starts_at_ms,
             "deposit_amount": self.deposit_amount, "stagger_s": self.stagger_s}
        if lot_count is not None:
            d["lot_count"] = lot_count
        return d


class Lot(BaseModel):
    """单品: one item under the hammer. Live state lives in Redis while it runs."""
    auction_session = ForeignKeyField(AuctionSession, backref="lots", column_name="session_id")
    position = IntegerField(default=0)
    title = CharField(max_length=200)
    description = TextField(default="")
    images = JSONField(default=list)
    start_price = BigIntegerField()
    increment = JSONField()  # an amount, or a ladder [[below_amount, step], ...]
    reserve_price = BigIntegerField(null=True)
    lot_deposit = BigIntegerField(default=0)
    buyer_premium_bp = IntegerField(default=0)  # 佣金, basis points of the hammer price
    ends_at_ms = BigIntegerField()
    # A deadline given as a duration from the session's start: ends_at_ms is
    # set from it when the session is published (hall/handlers/admin.py).
    ends_after_start_s = IntegerField(null=True)
    extend_window_s = IntegerField(default=settings.EXTEND_WINDOW_S)  # 延时: a bid this close to
    extend_by_s = IntegerField(default=settings.EXTEND_BY_S)          # the end adds extend_by_s
    status = CharField(max_length=16, default="draft")
    final_price = BigIntegerField(null=True)
    winner = ForeignKeyField(User, null=True, backref="won_lots")
    bid_count = IntegerField(default=0)
    # The last hash of the lot's bid chain (auction/bidchain.py), once settled.
    chain_head = CharField(max_length=64, null=True)
    closed_at_ms = BigIntegerField(null=True)
    created_at_ms = BigIntegerField(default=now_ms)


class Deposit(BaseModel):
    """保证金: one per user and scope. `scope_key` enforces "never paid twice"."""
    user = ForeignKeyField(User, backref="deposits")
    auction_session = ForeignKeyField(AuctionSession, column_name="session_id")
    lot = ForeignKeyField(Lot, null=True)
    scope = CharField(max_length=8)  # session | lot
    scope_key = CharField(max_length=64, unique=True)  # "s:{sid}:u:{uid}" / "l:{lid}:u:{uid}"
    amount = BigIntegerField()
    method = CharField(max_length=8)  # balance | wechat
    status = CharField(max_length=12, default="pending")  # pending paid refunded credited forfeited
    task_id = CharField(max_length=64, null=True)
    out_trade_no = CharField(max_length=64, null=True, unique=True)
    created_at_ms = BigIntegerField(default=now_ms)
    paid_at_ms = BigIntegerField(null=True)
    # Settlement: how much of the deposit went to which order (the rest, if
    # any, was refunded). A forfeited deposit keeps these.
    credited = BigIntegerField(default=0)
    credited_to = BigIntegerField(null=True, index=True)  # Order.id
    # Money paid for this deposit a second time (or after it stopped wanting
    # any), going back where it came from: PaymentRefund. Kept here so the
    # deposit's own JSON says so without another query.
    duplicate_refunded = BigIntegerField(default=0)

    def public(self) -> dict:
        return {"id": self.id, "scope": self.scope, "session_id": self.session_id,
                "lot_id": self.lot_id, "amount": self.amount, "method": self.method,
                "status": self.status, "paid_at_ms": self.paid_at_ms,
                "duplicate_refunded": self.duplicate_refunded}


class Bid(BaseModel):
    """An accepted bid, copied from the lot's Redis stream by a worker."""
    lot = ForeignKeyField(Lot, backref="bids")
    seq = IntegerField()
    user = ForeignKeyField(User)
    amount = BigIntegerField()
    at_ms = BigIntegerField()
    ref = CharField(max_length=64, default="")
    # The verifiable bid log (auction/bidchain.py): the bidder's per-lot
    # pseudonym and this bid's link of the chain (filled in seq order).
    bidder_ref = CharField(max_length=16, null=True)
    hash = CharField(max_length=64, null=True)

    class Meta:
        indexes = ((("lot", "seq"), True),)


class Coupon(BaseModel):
    """优惠券: fixed amount or percentage off an order, single use."""
    user = ForeignKeyField(User, backref="coupons")
    kind = CharField(max_length=8)  # fixed | percent
    value = BigIntegerField()  # fen for fixed, percent (1-100) for percent
    min_spend = BigIntegerField(default=0)
    expires_at_ms = BigIntegerField()
    used_at_ms = BigIntegerField(null=True)


class Order(BaseModel):
    """The winner's purchase of a lot: hammer price + premium - deposit credited.

    One order per lot that is not forfeited (a partial unique index,
    `create_tables`): a forfeited lot may be sold again through a
    second-chance offer (auction/offers.py), as a new order."""
    user = ForeignKeyField(User, backref="orders")
    lot = ForeignKeyField(Lot)
    amount = BigIntegerField()  # hammer price
    premium = BigIntegerField(default=0)
    deposit_credited = BigIntegerField(default=0)
    due = BigIntegerField()
    status = CharField(max_length=12, default="unpaid")  # unpaid paid forfeited
    pay_by_ms = BigIntegerField()
    coupon = ForeignKeyField(Coupon, null=True)
    paid_at_ms = BigIntegerField(null=True)
    created_at_ms = BigIntegerField(default=now_ms)
    duplicate_refunded = BigIntegerField(default=0)  # as Deposit.duplicate_refunded

    class Meta:
        indexes = ((("status", "pay_by_ms"), False),)  # the forfeiture sweep

    def public(self) -> dict:
        return {"id": self.id, "lot_id": self.lot_id, "amount": self.amount,
                "premium": self.premium, "deposit_credited": self.deposit_credited,
                "due": self.due, "status": self.status, "pay_by_ms": self.pay_by_ms,
                "duplicate_refunded": self.duplicate_refunded}


class Payment(BaseModel):
    """Money coming in from outside (WeChat Pay) for a deposit or an order."""
    user = ForeignKeyField(User)
    deposit = ForeignKeyField(Deposit, null=True)
    order = ForeignKeyField(Order, null=True)
    method = CharField(max_length=8)
    amount = BigIntegerField()
    out_trade_no = CharField(max_length=64, unique=True)
    transaction_id = CharField(max_length=64, null=True)
    status = CharField(max_length=12, default="pending")  # pending paid closed
    created_at_ms = BigIntegerField(default=now_ms)
    # The WeChat Pay scene the trade was opened in (jsapi, native, h5): the
    # gateway ties a trade number to one scene, so another scene needs a new trade.
    scene = CharField(max_length=8, null=True)


class Refund(BaseModel):
    """退款: a deposit going back the way it came, exactly once (unique deposit)."""
    user = ForeignKeyField(User)
    deposit = ForeignKeyField(Deposit, unique=True)
    amount = BigIntegerField()
    method = CharField(max_length=8)
    status = CharField(max_length=12, default="done")  # pending done failed
    created_at_ms = BigIntegerField(default=now_ms)
    done_at_ms = BigIntegerField(null=True)


ALL_MODELS = [User, LedgerEntry, AuctionSession, Lot, Deposit, Bid, Coupon, Order,
              Payment, Refund]


class PaymentRefund(BaseModel):
    """退款 of money nothing wants: a payment for a deposit or order already paid
    (by the balance or another trade), for one that is over (forfeited,
    refunded), or for a trade we had closed. It goes back where it came from
    (the gateway), never into a balance, exactly once: one row per payment
    (unique), and `out_refund_no`, on which the gateway is idempotent, derives
    from the payment's out_trade_no."""
    user = ForeignKeyField(User)
    payment = ForeignKeyField(Payment, unique=True)
    amount = BigIntegerField()
    method = CharField(max_length=8)
    reason = CharField(max_length=16)  # duplicate | too_late | trade_closed
    out_refund_no = CharField(max_length=64, unique=True)
    status = CharField(max_length=12, default="pending")  # pending done failed
    gateway_refund_id = CharField(max_length=64, null=True)  # the gateway's refund_id
    created_at_ms = BigIntegerField(default=now_ms)
    done_at_ms = BigIntegerField(null=True)

    def public(self) -> dict:
        return {"id": self.id, "payment_id": self.payment_id, "amount": self.amount,
                "method": self.method, "reason": self.reason, "status": self.status,
                "out_refund_no": self.out_refund_no, "at_ms": self.created_at_ms,
                "done_at_ms": self.done_at_ms}


ALL_MODELS.append(PaymentRefund)


class WeChatIdentity(BaseModel):
    """A user's WeChat openid for one app id (mini-program or official account:
    the same person has a different openid in each). Only WeChat supplies an
    openid (jscode2session, the OAuth code exchange); nothing here makes one
    up. The session_key WeChat hands out with it is never stored."""
    user = ForeignKeyField(User)
    appid = CharField(max_length=32)
    openid = CharField(max_length=128)
    unionid = CharField(max_length=128, null=True, index=True)
    created_at_ms = BigIntegerField(default=now_ms)

    class Meta:
        indexes = ((("appid", "openid"), True), (("user", "appid"), True))


ALL_MODELS.append(WeChatIdentity)


class Watch(BaseModel):
    """关注: a user watching a lot gets its closing-soon notice (workers/notify.py)."""
    user = ForeignKeyField(User, backref="watches")
    lot = ForeignKeyField(Lot, backref="watchers")
    created_at_ms = BigIntegerField(default=now_ms)

    class Meta:
        indexes = ((("user", "lot"), True),)


ALL_MODELS.append(Watch)


class PreemptionHolder(BaseModel):
    """优先购买权人: a user who wins a tie at equal price (API.md, "Trust");
    between holders the lower rank wins. Registered by an operator before the
    lot opens; loaded into Redis with the lot (auction/lua/load.lua)."""
    lot = ForeignKeyField(Lot, backref="preemption_holders")
    user = ForeignKeyField(User)
    rank = IntegerField()
    created_at_ms = BigIntegerField(default=now_ms)

    class Meta:
        indexes = ((("lot", "user"), True),)


ALL_MODELS.append(PreemptionHolder)


class AuditEntry(BaseModel):
    """审计日志: one operator action or one money movement, append-only.

    Written by `auction/audit.py` inside the write transaction of the change it
    records (the ledger for money, the operator handlers for actions), so an
    entry exists exactly when its change committed. No endpoint updates or
    deletes one, and the database refuses to (triggers, `create_tables`).
    """
    at_ms = BigIntegerField(default=now_ms)
    actor_id = BigIntegerField(null=True)  # the operator; None for the system (workers, run.py)
    actor = CharField(max_length=64, default="system")
    action = CharField(max_length=40, index=True)  # e.g. lot.pause, money.refund
    target = CharField(max_length=64, index=True)  # e.g. lot:12, user:3
    before = JSONField(null=True)
    after = JSONField(null=True)

    def public(self) -> dict:
        return {"id": self.id, "at_ms": self.at_ms, "actor": self.actor,
                "actor_id": self.actor_id, "action": self.action, "target": self.target,
                "before": self.before, "after": self.after}


ALL_MODELS.append(AuditEntry)


class Job(BaseModel):
    """A compact record of one money or lot task run (workers/jobs.py): what it
    was about, how it ended, how long it waited in the queue (queued -> started)
    and how long it ran. One row per task id, written once when the run ends,
    so operators find tasks by lot, session, user or state without a task
    browser that slows down past a million tasks."""
    task_id = CharField(max_length=64, unique=True)
    name = CharField(max_length=80)
    kind = CharField(max_length=32, index=True)   # e.g. pay_deposit, settle_lot
    lot_id = BigIntegerField(null=True, index=True)
    session_id = BigIntegerField(null=True, index=True)
    user_id = BigIntegerField(null=True, index=True)
    state = CharField(max_length=12, index=True)  # SUCCESS FAILURE RETRY
    retries = IntegerField(default=0)
    error = CharField(max_length=300, null=True)
    kwargs = JSONField(null=True)                 # what a re-run sends again
    queued_at_ms = BigIntegerField(null=True)     # when it became due (submit time or ETA)
    started_at_ms = BigIntegerField(null=True)
    finished_at_ms = BigIntegerField(null=True)
    rerun_of = CharField(max_length=64, null=True)

    def public(self) -> dict:
        return {"task_id": self.task_id, "name": self.name, "kind": self.kind,
                "lot_id": self.lot_id, "session_id": self.session_id, "user_id": self.user_id,
                "state": self.state, "retries": self.retries, "error": self.error,
                "queued_at_ms": self.queued_at_ms,
                "started_at_ms": self.started_at_ms, "finished_at_ms": self.finished_at_ms,
                "wait_ms": (max(0, self.started_at_ms - self.queued_at_ms)
                            if self.started_at_ms and self.queued_at_ms else None),
                "duration_ms": (self.finished_at_ms - self.started_at_ms
                                if self.finished_at_ms and self.started_at_ms else None),
                "rerun_of": self.rerun_of}


ALL_MODELS.append(Job)


class TopUp(BaseModel):
    """充值: money put into a balance by WeChat Pay (workers/topups.py).

    One row per top-up task (`task_id` unique) and its one WeChat trade
    (`out_trade_no`, also a `Payment` row with neither deposit nor order).
    `pending` until the trade's verified notification (or the gateway's
    query) says it was paid; then `paid`, in the transaction that credits the
    balance through the ledger once (ref `topup:{id}`). Unpaid at
    `expires_at_ms` (the trade's time_expire; null: made before expiries,
    created_at_ms + HALL_TOPUP_EXPIRE_S), the trade is closed at the gateway
    and the top-up `closed` (workers/topups.py `sweep`)."""
    user = ForeignKeyField(User, backref="topups")
    amount = BigIntegerField()
    status = CharField(max_length=12, default="pending")  # pending paid closed
    task_id = CharField(max_length=64, unique=True)
    out_trade_no = CharField(max_length=64, unique=True)
    scene = CharField(max_length=8, null=True)
    created_at_ms = BigIntegerField(default=now_ms)
    paid_at_ms = BigIntegerField(null=True)
    expires_at_ms = BigIntegerField(null=True)
    closed_at_ms = BigIntegerField(null=True)

    def public(self) -> dict:
        return {"id": self.id, "amount": self.amount, "status": self.status,
                "scene": self.scene, "out_trade_no": self.out_trade_no,
                "created_at_ms": self.created_at_ms, "paid_at_ms": self.paid_at_ms,
                "expires_at_ms": self.expires_at_ms, "closed_at_ms": self.closed_at_ms}


ALL_MODELS.append(TopUp)


class Offer(BaseModel):
    """A second-chance offer (auction/offers.py): a forfeited lot offered to the
    next highest other bidder at their own best bid, until `expires_ms`.
    At most one pending offer per lot (a partial unique index, `create_tables`).
    `passed_on`: the lot has been offered on (or found nobody left) since this
    one was declined or expired, so the sweep does not pass it on again."""
    lot = ForeignKeyField(Lot, backref="offers")
    user = ForeignKeyField(User, backref="offers")
    amount = BigIntegerField()
    status = CharField(max_length=12, default="pending")  # pending accepted declined expired
    expires_ms = BigIntegerField()
    order = ForeignKeyField(Order, null=True)
    passed_on = IntegerField(default=0)
    created_at_ms = BigIntegerField(default=now_ms)
    ended_at_ms = BigIntegerField(null=True)

    class Meta:
        # The expiry sweep; the sweep's look for ended offers not passed on.
        indexes = ((("status", "expires_ms"), False), (("passed_on", "status"), False))

    def public(self) -> dict:
        return {"offer_id": self.id, "lot_id": self.lot_id, "amount": self.amount,
                "expires_ms": self.expires_ms, "status": self.status,
                "order_id": self.order_id, "created_at_ms": self.created_at_ms}


ALL_MODELS.append(Offer)

# The audit table is append-only in the database itself, not only by the
# absence of endpoints: an UPDATE or DELETE of an entry is aborted.
_AUDIT_GUARDS = {
    "sqlite": [
        "CREATE TRIGGER IF NOT EXISTS auditentry_no_update BEFORE UPDATE ON auditentry "
        "BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END",
        "CREATE TRIGGER IF NOT EXISTS auditentry_no_delete BEFORE DELETE ON auditentry "
        "BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END",
    ],
    "postgres": [
        "CREATE OR REPLACE FUNCTION auditentry_append_only() RETURNS trigger AS $$ "
        "BEGIN RAISE EXCEPTION 'audit entries are append-only'; END $$ LANGUAGE plpgsql",
        "CREATE OR REPLACE TRIGGER auditentry_append_only BEFORE UPDATE OR DELETE ON auditentry "
        "FOR EACH ROW EXECUTE FUNCTION auditentry_append_only()",
    ],
}

SQLITE_PRAGMAS = {
    # WAL + busy timeout: the hall and the workers share one SQLite file.
    "journal_mode": "wal",
    # How long one attempt waits for the write lock; a task that still finds
    # it locked retries (workers/tasks), with no limit on the attempts.
    "busy_timeout": settings.DB_BUSY_TIMEOUT_MS,
    "synchronous": "normal",
    "foreign_keys": 1,
}


def make_database(url: str, asynchronous: bool) -> Any:
    """Build the peewee database for DATABASE_URL, async for the hall."""
    parsed = parse_db_url(url)
    scheme = url.split(":", 1)[0]
    if scheme.startswith("sqlite"):
        path = parsed.pop("database")
        if asynchronous:
            from playhouse.pwasyncio import AsyncSqliteDatabase
            return AsyncSqliteDatabase(path, pragmas=SQLITE_PRAGMAS, timeout=10)
        # Pooled: a worker runs many short tasks, each closing its connection
        # at the end, and opening one runs every pragma again (a fifth of a
        # deposit task's time, py-spy under bench/money.py). The busy timeout
        # is the pragma; the pool's `timeout` is how long to wait for a slot.
        from playhouse.pool import PooledSqliteDatabase
        return PooledSqliteDatabase(path, pragmas=SQLITE_PRAGMAS, max_connections=64,
                                    stale_timeout=300, timeout=10, check_same_thread=False)
    if scheme.startswith("postgres"):
        name = parsed.pop("database")
        if asynchronous:
            from playhouse.pwasyncio import AsyncPostgresqlDatabase
            return AsyncPostgresqlDatabase(name, **parsed)
        from playhouse.pool import PooledPostgresqlDatabase
        return PooledPostgresqlDatabase(name, max_connections=32, stale_timeout=300, **parsed)
    raise ValueError(f"unsupported DATABASE_URL scheme: {scheme}")


def init_db(url: str, asynchronous: bool = False) -> Any:
    database = make_database(url, asynchronous)
    db.initialize(database)
    return database


class write_transaction:
    """A transaction that will write, with after-commit hooks (`on_commit`).

    On SQLite it takes the write lock at BEGIN (IMMEDIATE): a deferred
    transaction that reads first cannot upgrade its lock while another
    process writes, and fails with "database is locked" instead of waiting
    its busy timeout.

    Effects outside the database (publishing to sockets, queueing a task) are
    registered with `on_commit(fn)` inside the transaction and run once the
    outermost one has committed, in order; a rollback drops them. Nested
    transactions pass theirs up to the outermost. Works the same in a worker
    (eventlet, threads) and inside the hall's `await db.run(fn)`: the pending
    hooks live in a context variable, one list per green thread or task.
    """

    def __init__(self) -> None:
        from peewee import SqliteDatabase
        database = db.obj  # the proxy's own atomic() would be sync-only
        self._atomic = (database.atomic("IMMEDIATE") if isinstance(database, SqliteDatabase)
                        else database.atomic())
        self._token: Any = None

    def __enter__(self) -> "write_transaction":
        self._atomic.__enter__()
        self._token = _after_commit.set((_after_commit.get() or ()) + ([],))
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        stack = _after_commit.get()
        hooks = stack[-1]
        _after_commit.reset(self._token)
        suppressed = self._atomic.__exit__(exc_type, exc, tb)  # commit or roll back
        if exc_type is not None:
            return suppressed
        outer = _after_commit.get()
        if outer:
            outer[-1].extend(hooks)  # committed only with the outermost transaction
        else:
            _run_hooks(hooks)
        return suppressed


_after_commit: ContextVar[tuple[list, ...] | None] = ContextVar("after_commit", default=None)


def on_commit(fn: Callable[[], Any]) -> None:
    """Run `fn` after the current write transaction commits (now, outside one).

    As Zulip's send_event_on_commit: whoever writes a change also says what to
    announce, and nobody carries "announce later" flags out of a transaction."""
    stack = _after_commit.get()
    if stack:
        stack[-1].append(fn)
    else:
        fn()


def _run_hooks(hooks: list[Callable[[], Any]]) -> None:
    """Every hook runs even if one fails (a lost publish must not keep a refund
    from being queued); the first failure is raised afterwards, so a task
    retries and finds the committed state."""
    first: BaseException | None = None
    for fn in hooks:
        try:
            fn()
        except Exception as exc:
            first = first or exc
    if first is not None:
        raise first


def create_tables() -> None:
    """Create every table and add columns a newer release defines (idempotent).

    Needs a synchronous database bound. New columns must be nullable or have
    a default (the rule for every schema change here), so an old database is
    brought up to date by peewee's migrator on SQLite and PostgreSQL alike.
    """
    from playhouse.migrate import SchemaMigrator, migrate
    with db.connection_context():
        db.create_tables(ALL_MODELS, safe=True)
        migrator = SchemaMigrator.from_database(db.obj)
        for model in ALL_MODELS:
            table = model._meta.table_name
            have = {c.name for c in db.get_columns(table)}
            missing = [f for f in model._meta.sorted_fields if f.column_name not in have]
            if missing:
                migrate(*(migrator.add_column(table, f.column_name, f) for f in missing))
        _one_live_order_per_lot()
        for statement in _PARTIAL_UNIQUE:
            db.execute_sql(statement)
        from peewee import PostgresqlDatabase
        kind = "postgres" if isinstance(db.obj, PostgresqlDatabase) else "sqlite"
        for statement in _AUDIT_GUARDS[kind]:
            db.execute_sql(statement)


# Uniqueness that holds for some rows only (SQLite and PostgreSQL both have
# partial indexes): one order per lot that is not forfeited, one pending offer.
_PARTIAL_UNIQUE = [
    'CREATE UNIQUE INDEX IF NOT EXISTS order_one_live_per_lot ON "order" (lot_id) '
    "WHERE status != 'forfeited'",
    "CREATE UNIQUE INDEX IF NOT EXISTS offer_one_pending_per_lot ON offer (lot_id) "
    "WHERE status = 'pending'",
]


def _one_live_order_per_lot() -> None:
    """A database made before second-chance offers has `order_lot_id` as a
    unique index (one order per lot, ever): it becomes a plain one, and the
    partial unique index above takes over."""
    for index in db.get_indexes("order"):
        if index.name == "order_lot_id" and index.unique:
            db.execute_sql('DROP INDEX order_lot_id')
            db.execute_sql('CREATE INDEX order_lot_id ON "order" (lot_id)')
