"""Idle connections: the hall process's memory per open WebSocket.

    python bench/idle.py [--conns 10000] [--procs 4] [--no-join] [--quick]

--conns anonymous WebSocket connections (websockets asyncio client, spread
over --procs client processes, each process on its own loopback source
address 127.0.0.{20+k} so ephemeral ports never run short) are opened to ONE
hall process and each joins the same live lot (--no-join: they only connect),
then sit idle. The hall's RSS (VmRSS from /proc/<pid>/status) is read before
the first connection (after a small warm-up: 20 connections opened, joined
and closed, so lazy imports and first-use caches are not counted) and once
all are open and idle (after --settle s) -> KB per connection.
Target (issue 7 target 2): <= 20 KB per connection.
Reference, same run, same clients: bench/refserver.py echo (a bare
`websockets` asyncio server, compression off) holding the same number of
idle connections; its RSS per connection, and the ratio hall / reference.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from websockets.asyncio.client import connect  # noqa: E402

from common import RefServer, emit_result  # noqa: E402
from stack import BenchStack, raise_nofile  # noqa: E402

TARGET_KB = 20.0


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def fds(pid: int) -> int:
    import os
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


async def _client_main(url: str, n: int, lot_id: int, src: str, ready_q, stop, out_q) -> None:
    socks = []
    retries = 0

    async def one() -> None:
        nonlocal retries
        ws = await connect(url, compression=None, ping_interval=None, max_size=2**20,
                           open_timeout=120, local_addr=(src, 0))
        if lot_id:
            for attempt in range(50):
                await ws.send(json.dumps({"op": "join", "lot_id": lot_id}))
                m = json.loads(await asyncio.wait_for(ws.recv(), 60))
                if m.get("type") == "snapshot":
                    break
                retries += 1
                await asyncio.sleep(0.05 * (attempt + 1))
            else:
                raise RuntimeError(f"join kept failing: {m}")
        socks.append(ws)

    for i in range(0, n, 100):
        await asyncio.gather(*(one() for _ in range(min(100, n - i))))
    ready_q.put(len(socks))
    while not stop.is_set():
        await asyncio.sleep(0.1)
    alive = sum(1 for ws in socks if ws.state.name == "OPEN")
    out_q.put({"alive": alive, "retries": retries})
    for ws in socks:
        ws.transport.abort()


def _client(*args) -> None:
    asyncio.run(_client_main(*args))


def hold(url: str, n: int, procs: int, lot_id: int, server_pid: int, settle: float) -> dict:
    """Open n idle connections, read the server's RSS before/after; close them."""
    ctx = mp.get_context("fork")
    ready_q, out_q = ctx.Queue(), ctx.Queue()
    stop = ctx.Event()
    before = rss_kb(server_pid)
    shares = [n // procs + (1 if i < n % procs else 0) for i in range(procs)]
    t0 = time.monotonic()
    ps = [ctx.Process(target=_client, args=(url, k, lot_id, f"127.0.0.{20 + i}", ready_q, stop, out_q),
                      daemon=True) for i, k in enumerate(shares) if k]
    for p in ps:
        p.start()
    opened = 0
    try:
        for _ in ps:
            opened += ready_q.get(timeout=600)
    except Exception:
        stop.set()
        raise
    t_open = time.monotonic() - t0
    time.sleep(settle)
    after = rss_kb(server_pid)
    nfd = fds(server_pid)
    stop.set()
    outs = [out_q.get(timeout=120) for _ in ps]
    for p in ps:
        p.join(30)
        if p.is_alive():
            p.kill()
    alive = sum(o["alive"] for o in outs)
    return {"conns": opened, "alive_at_end": alive, "rss_before_kb": before, "rss_after_kb": after,
            "kb_per_conn": (after - before) / max(1, opened), "open_s": t_open, "server_fds": nfd,
            "join_retries": sum(o["retries"] for o in outs)}


def warm(url: str, lot_id: int) -> None:
    async def go() -> None:
        socks = []
        for _ in range(20):
            ws = await connect(url, compression=None, ping_interval=None)
            if lot_id:
                await ws.send(json.dumps({"op": "join", "lot_id": lot_id}))
                await asyncio.wait_for(ws.recv(), 30)
            socks.append(ws)
        for ws in socks:
            await ws.close()
    asyncio.run(go())
    time.sleep(0.5)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--conns", type=int, default=10_000)
    ap.add_argument("--procs", type=int, default=4, help="client processes (one source address each)")
    ap.add_argument("--no-join", action="store_true", help="connect only, join no lot")
    ap.add_argument("--settle", type=float, default=3.0, help="seconds idle before reading RSS")
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args(argv)
    if a.quick:
        a.conns, a.procs, a.settle = 200, 2, 0.5
    limit = raise_nofile(65536)
    if limit < a.conns + 200:
        raise SystemExit(f"RLIMIT_NOFILE is {limit}: too low for {a.conns} connections")
    t0 = time.time()

    with RefServer("echo") as ref:
        warm(ref.url, 0)
        refres = hold(ref.url, a.conns, a.procs, 0, ref.proc.pid, a.settle)

    with BenchStack() as st:
        lot_id = 0
        if not a.no_join:
            _sid, (lot_id,) = st.live_lots(1, [])
        warm(st.ws_url, lot_id)
        hallres = hold(st.ws_url, a.conns, a.procs, lot_id, st.hall.proc.pid, a.settle)

    ratio = hallres["kb_per_conn"] / refres["kb_per_conn"] if refres["kb_per_conn"] > 0 else float("inf")
    print(f"idle: {a.conns} idle WebSocket connections from {a.procs} client processes, "
          f"{'each joined to one lot' if lot_id else 'no lot joined'}; RSS = VmRSS of the server process")
    print(f"  {'':28} {'RSS before':>11} {'RSS after':>11} {'KB/conn':>8} {'open s':>7} {'fds':>6}")
    for name, r in (("hall (one process)", hallres), ("websockets server (ref)", refres)):
        print(f"  {name:28} {r['rss_before_kb'] / 1024:9.1f}MB {r['rss_after_kb'] / 1024:9.1f}MB "
              f"{r['kb_per_conn']:8.1f} {r['open_s']:7.1f} {r['server_fds']:6d}")
    if hallres["join_retries"]:
        print(f"  hall: {hallres['join_retries']} joins answered `unavailable` and were retried")
    print(f"  still open at the end: hall {hallres['alive_at_end']}/{hallres['conns']}, "
          f"reference {refres['alive_at_end']}/{refres['conns']}")
    print(f"  hall/ref KB per connection: {ratio:.2f}x; hall {hallres['kb_per_conn']:.1f} KB vs target "
          f"{TARGET_KB:g} KB: ratio {hallres['kb_per_conn'] / TARGET_KB:.2f} "
          f"({'MET' if hallres['kb_per_conn'] <= TARGET_KB else 'MISSED'})")
    print(f"  wall time {time.time() - t0:.1f}s")
    out = {"conns": a.conns, "joined": bool(lot_id), "hall": hallres, "ref": refres, "ratio": ratio,
           "target_kb": TARGET_KB}
    emit_result("idle", out)
    return out


if __name__ == "__main__":
    main()
