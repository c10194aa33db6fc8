"""HallApplication: the Tornado application and the resources it owns.

Handlers reach Redis, the database, the Celery client, the rooms and the
relay through `self.application` (as Flower's app.py does). Rooms and user
sockets are per process; the relay ties them to Redis pub/sub so any number
of hall processes can serve the same lots.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, TYPE_CHECKING

import redis.asyncio as aioredis
import tornado.web
from redis.exceptions import RedisError

import settings
from hall import engine
from hall.auth import Identity
from hall.errors import ApiError
from hall.metrics import Metrics
from hall.ops import OpsFeed, room_bidders
from hall.relay import Relay
from hall.rooms import RoomRegistry, text_frame
from hall.urls import handlers
from models import AuctionSession, Lot

if TYPE_CHECKING:
    from celery import Celery
    from hall.handlers.ws import RoomSocket

logger = logging.getLogger(__name__)

STATIC_DIR = settings.BASE_DIR / "hall" / "static"
PUBLISH_ZSET = "sessions:publish"
FAILURES = "tasks:failures"
TASKS_DONE = "tasks:done:"  # + epoch second: tasks finished (workers/tasks HallTask)
TASK_RATE_WINDOW_S = 10


class Scripts:
    """The Lua scripts, registered once (redis-py reloads them after NOSCRIPT)."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self.bid = redis.register_script(engine.BID_LUA)
        self.close = redis.register_script(engine.CLOSE_LUA)
        self.status = redis.register_script(engine.STATUS_LUA)
        self.load = redis.register_script(engine.LOAD_LUA)
        self.snapshot = redis.register_script(engine.SNAPSHOT_LUA)


