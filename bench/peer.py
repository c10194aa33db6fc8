"""A peer reference: the room protocol as a competent engineer would write it in a day.

    python bench/peer.py --port P --redis-port R [--loop uvloop|asyncio]

The same WebSocket ops and messages the hall speaks where bench/load.py and
bench/fanout.py look (`join` -> `snapshot`, `bid` -> `accepted`/`rejected`,
`bid` events with "mine": true on the bidder's own sockets, `outbid`), built
from stock parts: the `websockets` asyncio server, `redis.asyncio` (hiredis
parser when installed), ONE Lua call per bid (ref idempotency, minimum check,
XADD of the event to the lot's stream, PUBLISH), one pattern subscription that
fans each event out to the room with `websockets.broadcast`.
Left out on purpose: a database, token checks (the token is taken as the
user's name), deposits, rate limits, deadlines, persistence. So it does less
than the hall per bid; that is the point of the comparison (issue 17: the hall
should still answer twice as many bids per second).
Lots exist from their first join: start price 1000, increment 100 (as bench/stack.py).
Prints "ready" once listening.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import resource
import signal
from urllib.parse import parse_qs, urlsplit

import redis.asyncio as aioredis
import websockets
from websockets.asyncio.server import ServerConnection, broadcast, serve

START_PRICE = 1000
INCREMENT = 100

# KEYS: lot hash, ref key, lot stream, lot channel
# ARGV: lot id, user, amount, ref, masked name
BID_LUA = """
local done = redis.call('GET', KEYS[2])
if done then return done end
local lot, inc = KEYS[1], tonumber(redis.call('HGET', KEYS[1], 'inc') or '100')
local price = tonumber(redis.call('HGET', lot, 'price') or '0')
local nxt = price > 0 and price + inc or tonumber(redis.call('HGET', lot, 'start') or '1000')
local amount = tonumber(ARGV[3])
local leader = redis.call('HGET', lot, 'leader') or ''
local answer
if leader == ARGV[2] then
  answer = cjson.encode({type='rejected', ref=ARGV[4], code='already_leading',
                         message='you are already leading'})
elseif not amount or amount < nxt then
  answer = cjson.encode({type='rejected', ref=ARGV[4], code='too_low',
                         message='the minimum bid is ' .. nxt})
else
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local seq = redis.call('HINCRBY', lot, 'seq', 1)
  redis.call('HSET', lot, 'price', amount, 'leader', ARGV[2])
  local deadline = tonumber(redis.call('HGET', lot, 'deadline') or '0')
  local event = cjson.encode({type='bid', lot_id=tonumber(ARGV[1]), seq=seq, amount=amount,
                              bidder=ARGV[5], at_ms=now, deadline_ms=deadline,
                              next_min_bid=amount + inc, server_time_ms=now})
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', 10000, '*', 'e', event)
  -- header "<bidder>|<previous leader>|": the hall-side needs both to mark
  -- the bidder's own sockets and tell the outbid one, without decoding JSON.
  redis.call('PUBLISH', KEYS[4], ARGV[2] .. '|' .. leader .. '|' .. event)
  answer = cjson.encode({type='accepted', ref=ARGV[4], seq=seq, amount=amount, price=amount,
                         leading=true, deadline_ms=deadline, at_ms=now})
end
redis.call('SET', KEYS[2], answer, 'EX', 86400)
return answer
"""


class Rooms:
    """lot id -> its sockets, and per lot user -> that user's sockets there."""

    def __init__(self) -> None:
        self.sockets: dict[int, set[ServerConnection]] = {}
        self.users: dict[int, dict[str, set[ServerConnection]]] = {}

    def join(self, lot_id: int, ws: ServerConnection, user: str) -> None:
        self.sockets.setdefault(lot_id, set()).add(ws)
        if user:
            self.users.setdefault(lot_id, {}).setdefault(user, set()).add(ws)

    def leave(self, lot_id: int, ws: ServerConnection, user: str) -> None:
        self.sockets.get(lot_id, set()).discard(ws)
        self.users.get(lot_id, {}).get(user, set()).discard(ws)

    def deliver(self, lot_id: int, bidder: str, previous: str, event: str) -> None:
        room = self.sockets.get(lot_id)
        if not room:
            return
        users = self.users.get(lot_id, {})
        own = users.get(bidder)
        broadcast(room - own if own else room, event)
        if own:
            broadcast(own, event[:-1] + ',"mine":true}')
        if previous and previous != bidder and users.get(previous):
            broadcast(users[previous], json.dumps({"type": "outbid", "lot_id": lot_id,
                                                   "price": json.loads(event)["amount"]}))


