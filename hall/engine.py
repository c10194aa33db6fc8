"""The bid engine: Redis key names, the Lua scripts, and lot snapshots.

Everything that decides a bid runs inside Redis (one Lua script per bid), so
it is atomic across any number of hall processes and judged by Redis `TIME`.
This module imports neither tornado nor eventlet: the hall uses it with
`redis.asyncio`, the workers with plain `redis`.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import settings

LUA_DIR = Path(__file__).with_name("lua")
_COMMON = (LUA_DIR / "common.lua").read_text()


def _lua(name: str) -> str:
    return _COMMON + "\n" + (LUA_DIR / f"{name}.lua").read_text()


BID_LUA = _lua("bid")
CLOSE_LUA = _lua("close")
CLOSE_DUE_LUA = _lua("close_due")
STATUS_LUA = _lua("status")
LOAD_LUA = _lua("load")
SNAPSHOT_LUA = (LUA_DIR / "snapshot.lua").read_text()

DEADLINES = "lots:deadlines"  # zset lot id -> deadline ms, swept by workers
INGEST = "bids:ingest"        # stream of accepted bids for the database
INGEST_GROUP = "db"
NOTIFY = "notify:events"      # stream of notices for workers (outbid), see bid.lua
REPLAY_LIMIT = 5000           # events sent on one join; older ones: use /bids


def lot_key(lot_id: int | str) -> str:
    return f"lot:{lot_id}"


def stream_key(lot_id: int | str) -> str:
    return f"lot:{lot_id}:events"


def lot_deposits_key(lot_id: int | str) -> str:
    return f"lot:{lot_id}:deposits"


def session_deposits_key(session_id: int | str) -> str:
    return f"session:{session_id}:deposits"


def ref_key(lot_id: int | str, user_id: int | str, ref: str) -> str:
    return f"ref:{lot_id}:{user_id}:{ref}"


def lot_channel(lot_id: int | str) -> str:
    return f"lot:{lot_id}"


def user_channel(user_id: int | str) -> str:
    return f"user:{user_id}"


def mask_name(username: str) -> str:
    """"zhangsan" -> "z***n": public events never show who is bidding."""
    if len(username) >= 2:
        return f"{username[0]}***{username[-1]}"
    return f"{username}***"


def increment_at(increment: Any, price: int) -> int:
    """The increment in force at `price` (same rule as common.lua)."""
    if isinstance(increment, int):
        return increment
    for below, step in increment:
        if below is None or price < below:
            return step
    return increment[-1][1]


def parse_event_id(event_id: str) -> tuple[int, int]:
    seq, _, sub = event_id.partition("-")
    return int(seq), int(sub or 0)


def snapshot_from_state(lot_id: int, state: dict[str, str], now: int) -> dict | None:
    """The API's lot snapshot from the Redis hash (no database needed)."""
    if not state or "status" not in state:
        return None
    info = json.loads(state.get("info") or "{}")
    increment = json.loads(state["inc"])
    start = int(state["start"])
    price = int(state.get("price") or 0)
    reserve = int(state.get("reserve") or 0)
    status = state["status"]
    deadline = int(state.get("deadline") or 0)
    if status == "paused":
        # The countdown is stopped: show where it would end if resumed now.
        deadline = now + int(state.get("remaining") or 0)
    snap = {
        "id": lot_id,
        "session_id": int(state["sid"]),
        "title": info.get("title", ""),
        "description": info.get("description", ""),
        "images": info.get("images", []),
        "status": status,
        "start_price": start,
        "increment": increment,
        "price": price or None,
        "next_min_bid": price + increment_at(increment, price) if price else start,
        "leader": state.get("leader_name") or None,
        "bid_count": int(state.get("count") or 0),
        "seq": int(state.get("seq") or 0),
        "deadline_ms": deadline,
        "server_time_ms": now,
        "reserve_met": price >= reserve if reserve else True,
        "extend_window_s": int(state.get("win") or 0) // 1000,
        "extend_by_s": int(state.get("by") or 0) // 1000,
        "deposit": {"lot_amount": info.get("lot_deposit", 0),
                    "session_amount": info.get("session_deposit", 0)},
    }
    if status in ("closed", "settled"):
        sold = state.get("result") == "sold"
        snap["result"] = state.get("result")
        snap["winner"] = state.get("leader_name") if sold else None
    return snap


def lot_load_args(lot: Any, session: Any, status: str, last_bid: Any = None) -> list:
    """ARGV for load.lua from database rows (models.Lot / AuctionSession / Bid)."""
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
    ]


def bid_keys(lot_id: int, session_id: int, user_id: int, ref: str) -> list[str]:
    return [lot_key(lot_id), stream_key(lot_id), ref_key(lot_id, user_id, ref),
            lot_deposits_key(lot_id), session_deposits_key(session_id), DEADLINES, INGEST,
            NOTIFY]


def control_keys(lot_id: int) -> list[str]:
    return [lot_key(lot_id), stream_key(lot_id), DEADLINES]


MAXLEN = str(settings.STREAM_MAXLEN)
