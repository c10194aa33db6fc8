"""The room socket's frames on the wire, sent byte by byte as a client may.

The hall parses a room socket's frames where they land (`hall/frames.py`
`SteadyFrames`), not with Tornado's reader: these tests speak RFC 6455 over a
raw TCP connection to the real hall, to show what a client sees when frames
come together in one packet, split over many, fragmented, with control frames
between fragments, at the size limit, or broken.
"""
from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct

import pytest

pytestmark = pytest.mark.asyncio

TEXT, CONT, CLOSE, PING, PONG = 0x1, 0x0, 0x8, 0x9, 0xA


def frame(payload: bytes, opcode: int = TEXT, fin: bool = True, rsv: int = 0) -> bytes:
    """A client frame: masked, as RFC 6455 5.3 requires of clients."""
    head = bytes(((0x80 if fin else 0) | rsv | opcode,))
    n = len(payload)
    if n < 126:
        head += bytes((0x80 | n,))
    elif n < 65536:
        head += struct.pack("!BH", 0x80 | 126, n)
    else:
        head += struct.pack("!BQ", 0x80 | 127, n)
    mask = os.urandom(4)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def op(**fields: object) -> bytes:
    return frame(json.dumps(fields).encode())


class RawSocket:
    """A room socket over a bare TCP connection: frames in, frames out."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int, path: str = "/ws") -> "RawSocket":
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                      f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                      "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def next_frame(self) -> tuple[int, bytes]:
        """The server's next frame (servers never mask): (opcode, payload)."""
        b0, b1 = await self.reader.readexactly(2)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", await self.reader.readexactly(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", await self.reader.readexactly(8))[0]
        return b0 & 0x0F, await self.reader.readexactly(n)

    async def next_message(self) -> dict:
        opcode, payload = await self.next_frame()
        assert opcode == TEXT, (opcode, payload)
        return json.loads(payload)

    async def closed(self) -> bool:
        """True once the hall has closed the connection (frames before it skipped)."""
        while True:
            try:
                await self.next_frame()
            except asyncio.IncompleteReadError:
                return True

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


@pytest.fixture
async def raw(stack):
    sock = await RawSocket.open(stack.port)
    yield sock
    await sock.close()


async def test_frames_in_one_packet_are_answered_in_the_order_sent(stack, hall, raw):
    # The join waits on Redis and the database, the pings do not: answers in
    # this order show the second ping waited for the join.
    await raw.send(op(op="ping") + op(op="join", lot_id=987654321) + op(op="ping"))
    answers = [await raw.next_message() for _ in range(3)]
    assert [a["type"] for a in answers] == ["pong", "error", "pong"], answers
    assert answers[1]["code"] == "not_found"


async def test_a_frame_sent_one_byte_at_a_time_is_read_whole(stack, hall, raw):
    # 200 bytes of payload: the 16-bit length form of the header.
    data = op(op="ping", pad="x" * 180) + op(op="ping")
    assert data[1] & 0x7F == 126
    for i in range(len(data)):
        await raw.send(data[i:i + 1])
    assert (await raw.next_message())["type"] == "pong"
    assert (await raw.next_message())["type"] == "pong"


async def test_a_fragmented_message_with_a_ping_between_its_fragments(stack, hall, raw):
    body = json.dumps({"op": "ping"}).encode()
    await raw.send(frame(body[:4], fin=False))
    await raw.send(frame(b"are you there", opcode=PING))
    assert await raw.next_frame() == (PONG, b"are you there")  # control frames do not wait
    await raw.send(frame(body[4:8], opcode=CONT, fin=False) + frame(body[8:], opcode=CONT))
    assert (await raw.next_message())["type"] == "pong"


async def test_a_message_at_the_size_limit_is_read_and_answered(stack, hall, raw):
    # 64 KiB, the socket's largest message, is more than a room socket reads
    # ahead while a message is being handled, and more than one read takes:
    # it must still be read whole, alone or behind a message being handled.
    await raw.send(frame(b" " * (64 * 1024)) + op(op="ping"))
    err = await raw.next_message()
    assert err["type"] == "error" and err["code"] == "invalid" and "limited" in err["message"]
    assert (await raw.next_message())["type"] == "pong"
    await raw.send(op(op="ping") + frame(b" " * (64 * 1024)) + op(op="ping"))
    assert (await raw.next_message())["type"] == "pong"
    err = await raw.next_message()
    assert err["type"] == "error" and err["code"] == "invalid" and "limited" in err["message"]
    assert (await raw.next_message())["type"] == "pong"


async def test_a_message_over_the_limit_is_refused_before_it_is_sent_whole(stack, hall, raw):
    # Only the header: the hall answers from the announced length.
    await raw.send(frame(b" " * (64 * 1024 + 1))[:10])
    opcode, payload = await raw.next_frame()
    assert opcode == CLOSE and struct.unpack("!H", payload[:2])[0] == 1009
    assert await raw.closed()


