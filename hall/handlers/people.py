"""People and money for operators: bidders (search, detail, ban and unban with a
reason) and orders with their payments and refunds, one order with its audit
trail. Credit is in admin.py."""
from __future__ import annotations

from auction import audit, keys
from auction.errors import Refused
from hall.errors import ApiError
from hall.handlers.admin import AdminHandler
from hall.validate import positive_id, text
from models import (AuctionSession, AuditEntry, Deposit, LedgerEntry, Lot, Order, Payment,
                    Refund, User, on_commit)

USER_STATUSES = ("active", "banned")
ORDER_STATUSES = ("unpaid", "paid", "forfeited", "refunded")
MAX_LISTED = 500


def user_row(u: User) -> dict:
    return {"id": u.id, "username": u.username, "phone": u.phone, "role": u.role,
            "balance": u.balance, "strikes": u.strikes, "status": u.status,
            "ban_reason": u.ban_reason, "created_at_ms": u.created_at_ms}


class AdminUsersHandler(AdminHandler):
    """Users: `q` (part of the username or phone), `status` (active, banned)."""

    async def get(self) -> None:
        q = self.get_query_argument("q", "")
        status = self.get_query_argument("status", "")
        if len(q) > 64:
            raise ApiError("invalid", "q is at most 64 characters")
        query = User.select().order_by(User.id.desc())
        if q:
            query = query.where(User.username.contains(q) | User.phone.contains(q))
        if status:
            if status not in USER_STATUSES:
                raise ApiError("invalid", f"status must be one of {', '.join(USER_STATUSES)}")
            query = query.where(User.status == status)
        rows = await self.db.list(query.limit(MAX_LISTED))
        self.send({"users": [user_row(u) for u in rows]})


class AdminUserHandler(AdminHandler):
    """One user with their deposits, orders and latest ledger entries."""

    async def get(self, user_id: str) -> None:
        uid = positive_id(user_id)
        user = await User.aget_or_none(User.id == uid)
        if user is None:
            raise ApiError("not_found", "no such user")
        deposits = await self.db.list(Deposit.select().where(Deposit.user == uid)
                                      .order_by(Deposit.id.desc()).limit(200))
        orders = await self.db.list(Order.select().where(Order.user == uid)
                                    .order_by(Order.id.desc()).limit(200))
        ledger = await self.db.list(LedgerEntry.select().where(LedgerEntry.user == uid)
                                    .order_by(LedgerEntry.id.desc()).limit(200))
        self.send({**user_row(user),
                   "deposits": [d.public() for d in deposits],
                   "orders": [o.public() for o in orders],
                   "ledger": [{"id": e.id, "amount": e.amount, "balance_after": e.balance_after,
                               "kind": e.kind, "memo": e.memo, "at_ms": e.created_at_ms}
                              for e in ledger]})


class AdminBanHandler(AdminHandler):
    """Ban or unban a user, with a reason (in the audit log)."""

    async def post(self, user_id: str, action: str) -> None:
        uid = positive_id(user_id)
        reason = text(self.json_body(), "reason", max_len=200)
        banned = action == "ban"
        redis_sync: list = []

        def change() -> User:
            user = User.get_or_none(User.id == uid)
            if user is None:
                raise Refused("not_found", "no such user")
            if user.role == "operator":
                raise Refused("conflict", "an operator cannot be banned")
            before = {"status": user.status, "ban_reason": user.ban_reason}
            User.update(status="banned" if banned else "active",
                        ban_reason=reason if banned else None).where(User.id == uid).execute()
            audit.record("user.ban" if banned else "user.unban", f"user:{uid}",
                         actor=self.actor, before=before,
                         after={"status": "banned" if banned else "active", "reason": reason})
            on_commit(lambda: redis_sync.append(True))
            return User.get_by_id(uid)
        user = await self.audited(change)
        if redis_sync:
            # The database is the record; the Redis set is what the bid path
            # reads. Ban and unban are idempotent, so a failure here (503) is
            # put right by the operator trying again.
            if banned:
                await self.redis.sadd(keys.BANNED_USERS, uid)
            else:
                await self.redis.srem(keys.BANNED_USERS, uid)
            self.lots.forget_banned()
        self.send(user_row(user))


