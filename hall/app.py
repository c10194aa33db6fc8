"""HallApplication: the Tornado application, the resources it owns, their lifecycle.

As Flower's app.py: the application holds what the handlers share (Redis, the
database, the Celery client, a thread pool, the rooms and the relay) and starts
and stops it; handlers reach these through properties of the base handler and
never import this module. What to do with them lives elsewhere: lot reads in
hall/lots.py, the rooms in hall/audience.py, the overview in hall/ops.py.
"""
from __future__ import annotations

import asyncio
import logging
import os
import socket
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import tornado.web

import settings
from auction.wechatpay import WeChatPayConfig
from hall import tasks
from hall.audience import Audience
from auction.receipts import load_signer
from hall.bidding import BidBatcher, Receipts
from hall.deadlines import Deadlines
from hall.identity import Identities
from hall.imagestore import ImageStore, LocalImageStore
from hall.lots import LotReader, Scripts
from hall.metrics import Metrics
from hall.ops import OpsFeed, Overview, room_bidders
from hall.ratelimit import RateLimiter
from hall.webheaders import StaticFiles

logger = logging.getLogger(__name__)

STATIC_DIR = settings.BASE_DIR / "hall" / "static"


class HallApplication(tornado.web.Application):
    def __init__(self, routes: list, redis: Any, database: Any, celery_app: Any,
                 **kwargs: Any) -> None:
        self.redis = redis
        self.db = database
        self.celery = celery_app
        self.routes = routes
        self.executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="hall-blocking")
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self.scripts = Scripts(redis)
        self.lots = LotReader(redis, database, self.scripts)
        self.audience = Audience(redis, self.lots, self.spawn, self.name)
        self.overview = Overview(redis, self.lots, celery_app, self.run_blocking)
        self.ops = OpsFeed(self.overview.compute, self.spawn)
        self.audience.on_closed.append(self.ops.unsubscribe)
        # The receipt key (auction/receipts.py); production without one stopped
        # at settings.check_production already.
        self.receipts = Receipts(load_signer(settings.SIGNING_KEY, settings.SIGNING_KEYS_RETIRED,
                                             settings.DATA_DIR, settings.HALL_ENV == "production"),
                                 settings.HALL_SECRET)
        self.bids = BidBatcher(redis, self.scripts.bid, self.receipts.seal)
        self.deadlines = Deadlines(redis, database, celery_app, self.run_blocking,
                                   settings.SWEEP_INTERVAL_S)
        self.limiter = RateLimiter(redis)
        self.identities = Identities(redis)
        self.metrics = Metrics()
        self.metrics.batcher = self.bids
        self.image_store: ImageStore = LocalImageStore()  # lot photos (hall/imagestore.py)
        self._wechat: WeChatPayConfig | None = None
        self._bg: set[asyncio.Task] = set()
        super().__init__(
            routes,
            static_path=str(STATIC_DIR),
            static_handler_class=StaticFiles,
            websocket_max_message_size=64 * 1024,  # larger frames: closed with 1009
            websocket_ping_interval=settings.WS_PING_INTERVAL_S,
            default_handler_class=None,
            compress_response=False,
            **kwargs,
        )

    async def start(self) -> None:
        self.spawn(self.audience.relay.run())
        self.spawn(self.audience.report_rooms(room_bidders))
        self.spawn(tasks.keep_redelivering(self))
        self.spawn(self.deadlines.run())
        await asyncio.wait_for(self.audience.relay.ready.wait(), 30)

    async def stop(self) -> None:
        await self.audience.relay.stop()
        self.bids.close()
        for task in list(self._bg):
            task.cancel()
        self.audience.close_all(1001, "hall shutting down")
        self.executor.shutdown(wait=False, cancel_futures=True)

    def spawn(self, coro: Any) -> asyncio.Task:
        """Run a background coroutine owned by the application (cancelled at stop)."""
        task = asyncio.ensure_future(coro)
        self._bg.add(task)
        task.add_done_callback(self._bg.discard)
        return task

    async def run_blocking(self, fn: Callable, *args: Any) -> Any:
        """A blocking call (Celery, argon2) on the application's thread pool."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    @property
    def wechat(self) -> WeChatPayConfig | None:
        """The WeChat Pay keys for checking notifications, loaded once (None if unset)."""
        if self._wechat is None:
            try:
                self._wechat = WeChatPayConfig.from_settings()
            except Exception as exc:
                logger.warning("WeChat Pay not configured: %s", exc)
        return self._wechat
