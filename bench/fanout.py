"""Fan-out latency: one bid -> its `bid` event on every socket of a big room.

    python bench/fanout.py [--clients 1000] [--bids 50] [--gap 0.2] [--procs 2] [--quick]

--clients anonymous viewers (spread over --procs receiver processes, websockets
asyncio client) join one live lot. A bidder (two bidder accounts alternating,
so neither is ever `already_leading`) places --bids bids, one every --gap
seconds; each receiver stamps the arrival of every `bid` event with
time.monotonic() (CLOCK_MONOTONIC is system-wide on Linux, so stamps from
different processes compare with the bidder's send stamp).
Per bid: last-receiver latency = last arrival - send; per client: arrival - send.
Reference: bench/refserver.py broadcast (`websockets.broadcast` of a ~190-byte
event to every connection when one control client sends {"op":"fire"}), the
same receivers, the same numbers. Target (issue): hall / reference <= 1.0.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import sys
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import websockets  # noqa: E402
from websockets.asyncio.client import connect  # noqa: E402

from common import RefServer, cpu_split, emit_result, metrics_text, pct  # noqa: E402
from stack import INCREMENT, START_PRICE, BenchStack, raise_nofile  # noqa: E402

now = time.monotonic
WARMUP_BIDS = 3


# -- receivers (child processes) -----------------------------------------------
async def _recv_main(url, lot_id, n, mode, ready_q, stop, out_q, src=None) -> None:
    arrivals: dict[int, list[float]] = {}
    joined = 0
    errors: list = []
    done_join = asyncio.Event()

    async def one() -> object:
        nonlocal joined
        ws = await connect(url, compression=None, max_size=2**22, ping_interval=None, open_timeout=120,
                           local_addr=(src, 0) if src else None)
        if mode == "hall":
            # Join and wait for the snapshot before the next join of this chunk;
            # retry on `unavailable` (the hall's Redis pool refuses bursts > 256).
            for attempt in range(50):
                await ws.send(json.dumps({"op": "join", "lot_id": lot_id}))
                m = json.loads(await asyncio.wait_for(ws.recv(), 60))
                if m.get("type") == "snapshot":
                    break
                errors.append(m)
                await asyncio.sleep(0.05 * (attempt + 1))
        joined += 1
        if joined == n:
            done_join.set()

        async def reader() -> None:
            nonlocal joined
            try:
                async for raw in ws:
                    t = now()
                    m = json.loads(raw)
                    kind = m.get("type")
                    if kind == "bid":
                        arrivals.setdefault(m["seq"], []).append(t)
            except websockets.ConnectionClosed:
                pass
        asyncio.ensure_future(reader())
        return ws

    socks = []
    for i in range(0, n, 100):
        socks += await asyncio.gather(*(one() for _ in range(min(100, n - i))))
    try:
        await asyncio.wait_for(done_join.wait(), 120)
    except asyncio.TimeoutError:
        raise RuntimeError(f"only {joined} of {n} receivers joined (errors: {errors[:3]})")
    ready_q.put(n)
    while not stop.is_set():
        await asyncio.sleep(0.1)
    out_q.put((arrivals, len(errors)))
    for ws in socks:
        ws.transport.abort()


def _recv(*args) -> None:
    asyncio.run(_recv_main(*args))


# -- the bidder / trigger (this process) -------------------------------------------
async def _drain(ws) -> None:
    try:
        async for _ in ws:
            pass
    except websockets.ConnectionClosed:
        pass


async def trigger_hall(url: str, tokens: list[str], lot_id: int, bids: int, gap: float,
                       k0: int = 0) -> dict[int, float]:
    """`bids` bids on the lot, one every `gap` s; k0 = bids this lot already had
    from this trigger (bench/curve.py calls it once per size)."""
    socks = []
    for tok in tokens:
        ws = await connect(f"{url}?token={tok}", compression=None, ping_interval=None)
        socks.append(ws)
    sent: dict[int, float] = {}
    amount = START_PRICE + k0 * INCREMENT
    queues = []
    for ws in socks:
        q: asyncio.Queue = asyncio.Queue()
        queues.append(q)

        async def reader(ws=ws, q=q) -> None:
            try:
                async for raw in ws:
                    m = json.loads(raw)
                    if m.get("type") in ("accepted", "rejected"):
                        q.put_nowait(m)
            except websockets.ConnectionClosed:
                pass
        asyncio.ensure_future(reader())
    for k in range(k0, k0 + bids):
        i = k % len(socks)
        ref = f"fan-{k}-{time.time_ns()}"
        t0 = now()
        await socks[i].send(json.dumps({"op": "bid", "lot_id": lot_id, "amount": amount, "ref": ref}))
        m = await asyncio.wait_for(queues[i].get(), 30)
        if m["type"] != "accepted":
            raise RuntimeError(f"bid rejected: {m}")
        sent[m["seq"]] = t0
        amount += INCREMENT
        await asyncio.sleep(gap)
    for ws in socks:
        await ws.close()
    return sent


async def trigger_ref(url: str, bids: int, gap: float, k0: int = 0) -> dict[int, float]:
    ws = await connect(url, compression=None, ping_interval=None)
    asyncio.ensure_future(_drain(ws))
    sent = {}
    for k in range(k0 + 1, k0 + bids + 1):
        t0 = now()
        await ws.send(json.dumps({"op": "fire", "seq": k}))
        sent[k] = t0
        await asyncio.sleep(gap)
    await ws.close()
    return sent


class Receivers:
    """Receiver processes on one lot (or the reference's one room), each stamping
    every `bid` event it gets. `add()` opens more while the earlier ones stay
    connected (bench/curve.py grows one room step by step); `collect()` stops
    them all and merges their arrivals by seq."""

    def __init__(self, urls: list[str], lot_id: int, mode: str) -> None:
        self.urls, self.lot_id, self.mode = urls, lot_id, mode
        self.ctx = mp.get_context("fork")
        self.ready_q, self.out_q = self.ctx.Queue(), self.ctx.Queue()
        self.stop = self.ctx.Event()
        self.procs: list = []
        self.count = 0

    def add(self, clients: int, procs: int, sources: Sequence[str] = ()) -> None:
        """`clients` more receivers in `procs` new processes; process i binds its
        sockets to sources[i % len] when given (ephemeral ports per address)."""
        shares = [clients // procs + (1 if i < clients % procs else 0) for i in range(procs)]
        new = [self.ctx.Process(target=_recv, daemon=True,
                                args=(self.urls[i % len(self.urls)], self.lot_id, n, self.mode,
                                      self.ready_q, self.stop, self.out_q,
                                      sources[(len(self.procs) + i) % len(sources)] if sources else None))
               for i, n in enumerate(shares) if n]
        for p in new:
            p.start()
        self.procs += new
        for _ in new:
            self.ready_q.get(timeout=600)
        self.count += clients

    def collect(self) -> tuple[dict[int, list[float]], int]:
        self.stop.set()
        merged: dict[int, list[float]] = {}
        join_errors = 0
        for _ in self.procs:
            arrivals, errs = self.out_q.get(timeout=300)
            join_errors += errs
            for seq, ts in arrivals.items():
                merged.setdefault(seq, []).extend(ts)
        for p in self.procs:
            p.join(30)
            if p.is_alive():
                p.kill()
        return merged, join_errors


def summarize(sent: dict[int, float], merged: dict[int, list[float]], clients: int,
              warmup: int = WARMUP_BIDS) -> dict:
    """Last-receiver and per-client latency of the bids in `sent` (seq -> send
    time), leaving out the first `warmup`; `clients` receivers were expected."""
    last, per_client, missing = [], [], 0
    for seq, t0 in sorted(sent.items())[warmup:]:
        ts = merged.get(seq, [])
        missing += clients - len(ts)
        if ts:
            last.append(max(ts) - t0)
            per_client.extend(t - t0 for t in ts)
    return {"bids": len(last), "last_p50_ms": pct(last, 50) * 1000, "last_p99_ms": pct(last, 99) * 1000,
            "client_p50_ms": pct(per_client, 50) * 1000, "client_p99_ms": pct(per_client, 99) * 1000,
            "missing": missing, "last_ms": [x * 1000 for x in last]}


def measure(url: str | list[str], lot_id: int, clients: int, procs: int, trigger,
            server_pids: Sequence[int] = ()) -> dict:
    """`clients` receivers in `procs` processes; with a list of URLs, process i
    uses url[i % len] (bench/scaling.py: one hall each). CPU per delivery is
    summed over `server_pids`."""
    urls = [url] if isinstance(url, str) else url
    recv = Receivers(urls, lot_id, "ref" if trigger.__name__ == "ref" else "hall")
    recv.add(clients, procs)
    receiver_pids = [p.pid for p in recv.procs]
    split0 = [cpu_split(pid) for pid in server_pids]
    recv0 = [cpu_split(pid) for pid in receiver_pids]
    sent = asyncio.run(trigger())
    split1 = [cpu_split(pid) for pid in server_pids]
    recv1 = [cpu_split(pid) for pid in receiver_pids]
    sys_s = sum(b[1] - a[1] for a, b in zip(split0, split1))
    cpu0, cpu1 = sum(map(sum, split0)), sum(map(sum, split1))
    # On loopback a send runs much of the receiver's TCP path, and its wake-up,
    # in the sender's kernel time when the receiver is not at work on that
    # socket; the receivers' own CPU shows where the rest went.
    recv_sys_s = sum(b[1] - a[1] for a, b in zip(recv0, recv1))
    recv_s = sum(map(sum, recv1)) - sum(map(sum, recv0))
    time.sleep(1.0)
    merged, join_errors = recv.collect()
    out = summarize(sent, merged, clients)
    del out["last_ms"]
    # server CPU per event delivered to one socket (all bids incl. warm-up)
    out.update(join_retries=join_errors,
               cpu_us_per_delivery=(cpu1 - cpu0) / max(1, len(sent) * clients) * 1e6,
               sys_us_per_delivery=sys_s / max(1, len(sent) * clients) * 1e6,
               receiver_cpu_us_per_delivery=recv_s / max(1, len(sent) * clients) * 1e6,
               receiver_sys_us_per_delivery=recv_sys_s / max(1, len(sent) * clients) * 1e6)
    return out


def gc_figures(base: str) -> dict:
    """The hall's garbage collections so far, from its /metrics (hall/gcpause.py):
    full ones and the longest, the time in all of them, the frozen objects."""
    import re
    text = metrics_text(base)
    if not text:
        return {}

    def value(pattern: str) -> float:
        m = re.search(pattern, text, re.M)
        return float(m.group(1)) if m else 0.0
    total = sum(value(rf'^hall_gc_pause_seconds_total\{{generation="{g}"\}} (\S+)$') for g in range(3))
    return {"gen2": int(value(r'^hall_gc_collections_total\{generation="2"\} (\S+)$')),
            "gen2_max_ms": value(r'^hall_gc_pause_seconds_max\{generation="2"\} (\S+)$') * 1000,
            "total_ms": total * 1000, "frozen": int(value(r"^hall_gc_frozen_objects (\S+)$"))}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=1000)
    ap.add_argument("--bids", type=int, default=50)
    ap.add_argument("--gap", type=float, default=0.0, help="seconds between bids (default scales with clients)")
    ap.add_argument("--procs", type=int, default=2, help="receiver processes")
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args(argv)
    if a.quick:
        a.clients, a.bids = 20, 8
    gap = a.gap or max(0.1, a.clients / 5000)
    raise_nofile(max(65536, a.clients * 4))
    t0 = time.time()

    with RefServer("broadcast") as ref:
        def ref_trigger() -> object:
            return trigger_ref(ref.url, a.bids + WARMUP_BIDS, gap)
        ref_trigger.__name__ = "ref"
        refres = measure(ref.url, 0, a.clients, a.procs, ref_trigger, [ref.proc.pid])

    with BenchStack() as st:
        users = st.bidders(2)
        _sid, (lot_id,) = st.live_lots(1, users)
        tokens = [u["token"] for u in users]

        def hall_trigger() -> object:
            return trigger_hall(st.ws_url, tokens, lot_id, a.bids + WARMUP_BIDS, gap)
        hall_trigger.__name__ = "hall"
        hallres = measure(st.ws_url, lot_id, a.clients, a.procs, hall_trigger, [st.hall.proc.pid])
        hallres["gc"] = gc_figures(st.base)
        notes = list(st.notes)

    r_last = hallres["last_p99_ms"] / refres["last_p99_ms"]
    r_last50 = hallres["last_p50_ms"] / refres["last_p50_ms"]
    r_client = hallres["client_p99_ms"] / refres["client_p99_ms"]
    print(f"fan-out: {a.clients} receivers in {a.procs} processes, {a.bids} bids measured "
          f"(+{WARMUP_BIDS} warm-up), one every {gap:g}s")
    for n in notes:
        print("  note:", n)
    print(f"  {'':26} {'last p50':>9} {'last p99':>9} {'client p50':>11} {'client p99':>11} {'missing':>8}  (ms)")
    for name, r in (("hall", hallres), ("websockets.broadcast (ref)", refres)):
        print(f"  {name:26} {r['last_p50_ms']:9.2f} {r['last_p99_ms']:9.2f} {r['client_p50_ms']:11.2f} "
              f"{r['client_p99_ms']:11.2f} {r['missing']:8d}")
    print(f"  server CPU per delivered event: hall {hallres['cpu_us_per_delivery']:.1f} us, "
          f"reference {refres['cpu_us_per_delivery']:.1f} us; of which in the kernel "
          f"(system time: the sends) hall {hallres['sys_us_per_delivery']:.1f} us, "
          f"reference {refres['sys_us_per_delivery']:.1f} us")
    print(f"  receivers' CPU per delivered event (the same client for both): hall's "
          f"{hallres['receiver_cpu_us_per_delivery']:.1f} us (kernel "
          f"{hallres['receiver_sys_us_per_delivery']:.1f}), reference's "
          f"{refres['receiver_cpu_us_per_delivery']:.1f} us (kernel "
          f"{refres['receiver_sys_us_per_delivery']:.1f})")
    if hallres["join_retries"]:
        print(f"  hall: {hallres['join_retries']} joins answered `unavailable` and were retried "
              "(the hall's Redis pool, max_connections=256, refuses bursts)")
    print(f"  hall/ref: last-receiver p50 {r_last50:.2f}x, p99 {r_last:.2f}x; per-client p99 {r_client:.2f}x "
          f"(target <= 1.0: {'MET' if r_last <= 1.0 else 'MISSED'})")
    g = hallres["gc"]
    if g:
        print(f"  hall garbage collections over the run: {g['gen2']} full, longest {g['gen2_max_ms']:.1f} ms, "
              f"all generations {g['total_ms']:.0f} ms ({g['frozen']} start-up objects frozen)")
    print(f"  wall time {time.time() - t0:.1f}s")
    out = {"clients": a.clients, "bids": a.bids, "hall": hallres, "ref": refres,
           "ratio_last_p99": r_last, "ratio_last_p50": r_last50, "ratio_client_p99": r_client}
    emit_result("fanout", out)
    return out


if __name__ == "__main__":
    main()