class AdminOrdersHandler(AdminHandler):
    """Orders with their payments and refunds: `status`, `session_id`, `user_id`."""

    async def get(self) -> None:
        status = self.get_query_argument("status", "")
        query = (Order.select(Order, Lot.title.alias("lot_title"),
                              Lot.auction_session.alias("lot_session_id"),
                              User.username.alias("username"))
                 .join(Lot, on=(Order.lot == Lot.id)).switch(Order)
                 .join(User, on=(Order.user == User.id)).order_by(Order.id.desc()))
        refunded_deposits = Refund.select(Refund.deposit)
        if status:
            if status not in ORDER_STATUSES:
                raise ApiError("invalid", f"status must be one of {', '.join(ORDER_STATUSES)}")
            if status == "refunded":
                # Orders whose winner had money back (a deposit refund, e.g. after a forfeit).
                query = query.where(Order.id.in_(
                    Deposit.select(Deposit.credited_to).where(Deposit.id.in_(refunded_deposits))))
            else:
                query = query.where(Order.status == status)
        for name, column in (("session_id", Lot.auction_session), ("user_id", Order.user)):
            raw = self.get_query_argument(name, "")
            if raw:
                if not raw.isdigit() or len(raw) > 19:
                    raise ApiError("invalid", f"{name} must be an id")
                query = query.where(column == int(raw))
        rows = await self.db.list(query.limit(MAX_LISTED).objects())
        ids = [o.id for o in rows]
        payments = await self.db.list(Payment.select().where(Payment.order.in_(ids))) if ids else []
        deposits = await self.db.list(Deposit.select().where(Deposit.credited_to.in_(ids))) if ids else []
        dep_ids = [d.id for d in deposits]
        refunds = await self.db.list(Refund.select().where(Refund.deposit.in_(dep_ids))) if dep_ids else []
        dep_order = {d.id: d.credited_to for d in deposits}
        out = []
        for o in rows:
            out.append({**o.public(), "user_id": o.user_id, "username": o.username,
                        "lot_title": o.lot_title, "session_id": o.lot_session_id,
                        "paid_at_ms": o.paid_at_ms,
                        "payments": [{"id": p.id, "method": p.method, "amount": p.amount,
                                      "status": p.status, "at_ms": p.created_at_ms}
                                     for p in payments if p.order_id == o.id],
                        "refunds": [{"id": r.id, "deposit_id": r.deposit_id, "amount": r.amount,
                                     "method": r.method, "status": r.status,
                                     "at_ms": r.created_at_ms}
                                    for r in refunds if dep_order.get(r.deposit_id) == o.id]})
        self.send({"orders": out})


def _payment(p: Payment) -> dict:
    return {"id": p.id, "method": p.method, "amount": p.amount, "status": p.status,
            "out_trade_no": p.out_trade_no, "at_ms": p.created_at_ms}


def _refund(r: Refund) -> dict:
    return {"id": r.id, "deposit_id": r.deposit_id, "amount": r.amount, "method": r.method,
            "status": r.status, "at_ms": r.created_at_ms, "done_at_ms": r.done_at_ms}


def _about_order(entry: AuditEntry, order_id: int, deposit_ids: set[int],
                 trade_nos: set[str]) -> bool:
    """A winner's audit entry that concerns this order: its payment (ledger ref
    or WeChat trade), its forfeit and strike, the deposits credited to it (paid
    and refunded, by balance or WeChat)."""
    after = entry.after if isinstance(entry.after, dict) else {}
    refs = {f"order:{order_id}"} | {f"{kind}:{d}" for d in deposit_ids for kind in ("deposit", "refund")}
    return (after.get("ref") in refs or after.get("order_id") == order_id
            or after.get("deposit_id") in deposit_ids or after.get("out_trade_no") in trade_nos)


class AdminOrderHandler(AdminHandler):
    """One order for its page: lot, session, winner, money, payments, refunds, audit entries."""

    async def get(self, order_id: str) -> None:
        oid = positive_id(order_id)
        order = await Order.aget_or_none(Order.id == oid)
        if order is None:
            raise ApiError("not_found", "no such order")
        lot = await Lot.aget(Lot.id == order.lot_id)
        session = await AuctionSession.aget(AuctionSession.id == lot.session_id)
        winner = await User.aget(User.id == order.user_id)
        payments = await self.db.list(Payment.select().where(Payment.order == oid)
                                      .order_by(Payment.id))
        deposits = await self.db.list(Deposit.select().where(Deposit.credited_to == oid))
        dep_ids = {d.id for d in deposits}
        refunds = await self.db.list(Refund.select().where(Refund.deposit.in_(list(dep_ids)))
                                     .order_by(Refund.id)) if dep_ids else []
        trades = {p.out_trade_no for p in payments}
        lot_entries = await self.db.list(AuditEntry.select().where(
            AuditEntry.target == f"lot:{lot.id}").order_by(AuditEntry.id).limit(MAX_LISTED))
        # The winner's entries since the first deposit credited to the order
        # (paid before the hammer), kept where they are about this order.
        since = min([d.created_at_ms for d in deposits] + [order.created_at_ms])
        user_entries = await self.db.list(AuditEntry.select().where(
            (AuditEntry.target == f"user:{winner.id}") & (AuditEntry.at_ms >= since))
            .order_by(AuditEntry.id).limit(5 * MAX_LISTED))
        entries = lot_entries + [e for e in user_entries if _about_order(e, oid, dep_ids, trades)]
        entries.sort(key=lambda e: e.id)
        images = lot.images or []
        self.send({**order.public(), "pay_deadline_ms": order.pay_by_ms,
                   "paid_at_ms": order.paid_at_ms, "created_at_ms": order.created_at_ms,
                   "lot": {"id": lot.id, "title": lot.title, "status": lot.status,
                           "image": images[0] if images else None},
                   "session": {"id": session.id, "title": session.title, "status": session.status},
                   "winner": {"id": winner.id, "username": winner.username, "status": winner.status,
                              "strikes": winner.strikes},
                   "deposits": [{"id": d.id, "scope": d.scope, "amount": d.amount,
                                 "method": d.method, "status": d.status} for d in deposits],
                   "payments": [_payment(p) for p in payments],
                   "refunds": [_refund(r) for r in refunds],
                   "audit": [e.public() for e in entries[-MAX_LISTED:]]})
