"""The closed-loop bid client, run in several processes (websockets asyncio client).

Each connection: send {"op":"bid",...}, wait for its answer, repeat, until the
end time. Against the hall (mode "hall") a connection joins its lot first and
follows the lot's `bid` events, so it always bids the current `next_min_bid`
and does not bid while it is itself leading (it waits up to 50 ms for a newer
event instead). Against the echo server (mode "echo") any reply is the answer.
Latency is send -> answer received (time.monotonic(), taken in the reader).
"""
from __future__ import annotations

import asyncio
import json
import multiprocessing as mp
import time
import uuid
from collections import Counter

import websockets
from websockets.asyncio.client import connect

from common import cpu_seconds

now = time.monotonic
INCREMENT = 100


class Bot:
    def __init__(self, url: str, token: str | None, lot_id: int, mode: str) -> None:
        self.url = url + (f"?token={token}" if token else "")
        self.lot_id = lot_id
        self.mode = mode
        self.ws = None
        self.next_min = 1000
        self.seq = 0
        self.leading = False
        self.version = 0
        self.changed = asyncio.Event()
        self.pending: asyncio.Future | None = None
        self.ref = ""
        self.joined = asyncio.Event()

    async def connect(self) -> None:
        self.ws = await connect(self.url, compression=None, max_size=2**22, ping_interval=None,
                                open_timeout=60)
        self.reader = asyncio.ensure_future(self.read())
        if self.mode == "hall":
            await self.ws.send(json.dumps({"op": "join", "lot_id": self.lot_id}))
            await asyncio.wait_for(self.joined.wait(), 60)

    async def read(self) -> None:
        try:
            async for raw in self.ws:
                t = now()
                if self.mode != "hall":
                    if self.pending is not None and not self.pending.done():
                        self.pending.set_result((None, t))
                    continue
                m = json.loads(raw)
                kind = m.get("type")
                if kind == "bid":
                    if m["seq"] > self.seq:
                        self.seq = m["seq"]
                        self.next_min = m["next_min_bid"]
                        self.leading = bool(m.get("mine"))
                        self.version += 1
                        self.changed.set()
                elif kind in ("accepted", "rejected"):
                    p = self.pending
                    if p is not None and not p.done() and m.get("ref") == self.ref:
                        p.set_result((m, t))
                elif kind == "snapshot":
                    self.next_min = m["next_min_bid"]
                    self.seq = m["seq"] or 0
                    self.joined.set()
        except websockets.ConnectionClosed:
            pass

    async def wait_change(self, version: int, timeout: float = 0.05) -> None:
        if self.version != version:
            return
        self.changed.clear()
        try:
            await asyncio.wait_for(self.changed.wait(), timeout)
        except asyncio.TimeoutError:
            pass

    async def run(self, t_measure: float, t_end: float, lat: list, counts: Counter) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if self.mode == "hall" and self.leading:
                await self.wait_change(self.version)
                if now() >= t_end:
                    return
                if self.leading:
                    continue
            t0 = now()
            if t0 >= t_end:
                return
            self.ref = ref = uuid.uuid4().hex
            amount = self.next_min
            version = self.version
            self.pending = loop.create_future()
            msg = {"op": "bid", "lot_id": self.lot_id, "amount": amount, "ref": ref}
            await self.ws.send(json.dumps(msg))
            try:
                m, t1 = await asyncio.wait_for(self.pending, 30)
            except asyncio.TimeoutError:
                counts["timeout"] += 1
                continue
            measured = t0 >= t_measure
            if measured:
                lat.append(t1 - t0)
                counts["answers"] += 1
            if m is None:
                if measured:
                    counts["accepted"] += 1  # echo: every reply counts
                continue
            if m["type"] == "accepted":
                if measured:
                    counts["accepted"] += 1
                if m.get("seq", 0) >= self.seq:
                    self.seq = m.get("seq", self.seq)
                    self.leading = True
                    self.next_min = amount + INCREMENT
            else:
                if measured:
                    counts[m.get("code", "rejected")] += 1
                if m.get("code") in ("too_low", "already_leading", "invalid"):
                    await self.wait_change(version)

    async def close(self) -> None:
        try:
            await self.ws.close()
        except Exception:
            pass


async def _proc_main(url, conns, mode, ready_q, go, start_at, warmup, duration, out_q) -> None:
    bots = [Bot(url, tok, lot, mode) for tok, lot in conns]
    for i in range(0, len(bots), 100):  # connect in chunks
        await asyncio.gather(*(b.connect() for b in bots[i:i + 100]))
    ready_q.put(len(bots))
    await asyncio.get_running_loop().run_in_executor(None, go.wait)
    t_start = start_at.value
    await asyncio.sleep(max(0, t_start - now()))
    lat: list[float] = []
    counts: Counter = Counter()
    t_measure, t_end = t_start + warmup, t_start + warmup + duration
    await asyncio.gather(*(b.run(t_measure, t_end, lat, counts) for b in bots))
    out_q.put({"lat": lat, "counts": dict(counts)})
    await asyncio.gather(*(b.close() for b in bots), return_exceptions=True)


def _proc(*args) -> None:
    asyncio.run(_proc_main(*args))


def run_load(url: str, conns: list[tuple[str | None, int]], mode: str, duration: float,
             procs: int = 2, warmup: float = 1.0, probe=None,
             split: list[tuple[str, list]] | None = None) -> dict:
    """`conns` spread over `procs` client processes on `url`; or, with `split`,
    one client process per (url, conns) (bench/scaling.py: one per hall).

    probe(): called at the start and at the end of the measured window (in
    this process); both values are returned as "probe". "clients_cpu_s" is the
    CPU the client processes used in that window."""
    ctx = mp.get_context("fork")
    ready_q, out_q = ctx.Queue(), ctx.Queue()
    go = ctx.Event()
    start_at = ctx.Value("d", 0.0)
    parts = split if split is not None else [(url, conns[i::procs]) for i in range(procs)]
    ps = [ctx.Process(target=_proc, args=(part_url, part, mode, ready_q, go, start_at, warmup,
                                          duration, out_q), daemon=True)
          for part_url, part in parts if part]
    for p in ps:
        p.start()
    for _ in ps:
        ready_q.get(timeout=180)
    start_at.value = now() + 0.2
    go.set()
    # The load generator's own CPU in the measured window: on a small box it
    # shares the cores with the server under test (see bench/bids.py).
    def clients_cpu() -> float:
        return sum(cpu_seconds(p.pid) for p in ps)
    time.sleep(max(0.0, start_at.value + warmup - now()))
    p0, c0 = (probe() if probe else None), clients_cpu()
    time.sleep(max(0.0, start_at.value + warmup + duration - now()))
    p1, c1 = (probe() if probe else None), clients_cpu()
    probes = (p0, p1) if probe is not None else None
    results = [out_q.get(timeout=warmup + duration + 120) for _ in ps]
    for p in ps:
        p.join(30)
        if p.is_alive():
            p.kill()
    lat = [x for r in results for x in r["lat"]]
    counts: Counter = Counter()
    for r in results:
        counts.update(r["counts"])
    return {"lat": lat, "counts": dict(counts), "duration": duration, "probe": probes,
            "clients_cpu_s": c1 - c0}
