"""The bid path shared by HTTP and WebSocket: validate, then one Lua call.

The same `ref` from the same user on the same lot returns the first answer
for 24 h, across both transports, because the answer is stored by the script.
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING

import settings
from hall import engine
from hall.auth import Identity
from hall.errors import ApiError
from hall.validate import money

if TYPE_CHECKING:
    from hall.app import HallApplication


def read_bid(data: dict) -> tuple[int | None, str, int | None]:
    """(amount, ref, max_amount) from a bid message; ApiError('invalid') if bad.

    `amount` may be left out when `max_amount` is given: the bid is then the
    minimum next bid (or, from the leader, only a higher private maximum).
    """
    ref = data.get("ref")
    if not isinstance(ref, str) or not 1 <= len(ref) <= 64:
        raise ApiError("invalid", "ref must be a string of 1 to 64 characters")
    max_amount = money(data, "max_amount", required=False)
    amount = money(data, "amount", required=max_amount is None)
    if max_amount is not None and amount is not None and max_amount < amount:
        raise ApiError("invalid", "max_amount must be at least amount")
    return amount, ref, max_amount


async def place_bid(app: "HallApplication", user: Identity, lot_id: int, amount: int | None,
                    ref: str, max_amount: int | None = None) -> dict:
    """Run the bid script; returns the stored answer (accepted or a code)."""
    session_id = await app.lot_session(lot_id)
    if session_id is None:
        if await app.lot_exists(lot_id):
            raise ApiError("lot_not_open", "this lot is not published yet")
        raise ApiError("not_found", "no such lot")
    raw = await app.scripts.bid(
        keys=engine.bid_keys(lot_id, session_id, user.id, ref),
        args=[lot_id, user.id, engine.mask_name(user.name), "" if amount is None else amount, ref,
              settings.REF_TTL_S, engine.MAXLEN, max_amount or ""],
    )
    return json.loads(raw)
