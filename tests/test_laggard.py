"""A client that stops reading never stalls its room: the hall drops it."""
from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct

from conftest import Socket


def masked_text_frame(payload: bytes) -> bytes:
    """Client->server frames must be masked (RFC 6455 5.3)."""
    mask = os.urandom(4)
    n = len(payload)
    head = bytes((0x81,)) + (bytes((0x80 | n,)) if n < 126 else struct.pack("!BH", 0x80 | 126, n))
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def open_non_reading_socket(port: int) -> socket.socket:
    """A WebSocket whose receive buffer is tiny and which never reads after the handshake."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    reply = b""
    while b"\r\n\r\n" not in reply:
        reply += s.recv(1)
    assert reply.startswith(b"HTTP/1.1 101")
    return s


async def _metric(hall, name: str) -> int:
    code, text = await hall.anon.call("GET", "/metrics")
    assert code == 200
    for line in text.splitlines():
        if line.startswith(name + " "):
            return int(float(line.split()[1]))
    raise AssertionError(f"{name} not in /metrics")


async def test_a_client_that_stops_reading_is_dropped_and_the_room_goes_on(stack, hall):
    bidder, _ = await hall.bidder()
    rival, _ = await hall.bidder()
    # A long description makes each snapshot ~20 KB, so a few hundred joins
    # that the laggard never reads fill every buffer between it and the hall.
    _s, (lot,) = await hall.live_lots(1, ends_in_s=600, extend_window_s=0,
                                      description="拍" * 7000)
    lot_id = lot["id"]
    bsock = await Socket.connect(stack.ws_url, bidder.token)
    assert (await hall.pay_deposit(bidder, bsock, lot_id))["state"] == "SUCCESS"
    rsock = await Socket.connect(stack.ws_url, rival.token)
    assert (await hall.pay_deposit(rival, rsock, lot_id))["state"] == "SUCCESS"
    viewer = await Socket.connect(stack.ws_url)
    await viewer.join(lot_id)
    dropped_before = await _metric(hall, "hall_laggards_closed_total")

    laggard = open_non_reading_socket(stack.port)
    laggard.setblocking(False)
    join = masked_text_frame(json.dumps({"op": "join", "lot_id": lot_id}).encode())
    loop = asyncio.get_running_loop()
    closed_by_hall = False
    for _ in range(2000):
        try:
            await asyncio.wait_for(loop.sock_sendall(laggard, join), 5)
        except (ConnectionError, OSError, asyncio.TimeoutError):
            closed_by_hall = True  # the hall closed it (or stopped reading it)
            break
        if await _metric(hall, "hall_laggards_closed_total") > dropped_before:
            closed_by_hall = True
            break
    assert closed_by_hall
    assert await _metric(hall, "hall_laggards_closed_total") == dropped_before + 1

    # The room goes on for everyone else, promptly and in order.
    for sock, amount in ((bsock, 1000), (rsock, 1100)):
        answer = await sock.bid(lot_id, amount)
        assert answer["type"] == "accepted", answer
    await viewer.wait_for(lambda m: m.get("type") == "bid" and m["amount"] == 1100)
    assert [m["seq"] for m in viewer.of_type("bid", lot_id)] == [1, 2]
    laggard.close()
    await viewer.close()
    await bsock.close()
    await rsock.close()
