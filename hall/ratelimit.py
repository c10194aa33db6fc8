"""The hall's rate limits: one limiter for HTTP and WebSocket alike.

* Bids: one limit per *user* (settings.BID_RATE_PER_S), across all of their
  sockets, HTTP and every hall process. It is checked inside the bid script
  (bid.lua, a one-second window in Redis), so it costs no extra round trip
  on the bid path; `bid_rate()` is the figure handed to it. Each socket also
  has its own cap (`ConnectionCap`) that refuses a flood before it reaches
  Redis at all.
* Everything else (login, registration): sliding windows in Redis, `hit()`;
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
    """Sliding-window counters in Redis, shared by every hall process.

    A plain fixed window lets twice the limit through around its edge (five
    tries at 12:00:59.9 and five more at 12:01:00.0). Each name keeps this
    window's count and the last one's, and the count that decides is the
    last window's share that still overlaps the trailing `window_s` seconds
    plus this window's (the sliding-window approximation Cloudflare describes
    for its rate limiting): O(1) per request, two keys per name, and a burst
    across an edge is limited like any other.
    """

    def __init__(self, redis: Any) -> None:
        self.redis = redis

    async def hit(self, name: str, limit: int, window_s: int) -> None:
        """Count one request under `name`; ApiError("rate_limited") past `limit`."""
        if await self.add(name, window_s) > limit:
            raise ApiError("rate_limited", "too many requests; try again shortly")

    async def add(self, name: str, window_s: int) -> float:
        """Count one event under `name`; the count over the trailing window."""
        now = time.time()
        window = int(now) // window_s
        pipe = self.redis.pipeline(transaction=False)
        pipe.incr(keys.rate_window(name, window))
        # kept through the next window, where it is the "last" one
        pipe.expire(keys.rate_window(name, window), 2 * window_s + 1)
        pipe.get(keys.rate_window(name, window - 1))
        current, _, previous = await pipe.execute()
        return _trailing(now, window_s, int(previous or 0), current)

    async def over(self, name: str, limit: int, window_s: int) -> None:
        """ApiError("rate_limited") if `name` already counted `limit` events in
        the trailing window (counts nothing itself)."""
        now = time.time()
        window = int(now) // window_s
        current, previous = await self.redis.mget(keys.rate_window(name, window),
                                                  keys.rate_window(name, window - 1))
        if _trailing(now, window_s, int(previous or 0), int(current or 0)) >= limit:
            raise ApiError("rate_limited", "too many failed attempts; try again later")


def _trailing(now: float, window_s: int, previous: int, current: int) -> float:
    """Events in the `window_s` seconds before `now`, from two window counts."""
    into = (now % window_s) / window_s
    return previous * (1.0 - into) + current


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
