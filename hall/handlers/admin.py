"""The operator API (/api/admin/...): role `operator` only."""
from __future__ import annotations

import json

import settings
from auction import engine, keys, ledger, tasknames
from auction.errors import Refused
from hall.errors import ApiError
from hall.handlers.base import BaseHandler
from hall.tasks import submit, submit_and_wait
from hall.validate import increment, integer, money, positive_id, text
from models import AuctionSession, Lot, User, now_ms, write_transaction

MAX_DURATION_MS = 366 * 24 * 3600 * 1000


class AdminHandler(BaseHandler):
    async def prepare(self) -> None:
        await super().prepare()  # the role as the database has it now
        self.operator = self.require_operator()


class AdminSessionsHandler(AdminHandler):
    async def post(self) -> None:
        data = self.json_body()
        title = text(data, "title")
        description = text(data, "description", required=False, max_len=10000, min_len=0, default="")
        deposit = money(data, "deposit_amount", allow_zero=True)
        starts_at = integer(data, "starts_at_ms", required=False, maximum=now_ms() + MAX_DURATION_MS)
        stagger = integer(data, "stagger_s", required=False, maximum=24 * 3600, default=0)
        session = await AuctionSession.acreate(title=title, description=description,
                                               deposit_amount=deposit, starts_at_ms=starts_at,
                                               stagger_s=stagger)
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
            "starts_at_ms": lambda: integer(data, "starts_at_ms", maximum=now_ms() + MAX_DURATION_MS),
            "stagger_s": lambda: integer(data, "stagger_s", maximum=24 * 3600),
        })
        if changes:
            await AuctionSession.update(**changes).where(AuctionSession.id == sid).aexecute()
        session = await AuctionSession.aget(AuctionSession.id == sid)
        n = await self.db.count(Lot.select().where(Lot.auction_session == sid))
        self.send(session.public(lot_count=n))


class AdminLotHandler(AdminHandler):
    """PATCH a draft lot."""

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
            "extend_window_s": lambda: integer(data, "extend_window_s", maximum=24 * 3600),
            "extend_by_s": lambda: integer(data, "extend_by_s", maximum=24 * 3600),
        })
        if changes:
            await Lot.update(**changes).where(Lot.id == lid).aexecute()
        self.send(await self.lots.snapshot(lid, self.operator))


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
        images = data.get("images", [])
        if not isinstance(images, list) or len(images) > 20 or not all(
                isinstance(i, str) and 0 < len(i) <= 500 for i in images):
            raise ApiError("invalid", "images must be a list of up to 20 URLs")
        start_price = money(data, "start_price")
        inc = increment(data.get("increment"))
        reserve = money(data, "reserve_price", required=False)
        lot_deposit = money(data, "lot_deposit", allow_zero=True)
        premium = integer(data, "buyer_premium_bp", required=False, maximum=5000, default=0)
        ends_at = integer(data, "ends_at_ms", minimum=now_ms() + 1000,
                          maximum=now_ms() + MAX_DURATION_MS)
        window = integer(data, "extend_window_s", required=False, maximum=24 * 3600,
                         default=settings.EXTEND_WINDOW_S)
        by = integer(data, "extend_by_s", required=False, maximum=24 * 3600,
                     default=settings.EXTEND_BY_S)
        position = await self.db.count(Lot.select().where(Lot.auction_session == sid))
        lot = await Lot.acreate(auction_session=sid, position=position, title=title,
                                description=description, images=images, start_price=start_price,
                                increment=inc, reserve_price=reserve, lot_deposit=lot_deposit,
                                buyer_premium_bp=premium, ends_at_ms=ends_at,
                                extend_window_s=window, extend_by_s=by)
        self.send(await self.lots.snapshot(lot.id, self.operator), 201)


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
            await submit(app, tasknames.SETTLE_LOT, self.operator.id, "settlement",
                         {"lot_id": lid})
        else:
            raw = await app.scripts.status(keys=engine.control_keys(lid),
                                           args=[lid, ACTIONS[action], engine.MAXLEN])
            result = json.loads(raw)
            if result.get("error") == "not_found":
                raise ApiError("not_found", "this lot is not published")
            if result.get("error"):
                raise ApiError("conflict", f"cannot {action} a lot that is {result.get('status')}")
            await Lot.update(status=result["status"]).where(Lot.id == lid).aexecute()
        self.send(await self.lots.snapshot(lid, self.operator))


class AdminCreditHandler(AdminHandler):
    async def post(self, user_id: str) -> None:
        uid = positive_id(user_id)
        amount = money(self.json_body(), "amount")
        operator = self.operator.id

        def credit() -> User:
            with write_transaction():
                ledger.credit(uid, amount, kind="credit", ref=ledger.new_ref("credit"),
                              memo=f"credited by operator {operator}")
            return User.get_by_id(uid)
        try:
            user = await self.db.run(credit)
        except Refused as exc:
            raise ApiError(exc.code, exc.message)
        self.send(user.public())


class AdminOverviewHandler(AdminHandler):
    async def get(self) -> None:
        self.send(await self.application.overview.compute())


