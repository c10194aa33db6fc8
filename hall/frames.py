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
import sys
from types import CoroutineType
from typing import Any

from tornado.ioloop import IOLoop
from tornado.iostream import IOStream, StreamBufferFullError, StreamClosedError
from tornado.util import _websocket_mask
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


# How much unread input a socket may hold in the hall while its last message
# is still being handled before it stops being read (TCP flow control then
# holds the client back, as Tornado would).
READ_AHEAD = 64 * 1024
READ_LIMIT = 1024 * 1024


class SteadyReadStream(IOStream):
    """A room socket's stream: registered for reads from one frame to the next,
    and, once `SteadyFrames` feeds on it, handing what it reads straight to the
    frame parser.

    Tornado unregisters a socket for reads whenever no read is pending and
    input is buffered, which in a WebSocket is after every frame header (the
    payload is still in the buffer), and registers it again when the next
    frame is read: an `epoll_ctl` pair and an idle `recv` per message,
    4-6 % of the hall's CPU per bid in py-spy (docs/benchmarks.md, fifth
    round). Here the socket stays registered while less than `READ_AHEAD`
    of input waits unread, or while the parser waits for the rest of a frame
    (a frame is at most the handler's `max_message_size`); past that Tornado's
    rule applies again. `READ_LIMIT` caps what a socket may buffer, as the
    kernel's receive buffer did before: a client that sends that much without
    the hall getting through it is closed.
    """

    _feed: "FrameFeed | None" = None  # the parser fed by this stream's reads

    def reading(self) -> bool:
        feed = self._feed
        return (self._read_buffer_size < READ_AHEAD or IOStream.reading(self)
                or (feed is not None and feed.handling is None))

    def _try_inline_read(self) -> None:
        # Registered for reads: the loop reports the next bytes, so no recv
        # that would only say there are none yet.
        if self._find_read_pos() is None and self._state is not None \
                and self._state & IOLoop.READ and not self.closed():
            return
        IOStream._try_inline_read(self)

    def _handle_read(self) -> None:
        """Fed: one `recv` of what the kernel holds, then the parser.

        Tornado's read loop allocates and zeroes a 64 KB bytearray per read
        and, registered as this stream stays, reads again until EAGAIN: an
        idle `recv` per message. The loop is level-triggered, so whatever one
        `recv` leaves is reported again.
        """
        feed = self._feed
        if feed is None or self._read_future is not None:
            IOStream._handle_read(self)
            return
        try:
            data = self.socket.recv(self.read_chunk_size)
        except BlockingIOError:
            return
        except OSError as exc:  # a reset is a close, as in Tornado
            self.close(exc_info=exc)
            return
        if not data:
            self.close()
            return
        self._read_buffer += data
        self._read_buffer_size += len(data)
        if self._read_buffer_size > self.max_buffer_size:
            logger.info("closing a socket that sent %d bytes unread", self._read_buffer_size)
            self.close(exc_info=StreamBufferFullError("Reached maximum read buffer size"))
            return
        feed.protocol._frames_in(feed)


class FrameFeed:
    """What a room socket's parser keeps between reads, held by its stream.

    Not attributes of the protocol: a new attribute there moves its instance
    dict off the keys it shares with every other protocol object, 1.5 KB a
    socket (tracemalloc, 500 sockets).
    """

    __slots__ = ("protocol", "handling", "ended")

    def __init__(self, protocol: "SteadyFrames", ended: "asyncio.Future[None]") -> None:
        self.protocol = protocol
        self.handling: Any = None  # the Future of the message being handled
        self.ended = ended  # done when the connection is


