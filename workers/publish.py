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


def to_user(user_id: int, message: dict[str, Any]) -> None:
    message.setdefault("server_time_ms", int(time.time() * 1000))
    client().publish(keys.user_channel(user_id), wire.dumps(message))
