"""Rooms: the sockets of this hall process watching each lot, and fan-out.

An event is encoded into one WebSocket frame per broadcast and the same bytes
are written to every socket (hall/frames.py). A socket whose unsent output
passes settings.WS_MAX_BUFFER is closed instead of stalling its room.

Joining without a gap: the socket is registered (and the lot channel
subscribed) *before* the snapshot and replay are read from Redis; events that
arrive meanwhile are buffered for it, and those already covered by the replay
are dropped by stream id. So a join sees every event once.
"""
from __future__ import annotations

import logging
from typing import Protocol

from auction.wire import EventId, parse_event_id
from hall.frames import mine_variant, text_frame

logger = logging.getLogger(__name__)


# From this many live sockets a room's broadcast is sent at once, not queued
# for the end of the loop iteration (hall/frames.py).
BIG_ROOM = 64


class Client(Protocol):
    user_id: int | None

    def send_frame(self, frame: bytes) -> None: ...

    def send_frame_now(self, frame: bytes) -> None: ...


class Room:
    __slots__ = ("lot_id", "live", "joining", "ahead", "by_user", "last_id", "resync_from",
                 "subscribed")

    def __init__(self, lot_id: int) -> None:
        self.lot_id = lot_id
        self.live: set[Client] = set()
        # Sockets whose snapshot read is in flight -> events buffered for them.
        self.joining: dict[Client, list[tuple[EventId, str, bytes]]] = {}
        # Joined sockets whose replay went past what pub/sub has delivered here
        # yet -> the last event id they have; they go live after the next newer one.
        self.ahead: dict[Client, EventId] = {}
        self.by_user: dict[int, set[Client]] = {}
        self.last_id: EventId | None = None  # last event broadcast here
        self.resync_from: EventId = (0, 0)    # where to re-read after a reconnect
        self.subscribed = None                # future: the lot channel is subscribed

    def __len__(self) -> int:
        return len(self.live) + len(self.joining) + len(self.ahead)

    def bidders(self) -> int:
        return len(self.by_user)

    def _add_user(self, client: Client) -> None:
        if client.user_id is not None:
            self.by_user.setdefault(client.user_id, set()).add(client)

    def _drop_user(self, client: Client) -> None:
        if client.user_id is not None:
            conns = self.by_user.get(client.user_id)
            if conns is not None:
                conns.discard(client)
                if not conns:
                    del self.by_user[client.user_id]

    def begin_join(self, client: Client) -> None:
        self.live.discard(client)
        self.ahead.pop(client, None)
        self.joining[client] = []
        self._add_user(client)

    def finish_join(self, client: Client, covered_to: EventId) -> None:
        """Flush what arrived during the read (newer than `covered_to`), go live."""
        pending = self.joining.pop(client, None)
        if pending is None:  # left while joining
            return
        if covered_to > self.resync_from:
            self.resync_from = covered_to
        for event_id, uid, payload in pending:
            if event_id > covered_to:
                client.send_frame(text_frame(self.personal(client, uid, payload)))
        if self.last_id is None or covered_to > self.last_id:
            # The replay read from the stream is ahead of the pub/sub messages
            # this process has handled (they are still on their way): those
            # must not reach this socket a second time.
            self.ahead[client] = covered_to
        else:
            self.live.add(client)

    def remove(self, client: Client) -> None:
        self.live.discard(client)
        self.joining.pop(client, None)
        self.ahead.pop(client, None)
        self._drop_user(client)

    @staticmethod
    def personal(client: Client, uid: str, payload: bytes) -> bytes:
        if uid and client.user_id is not None and str(client.user_id) == uid:
            return mine_variant(payload)
        return payload

    def broadcast(self, event_id: EventId, uid: str, payload: bytes) -> bool:
        """Send one event to the room; False if it was already sent (duplicate)."""
        if self.last_id is not None and event_id <= self.last_id:
            return False
        self.last_id = event_id
        if event_id > self.resync_from:
            self.resync_from = event_id
        for pending in self.joining.values():
            pending.append((event_id, uid, payload))
        if self.ahead:
            for client, covered in tuple(self.ahead.items()):
                if event_id > covered:
                    del self.ahead[client]
                    self.live.add(client)
        frame = text_frame(payload)
        mine = self.by_user.get(int(uid)) if uid else None
        mine_frame = text_frame(mine_variant(payload)) if mine else frame
        clients = tuple(self.live)  # a laggard closed inside the send leaves the set
        # A big room: almost every socket gets this frame alone, so it is sent
        # at once (1.3 us less per socket in bench/fanout.py at 3,000). A small
        # one is mostly bidders: queued, so a bidder's `accepted` and `bid`, or
        # `bid` and `outbid`, go in one send (sent at once, bench/bids.py lost
        # 14 % of its bids per second).
        if len(clients) < BIG_ROOM:
            for client in clients:
                client.send_frame(mine_frame if mine and client in mine else frame)
        elif mine:
            for client in clients:
                client.send_frame_now(mine_frame if client in mine else frame)
        else:
            for client in clients:
                client.send_frame_now(frame)
        return True


class RoomRegistry:
    """Every room of this process, keyed by lot id."""

    def __init__(self) -> None:
        self.rooms: dict[int, Room] = {}

    def get(self, lot_id: int) -> Room | None:
        return self.rooms.get(lot_id)

    def ensure(self, lot_id: int) -> tuple[Room, bool]:
        room = self.rooms.get(lot_id)
        if room is None:
            room = self.rooms[lot_id] = Room(lot_id)
            return room, True
        return room, False

    def leave(self, client: Client, lot_id: int) -> bool:
        """Remove the client; True when the room became empty (and was dropped)."""
        room = self.rooms.get(lot_id)
        if room is None:
            return False
        room.remove(client)
        if not len(room):
            del self.rooms[lot_id]
            return True
        return False

    def dispatch(self, lot_id: int, event_id: str, uid: str, payload: bytes) -> None:
        room = self.rooms.get(lot_id)
        if room is not None:
            room.broadcast(parse_event_id(event_id), uid, payload)

    def connections(self) -> int:
        return sum(len(r) for r in self.rooms.values())