class HallApplication(tornado.web.Application):
    def __init__(self, redis: aioredis.Redis, database: Any, celery_app: "Celery",
                 **kwargs: Any) -> None:
        self.redis = redis
        self.db = database
        self.celery = celery_app
        self.scripts = Scripts(redis)
        self.rooms = RoomRegistry()
        self.sockets: set[RoomSocket] = set()
        self.user_sockets: dict[int, set[RoomSocket]] = {}
        self.relay = Relay(redis, self.rooms, self.user_message)
        self.ops = OpsFeed(self)  # overview pushes to operator sockets ({"op":"ops"})
        self.executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="hall-blocking")
        self.metrics = Metrics()
        self.login_rate = settings.LOGIN_RATE_PER_MIN
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self._lot_sessions: dict[int, int] = {}
        self._bg: set[asyncio.Task] = set()
        self._wechat = None
        super().__init__(
            handlers,
            static_path=str(STATIC_DIR),
            websocket_max_message_size=64 * 1024,  # larger frames: closed with 1009
            websocket_ping_interval=settings.WS_PING_INTERVAL_S,
            default_handler_class=None,
            compress_response=False,
            **kwargs,
        )

    # -- lifecycle -------------------------------------------------------------
    async def start(self) -> None:
        self._spawn(self.relay.run())
        self._spawn(self._report_rooms())
        await asyncio.wait_for(self.relay.ready.wait(), 30)

    async def stop(self) -> None:
        await self.relay.stop()
        for task in list(self._bg):
            task.cancel()
        for conn in list(self.sockets):
            conn.close(1001, "hall shutting down")
        self.executor.shutdown(wait=False, cancel_futures=True)

    def _spawn(self, coro: Any) -> asyncio.Task:
        task = asyncio.ensure_future(coro)
        self._bg.add(task)
        task.add_done_callback(self._bg.discard)
        return task

    async def run_blocking(self, fn: Callable, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    # -- sockets and rooms -------------------------------------------------------
    def socket_opened(self, conn: "RoomSocket") -> None:
        self.sockets.add(conn)
        self.metrics.sockets_opened += 1
        if conn.user_id is not None:
            conns = self.user_sockets.setdefault(conn.user_id, set())
            conns.add(conn)
            if len(conns) == 1:
                self._spawn(self.relay.subscribe(engine.user_channel(conn.user_id)))

    def socket_closed(self, conn: "RoomSocket") -> None:
        self.sockets.discard(conn)
        self.ops.unsubscribe(conn)
        for lot_id in list(conn.lots):
            if self.rooms.leave(conn, lot_id):
                self._spawn(self.relay.unsubscribe(engine.lot_channel(lot_id)))
        conn.lots.clear()
        if conn.user_id is not None:
            conns = self.user_sockets.get(conn.user_id)
            if conns is not None:
                conns.discard(conn)
                if not conns:
                    del self.user_sockets[conn.user_id]
                    self._spawn(self.relay.unsubscribe(engine.user_channel(conn.user_id)))

    def user_message(self, user_id: int, data: bytes) -> None:
        conns = self.user_sockets.get(user_id)
        if conns:
            frame = text_frame(data)
            for conn in tuple(conns):
                conn.send_frame(frame)

    async def join(self, conn: "RoomSocket", lot_id: int, since: int | None) -> None:
        if lot_id in conn.lots:
            await self.leave(conn, lot_id)
        room, created = self.rooms.ensure(lot_id)
        room.begin_join(conn)
        conn.lots.add(lot_id)
        if created:
            room.subscribed = asyncio.ensure_future(
                self.relay.subscribe(engine.lot_channel(lot_id)))
        try:
            await room.subscribed
            state, now, events, last_id = await self.scripts.snapshot(
                keys=[engine.lot_key(lot_id), engine.stream_key(lot_id)],
                args=["" if since is None else since, engine.REPLAY_LIMIT])
        except BaseException:
            await self.leave(conn, lot_id)
            raise
        if conn not in room.joining:  # left, or the socket closed, meanwhile
            return
        snap = engine.snapshot_from_state(lot_id, _hash(state), int(now))
        if snap is None:
            await self.leave(conn, lot_id)
            if await self.lot_exists(lot_id):
                raise ApiError("lot_not_open", "this lot is not published yet")
            raise ApiError("not_found", "no such lot")
        conn.send_snapshot(snap, events)
        room.finish_join(conn, engine.parse_event_id(last_id.decode()))

    async def leave(self, conn: "RoomSocket", lot_id: int) -> None:
        conn.lots.discard(lot_id)
        if self.rooms.leave(conn, lot_id):
            await self.relay.unsubscribe(engine.lot_channel(lot_id))

    async def _report_rooms(self) -> None:
        """Publish this process's room sizes for the operator overview."""
        key = f"hall:stats:{self.name}"
        while True:
            await asyncio.sleep(2)
            stats = {lid: [len(r), room_bidders(r)] for lid, r in self.rooms.rooms.items()}
            try:
                await self.redis.set(key, json.dumps({"connections": len(self.sockets),
                                                      "rooms": stats}), ex=10)
            except (RedisError, OSError):
                pass

    # -- lots ------------------------------------------------------------------
    async def lot_session(self, lot_id: int) -> int | None:
        sid = self._lot_sessions.get(lot_id)
        if sid is None:
            raw = await self.redis.hget(engine.lot_key(lot_id), "sid")
            if raw is None:
                return None
            sid = self._lot_sessions[lot_id] = int(raw)
        return sid

    async def lot_exists(self, lot_id: int) -> bool:
        return await self.db.exists(Lot.select().where(Lot.id == lot_id))

    async def lot_row(self, lot_id: int, user: Identity | None) -> Lot | None:
        lot = await Lot.aget_or_none(Lot.id == lot_id)
        if lot is None or (lot.status == "draft" and not (user and user.is_operator)):
            return None
        return lot

    async def lot_snapshot(self, lot_id: int, user: Identity | None) -> dict | None:
        """The contract's lot snapshot: from Redis while published, else the database."""
        state, now, _events, _last = await self.scripts.snapshot(
            keys=[engine.lot_key(lot_id), engine.stream_key(lot_id)], args=["", 0])
        snap = engine.snapshot_from_state(lot_id, _hash(state), int(now))
        if snap is not None:
            return snap
        lot = await self.lot_row(lot_id, user)
        if lot is None:
            return None
        session = await AuctionSession.aget(AuctionSession.id == lot.session_id)
        return snapshot_from_row(lot, session, int(now))

    async def deposit_scope(self, lot_id: int, session_id: int, user_id: int) -> str | None:
        pipe = self.redis.pipeline(transaction=False)
        pipe.sismember(engine.session_deposits_key(session_id), user_id)
        pipe.sismember(engine.lot_deposits_key(lot_id), user_id)
        in_session, in_lot = await pipe.execute()
        return "session" if in_session else "lot" if in_lot else None

    # -- limits ------------------------------------------------------------------
    async def rate_limit(self, key: str, limit: int, window_s: int) -> None:
        bucket = f"rl:{key}:{int(time.time()) // window_s}"
        pipe = self.redis.pipeline(transaction=False)
        pipe.incr(bucket)
        pipe.expire(bucket, window_s + 1)
        count, _ = await pipe.execute()
        if count > limit:
            raise ApiError("rate_limited", "too many requests; try again shortly")

    async def check_bid_rate(self, user_id: int) -> None:
        await self.rate_limit(f"bid:{user_id}", settings.BID_RATE_PER_S, 1)

    # -- workers -----------------------------------------------------------------
    async def schedule_publish(self, session_id: int, at_ms: int | None) -> None:
        if at_ms is not None:
            await self.redis.zadd(PUBLISH_ZSET, {session_id: at_ms})

    async def call_worker(self, name: str, kwargs: dict, timeout: float = 15) -> Any:
        """Run a task and wait for it (for operator actions that answer with state)."""
        def call() -> Any:
            result = self.celery.send_task(name, kwargs=kwargs)
            return result.get(timeout=timeout, propagate=False)
        try:
            return await self.run_blocking(call)
        except Exception as exc:
            raise ApiError("unavailable", f"the workers did not answer: {type(exc).__name__}")

    def wechat_config(self) -> Any:
        if self._wechat is None:
            try:
                from workers.wechatpay import WeChatPayConfig
                self._wechat = WeChatPayConfig.from_settings()
            except Exception as exc:
                logger.warning("WeChat Pay not configured: %s", exc)
                return None
        return self._wechat

    async def overview(self) -> dict:
        """Rooms across every hall process, queues, workers, recent task failures."""
        rooms: dict[int, dict] = {}
        halls = []
        async for key in self.redis.scan_iter(match="hall:stats:*", count=100):
            raw = await self.redis.get(key)
            if not raw:
                continue
            stats = json.loads(raw)
            halls.append({"name": key.decode()[len("hall:stats:"):],
                          "connections": stats["connections"]})
            for lid, (conns, bidders) in stats["rooms"].items():
                r = rooms.setdefault(int(lid), {"lot_id": int(lid), "connections": 0, "bidders": 0})
                r["connections"] += conns
                r["bidders"] += bidders
        live_ids = [int(x) for x in await self.redis.zrange(engine.DEADLINES, 0, -1)]
        for lid in set(live_ids) | set(rooms):
            snap = await self.lot_snapshot(lid, None)
            if snap is None:
                continue
            r = rooms.setdefault(lid, {"lot_id": lid, "connections": 0, "bidders": 0})
            r.update(title=snap["title"], status=snap["status"], price=snap["price"],
                     deadline_ms=snap["deadline_ms"], bid_count=snap["bid_count"],
                     session_id=snap["session_id"])
        pipe = self.redis.pipeline(transaction=False)
        for q in settings.CELERY_QUEUES:
            pipe.llen(q)
        pipe.lrange(FAILURES, 0, 19)
        # Tasks finished in the last TASK_RATE_WINDOW_S whole seconds.
        now_s = int(time.time())
        pipe.mget([f"{TASKS_DONE}{s}" for s in range(now_s - TASK_RATE_WINDOW_S, now_s)])
        *lengths, failures, done = await pipe.execute()

        def ping() -> list:
            try:
                replies = self.celery.control.ping(timeout=0.5) or []
            except Exception:
                return []
            return sorted(name for reply in replies for name in reply)

        workers = await self.run_blocking(ping)
        return {
            "rooms": sorted(rooms.values(), key=lambda r: r["lot_id"]),
            "halls": halls,
            "queues": dict(zip(settings.CELERY_QUEUES, lengths)),
            "workers": workers,
            "recent_failures": [json.loads(f) for f in failures],
            "task_rate_per_s": round(sum(int(n) for n in done if n) / TASK_RATE_WINDOW_S, 2),
            "server_time_ms": int(time.time() * 1000),
        }


def _hash(flat: list) -> dict[str, str]:
    it = iter(flat)
    return {k.decode(): v.decode() for k, v in zip(it, it)}


def snapshot_from_row(lot: Lot, session: AuctionSession, now: int) -> dict:
    """A snapshot for a lot that is not (or no longer) in Redis."""
    price = lot.final_price
    return {
        "id": lot.id, "session_id": lot.session_id, "title": lot.title,
        "description": lot.description, "images": lot.images or [], "status": lot.status,
        "start_price": lot.start_price, "increment": lot.increment, "price": price,
        "next_min_bid": price + engine.increment_at(lot.increment, price) if price else lot.start_price,
        "leader": None, "bid_count": lot.bid_count, "seq": lot.bid_count,
        "deadline_ms": lot.closed_at_ms or lot.ends_at_ms, "server_time_ms": now,
        "reserve_met": bool(not lot.reserve_price or (price or 0) >= lot.reserve_price),
        "extend_window_s": lot.extend_window_s, "extend_by_s": lot.extend_by_s,
        "deposit": {"lot_amount": lot.lot_deposit, "session_amount": session.deposit_amount},
    }
