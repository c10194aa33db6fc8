"""Logged-in sockets do not pin database connections.

The hall's async database binds one of its pooled connections (10) to the
asyncio task that queries, until that task ends; a WebSocket's handshake task
lasts as long as the socket. Each handshake reads the account (the role comes
from the database), so more open sockets than pooled connections must still
leave the database to the rest of the hall, and every socket must know who
it belongs to.
"""
from __future__ import annotations

import asyncio

from conftest import Socket

POOL = 10


async def test_more_logged_in_sockets_than_pooled_connections(stack, hall):
    _, (lot,) = await hall.live_lots(1, ends_in_s=3600)
    people = [await hall.bidder() for _ in range(POOL + 5)]
    socks = [await Socket.connect(stack.ws_url, api.token) for api, _ in people]
    try:
        # Every socket is its user's: a bid without a deposit is `no_deposit`,
        # not `unauthorized` (an identity that could not be read).
        answers = await asyncio.gather(*(s.bid(lot["id"], 1000) for s in socks))
        assert [a.get("code") for a in answers] == ["no_deposit"] * len(socks)
        # And the database still serves HTTP while all of them stay open.
        for api, user in people:
            assert (await api.get("/api/me"))["id"] == user["id"]
    finally:
        for s in socks:
            await s.close()
