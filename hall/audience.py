"""Who is connected to this hall process, and which rooms they sit in.

Ties the sockets to the rooms (hall/rooms.py) and to Redis pub/sub
(hall/relay.py): the first socket of a user subscribes `user:{id}`, the first
socket in a room subscribes `lot:{id}`, the last one to leave unsubscribes.
Rooms and user sockets are per process; the relay lets any number of hall
processes serve the same lots.
"""
from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any, Callable

from redis.exceptions import RedisError

from auction import engine, keys, snapshot, wire
from hall.errors import ApiError
from hall.frames import text_frame
from hall.lots import LotReader
from hall.relay import Relay
from hall.rooms import RoomRegistry

if TYPE_CHECKING:
    from hall.handlers.ws import RoomSocket

REPORT_EVERY_S = 2
LOGGED_OUT = 4001  # close code of a socket whose token was revoked (logout)


class Audience:
    def __init__(self, redis: Any, lots: LotReader, spawn: Callable[[Any], asyncio.Task],
                 name: str) -> None:
        self.redis = redis
        self.lots = lots
        self.spawn = spawn
        self.name = name  # this hall process, in the operator overview
        self.rooms = RoomRegistry()
        self.sockets: set[RoomSocket] = set()
        self.user_sockets: dict[int, set[RoomSocket]] = {}
        self.relay = Relay(redis, self.rooms, self.user_message, self.control_message)
        self.on_closed: list[Callable[[Any], None]] = []  # e.g. the ops feed's unsubscribe

    # -- sockets -------------------------------------------------------------------
    def socket_opened(self, conn: "RoomSocket") -> None:
        self.sockets.add(conn)
        if conn.user_id is not None:
            conns = self.user_sockets.setdefault(conn.user_id, set())
            conns.add(conn)
            if len(conns) == 1:
                self.spawn(self.relay.subscribe(keys.user_channel(conn.user_id)))

    def socket_closed(self, conn: "RoomSocket") -> None:
        self.sockets.discard(conn)
        for callback in self.on_closed:
            callback(conn)
        for lot_id in list(conn.lots):
            if self.rooms.leave(conn, lot_id):
                self.spawn(self.relay.unsubscribe(keys.lot_channel(lot_id)))
        conn.lots.clear()
        if conn.user_id is not None:
            conns = self.user_sockets.get(conn.user_id)
            if conns is not None:
                conns.discard(conn)
                if not conns:
                    del self.user_sockets[conn.user_id]
                    self.spawn(self.relay.unsubscribe(keys.user_channel(conn.user_id)))

    def user_message(self, user_id: int, data: bytes) -> None:
        conns = self.user_sockets.get(user_id)
        if conns:
            frame = text_frame(data)
            for conn in tuple(conns):
                conn.send_frame(frame)

    def control_message(self, data: bytes) -> None:
        """A message to every hall process (keys.HALL_CONTROL): a logout closes
        the sockets that were opened with the revoked token."""
        msg = json.loads(data)
        if msg.get("op") == "revoked":
            self.revoked(int(msg["user_id"]), str(msg["token_id"]))

    def revoked(self, user_id: int, token_id: str) -> None:
        for conn in tuple(self.user_sockets.get(user_id, ())):
            if conn.identity is not None and conn.identity.token_id == token_id:
                conn.close(LOGGED_OUT, "logged out")

    def close_all(self, code: int, reason: str) -> None:
        for conn in list(self.sockets):
            conn.close(code, reason)

    # -- rooms ---------------------------------------------------------------------
    async def join(self, conn: "RoomSocket", lot_id: int, since: int | None) -> None:
        """Snapshot, then the events after `since`, then live ones: none missing,
        none twice (see hall/rooms.py for how the two meet)."""
        if lot_id in conn.lots:
            await self.leave(conn, lot_id)
        room, created = self.rooms.ensure(lot_id)
        room.begin_join(conn)
        conn.lots.add(lot_id)
        if created:
            room.subscribed = asyncio.ensure_future(
                self.relay.subscribe(keys.lot_channel(lot_id)))
        try:
            await room.subscribed
            state, now, events, last_id = await self.lots.scripts.snapshot(
                keys=engine.snapshot_keys(lot_id),
                args=["" if since is None else since, engine.REPLAY_LIMIT])
        except BaseException:
            await self.leave(conn, lot_id)
            raise
        if conn not in room.joining:  # left, or the socket closed, meanwhile
            return
        snap = snapshot.from_state(lot_id, snapshot.redis_hash(state), int(now))
        if snap is None:
            await self.leave(conn, lot_id)
            if await self.lots.exists(lot_id):
                raise ApiError("lot_not_open", "this lot is not published yet")
            raise ApiError("not_found", "no such lot")
        conn.send_snapshot(snap, events)
        room.finish_join(conn, wire.parse_event_id(last_id.decode()))

    async def leave(self, conn: "RoomSocket", lot_id: int) -> None:
        conn.lots.discard(lot_id)
        if self.rooms.leave(conn, lot_id):
            await self.relay.unsubscribe(keys.lot_channel(lot_id))

    async def report_rooms(self, bidders: Callable[[Any], int]) -> None:
        """Publish this process's room sizes for the operator overview, every 2 s."""
        key = keys.hall_stats(self.name)
        while True:
            await asyncio.sleep(REPORT_EVERY_S)
            stats = {lid: [len(r), bidders(r)] for lid, r in self.rooms.rooms.items()}
            try:
                await self.redis.set(key, json.dumps({"connections": len(self.sockets),
                                                      "rooms": stats}), ex=10)
            except (RedisError, OSError):
                pass
