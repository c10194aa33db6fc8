"""单品: lot detail, bid history, bidding by HTTP, and the deposit page."""
from __future__ import annotations

import json

from auction import keys, snapshot, tasknames, wire
from hall.bidding import place_bid, read_bid
from hall.errors import ApiError
from hall.handlers.base import BaseHandler
from hall.handlers.wechat import wechat_scene
from hall.tasks import submit
from hall.validate import choice, positive_id
from models import Bid, User


class LotHandler(BaseHandler):
    async def get(self, lot_id: str) -> None:
        lid = positive_id(lot_id)
        snap = await self.lots.snapshot(lid, self.current_user)
        if snap is None:
            raise ApiError("not_found", "no such lot")
        user = self.current_user
        if user is not None:
            scope = await self.lots.deposit_scope(lid, snap["session_id"], user.id)
            snap["my_deposit"] = scope
            leader = await self.redis.hget(keys.lot(lid), "leader")
            snap["leading"] = leader is not None and leader.decode() == str(user.id)
        self.send(snap)


class LotBidsHandler(BaseHandler):
    async def get(self, lot_id: str) -> None:
        lid = positive_id(lot_id)
        since = self._int_arg("since_seq", 0, 0, 2**53)
        limit = self._int_arg("limit", 100, 1, 1000)
        # A settled lot whose chain is complete (chain_head set) is read from the
        # database, the record that head was computed over; any other from its
        # event stream, which is complete even while a bid held by a worker
        # that died has not reached the database yet.
        status, head = await self.redis.hmget(keys.lot(lid), "status", "chain_head")
        from_db = status == b"settled" and head is not None
        bids = None if from_db else await self._from_stream(lid, since, limit)
        if bids is not None:
            await self._with_links(lid, bids)
        else:
            bids = await self._from_db(lid, since, limit)
        if bids is None:
            raise ApiError("not_found", "no such lot")
        self.send({"bids": bids})

    def _int_arg(self, name: str, default: int, lo: int, hi: int) -> int:
        raw = self.get_query_argument(name, None)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ApiError("invalid", f"{name} must be an integer")
        if not lo <= value <= hi:
            raise ApiError("invalid", f"{name} must be from {lo} to {hi}")
        return value

    async def _from_stream(self, lid: int, since: int, limit: int) -> list | None:
        """Recent bids straight from the lot's event stream (complete and current)."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.exists(keys.lot(lid))
        pipe.xrange(keys.lot_stream(lid), "-", "+", count=1)
        pipe.xrange(keys.lot_stream(lid), f"{since + 1}-0", "+", count=limit * 2 + 8)
        exists, first, entries = await pipe.execute()
        if not exists:
            return None
        if first and wire.parse_event_id(first[0][0].decode())[0] > since + 1:
            return None  # trimmed: older bids are only in the database
        bids = []
        for event_id, fields in entries:
            if not event_id.endswith(b"-0"):
                continue
            ev = json.loads(fields[b"d"])
            if ev.get("type") != "bid":
                continue
            bids.append({"seq": ev["seq"], "amount": ev["amount"], "bidder": ev["bidder"],
                         "at_ms": ev["at_ms"]})
            if len(bids) >= limit:
                break
        return bids

    async def _with_links(self, lid: int, bids: list[dict]) -> None:
        """The chain's fields for the stream's bids the bid log has linked so far."""
        if not bids:
            return
        rows = await self.db.list(
            Bid.select(Bid.seq, Bid.bidder_ref, Bid.hash)
            .where((Bid.lot == lid) & (Bid.seq >= bids[0]["seq"]) & (Bid.seq <= bids[-1]["seq"])
                   & Bid.hash.is_null(False)))
        links = {r.seq: r for r in rows}
        for b in bids:
            row = links.get(b["seq"])
            if row is not None:
                b["bidder_ref"], b["hash"] = row.bidder_ref, row.hash

    async def _from_db(self, lid: int, since: int, limit: int) -> list | None:
        if await self.lots.row(lid, self.current_user) is None:
            return None
        rows = await self.db.list(
            Bid.select(Bid, User.username).join(User)
            .where((Bid.lot == lid) & (Bid.seq > since)).order_by(Bid.seq).limit(limit))
        out = []
        for b in rows:
            item = {"seq": b.seq, "amount": b.amount, "bidder": snapshot.mask_name(b.user.username),
                    "at_ms": b.at_ms}
            if b.hash is not None:
                item["bidder_ref"], item["hash"] = b.bidder_ref, b.hash
            out.append(item)
        return out

    async def post(self, lot_id: str) -> None:
        lid = positive_id(lot_id)
        user = self.require_user()
        amount, ref, max_amount = read_bid(self.json_body())
        answer = await place_bid(self.lots, self.application.bids, self.application.receipts,
                                 user, lid, amount, ref, max_amount)
        if "code" in answer:
            raise ApiError(answer["code"], answer.get("message", ""))
        self.send(answer)


class DepositHandler(BaseHandler):
    """保证金页面 (GET) and paying it (POST, 202 + task id)."""

    async def _lot(self, lot_id: str) -> dict:
        snap = await self.lots.snapshot(positive_id(lot_id), self.current_user)
        if snap is None:
            raise ApiError("not_found", "no such lot")
        return snap

    async def get(self, lot_id: str) -> None:
        user = self.require_user()
        snap = await self._lot(lot_id)
        scope = await self.lots.deposit_scope(snap["id"], snap["session_id"], user.id)
        me = await User.aget_or_none(User.id == user.id)
        if me is None:
            raise ApiError("unauthorized", "this account no longer exists")
        self.send({
            "lot": snap,
            "options": [{"scope": "session", "amount": snap["deposit"]["session_amount"]},
                        {"scope": "lot", "amount": snap["deposit"]["lot_amount"]}],
            "methods": ["balance", "wechat"],
            "balance": me.balance,
            "paid": scope is not None,
            "paid_scope": scope,
        })

    async def post(self, lot_id: str) -> None:
        user = self.require_user()
        data = self.json_body()
        scope = choice(data, "scope", ("session", "lot"))
        method = choice(data, "method", ("balance", "wechat"))
        if await self.lots.is_banned(user.id):
            raise ApiError("banned", "this account is banned; it cannot pay deposits")
        snap = await self._lot(lot_id)
        if snap["status"] in ("closed", "settled"):
            raise ApiError("lot_closed", "this lot has closed")
        if snap["status"] == "draft":
            raise ApiError("lot_not_open", "this lot is not published yet")
        paid = await self.lots.deposit_scope(snap["id"], snap["session_id"], user.id)
        if paid == "session" or (paid == "lot" and scope == "lot"):
            raise ApiError("already_paid", f"a {paid} deposit is already in force")
        task_id = await submit(self.application, tasknames.PAY_DEPOSIT, user.id,
                               "deposit", {"user_id": user.id, "lot_id": snap["id"],
                                           "scope": scope, "method": method,
                                           **await wechat_scene(self, data, method, user.id)})
        self.send({"task_id": task_id}, 202)
