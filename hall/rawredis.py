"""A connection redis-py opened, then read and written by a protocol of the hall's.

hall/subscription.py (pub/sub) and hall/bidline.py (bid batches) let redis-py's
pool make and open the connection (address or Sentinel lookup, AUTH, database,
TLS, keepalive), then make their own asyncio protocol the socket's. This is the
one place that touches redis-py's private parts for it: the connection's
`_writer` (for the transport) and its `_close`; `pyproject.toml` pins redis-py
to versions that have them, and the relay's and the bid line's tests fail first
if one goes.
"""
from __future__ import annotations

import asyncio
from typing import Any


def take_over(conn: Any, protocol: asyncio.Protocol) -> asyncio.Transport:
    """After `await conn.connect()`: the socket's transport, now `protocol`'s.
    redis-py has read every reply of its handshake and sent nothing else, so
    from here the socket's bytes are the protocol's."""
    transport = conn._writer.transport
    transport.set_protocol(protocol)
    return transport


def close_quietly(conn: Any, transport: asyncio.Transport | None) -> None:
    """redis-py's own silent close: it closes the transport and drops its
    streams, so the connection is not reported unclosed."""
    silent_close = getattr(conn, "_close", None)
    if silent_close is not None:
        silent_close()
    elif transport is not None:
        transport.close()
