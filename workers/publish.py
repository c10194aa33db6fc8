"""Write-only messages from workers to clients (via every hall's pub/sub).

Workers never talk to sockets: they publish on `user:{id}` or
run the lot scripts (which publish on `lot:{id}`), always after the database
transaction has committed.
"""
from __future__ import annotations

import threading
import time
from typing import Any

import redis
from redis.exceptions import ResponseError

from auction import keys, redisconn, wire

_client: redis.Redis | None = None
_lock = threading.Lock()


def client() -> redis.Redis:
    """The process's Redis client (its connection pool is thread/green-safe)."""
    global _client
    if _client is None:
        with _lock:
            if _client is None:
                _client = redisconn.sync_client()  # REDIS_URL or Sentinel
    return _client


def ensure_group(stream: str, group: str) -> None:
    """Create a consumer group on a stream (and the stream) unless it exists."""
    try:
        client().xgroup_create(stream, group, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


# XACK, then drop every entry older than the oldest one still pending in the
# group, or with none pending every entry the group has delivered. Trimming by
# MINID removes whole nodes of the stream at once, where XDEL of each id looked
# every one up: in bench/bids.py XDEL alone cost Redis 25 us a bid. Safe
# because a group delivers in id order: an entry older than the last one
# delivered was delivered, and stays while it is pending. Only for streams
# read by this one group.
_ACK_AND_TRIM = """
redis.call('XACK', KEYS[1], ARGV[1], unpack(ARGV, 2))
local pending = redis.call('XPENDING', KEYS[1], ARGV[1])
if pending[1] > 0 then return redis.call('XTRIM', KEYS[1], 'MINID', pending[2]) end
for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local info = {}
  for i = 1, #g, 2 do info[g[i]] = g[i + 1] end
  if info['name'] == ARGV[1] then
    local ms, seq = string.match(info['last-delivered-id'], '^(%d+)-(%d+)$')
    return redis.call('XTRIM', KEYS[1], 'MINID', ms .. '-' .. (tonumber(seq) + 1))
  end
end
return 0
"""
_scripts: dict[str, Any] = {}


def script(name: str, src: str, r: redis.Redis | None = None) -> Any:
    """A Lua script registered once per process (redis-py loads it again after
    NOSCRIPT); call it with `client=` to run it on another connection."""
    s = _scripts.get(name)
    if s is None:
        s = _scripts[name] = (r or client()).register_script(src)
    return s


def ack_and_trim(stream: str, group: str, ids: list, r: redis.Redis | None = None) -> int:
    """Acknowledge `ids` (read from `stream` through `group`) and trim what no
    consumer of the group needs any more; how many entries were trimmed."""
    if not ids:
        return 0
    r = r or client()
    return script("ack_and_trim", _ACK_AND_TRIM, r)(keys=[stream], args=[group, *ids], client=r)


def to_user(user_id: int, message: dict[str, Any]) -> None:
    message.setdefault("server_time_ms", int(time.time() * 1000))
    client().publish(keys.user_channel(user_id), wire.dumps(message))
