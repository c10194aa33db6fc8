"""The hall's rate limits: one limiter for HTTP and WebSocket alike.

* Bids: one limit per *user* (settings.BID_RATE_PER_S), across all of their
  sockets, HTTP and every hall process. It is checked inside the bid script
  (bid.lua, a one-second window in Redis), so it costs no extra round trip
  on the bid path; `bid_rate()` is the figure handed to it. Each socket also
  has its own cap (`ConnectionCap`) that refuses a flood before it reaches
  Redis at all.
* Everything else (login, registration): fixed windows in Redis, `hit()`;
  failures that only count when they happen (wrong passwords of one
  account): `add()` after the fact, `over()` before trying again. Addresses
  come from hall/clientaddr.py (forwarding headers only from trusted proxies).
"""
from __future__ import annotations

import time
from typing import Any

import settings
from auction import keys
from hall.errors import ApiError


def bid_rate() -> int:
    """Bids per second per user, for bid.lua (0 = unlimited)."""
    return settings.BID_RATE_PER_S


class RateLimiter:
    """Fixed-window counters in Redis, shared by every hall process."""

    def __init__(self, redis: Any) -> None:
        self.redis = redis

    async def hit(self, name: str, limit: int, window_s: int) -> None:
        """Count one request under `name`; ApiError("rate_limited") past `limit`."""
        if await self.add(name, window_s) > limit:
            raise ApiError("rate_limited", "too many requests; try again shortly")

    async def add(self, name: str, window_s: int) -> int:
        """Count one event under `name` in the current window; the count so far."""
        bucket = keys.rate_window(name, int(time.time()) // window_s)
        pipe = self.redis.pipeline(transaction=False)
        pipe.incr(bucket)
        pipe.expire(bucket, window_s + 1)
        count, _ = await pipe.execute()
        return count

    async def over(self, name: str, limit: int, window_s: int) -> None:
        """ApiError("rate_limited") if `name` already counted `limit` events in
        the current window (counts nothing itself)."""
        count = await self.redis.get(keys.rate_window(name, int(time.time()) // window_s))
        if count is not None and int(count) >= limit:
            raise ApiError("rate_limited", "too many failed attempts; try again later")


class ConnectionCap:
    """A token bucket of one connection: `rate` a second, bursts up to `rate`."""

    __slots__ = ("rate", "tokens", "stamp")

    def __init__(self, rate: float) -> None:
        self.rate = float(rate)
        self.tokens = float(rate)
        self.stamp = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.rate, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True
