"""The operator API (/api/admin/...): role `operator` only.

Every change an operator makes is written with its audit entry in one
`write_transaction()` (auction/audit.py), run through `await db.run(...)`.
"""
from __future__ import annotations

import json
from typing import Any, Callable

from peewee import JOIN, fn

import settings
from auction import audit, engine, keys, ledger, tasknames
from auction.errors import Refused
from hall.errors import ApiError
from hall.handlers.base import BaseHandler
from hall.tasks import submit, submit_and_wait
from hall.validate import increment, integer, money, positive_id, text
from models import AuctionSession, Lot, User, now_ms

MAX_DURATION_MS = 366 * 24 * 3600 * 1000
SESSION_STATUSES = ("draft", "published", "live", "ended")
LOT_FIELDS = ("title", "description", "images", "start_price", "increment", "reserve_price",
              "lot_deposit", "buyer_premium_bp", "ends_at_ms", "ends_after_start_s",
              "extend_window_s", "extend_by_s",
              "position")


class AdminHandler(BaseHandler):
    async def prepare(self) -> None:
        await super().prepare()  # the role as the database has it now
        self.operator = self.require_operator()
        self.actor = audit.Actor(self.operator.id, self.operator.name)

    async def audited(self, change: Callable[[], Any]) -> Any:
        """Run `change()` (which writes and calls audit.record) in one write
        transaction off the IOLoop (BaseHandler.in_transaction)."""
        return await self.in_transaction(change)


def lot_fields(lot: Lot) -> dict:
    return {f: getattr(lot, f) for f in LOT_FIELDS}


class AdminSessionsHandler(AdminHandler):
    """Every session, drafts included, newest first (`status`, `q` in the title)."""

    async def get(self) -> None:
        status = self.get_query_argument("status", None)
        q = self.get_query_argument("q", "")
        if len(q) > 200:
            raise ApiError("invalid", "q is at most 200 characters")
        query = (AuctionSession.select(AuctionSession, fn.COUNT(Lot.id).alias("n"))
                 .join(Lot, JOIN.LEFT_OUTER).group_by(AuctionSession.id)
                 .order_by(AuctionSession.id.desc()))
        if status:
            if status not in SESSION_STATUSES:
                raise ApiError("invalid", f"status must be one of {', '.join(SESSION_STATUSES)}")
            query = query.where(AuctionSession.status == status)
        if q:
            query = query.where(AuctionSession.title.contains(q))
        rows = await self.db.list(query.limit(500))
        self.send({"sessions": [{**r.public(lot_count=r.n), "created_at_ms": r.created_at_ms}
                                for r in rows]})

    async def post(self) -> None:
        data = self.json_body()
        title = text(data, "title")
        description = text(data, "description", required=False, max_len=10000, min_len=0, default="")
        deposit = money(data, "deposit_amount", allow_zero=True)
        starts_at = integer(data, "starts_at_ms", required=False, maximum=now_ms() + MAX_DURATION_MS)
        stagger = integer(data, "stagger_s", required=False, maximum=24 * 3600, default=0)
        def create() -> AuctionSession:
            row = AuctionSession.create(title=title, description=description,
                                        deposit_amount=deposit, starts_at_ms=starts_at,
                                        stagger_s=stagger)
            audit.record("session.create", f"session:{row.id}", actor=self.actor,
                         after=row.public())
            return row
        session = await self.audited(create)
        self.send(session.public(lot_count=0), 201)


class AdminSessionHandler(AdminHandler):
    """PATCH a draft session (title, description, deposit, start, stagger)."""

    async def patch(self, session_id: str) -> None:
        sid = positive_id(session_id)
        session = await AuctionSession.aget_or_none(AuctionSession.id == sid)
        if session is None:
            raise ApiError("not_found", "no such session")
        if session.status != "draft":
            raise ApiError("conflict", "only a draft session can be edited")
        data = self.json_body()
        changes = _present(data, {
            "title": lambda: text(data, "title"),
            "description": lambda: text(data, "description", max_len=10000, min_len=0),
            "deposit_amount": lambda: money(data, "deposit_amount", allow_zero=True),
            "starts_at_ms": lambda: integer(data, "starts_at_ms", required=False,  # null: at publish
                                            maximum=now_ms() + MAX_DURATION_MS),
            "stagger_s": lambda: integer(data, "stagger_s", maximum=24 * 3600),
        })
        if changes:
            def edit() -> None:
                row = AuctionSession.get_by_id(sid)
                if row.status != "draft":  # published meanwhile
                    raise Refused("conflict", "only a draft session can be edited")
                AuctionSession.update(**changes).where(AuctionSession.id == sid).execute()
                audit.record("session.edit", f"session:{sid}", actor=self.actor,
                             before={k: getattr(row, k) for k in changes}, after=changes)
            await self.audited(edit)
        session = await AuctionSession.aget(AuctionSession.id == sid)
        n = await self.db.count(Lot.select().where(Lot.auction_session == sid))
        self.send(session.public(lot_count=n))