@pytest.mark.parametrize("bad", [
    frame(b'{"op":"ping"}', rsv=0x40),                 # a compression bit nobody agreed on
    frame(b'{"op":"ping"}', opcode=CONT),              # a continuation of nothing
    frame(b"x", opcode=PING, fin=False),               # a fragmented control frame
    frame(b'{"op":"ping"}', fin=False) + op(op="ping"),  # a new message inside a fragmented one
    frame(b'{"op": "\xff"}'),                          # a text frame that is not UTF-8
    frame(b"", opcode=0x3),                            # an opcode RFC 6455 reserves
], ids=["rsv1", "lone-continuation", "fragmented-ping", "interleaved", "not-utf8", "opcode-3"])
async def test_a_frame_that_breaks_the_protocol_closes_that_socket_only(stack, hall, raw, bad):
    other = await RawSocket.open(stack.port)
    await raw.send(bad)
    assert await raw.closed()
    await other.send(op(op="ping"))
    assert (await other.next_message())["type"] == "pong"
    await other.close()


async def test_a_close_frame_is_answered_with_the_same_code_and_the_connection_ends(stack, hall,
                                                                                    raw):
    await raw.send(op(op="ping"))
    assert (await raw.next_message())["type"] == "pong"
    await raw.send(frame(struct.pack("!H", 1000) + b"bye", opcode=CLOSE))
    opcode, payload = await raw.next_frame()
    assert opcode == CLOSE and struct.unpack("!H", payload[:2])[0] == 1000
    assert await raw.closed()


async def test_frames_cut_anywhere_on_the_wire_are_all_answered(stack, hall, raw):
    """Frames of every header size, cut into pieces at random places (a slow or
    busy network): each is answered once, in order."""
    from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

    cases = []

    @hsettings(max_examples=40, deadline=None, database=None,
               suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(pads=st.lists(st.sampled_from([0, 90, 110, 125, 126, 300, 3000]), min_size=1,
                         max_size=5),
           cuts=st.lists(st.integers(1, 400), min_size=1, max_size=40))
    def collect(pads, cuts):
        cases.append((pads, cuts))

    collect()
    for pads, cuts in cases:
        wire = b"".join(op(op="ping", pad="p" * pad) if i % 2 == 0
                        else op(op="join", lot_id=987654321, pad="j" * pad)
                        for i, pad in enumerate(pads))
        at = 0
        for cut in cuts:
            if at >= len(wire):
                break
            await raw.send(wire[at:at + cut])
            at += cut
        await raw.send(wire[at:])
        answers = [(await raw.next_message())["type"] for _ in pads]
        assert answers == ["pong" if i % 2 == 0 else "error" for i in range(len(pads))], (pads, cuts)


@pytest.fixture
async def frames_server():
    """A bare Tornado server whose sockets read frames as room sockets do,
    with a handler that fails on demand (the hall's own never lets an
    exception out of `on_message`)."""
    import tornado.httpserver
    import tornado.netutil
    import tornado.web
    import tornado.websocket

    from hall.frames import FrameWriter

    gate = asyncio.Event()  # the test lets "raise later" go on

    class Failing(FrameWriter, tornado.websocket.WebSocketHandler):
        def open(self) -> None:
            self.attach_stream(self.ws_connection.stream, 1 << 20)

        async def on_message(self, message: str | bytes) -> None:
            if message == "raise later":
                await gate.wait()
                raise RuntimeError("a handler that failed after its first await")
            self.write_message(f"echo {message}")

        def on_close(self) -> None:
            self.release_stream()

    class FailingAtOnce(Failing):
        def on_message(self, message: str | bytes) -> None:  # type: ignore[override]
            if message == "raise now":
                raise RuntimeError("a handler that failed at once")
            self.write_message(f"echo {message}")

    app = tornado.web.Application([(r"/ws", Failing), (r"/now", FailingAtOnce)])
    sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
    server = tornado.httpserver.HTTPServer(app)
    server.add_sockets(sockets)
    yield sockets[0].getsockname()[1], gate
    server.stop()


async def test_a_handler_that_fails_closes_its_socket_and_is_logged(frames_server, caplog):
    port, gate = frames_server
    raw = await RawSocket.open(port)
    await raw.send(frame(b"one") + frame(b"raise later") + frame(b"never read"))
    assert await raw.next_frame() == (TEXT, b"echo one")
    gate.set()  # the handler of "raise later" was waiting: it fails now
    assert await raw.closed()
    assert "a handler that failed after its first await" in caplog.text
    await raw.close()


async def test_a_plain_handler_that_fails_closes_its_socket_and_is_logged(frames_server, caplog):
    port, _gate = frames_server
    raw = await RawSocket.open(port, "/now")
    await raw.send(frame(b"one") + frame(b"raise now") + frame(b"never read"))
    assert await raw.next_frame() == (TEXT, b"echo one")
    assert await raw.closed()
    assert "a handler that failed at once" in caplog.text
    await raw.close()
