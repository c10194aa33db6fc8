"""The bid engine: the Lua scripts and the arguments they take.

Everything that decides a bid runs inside Redis (one Lua script per bid), so
it is atomic across any number of hall processes and judged by Redis `TIME`.
This module imports neither tornado nor eventlet: the hall registers the
scripts on `redis.asyncio`, the workers on plain `redis`.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import settings
from auction import keys
from auction.snapshot import mask_name

LUA_DIR = Path(__file__).with_name("lua")


def _lua_name(name: str, build: Any) -> str:
    """A Lua function returning the same key name as `build` (auction/keys.py),
    so the scripts that close lots in bulk spell no key of their own."""
    head, _, tail = build("\0").partition("\0")
    return f"local function {name}(id) return '{head}' .. id .. '{tail}' end\n"


_NAMES = "".join(_lua_name(n, f) for n, f in (
    ("lot_key", keys.lot), ("stream_key", keys.lot_stream),
    ("lot_channel", keys.lot_channel), ("user_channel", keys.user_channel)))
_NAMES += f"local UNSETTLED = '{keys.UNSETTLED}'\n"
_COMMON = _NAMES + (LUA_DIR / "common.lua").read_text()


def _lua(name: str) -> str:
    return _COMMON + "\n" + (LUA_DIR / f"{name}.lua").read_text()


BID_LUA = _lua("bid")
CLOSE_LUA = _lua("close")
CLOSE_DUE_LUA = _lua("close_due")
STATUS_LUA = _lua("status")
LOAD_LUA = _lua("load")
PREEMPT_LUA = _lua("preempt")
SNAPSHOT_LUA = (LUA_DIR / "snapshot.lua").read_text()

REPLAY_LIMIT = 5000           # events sent on one join; older ones: use /bids
MAXLEN = str(settings.STREAM_MAXLEN)


def bid_keys(lot_id: int, session_id: int, user_id: int, ref: str) -> list[str]:
    """KEYS of bid.lua, in its order."""
    return [keys.lot(lot_id), keys.lot_stream(lot_id), keys.bid_ref(lot_id, user_id, ref),
            keys.lot_deposits(lot_id), keys.session_deposits(session_id), keys.DEADLINES,
            keys.INGEST, keys.NOTIFY, keys.bid_rate(user_id), keys.lot_preemption(lot_id)]


def bid_args(lot_id: int, user_id: int, username: str, amount: int | None, ref: str,
             max_amount: int | None, rate_per_s: int, bidder_ref: str = "",
             kid: str = "") -> list:
    """ARGV of bid.lua, in its order. With `kid`, an accepted bid's answer ends
    with its receipt's fields for the hall to sign (auction/receipts.py)."""
    return [lot_id, user_id, mask_name(username), "" if amount is None else amount, ref,
            settings.REF_TTL_S, MAXLEN, max_amount or "", rate_per_s, bidder_ref, kid]


def control_keys(lot_id: int) -> list[str]:
    """KEYS of close.lua and status.lua."""
    return [keys.lot(lot_id), keys.lot_stream(lot_id), keys.DEADLINES]


def load_keys(lot_id: int) -> list[str]:
    """KEYS of load.lua and preempt.lua."""
    return [keys.lot(lot_id), keys.lot_preemption(lot_id)]


def snapshot_keys(lot_id: int) -> list[str]:
    return [keys.lot(lot_id), keys.lot_stream(lot_id)]


def lot_load_args(lot: Any, session: Any, status: str, last_bid: Any = None,
                  holders: list[tuple[int, int]] = ()) -> list:
    """ARGV for load.lua from database rows (models.Lot / AuctionSession / Bid;
    `holders`: the lot's pre-emption holders as (user id, rank))."""
    info = {"title": lot.title, "description": lot.description, "images": lot.images or [],
            "lot_deposit": lot.lot_deposit, "session_deposit": session.deposit_amount,
            "position": lot.position}
    return [
        status, session.id, lot.start_price, json.dumps(lot.increment),
        lot.reserve_price or 0, lot.ends_at_ms, lot.extend_window_s * 1000,
        lot.extend_by_s * 1000, json.dumps(info, ensure_ascii=False),
        last_bid.seq if last_bid else 0, last_bid.amount if last_bid else 0,
        last_bid.user_id if last_bid else "", mask_name(last_bid.user.username) if last_bid else "",
        last_bid.seq if last_bid else 0,
        json.dumps([[int(uid), int(rank)] for uid, rank in holders]),
    ]
