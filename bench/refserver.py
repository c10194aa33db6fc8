"""Reference servers for the benchmarks: bare `websockets` (asyncio) servers.

  python bench/refserver.py --port P echo       every text message is sent back as is
  python bench/refserver.py --port P broadcast  a message {"op":"fire","seq":N} makes the
                                                server `websockets.broadcast` a ~150-byte
                                                event carrying seq to every connection

Prints "ready" once listening; stops on SIGINT/SIGTERM or after --max-s seconds.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import resource
import signal

import websockets
from websockets.asyncio.server import serve, broadcast

CONNS: set = set()


async def echo(ws) -> None:
    try:
        async for msg in ws:
            await ws.send(msg)
    except websockets.ConnectionClosed:
        pass


def event(seq: int) -> str:
    # Shaped like the hall's `bid` event (~150-200 bytes).
    return json.dumps({"type": "bid", "lot_id": 1, "seq": seq, "amount": 100000 + seq * 100,
                       "bidder": "b***1", "at_ms": 1763771000000, "deadline_ms": 1763790000000,
                       "next_min_bid": 100100 + seq * 100, "reserve_met": True,
                       "server_time_ms": 1763771000000}, separators=(",", ":"))


async def fan(ws) -> None:
    CONNS.add(ws)
    try:
        async for msg in ws:
            data = json.loads(msg)
            if data.get("op") == "fire":
                broadcast(CONNS, event(int(data["seq"])))
    except websockets.ConnectionClosed:
        pass
    finally:
        CONNS.discard(ws)


async def main(port: int, mode: str, max_s: float) -> None:
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    handler = echo if mode == "echo" else fan
    async with serve(handler, "127.0.0.1", port, compression=None, max_size=2**20,
                     ping_interval=None, backlog=4096):
        print("ready", flush=True)
        await asyncio.wait_for(stop, max_s) if max_s else await stop


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["echo", "broadcast"])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--max-s", type=float, default=3600)
    a = p.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else 65536, hard))
    try:
        asyncio.run(main(a.port, a.mode, a.max_s))
    except (asyncio.TimeoutError, KeyboardInterrupt):
        pass
