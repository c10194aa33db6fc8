"""Kombu's Redis transports, with a closed connection failing as a connection error.

When the broker goes away (a restart, a Sentinel failover) Celery releases the
consumer's kombu Connection, and kombu clears the transport's link back to it
before every channel is done: closing a channel then restores its unacknowledged
messages, or a finished task acknowledges its message, or a pooled producer
publishes (a task queueing another), through a pool that must be rebuilt from
that link. kombu reads `None.hostname` or `None.client` and raises AttributeError,
which Celery does not count as a connection error: the worker logs
"Unrecoverable error" and shuts down instead of reconnecting.

Here the same moment raises redis's ConnectionError, which Celery and kombu
already handle (they ignore it while releasing, and reconnect). The messages the
channel held stay in Redis's unacked index; kombu puts them back on their queue
once the visibility timeout passes, and every task here is idempotent, so a
task that finished but could not be acknowledged runs again harmlessly.
"""
from __future__ import annotations

from typing import Any

from kombu.transport import redis as kombu_redis
from redis.exceptions import ConnectionError as RedisConnectionError


class _ClosedFailsAsConnectionError:
    """Mixin for kombu's Redis channels (see the module docstring)."""

    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        # A closed channel has no transport (connection None); a closed
        # connection leaves its transport without a client. Either way, a
        # connection error: kombu's ensure() then revives the channel (a pooled
        # producer publishing after a broker restart) instead of failing.
        transport = self.connection  # type: ignore[attr-defined]
        if transport is None or transport.client is None:
            raise RedisConnectionError("the broker connection was closed")
        return super()._connparams(asynchronous=asynchronous)  # type: ignore[misc]


class Channel(_ClosedFailsAsConnectionError, kombu_redis.Channel):
    pass


class Transport(kombu_redis.Transport):
    Channel = Channel


class SentinelChannel(_ClosedFailsAsConnectionError, kombu_redis.SentinelChannel):
    pass


class SentinelTransport(kombu_redis.SentinelTransport):
    Channel = SentinelChannel


def transport_for(broker_url: str | None) -> str | None:
    """The transport class path for a broker URL (None: leave kombu's choice)."""
    scheme = (broker_url or "").split("://", 1)[0]
    if scheme == "redis":  # rediss:// keeps kombu's own (its TLS checks look at the scheme)
        return "workers.broker:Transport"
    if scheme == "sentinel":
        return "workers.broker:SentinelTransport"
    return None
