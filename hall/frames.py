"""WebSocket framing and the socket write path of the rooms.

An event is encoded into one WebSocket frame per broadcast and the same bytes
are written to every socket: Tornado builds frames in pure Python, so
per-socket `write_message` would cost a frame build per client. Frames queued
for a socket within one IOLoop iteration go out in one send.
"""
from __future__ import annotations

import asyncio
import logging
import struct
from typing import Any

from tornado.ioloop import IOLoop
from tornado.iostream import IOStream, StreamBufferFullError, StreamClosedError
from tornado.websocket import WebSocketProtocol13

logger = logging.getLogger(__name__)


def text_frame(payload: bytes) -> bytes:
    """An unmasked, uncompressed server->client text frame (RFC 6455 5.2)."""
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 65536:
        return struct.pack("!BBH", 0x81, 126, n) + payload
    return struct.pack("!BBQ", 0x81, 127, n) + payload


def mine_variant(payload: bytes) -> bytes:
    """The same event as the bidder's own sockets see it: with "mine": true."""
    return payload[:-1] + b',"mine":true}'


# How much unread input a socket may hold in the hall before it stops being
# read (TCP flow control then holds the client back, as Tornado would).
READ_AHEAD = 64 * 1024
READ_LIMIT = 1024 * 1024


class SteadyReadStream(IOStream):
    """A room socket's stream: registered for reads from one frame to the next.

    Tornado unregisters a socket for reads whenever no read is pending and
    input is buffered, which in a WebSocket is after every frame header (the
    payload is still in the buffer), and registers it again when the next
    frame is read: an `epoll_ctl` pair and an idle `recv` per message,
    4-6 % of the hall's CPU per bid in py-spy (docs/benchmarks.md, fifth
    round). Here the socket stays registered while less than `READ_AHEAD`
    of input waits unread; past that Tornado's rule applies again. Input that
    arrives while nothing waits for it is read up to what the kernel holds;
    `READ_LIMIT` caps that, as the kernel's receive buffer did before: a client
    that sends that much without the hall getting through it is closed.
    """

    def reading(self) -> bool:
        return self._read_buffer_size < READ_AHEAD or IOStream.reading(self)

    def _try_inline_read(self) -> None:
        # Registered for reads: the loop reports the next bytes, so no recv
        # that would only say there are none yet.
        if self._find_read_pos() is None and self._state is not None \
                and self._state & IOLoop.READ and not self.closed():
            return
        IOStream._try_inline_read(self)


class SteadyFrames(WebSocketProtocol13):
    """A room socket's WebSocket protocol: a frame's parts are taken straight
    from the stream's buffer when they are already there.

    Tornado reads a client frame in three parts (header, mask, payload), each
    through `IOStream.read_bytes`: a Future, an inline read attempt and its
    bookkeeping per part, 9 % of the hall's GIL-holding samples per bid
    (docs/benchmarks.md, fifth round; with this, 70.5 -> 56.8 us of server CPU
    per message in bench/framereads.py, sixth round). A bid frame arrives whole, so after the
    first part the rest is in the buffer: taken with the stream's own
    `_consume`, as `read_bytes` would end up doing. Whatever is not there yet,
    or a read still pending, goes through Tornado's path. Only on a
    `SteadyReadStream`, which stays registered for reads by itself (no read
    needs to be pending for a close to be seen).
    """

    async def _read_bytes(self, n: int) -> bytes:
        stream = self.stream
        if stream._read_buffer_size >= n and stream._read_future is None:
            self._wire_bytes_in += n
            return stream._consume(n)
        return await WebSocketProtocol13._read_bytes(self, n)


# Writers with frames queued in this loop iteration; one call_soon flushes them.
_corked: list["FrameWriter"] = []


def _flush_corked() -> None:
    writers = _corked[:]
    _corked.clear()
    for writer in writers:
        try:
            writer._uncork()
        except Exception:
            logger.exception("socket write failed")


class FrameWriter:
    """Pre-built frames to one WebSocket connection (a mixin of the room socket).

    `attach_stream(stream, max_buffer)` once the handshake is done;
    `release_stream()` when
    the connection closes. A socket whose unsent output passes `max_buffer`
    is closed (`on_laggard`) instead of stalling its room.
    """

    _stream: IOStream | None = None
    _sock: Any = None
    _out: list[bytes] | None = None  # frames queued this loop iteration
    ws_connection: Any

    def attach_stream(self, stream: IOStream, max_buffer: int) -> None:
        self._stream = stream
        stream.max_write_buffer_size = max_buffer
        # Plain TCP only: an SSLIOStream has its own handshake/buffer state.
        if type(stream) is IOStream:
            # Same object and state, one method more (SteadyReadStream adds
            # no attributes); Tornado made the stream before the upgrade.
            stream.__class__ = SteadyReadStream
            stream.max_buffer_size = min(stream.max_buffer_size, READ_LIMIT)
            if type(self.ws_connection) is WebSocketProtocol13:
                # Before the first frame is read (Tornado calls open() first).
                self.ws_connection.__class__ = SteadyFrames
            self._sock = stream.socket
        else:
            self._sock = None

    def release_stream(self) -> None:
        self._stream = None
        self._sock = None

    def on_laggard(self) -> None:
        """Called once when the socket is closed for not reading."""

    def send_frame(self, frame: bytes) -> None:
        """Queue a pre-built frame; everything queued in one loop iteration is
        written with one send (the `accepted` answer, the `bid` event and an
        `outbid` notice for the same socket usually arrive together)."""
        if self._stream is None:
            return
        out = self._out
        if out is None:
            self._out = [frame]
            if not _corked:
                asyncio.get_running_loop().call_soon(_flush_corked)
            _corked.append(self)
        else:
            out.append(frame)

    def send_frame_now(self, frame: bytes) -> None:
        """A broadcast's frame: written at once unless frames are queued for
        this socket this iteration (then behind them, in order). A room of N
        sockets then costs N sends and nothing else; queueing each first, for
        the rare socket that gets a second frame in the same iteration, cost
        more than the merged sends saved (docs/benchmarks.md, fan-out)."""
        if self._out is not None:
            self._out.append(frame)
        else:
            self._write(frame)

    def _uncork(self) -> None:
        out = self._out
        self._out = None
        if out:
            self._write(out[0] if len(out) == 1 else b"".join(out))

    def _write(self, data: bytes) -> None:
        """Write to the socket, nothing after our close frame; drop this socket
        if it cannot keep up.

        Fast path: while Tornado has nothing queued for this socket, hand the
        bytes straight to the kernel (`socket.send`), skipping IOStream.write's
        buffer, Future and callback per write. The buffer's size is read as an
        attribute: `len()` of it is a Python call, once per socket per event.
        Whatever the kernel does not take (or any error) goes through
        IOStream.write, which keeps the order (its buffer is non-empty from then
        on, so later writes queue behind), the bounded buffer
        (StreamBufferFullError -> laggard dropped) and the close handling.
        """
        conn = self.ws_connection
        stream = self._stream
        if stream is None or conn is None or conn.server_terminated:
            return
        sock = self._sock
        if sock is not None and not stream._write_buffer._size:
            try:
                sent = sock.send(data)
            except OSError:  # EAGAIN, or a dead socket: IOStream.write sorts it out
                sent = 0
            if sent == len(data):
                return
            if sent:
                data = data[sent:]
        try:
            stream.write(data)
        except StreamBufferFullError:
            self._stream = None
            self.on_laggard()
            stream.close()
        except StreamClosedError:
            self._stream = None
