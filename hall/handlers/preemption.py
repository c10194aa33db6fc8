"""Pre-emption holders of a lot (优先购买权人; API.md, "Trust"): operators only.

A holder wins a tie at equal price and may bid the current price itself;
between holders the lower rank wins (decided in auction/lua/bid.lua). Holders
are fixed before the lot opens. Who they are never leaves this API: the lot's
snapshot only says `preemption: true`.
"""
from __future__ import annotations

from auction import audit, engine
from auction.errors import Refused
from hall.errors import ApiError
from hall.handlers.admin import AdminHandler
from hall.validate import integer, positive_id
from models import Lot, PreemptionHolder, User

OPEN_TO_HOLDERS = ("draft", "scheduled")


def _public(holder: PreemptionHolder) -> dict:
    return {"lot_id": holder.lot_id, "user_id": holder.user_id, "rank": holder.rank}


class AdminPreemptionHandler(AdminHandler):
    async def get(self, lot_id: str) -> None:
        lid = positive_id(lot_id)
        if await Lot.aget_or_none(Lot.id == lid) is None:
            raise ApiError("not_found", "no such lot")
        rows = await self.db.list(PreemptionHolder.select().where(PreemptionHolder.lot == lid)
                                  .order_by(PreemptionHolder.rank, PreemptionHolder.id))
        self.send({"holders": [_public(h) for h in rows]})

    async def post(self, lot_id: str) -> None:
        lid = positive_id(lot_id)
        data = self.json_body()
        user_id = integer(data, "user_id", minimum=1)
        rank = integer(data, "rank", minimum=1, maximum=1000)

        def register() -> PreemptionHolder:
            lot = Lot.get_or_none(Lot.id == lid)
            if lot is None:
                raise Refused("not_found", "no such lot")
            if lot.status not in OPEN_TO_HOLDERS:
                raise Refused("conflict", f"the lot is {lot.status}: pre-emption holders are "
                                          "registered before it opens")
            if User.get_or_none(User.id == user_id) is None:
                raise Refused("not_found", "no such user")
            holder = PreemptionHolder.get_or_none((PreemptionHolder.lot == lid)
                                                  & (PreemptionHolder.user == user_id))
            before = {"user_id": user_id, "rank": holder.rank} if holder else None
            if holder is None:
                holder = PreemptionHolder.create(lot=lid, user=user_id, rank=rank)
            else:
                holder.rank = rank
                holder.save()
            audit.record("lot.preemption", f"lot:{lid}", actor=self.actor, before=before,
                         after={"user_id": user_id, "rank": rank})
            return holder

        holder = await self.audited(register)
        # A published lot is in Redis already: the script adds the holder
        # unless the lot opened meanwhile (then the registration is undone).
        if not await self.application.scripts.preempt(keys=engine.load_keys(lid),
                                                      args=[user_id, rank]):
            def undo() -> None:
                PreemptionHolder.delete().where(PreemptionHolder.id == holder.id).execute()
                audit.record("lot.preemption", f"lot:{lid}", actor=self.actor,
                             before={"user_id": user_id, "rank": rank},
                             after={"refused": "the lot opened"})
            await self.audited(undo)
            raise ApiError("conflict", "the lot has opened: pre-emption holders are "
                                       "registered before it opens")
        self.send(_public(holder), status=201)
