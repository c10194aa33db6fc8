"""The lot scripts from the workers' side (plain redis-py, green under eventlet)."""
from __future__ import annotations

import json
from typing import Any

from auction import engine, keys
from workers.publish import client, script as _script


def close(lot_id: int, force: bool = False) -> dict:
    raw = _script("close", engine.CLOSE_LUA)(keys=engine.control_keys(lot_id),
                                             args=[lot_id, "1" if force else "0", engine.MAXLEN])
    return json.loads(raw)


def close_due(limit: int = 1000) -> list[int]:
    """Close every lot whose deadline has passed (Redis' clock); their ids."""
    raw = _script("close_due", engine.CLOSE_DUE_LUA)(keys=[keys.DEADLINES],
                                                      args=[engine.MAXLEN, limit])
    return json.loads(raw)


def control(lot_id: int, action: str) -> dict:
    raw = _script("status", engine.STATUS_LUA)(keys=engine.control_keys(lot_id),
                                               args=[lot_id, action, engine.MAXLEN])
    return json.loads(raw)


def load(lot: Any, session: Any, status: str, last_bid: Any = None,
         holders: list[tuple[int, int]] = ()) -> None:
    _script("load", engine.LOAD_LUA)(keys=engine.load_keys(lot.id),
                                    args=engine.lot_load_args(lot, session, status, last_bid,
                                                              holders))


def mark_settled(lot_id: int) -> None:
    """closed -> settled, announced to the room as a lot_status event; out of
    the closed-not-settled set (called once the lot's transactions committed)."""
    control(lot_id, "settled")
    client().zrem(keys.UNSETTLED, lot_id)


def grant_deposit(scope: str, session_id: int, lot_id: int | None, user_id: int) -> None:
    key = (keys.session_deposits(session_id) if scope == "session"
           else keys.lot_deposits(lot_id))
    client().sadd(key, user_id)


def redis_now_ms() -> int:
    sec, usec = client().time()
    return int(sec) * 1000 + int(usec) // 1000
