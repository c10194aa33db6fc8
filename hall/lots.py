"""Lot and session reads for the handlers and the rooms.

A published lot is read from Redis (its live state is there), a draft or an
unpublished one from the database; either way the answer is the contract's
lot snapshot (auction/snapshot.py).
"""
from __future__ import annotations

import time
from typing import Any

from auction import engine, keys, snapshot
from hall.auth import Identity
from models import AuctionSession, Lot


BANNED_CACHE_S = 1.0


class Scripts:
    """The Lua scripts, registered once (redis-py reloads them after NOSCRIPT)."""

    def __init__(self, redis: Any) -> None:
        self.bid = redis.register_script(engine.BID_LUA)
        self.close = redis.register_script(engine.CLOSE_LUA)
        self.status = redis.register_script(engine.STATUS_LUA)
        self.load = redis.register_script(engine.LOAD_LUA)
        self.preempt = redis.register_script(engine.PREEMPT_LUA)
        self.snapshot = redis.register_script(engine.SNAPSHOT_LUA)


class LotReader:
    def __init__(self, redis: Any, database: Any, scripts: Scripts) -> None:
        self.redis = redis
        self.db = database
        self.scripts = scripts
        self._sessions: dict[int, int] = {}  # lot id -> session id (never changes)
        self._banned: tuple[float, frozenset[int]] = (0.0, frozenset())

    async def is_banned(self, user_id: int) -> bool:
        """Whether the user is banned, from a copy of the banned set at most
        BANNED_CACHE_S old: one SMEMBERS a second per hall, not a round trip
        per bid, so a ban takes effect within a second on every hall."""
        fetched, banned = self._banned
        now = time.monotonic()
        if now - fetched > BANNED_CACHE_S:
            banned = frozenset(int(x) for x in await self.redis.smembers(keys.BANNED_USERS))
            self._banned = (now, banned)
        return user_id in banned

    def forget_banned(self) -> None:
        """Read the set again at the next check (this hall just changed it)."""
        self._banned = (0.0, self._banned[1])

    async def session_of(self, lot_id: int) -> int | None:
        """The session of a published lot (None while it is not in Redis)."""
        sid = self._sessions.get(lot_id)
        if sid is None:
            raw = await self.redis.hget(keys.lot(lot_id), "sid")
            if raw is None:
                return None
            sid = self._sessions[lot_id] = int(raw)
        return sid

    async def exists(self, lot_id: int) -> bool:
        return await self.db.exists(Lot.select().where(Lot.id == lot_id))

    async def row(self, lot_id: int, user: Identity | None) -> Lot | None:
        """The lot's row, or None if it does not exist or is a draft this user may not see."""
        lot = await Lot.aget_or_none(Lot.id == lot_id)
        if lot is None or (lot.status == "draft" and not (user and user.is_operator)):
            return None
        return lot

    async def snapshot(self, lot_id: int, user: Identity | None) -> dict | None:
        """The contract's lot snapshot: from Redis while published, else the database."""
        state, now, _events, _last = await self.scripts.snapshot(
            keys=engine.snapshot_keys(lot_id), args=["", 0])
        snap = snapshot.from_state(lot_id, snapshot.redis_hash(state), int(now))
        if snap is not None:
            return snap
        lot = await self.row(lot_id, user)
        if lot is None:
            return None
        session = await AuctionSession.aget(AuctionSession.id == lot.session_id)
        return snapshot.from_row(lot, session, int(now))

    async def deposit_scope(self, lot_id: int, session_id: int, user_id: int) -> str | None:
        """"session" or "lot": which deposit of this user is in force for the lot."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.sismember(keys.session_deposits(session_id), user_id)
        pipe.sismember(keys.lot_deposits(lot_id), user_id)
        in_session, in_lot = await pipe.execute()
        return "session" if in_session else "lot" if in_lot else None
