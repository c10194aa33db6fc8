"""The composition root of a hall process: database, Redis, Celery client, routes,
the application and its HTTP server; then serve until SIGINT or SIGTERM."""
from __future__ import annotations

import asyncio
import logging
import signal

import models
import settings
from auction import redisconn
from hall import gcpause, logs
from hall.app import HallApplication
from hall.clientaddr import trusted_networks
from hall.httpguard import GuardedHTTPServer
from hall.urls import handlers

logger = logging.getLogger(__name__)


async def serve(port: int, host: str | None = None, reuse_port: bool = False) -> None:
    logs.install()  # no token in any log line of this process (hall/logs.py)
    settings.check_production()
    trusted_networks()  # a bad HALL_TRUSTED_PROXIES stops the start, not the first login
    if not settings.REDIS_URL and not settings.REDIS_SENTINELS:
        raise SystemExit("REDIS_URL is not set (run.py all starts an embedded Redis)")
    database = models.init_db(settings.DATABASE_URL, asynchronous=True)
    # A blocking pool with retries on a fresh connection, on REDIS_URL or on
    # the master the sentinels name (auction/redisconn.py).
    redis = redisconn.async_client()
    # The hall holds the Celery app as a client only: it sends tasks by name
    # (auction/tasknames.py) and reads their results; it runs none.
    from workers.celery import app as celery_app

    app = HallApplication(handlers, redis, database, celery_app)
    # xheaders off: forwarding headers are believed only from HALL_TRUSTED_PROXIES
    # (hall/clientaddr.py), never from whoever sends them. body_timeout and the
    # guard: a slow body cannot hold a connection (hall/httpguard.py).
    server = GuardedHTTPServer(app, xheaders=False, max_body_size=1024 * 1024,
                               idle_connection_timeout=120,
                               body_timeout=settings.BODY_TIMEOUT_S)
    server.bind(port, address=host or settings.HALL_HOST, reuse_port=reuse_port,
                backlog=4096)
    server.start()
    await app.start()
    # Start-up's objects out of every later full collection (hall/gcpause.py).
    app.metrics.gc = gcpause.settle(freeze=settings.HALL_GC_FREEZE, threshold=settings.HALL_GC_THRESHOLD)
    logger.info("hall listening on http://%s:%s", host or settings.HALL_HOST, port)
    print(f"hall ready on http://{host or settings.HALL_HOST}:{port}", flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # Windows
            signal.signal(sig, lambda *_: loop.call_soon_threadsafe(stop.set))
    await stop.wait()
    logger.info("hall stopping")
    server.stop()
    await app.stop()
    await server.close_all_connections()
    await redis.aclose()  # and its pool
    try:
        await database.close_pool()
    except Exception:
        pass


def main(port: int, host: str | None = None, reuse_port: bool = False) -> None:
    if settings.HALL_UVLOOP:
        try:
            import uvloop  # libuv's loop: less Python per socket event (Linux/macOS)
        except ImportError:
            uvloop = None
        if uvloop is not None:
            uvloop.install()
    asyncio.run(serve(port, host, reuse_port))
