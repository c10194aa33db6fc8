"""The lot snapshot of the contract, and the small rules it shows.

One place builds the snapshot a client sees, from the lot's Redis hash while
it is published, or from its database row before and after.
"""
from __future__ import annotations

import json
from typing import Any


def mask_name(username: str) -> str:
    """Public events never show who is bidding: "zhangsan" -> "z***n".

    Names of four characters and more keep their first and last; shorter ones
    only their first ("张三" -> "张***", "bob" -> "b***"), so at most one
    character of a two- or three-character name shows, and a one-character
    name none ("***"). Always with `*`.
    """
    if len(username) >= 4:
        return f"{username[0]}***{username[-1]}"
    if len(username) >= 2:
        return f"{username[0]}***"
    return "***"


def increment_at(increment: Any, price: int) -> int:
    """The increment in force at `price` (the same rule as common.lua)."""
    if isinstance(increment, int):
        return increment
    for below, step in increment:
        if below is None or price < below:
            return step
    return increment[-1][1]


def next_min_bid(start: int, increment: Any, price: int | None) -> int:
    return price + increment_at(increment, price) if price else start


def redis_hash(flat: list) -> dict[str, str]:
    """HGETALL's flat [k, v, k, v ...] of bytes as a dict of str (as Lua returns it)."""
    it = iter(flat)
    return {k.decode(): v.decode() for k, v in zip(it, it)}


def from_state(lot_id: int, state: dict[str, str], now: int) -> dict | None:
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
    result = state.get("result")
    if status == "paused":
        # The countdown is stopped: show where it would end if resumed now.
        deadline = now + int(state.get("remaining") or 0)
    elif status == "live" and now >= deadline > 0:
        # Past the deadline by Redis' clock: the bid script already refuses
        # bids, but nothing has run the close yet (no worker, a slow sweep).
        # Show the lot as it is, closed, with the result the close will give.
        status = "closed"
        result = "sold" if state.get("leader") and price >= reserve else "unsold"
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
        "next_min_bid": next_min_bid(start, increment, price),
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
        # Whether pre-emption holders exist; never who they are.
        "preemption": state.get("preempt") == "1",
    }
    if status in ("closed", "settled"):
        snap["result"] = result
        if state.get("closed_at"):
            snap["closed_at_ms"] = int(state["closed_at"])  # the hammer may fall before the deadline
        # After a forfeit the lot may be bought on a second-chance offer
        # (hall/handlers/offers.py sets `buyer_name`): the winner is that buyer.
        buyer = state.get("buyer_name")
        resale = state.get("resale")  # the buyer forfeited: workers/offers.py
        if result == "sold" and not buyer and resale == "none":
            result = snap["result"] = "unsold"  # offered on to everyone left; nobody took it
            snap["forfeited"] = True
        snap["winner"] = (buyer or state.get("leader_name")) if result == "sold" else None
        if buyer and result == "sold":
            snap["second_chance"] = True  # bought at their own best bid, below the hammer price
            snap["sale_price"] = int(state.get("buyer_price") or 0) or None
        elif result == "sold" and resale == "offering":
            snap["forfeited"] = True  # the winner did not pay; offered to the next bidder
    if state.get("chain_head"):
        snap["chain_head"] = state["chain_head"]
    warn_seq = state.get("warn_seq")
    if status == "live" and warn_seq is not None and warn_seq == (state.get("seq") or "0"):
        # A fair warning given on the last bid, not yet ended by a new one:
        # its countdown runs to the deadline (auction/lua/status.lua).
        snap["fair_warning_ends_ms"] = deadline
    return snap


def from_row(lot: Any, session: Any, now: int) -> dict:
    """A snapshot for a lot that is not (or no longer) in Redis (models.Lot)."""
    price = lot.final_price
    snap = {
        "id": lot.id, "session_id": lot.session_id, "title": lot.title,
        "description": lot.description, "images": lot.images or [], "status": lot.status,
        "start_price": lot.start_price, "increment": lot.increment, "price": price,
        "next_min_bid": next_min_bid(lot.start_price, lot.increment, price),
        "leader": None, "bid_count": lot.bid_count, "seq": lot.bid_count,
        "deadline_ms": lot.closed_at_ms or lot.ends_at_ms, "server_time_ms": now,
        "reserve_met": bool(not lot.reserve_price or (price or 0) >= lot.reserve_price),
        "extend_window_s": lot.extend_window_s, "extend_by_s": lot.extend_by_s,
        "deposit": {"lot_amount": lot.lot_deposit, "session_amount": session.deposit_amount},
    }
    if getattr(lot, "chain_head", None):
        snap["chain_head"] = lot.chain_head
    return snap
