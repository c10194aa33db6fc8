"""The hall's Redis pub/sub listener: lot events and per-user messages.

One pub/sub connection per hall process (hall/subscription.py). It does not
reconnect by itself, so `run()` loops around subscribe/listen with a doubling
wait (0.1 s -> 30 s). After every reconnect, once Redis has confirmed the
subscriptions, it re-reads each watched lot's stream from the last event this
process broadcast, then delivers what arrived meanwhile (a room drops what it
already sent), so clients miss nothing published while the connection was down.
"""
from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Awaitable, Callable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from auction import keys, wire
from hall.rooms import RoomRegistry
from hall.subscription import Subscription

logger = logging.getLogger(__name__)

class Relay:
    def __init__(self, redis: aioredis.Redis, rooms: RoomRegistry,
                 user_sink: Callable[[int, bytes], None],
                 control_sink: Callable[[bytes], None] | None = None) -> None:
        self.redis = redis
        self.rooms = rooms
        self.user_sink = user_sink
        self.control_sink = control_sink  # messages on keys.HALL_CONTROL (logouts)
        self.refs: Counter[str] = Counter()  # channel -> local interest
        self.sub: Subscription | None = None
        self.ready = asyncio.Event()
        self._confirm: dict[str, list[asyncio.Future]] = {}
        self._stopping = False
        self.reconnects = 0
        self.on_reconnect: list[Callable[[], Awaitable[None]]] = []

    # -- subscriptions ---------------------------------------------------
    async def subscribe(self, channel: str) -> None:
        """Add interest; returns once Redis has confirmed the subscription."""
        self.refs[channel] += 1
        if self.refs[channel] > 1:
            return
        await self.ready.wait()
        fut = asyncio.get_running_loop().create_future()
        self._confirm.setdefault(channel, []).append(fut)
        try:
            self.sub.subscribe(channel)
        except (RedisError, OSError, AttributeError):
            # The listener will resubscribe everything in self.refs on reconnect.
            self._confirm.pop(channel, None)
            return
        try:
            await asyncio.wait_for(asyncio.shield(fut), 5)
        except asyncio.TimeoutError:
            logger.warning("no confirmation for subscribe %s", channel)

    async def unsubscribe(self, channel: str) -> None:
        self.refs[channel] -= 1
        if self.refs[channel] > 0:
            return
        del self.refs[channel]
        if self.sub is not None and self.ready.is_set():
            try:
                self.sub.unsubscribe(channel)
            except (RedisError, OSError):
                pass

    # -- listening -------------------------------------------------------
    async def run(self) -> None:
        delay = 0.1
        first = True
        while not self._stopping:
            sub = Subscription(self.redis.connection_pool)
            try:
                await sub.open([keys.HALL_CONTROL, *self.refs.keys()])
                self.sub = sub
                self.ready.set()
                if not first:
                    self.reconnects += 1
                    logger.warning("pub/sub reconnected; re-reading %d lot streams",
                                   len(self.rooms.rooms))
                    await self.resync()
                    for cb in self.on_reconnect:
                        await cb()
                first = False
                delay = 0.1
                sub.deliver_to(self._handle)  # what came meanwhile, then each as it comes
                exc = await sub.lost
                logger.warning("pub/sub connection lost (%s); retrying in %.1fs", exc, delay)
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                logger.warning("pub/sub connection lost (%s); retrying in %.1fs", exc, delay)
            except Exception:  # never let the listener die
                logger.exception("relay error; restarting listener")
            finally:
                self.ready.clear()
                self.sub = None
                for futs in self._confirm.values():
                    for f in futs:
                        if not f.done():
                            f.set_result(False)
                self._confirm.clear()
                sub.close()
            if self._stopping:
                break
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)

    def _handle(self, reply: list) -> None:
        """One reply from Redis (hall/subscription.py hands them over in order)."""
        if not isinstance(reply, list):  # an error: nothing here sends commands that fail
            logger.warning("pub/sub: unexpected reply %r", reply)
            return
        kind = reply[0]
        if kind == b"message":
            self._deliver(reply[1].decode(), reply[2])
        elif kind == b"subscribe":
            waiting = self._confirm.pop(reply[1].decode(), None)
            if waiting:
                for fut in waiting:
                    if not fut.done():
                        fut.set_result(True)

    def _deliver(self, channel: str, data: bytes) -> None:
        try:
            if channel.startswith(keys.LOT_CHANNEL_PREFIX):
                self.rooms.dispatch(*wire.split_lot_message(data))
            elif (user_id := keys.channel_id(channel, keys.USER_CHANNEL_PREFIX)) is not None:
                self.user_sink(user_id, data)
            elif channel == keys.HALL_CONTROL and self.control_sink is not None:
                self.control_sink(data)
        except Exception:
            logger.exception("bad message on %s: %r", channel, data[:200])

    async def resync(self, lot_ids: list[int] | None = None) -> None:
        """After a reconnect: re-read every watched lot from where we were."""
        for lot_id in list(self.rooms.rooms) if lot_ids is None else lot_ids:
            room = self.rooms.get(lot_id)
            if room is None:
                continue
            seq, sub = room.resync_from
            # Just after a failover the pool may still hold connections to the
            # old master: try a few times before leaving a gap in the room.
            for attempt in range(5):
                try:
                    entries = await self.redis.xrange(keys.lot_stream(lot_id),
                                                      min=f"{seq}-{sub}", max="+")
                    break
                except (RedisError, OSError) as exc:
                    logger.warning("could not re-read lot %s (try %d): %s", lot_id,
                                   attempt + 1, exc)
                    await asyncio.sleep(0.2 * (attempt + 1))
            else:
                continue
            for event_id, fields in entries:
                room.broadcast(wire.parse_event_id(event_id.decode()),
                               fields.get(b"u", b"").decode(), fields[b"d"])

    async def stop(self) -> None:
        self._stopping = True