class Peer:
    def __init__(self, r: aioredis.Redis) -> None:
        self.r = r
        self.bid = r.register_script(BID_LUA)
        self.rooms = Rooms()

    async def handler(self, ws: ServerConnection) -> None:
        query = parse_qs(urlsplit(ws.request.path).query)
        user = query.get("token", [""])[0]  # no token check: the token is the name
        joined: set[int] = set()
        try:
            async for raw in ws:
                try:
                    m = json.loads(raw)
                    op = m.get("op")
                except (ValueError, AttributeError):
                    await ws.send('{"type":"error","code":"invalid","message":"bad JSON"}')
                    continue
                if op == "bid":
                    await ws.send(await self.place(user, m))
                elif op == "join":
                    lot_id = int(m["lot_id"])
                    self.rooms.join(lot_id, ws, user)
                    joined.add(lot_id)
                    await ws.send(json.dumps(await self.snapshot(lot_id)))
                elif op == "leave":
                    self.rooms.leave(int(m["lot_id"]), ws, user)
                elif op == "ping":
                    await ws.send('{"type":"pong"}')
                else:
                    await ws.send('{"type":"error","code":"invalid","message":"unknown op"}')
        except websockets.ConnectionClosed:
            pass
        finally:
            for lot_id in joined:
                self.rooms.leave(lot_id, ws, user)

    async def place(self, user: str, m: dict) -> str:
        ref, amount, lot_id = m.get("ref"), m.get("amount"), m.get("lot_id")
        if not user:
            return json.dumps({"type": "rejected", "ref": ref, "code": "unauthorized",
                               "message": "log in to bid"})
        if not (isinstance(ref, str) and isinstance(amount, int) and isinstance(lot_id, int)):
            return json.dumps({"type": "rejected", "ref": ref, "code": "invalid",
                               "message": "lot_id, amount and ref are required"})
        name = f"{user[0]}***{user[-1]}" if len(user) >= 4 else "***"
        answer = await self.bid(keys=[f"peer:lot:{lot_id}", f"peer:ref:{lot_id}:{user}:{ref}",
                                      f"peer:lot:{lot_id}:events", f"peer:chan:{lot_id}"],
                                args=[lot_id, user, amount, ref, name])
        return answer.decode()

    async def snapshot(self, lot_id: int) -> dict:
        key = f"peer:lot:{lot_id}"
        pipe = self.r.pipeline(transaction=False)
        # A lot comes into being at its first join, live for six hours.
        pipe.time()
        pipe.hsetnx(key, "start", START_PRICE)
        pipe.hsetnx(key, "inc", INCREMENT)
        pipe.hgetall(key)
        (sec, usec), _, _, h = await pipe.execute()
        now = sec * 1000 + usec // 1000
        if b"deadline" not in h:
            await self.r.hsetnx(key, "deadline", now + 6 * 3600 * 1000)
            h = await self.r.hgetall(key)
        price = int(h.get(b"price", 0))
        inc = int(h[b"inc"])
        return {"type": "snapshot", "id": lot_id, "status": "live", "start_price": int(h[b"start"]),
                "increment": inc, "price": price or None,
                "next_min_bid": price + inc if price else int(h[b"start"]),
                "seq": int(h.get(b"seq", 0)), "bid_count": int(h.get(b"seq", 0)),
                "deadline_ms": int(h[b"deadline"]), "server_time_ms": now}

    async def relay(self) -> None:
        """One pattern subscription for every lot; each event to its room."""
        pubsub = self.r.pubsub()
        await pubsub.psubscribe("peer:chan:*")
        async for msg in pubsub.listen():
            if msg["type"] != "pmessage":
                continue
            lot_id = int(msg["channel"].rsplit(b":", 1)[1])
            bidder, previous, event = msg["data"].split(b"|", 2)
            self.rooms.deliver(lot_id, bidder.decode(), previous.decode(), event.decode())


async def main(port: int, redis_port: int) -> None:
    r = aioredis.Redis(host="127.0.0.1", port=redis_port, max_connections=512)
    peer = Peer(r)
    relay = asyncio.ensure_future(peer.relay())
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    async with serve(peer.handler, "127.0.0.1", port, compression=None, max_size=2**16,
                     ping_interval=None, backlog=4096):
        print("ready", flush=True)
        await stop
    relay.cancel()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--redis-port", type=int, required=True)
    p.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop",
                   help="uvloop by default: the hall runs on it too")
    a = p.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else 65536, hard))
    if a.loop == "uvloop":
        import uvloop
        uvloop.install()
    asyncio.run(main(a.port, a.redis_port))