class AdminLotHandler(AdminHandler):
    """A lot as the operator sees it (reserve, premium, deadline rule too); PATCH a draft lot."""

    async def get(self, lot_id: str) -> None:
        lid = positive_id(lot_id)
        lot = await Lot.aget_or_none(Lot.id == lid)
        if lot is None:
            raise ApiError("not_found", "no such lot")
        snap = await self.lots.snapshot(lid, self.operator)
        self.send({**snap, "reserve_price": lot.reserve_price,
                   "buyer_premium_bp": lot.buyer_premium_bp, "ends_at_ms": lot.ends_at_ms,
                   "ends_after_start_s": lot.ends_after_start_s, "position": lot.position})

    async def patch(self, lot_id: str) -> None:
        lid = positive_id(lot_id)
        lot = await Lot.aget_or_none(Lot.id == lid)
        if lot is None:
            raise ApiError("not_found", "no such lot")
        if lot.status != "draft":
            raise ApiError("conflict", "only a draft lot can be edited")
        data = self.json_body()
        changes = _present(data, {
            "title": lambda: text(data, "title"),
            "description": lambda: text(data, "description", max_len=10000, min_len=0),
            "start_price": lambda: money(data, "start_price"),
            "increment": lambda: increment(data.get("increment")),
            "reserve_price": lambda: money(data, "reserve_price"),
            "lot_deposit": lambda: money(data, "lot_deposit", allow_zero=True),
            "buyer_premium_bp": lambda: integer(data, "buyer_premium_bp", maximum=5000),
            "ends_at_ms": lambda: integer(data, "ends_at_ms", minimum=now_ms() + 1000,
                                          maximum=now_ms() + MAX_DURATION_MS),
            "ends_after_start_s": lambda: integer(data, "ends_after_start_s", minimum=1,
                                                  maximum=MAX_DURATION_MS // 1000),
            "extend_window_s": lambda: integer(data, "extend_window_s", maximum=24 * 3600),
            "extend_by_s": lambda: integer(data, "extend_by_s", maximum=24 * 3600),
            "images": lambda: images(data),
        })
        if "ends_at_ms" in changes and "ends_after_start_s" in changes:
            raise ApiError("invalid", "give ends_at_ms or ends_after_start_s, not both")
        if "ends_at_ms" in changes:
            changes["ends_after_start_s"] = None  # a fixed time now
        elif "ends_after_start_s" in changes:
            session = await AuctionSession.aget(AuctionSession.id == lot.session_id)
            changes["ends_at_ms"] = ((session.starts_at_ms or now_ms())
                                     + changes["ends_after_start_s"] * 1000)
        if changes:
            def edit() -> None:
                row = Lot.get_by_id(lid)
                if row.status != "draft":
                    raise Refused("conflict", "only a draft lot can be edited")
                Lot.update(**changes).where(Lot.id == lid).execute()
                audit.record("lot.edit", f"lot:{lid}", actor=self.actor,
                             before={k: getattr(row, k) for k in changes}, after=changes)
            await self.audited(edit)
        self.send(await self.lots.snapshot(lid, self.operator))


def images(data: dict) -> list[str]:
    """Lot photos: up to 20 URLs (the hall's own /media/ ones, or IMAGE_HOSTS')."""
    value = data.get("images")
    if not isinstance(value, list) or len(value) > 20 or not all(
            isinstance(i, str) and 0 < len(i) <= 500 for i in value):
        raise ApiError("invalid", "images must be a list of up to 20 URLs")
    return value


def _present(data: dict, readers: dict) -> dict:
    """Validate only the fields the request carries; refuse unknown ones."""
    unknown = set(data) - set(readers)
    if unknown:
        raise ApiError("invalid", f"cannot edit: {', '.join(sorted(unknown))}")
    return {field: read() for field, read in readers.items() if field in data}


class AdminSessionLotsHandler(AdminHandler):
    async def post(self, session_id: str) -> None:
        sid = positive_id(session_id)
        session = await AuctionSession.aget_or_none(AuctionSession.id == sid)
        if session is None:
            raise ApiError("not_found", "no such session")
        if session.status not in ("draft",):
            raise ApiError("conflict", "lots can be added only to a draft session")
        data = self.json_body()
        title = text(data, "title")
        description = text(data, "description", required=False, max_len=10000, min_len=0, default="")
        pictures = images(data) if "images" in data else []
        start_price = money(data, "start_price")
        inc = increment(data.get("increment"))
        reserve = money(data, "reserve_price", required=False)
        lot_deposit = money(data, "lot_deposit", allow_zero=True)
        premium = integer(data, "buyer_premium_bp", required=False, maximum=5000, default=0)
        after_start = integer(data, "ends_after_start_s", required=False, minimum=1,
                              maximum=MAX_DURATION_MS // 1000)
        if after_start is not None:
            if "ends_at_ms" in data:
                raise ApiError("invalid", "give ends_at_ms or ends_after_start_s, not both")
            ends_at = (session.starts_at_ms or now_ms()) + after_start * 1000
        else:
            ends_at = integer(data, "ends_at_ms", minimum=now_ms() + 1000,
                              maximum=now_ms() + MAX_DURATION_MS)
        window = integer(data, "extend_window_s", required=False, maximum=24 * 3600,
                         default=settings.EXTEND_WINDOW_S)
        by = integer(data, "extend_by_s", required=False, maximum=24 * 3600,
                     default=settings.EXTEND_BY_S)
        def create() -> Lot:
            position = Lot.select().where(Lot.auction_session == sid).count()
            row = Lot.create(auction_session=sid, position=position, title=title,
                             description=description, images=pictures, start_price=start_price,
                             increment=inc, reserve_price=reserve, lot_deposit=lot_deposit,
                             buyer_premium_bp=premium, ends_at_ms=ends_at,
                             ends_after_start_s=after_start,
                             extend_window_s=window, extend_by_s=by)
            audit.record("lot.create", f"lot:{row.id}", actor=self.actor,
                         after={"session_id": sid, **lot_fields(row)})
            return row
        lot = await self.audited(create)
        self.send(await self.lots.snapshot(lot.id, self.operator), 201)


class AdminReorderHandler(AdminHandler):
    """Put a draft session's lots in a new order: `lot_ids`, every lot once."""

    async def post(self, session_id: str) -> None:
        sid = positive_id(session_id)
        ids = self.json_body().get("lot_ids")
        if not isinstance(ids, list) or not all(type(i) is int for i in ids) or len(ids) > 1000:
            raise ApiError("invalid", "lot_ids must be a list of lot ids")

        def reorder() -> list[int]:
            session = AuctionSession.get_or_none(AuctionSession.id == sid)
            if session is None:
                raise Refused("not_found", "no such session")
            if session.status != "draft":
                raise Refused("conflict", "only a draft session's lots can be reordered")
            rows = list(Lot.select(Lot.id, Lot.position).where(Lot.auction_session == sid)
                        .order_by(Lot.position, Lot.id))
            before = [r.id for r in rows]
            if sorted(before) != sorted(ids) or len(set(ids)) != len(ids):
                raise Refused("invalid", "lot_ids must name every lot of the session once")
            for position, lot_id in enumerate(ids):
                Lot.update(position=position).where(Lot.id == lot_id).execute()
            audit.record("session.reorder", f"session:{sid}", actor=self.actor,
                         before={"lot_ids": before}, after={"lot_ids": ids})
            return ids
        self.send({"session_id": sid, "lot_ids": await self.audited(reorder)})


class AdminPublishHandler(AdminHandler):
    async def post(self, session_id: str) -> None:
        sid = positive_id(session_id)
        data = self.json_body()
        at_ms = integer(data, "at_ms", required=False, maximum=now_ms() + MAX_DURATION_MS)
        session = await AuctionSession.aget_or_none(AuctionSession.id == sid)
        if session is None:
            raise ApiError("not_found", "no such session")
        if session.status != "draft":
            raise ApiError("conflict", f"this session is already {session.status}")
        n = await self.db.count(Lot.select().where(Lot.auction_session == sid))
        if n == 0:
            raise ApiError("invalid", "a session needs at least one lot to be published")
        # A lot whose deadline is already behind its start would open closed
        # (it sat at "preview 00:00" while its session read live): refuse, and
        # say which lots need a new deadline.
        opens_at = max(now_ms(), at_ms or 0, session.starts_at_ms or 0)
        relative = await self.db.list(Lot.select(Lot.id, Lot.ends_after_start_s).where(
            (Lot.auction_session == sid) & Lot.ends_after_start_s.is_null(False)))
        for lot in relative:
            # "N minutes from the start" means from when it really opens, not from
            # when the lot was typed in.
            await Lot.update(ends_at_ms=opens_at + lot.ends_after_start_s * 1000).where(
                (Lot.id == lot.id) & (Lot.status == "draft")).aexecute()
        late = await self.db.list(Lot.select(Lot.id, Lot.title).where(
            (Lot.auction_session == sid) & (Lot.ends_at_ms <= opens_at)).order_by(Lot.position))
        if late:
            names = ", ".join(f"#{lot.id} {lot.title}" for lot in late[:10])
            raise ApiError("conflict", f"the deadline of these lots is before the session "
                                       f"opens; set a later one first: {names}",
                           late_lots=[{"id": lot.id, "title": lot.title} for lot in late])

        def record() -> None:
            audit.record("session.publish", f"session:{sid}", actor=self.actor,
                         before={"status": session.status}, after={"at_ms": at_ms})
        await self.audited(record)
        # The worker does the publishing (and later the start) so the same code
        # runs for "now" and for a scheduled time; we wait for it briefly so the
        # answer shows the published session.
        if at_ms is not None:
            await self.redis.zadd(keys.PUBLISH_AT, {sid: at_ms})
        task_id, finished = None, True
        if at_ms is None or at_ms <= now_ms():
            task_id, finished = await submit_and_wait(
                self.application, tasknames.PUBLISH_SESSION, self.operator.id, "publish",
                {"session_id": sid, "user_id": self.operator.id})
        session = await AuctionSession.aget(AuctionSession.id == sid)
        body = session.public(lot_count=n)
        if not finished:
            # Queued, not done yet (workers busy or away): the session as it
            # is now, and the task that will publish it (a `task` message
            # follows on the operator's sockets). Publishing again is refused
            # once it has happened, so a retry cannot publish twice.
            self.send({**body, "task_id": task_id}, 202)
            return
        self.send(body)


ACTIONS = {"open": "open", "pause": "pause", "resume": "resume", "fair-warning": "fair_warning"}


class AdminLotControlHandler(AdminHandler):
    async def post(self, lot_id: str, action: str) -> None:
        lid = positive_id(lot_id)
        app = self.application
        if action == "hammer":
            raw = await app.scripts.close(keys=engine.control_keys(lid), args=[lid, "1", engine.MAXLEN])
            result = json.loads(raw)
            if result.get("error") == "not_found":
                raise ApiError("not_found", "this lot is not published")
            if result.get("error"):
                raise ApiError("conflict", f"cannot hammer a lot that is {result.get('status')}")
            def record() -> None:
                audit.record("lot.hammer", f"lot:{lid}", actor=self.actor,
                             after={k: result.get(k) for k in ("result", "price", "status")
                                    if k in result})
            await self.audited(record)
            await submit(app, tasknames.SETTLE_LOT, self.operator.id, "settlement",
                         {"lot_id": lid})
        else:
            # A fair warning leaves `seconds` (default HALL_FAIR_WARNING_S) to the hammer.
            warn_s = (integer(self.json_body(), "seconds", required=False, minimum=1, maximum=600,
                              default=settings.FAIR_WARNING_S) if action == "fair-warning" else 0)
            raw = await app.scripts.status(keys=engine.control_keys(lid),
                                           args=[lid, ACTIONS[action], engine.MAXLEN, warn_s * 1000])
            result = json.loads(raw)
            if result.get("error") == "not_found":
                raise ApiError("not_found", "this lot is not published")
            if result.get("error"):
                raise ApiError("conflict", f"cannot {action} a lot that is {result.get('status')}")
            def record() -> None:
                if result.get("same"):
                    return  # already in that state: nothing changed, nothing to record
                before = Lot.get_or_none(Lot.id == lid)
                Lot.update(status=result["status"]).where(Lot.id == lid).execute()
                after = {"status": result["status"]}
                if action == "fair-warning":
                    after["deadline_ms"] = result.get("deadline_ms")
                audit.record(f"lot.{ACTIONS[action]}", f"lot:{lid}", actor=self.actor,
                             before={"status": before.status if before else None}, after=after)
            await self.audited(record)
        self.send(await self.lots.snapshot(lid, self.operator))


class AdminCreditHandler(AdminHandler):
    async def post(self, user_id: str) -> None:
        uid = positive_id(user_id)
        data = self.json_body()
        amount = money(data, "amount")
        reason = text(data, "reason", required=False, max_len=200, default="")
        operator = self.operator

        def credit() -> User:
            # One audit entry for the movement (money.credit, by this operator).
            ledger.credit(uid, amount, kind="credit", ref=ledger.new_ref("credit"),
                          memo=reason or f"credited by operator {operator.id}",
                          actor=self.actor)
            return User.get_by_id(uid)
        user = await self.audited(credit)
        self.send(user.public())


class AdminOverviewHandler(AdminHandler):
    async def get(self) -> None:
        self.send(await self.application.overview.compute())