class SteadyFrames(WebSocketProtocol13):
    """A room socket's WebSocket protocol: frames parsed where they land.

    Tornado reads a client frame as a coroutine that awaits its parts
    (header, mask, payload) through `IOStream.read_bytes`, and awaits
    `on_message` before the next frame: per message a read Future, two
    wake-ups of that coroutine and the read machinery under it, ~15 % of the
    hall's CPU per bid (docs/benchmarks.md, seventh round). Here the stream
    calls `_frames_in` after each read, which takes every complete frame from
    its buffer and handles it as Tornado's `_receive_frame` does: the same
    checks (reserved bits, control frames, fragments, `max_message_size` read
    from the header, before the payload is waited for), the same
    `_handle_message`, and the same order: while a message is being handled
    (an `on_message` coroutine), the next one waits for it. Only on a
    `SteadyReadStream`; anything else (or compression) reads Tornado's way.
    """

    async def _receive_frame_loop(self) -> None:
        stream = self.stream
        if type(stream) is not SteadyReadStream or self._decompressor is not None:
            await WebSocketProtocol13._receive_frame_loop(self)
            return
        ended = asyncio.get_running_loop().create_future()
        feed = FrameFeed(self, ended)
        try:
            # Tornado's loop learns of a close from its pending read; no read
            # is pending here, so the stream says it (on the next iteration).
            stream.set_close_callback(self._stream_closed)
            if stream.closed():
                return
            stream._feed = feed
            self._frames_in(feed)
            stream._add_io_state(IOLoop.READ)
            await ended
        finally:
            stream._feed = None
            self.handler.on_ws_connection_close(self.close_code, self.close_reason)

    def _stream_closed(self) -> None:
        self._abort()  # what Tornado's loop does on StreamClosedError
        self._end()

    def _end(self) -> None:
        feed = self.stream._feed
        if feed is not None and not feed.ended.done():
            feed.ended.set_result(None)

    def _deliver(self, opcode: int, data: bytes) -> Any:
        """A text or binary message to `on_message`, as Tornado's
        `_handle_message` does, with the coroutine run as a Task of its own
        and nothing around it: Tornado wraps it in one more Future and a
        callback, and finds how to wait for it through `singledispatch`
        (4 % of the hall's CPU per bid, eighth round)."""
        if opcode == 0x1:
            try:
                message: str | bytes = data.decode("utf-8")
            except UnicodeDecodeError:
                self._abort()
                return None
        else:
            message = data
        self._message_bytes_in += len(data)
        try:
            result = self.handler.on_message(message)
        except Exception:
            self.handler.log_exception(*sys.exc_info())
            self._abort()
            return None
        if result is None:
            return None
        if type(result) is CoroutineType:
            return self.stream.io_loop.asyncio_loop.create_task(result)
        return asyncio.ensure_future(result)

    def _handled(self, future: Any) -> None:
        stream = self.stream
        feed = stream._feed
        if feed is not None:
            feed.handling = None
        if future.cancelled() or future.exception() is not None:
            # As Tornado's `_run_callback`: logged, and the socket aborted.
            try:
                future.result()
            except (Exception, asyncio.CancelledError):
                self.handler.log_exception(*sys.exc_info())
            self._abort()
            return
        if feed is not None and not stream.closed():
            self._frames_in(feed)
            state = stream._state
            if feed.handling is None and state is not None and not state & IOLoop.READ:
                stream._add_io_state(IOLoop.READ)  # the pause let it go

    def _frames_in(self, feed: FrameFeed) -> None:  # noqa: C901 - RFC 6455 5.2, in Tornado's order
        stream = self.stream
        buf = stream._read_buffer
        while feed.handling is None and not self.client_terminated:
            size = stream._read_buffer_size
            if size < 2:
                break
            header, second = buf[0], buf[1]
            length = second & 0x7F
            opcode = header & self.OPCODE_MASK
            if header & self.RSV_MASK or (opcode & 0x8 and length >= 126):
                self._abort()  # an extension never agreed, or a long control frame
                break
            start = 2
            if length == 126:
                if size < 4:
                    break
                length = int.from_bytes(buf[2:4], "big")
                start = 4
            elif length == 127:
                if size < 10:
                    break
                length = int.from_bytes(buf[2:10], "big")
                start = 10
            fragments = self._fragmented_message_buffer
            whole = length + (len(fragments) if fragments is not None else 0)
            if whole > self.params.max_message_size:
                self.close(1009, "message too big")
                self._abort()
                break
            masked = second & 0x80
            end = start + length + (4 if masked else 0)
            if size < end:
                break  # the rest of the frame is still on its way
            # One copy out of the buffer (usually all of it: a bid is one frame).
            frame = bytes(buf) if end == size else bytes(buf[:end])
            del buf[:end]
            if masked:
                data = _websocket_mask(frame[start:start + 4], frame[start + 4:])
            else:
                data = frame[start:]
            stream._read_buffer_size = size - end
            self._wire_bytes_in += end
            final = header & self.FIN
            if opcode & 0x8:
                if not final:
                    self._abort()  # control frames are never fragmented
                    break
            elif opcode == 0:  # a continuation
                if fragments is None:
                    self._abort()
                    break
                fragments.extend(data)
                if final:
                    opcode = self._fragmented_message_opcode
                    data = bytes(fragments)
                    self._fragmented_message_buffer = None
            elif fragments is not None:
                self._abort()  # a new message before the last one ended
                break
            elif not final:
                self._fragmented_message_opcode = opcode
                self._fragmented_message_buffer = bytearray(data)
            if final:
                if opcode == 0x1 or opcode == 0x2:
                    handled = self._deliver(opcode, data)
                else:
                    handled = self._handle_message(opcode, data)
                if handled is not None and not handled.done():
                    feed.handling = handled
                    handled.add_done_callback(self._handled)
        if self.client_terminated:
            self._end()


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
