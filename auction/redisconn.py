"""Redis clients for every process: a fixed REDIS_URL, or Redis Sentinel.

Without REDIS_SENTINELS everything uses REDIS_URL, as before. With it, the
clients ask the sentinels for the current master of REDIS_SENTINEL_MASTER and
follow a failover by themselves; REDIS_URL then only supplies the Redis
password (username) and the database number, its host:port is not used.

No tornado, no eventlet here: the hall (asyncio) and the workers (eventlet,
plain redis-py) both import this module.
"""
from __future__ import annotations

from typing import Any
from urllib.parse import quote, unquote, urlparse

import redis
import redis.asyncio as aioredis
import redis.asyncio.sentinel as aiosentinel
import redis.sentinel
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.retry import Retry as SyncRetry
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

import settings

# Connections to the sentinels themselves: a dead sentinel must not stall the
# question "who is the master?" (the next sentinel is asked).
SENTINEL_TIMEOUT_S = 1.0


def sentinels() -> list[tuple[str, int]]:
    """REDIS_SENTINELS as (host, port) pairs; [] = no Sentinel."""
    out = []
    for item in settings.REDIS_SENTINELS:
        host, _, port = item.rpartition(":")
        if not host or not port.isdigit():
            raise SystemExit(f"REDIS_SENTINELS: {item!r} is not host:port")
        out.append((host.strip("[]"), int(port)))
    return out


def _master_auth() -> dict[str, Any]:
    """Password, username and db of the Redis master, from REDIS_URL (if set)."""
    if not settings.REDIS_URL:
        return {"db": 0}
    url = urlparse(settings.REDIS_URL)
    out: dict[str, Any] = {"db": int((url.path or "/0").lstrip("/") or 0)}
    if url.password:
        out["password"] = unquote(url.password)
    if url.username:
        out["username"] = unquote(url.username)
    return out


def _sentinel_kwargs() -> dict[str, Any]:
    kw: dict[str, Any] = {"socket_timeout": SENTINEL_TIMEOUT_S,
                          "socket_connect_timeout": SENTINEL_TIMEOUT_S}
    if settings.REDIS_SENTINEL_PASSWORD:
        kw["password"] = settings.REDIS_SENTINEL_PASSWORD
    return kw


# -- the hall: redis.asyncio ---------------------------------------------------------

class BlockingSentinelConnectionPool(aiosentinel.SentinelConnectionPool,
                                     aioredis.BlockingConnectionPool):
    """Sentinel-managed connections (each connect asks where the master is)
    with the blocking pool's wait-for-a-free-connection behaviour."""


def _retry(retry_class: type) -> dict[str, Any]:
    """Pooled connections die with a Redis restart or failover: a command that
    gets one is sent again on a fresh connection (backing off 0.1 s doubling
    to 1 s, about 3.5 s in all) instead of failing the request or task that
    happened to get it. Given explicitly: a client made by `from_url` or
    `master_for` has no retry at all (redis-py applies its own default only
    to a pool it builds itself)."""
    return dict(retry=retry_class(ExponentialBackoff(cap=1.0, base=0.05), 6),
                retry_on_error=[RedisConnectionError, RedisTimeoutError])


def _hall_pool_kwargs() -> dict[str, Any]:
    # A blocking pool: when a room opens and hundreds of sockets join at once,
    # commands wait a moment for a connection instead of failing with "Too
    # many connections".
    return dict(max_connections=256, timeout=10, decode_responses=False,
                health_check_interval=15, socket_keepalive=True, **_retry(Retry))


def async_client() -> aioredis.Redis:
    """The hall's client; closing it (`aclose()`) closes its pool."""
    hosts = sentinels()
    if not hosts:
        pool = aioredis.BlockingConnectionPool.from_url(settings.REDIS_URL, **_hall_pool_kwargs())
        return aioredis.Redis.from_pool(pool)
    sentinel = aiosentinel.Sentinel(hosts, sentinel_kwargs=_sentinel_kwargs())
    # A master that vanished from the network must not hold a connect for
    # minutes: give up after 5 s and let the retry ask the sentinels again.
    return sentinel.master_for(settings.REDIS_SENTINEL_MASTER,
                               connection_pool_class=BlockingSentinelConnectionPool,
                               socket_connect_timeout=5, **_master_auth(),
                               **_hall_pool_kwargs())


# -- workers, beat, run.py: plain redis-py -----------------------------------------------

def sync_client(decode_responses: bool = True) -> redis.Redis:
    """A worker's (or beat's, or run.py's) client. Retrying matters most here:
    a worker keeps dozens of pooled connections across a Redis restart, and a
    task's message to its owner (a deposit's result) sent on a dead one was
    lost, the bidder never told."""
    hosts = sentinels()
    if not hosts:
        return redis.Redis.from_url(settings.REDIS_URL, decode_responses=decode_responses,
                                    health_check_interval=15, **_retry(SyncRetry))
    sentinel = redis.sentinel.Sentinel(hosts, sentinel_kwargs=_sentinel_kwargs())
    return sentinel.master_for(settings.REDIS_SENTINEL_MASTER, decode_responses=decode_responses,
                               health_check_interval=15, socket_connect_timeout=5,
                               **_master_auth(), **_retry(SyncRetry))


# -- Celery ---------------------------------------------------------------------------

def _sentinel_url() -> str:
    """`sentinel://[:password@]host:port/db;...`: the password is the Redis
    master's (the sentinels' own goes in the transport options)."""
    auth = _master_auth()
    cred = ""
    if "password" in auth:
        cred = f"{quote(auth.get('username', ''), safe='')}:{quote(auth['password'], safe='')}@"
    return ";".join(f"sentinel://{cred}{h if ':' not in h else f'[{h}]'}:{p}/{auth['db']}"
                    for h, p in sentinels())


def celery_urls() -> dict[str, Any]:
    """Celery's broker_url, result_backend and the Sentinel transport options
    (empty without Sentinel) to merge into the app's own options.

    With REDIS_SENTINELS, a CELERY_* URL that is empty or REDIS_URL becomes the
    sentinel:// list; one that already is sentinel:// is kept; any other
    (a separate broker chosen on purpose) is left alone."""
    broker, backend = settings.CELERY_BROKER_URL, settings.CELERY_RESULT_BACKEND
    out: dict[str, Any] = {"broker_url": broker, "result_backend": backend,
                           "broker_transport_options": {},
                           "result_backend_transport_options": {}}
    if not sentinels():
        return out
    options: dict[str, Any] = {"master_name": settings.REDIS_SENTINEL_MASTER}
    if settings.REDIS_SENTINEL_PASSWORD:
        options["sentinel_kwargs"] = {"password": settings.REDIS_SENTINEL_PASSWORD}
    for url_key, opt_key, url in (("broker_url", "broker_transport_options", broker),
                                  ("result_backend", "result_backend_transport_options", backend)):
        if not url or url == settings.REDIS_URL:
            out[url_key] = _sentinel_url()
        elif not url.startswith("sentinel://"):
            continue
        out[opt_key] = dict(options)
    return out
