"""Deposit payment end to end, beside a bare Celery round trip on the same worker.

    python bench/money.py            # 200 deposits + 200 bare round trips
    python bench/money.py --quick    # 20 + 20 (what a test can run)

Deposit: one bidder, one lot-scope balance deposit per lot (so each payment
is a real one: debit, Deposit row, ledger entry, Redis grant, `deposit` and
`task` messages). Latency = just before the HTTP `POST /api/lots/{id}/deposit`
is sent -> the `task` message for that task id arrives on the bidder's
WebSocket (hall -> broker -> eventlet worker -> SQLite transaction -> result
backend -> Redis pub/sub -> hall -> socket).

Reference: `workers.tasks.settlement.noop` sent from this process with a bare
Celery client to the same worker's `money` queue, latency = send_task ->
AsyncResult.get() (broker -> worker -> result backend -> client). The two are
interleaved one by one in the same run, closed loop (one in flight).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import emit_result, pct
from stack import BenchStack
from websockets.asyncio.client import connect


async def run(st: BenchStack, n: int, warmup: int) -> dict:
    from celery import Celery
    celery = Celery(broker=st.redis_url, backend=st.redis_url)
    (user,) = st.bidders(1, balance=10**11)
    _sid, lots = st.live_lots(n + warmup, [])
    loop = asyncio.get_running_loop()
    deposit_ms: list[float] = []
    noop_ms: list[float] = []
    async with connect(f"{st.ws_url}?token={user['token']}", max_size=2**22) as ws:
        for i, lot_id in enumerate(lots):
            t0 = time.perf_counter()
            status, body = await loop.run_in_executor(None, lambda lid=lot_id: st.http.call(
                "POST", f"/api/lots/{lid}/deposit", {"scope": "lot", "method": "balance"},
                token=user["token"]))
            if status != 202:
                raise RuntimeError(f"deposit -> {status} {body}")
            while True:
                msg = json.loads(await asyncio.wait_for(ws.recv(), 30))
                if msg.get("type") == "task" and msg.get("task_id") == body["task_id"]:
                    break
            t1 = time.perf_counter()
            if msg["state"] != "SUCCESS":
                raise RuntimeError(f"deposit task failed: {msg}")

            def bare() -> float:
                s = time.perf_counter()
                r = celery.send_task("workers.tasks.settlement.noop", queue="money")
                if r.get(timeout=30) != "ok":
                    raise RuntimeError("noop failed")
                return time.perf_counter() - s
            b = await loop.run_in_executor(None, bare)
            if i >= warmup:
                deposit_ms.append((t1 - t0) * 1000)
                noop_ms.append(b * 1000)
    balance = st.http.ok("GET", "/api/me", token=user["token"])["balance"]
    expected = 10**11 - 5_000 * len(lots)
    if balance != expected:
        raise RuntimeError(f"balance {balance} != {expected}")
    return {"deposit": deposit_ms, "noop": noop_ms}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("-n", type=int, default=200)
    a = ap.parse_args()
    n, warmup = (20, 3) if a.quick else (a.n, 10)
    with BenchStack() as st:
        got = asyncio.run(run(st, n, warmup))
    d, b = got["deposit"], got["noop"]
    out = {
        "n": n,
        "deposit": {"p50_ms": pct(d, 50), "p99_ms": pct(d, 99), "mean_ms": sum(d) / len(d)},
        "celery_noop": {"p50_ms": pct(b, 50), "p99_ms": pct(b, 99), "mean_ms": sum(b) / len(b)},
    }
    out["ratio_p50"] = out["deposit"]["p50_ms"] / out["celery_noop"]["p50_ms"]
    out["ratio_p99"] = out["deposit"]["p99_ms"] / out["celery_noop"]["p99_ms"]
    print(f"deposit payment, HTTP POST -> task message ({n}): "
          f"p50 {out['deposit']['p50_ms']:.1f} ms  p99 {out['deposit']['p99_ms']:.1f} ms")
    print(f"bare Celery round trip, send_task -> result ({n}): "
          f"p50 {out['celery_noop']['p50_ms']:.1f} ms  p99 {out['celery_noop']['p99_ms']:.1f} ms")
    print(f"ratio deposit / bare: p50 {out['ratio_p50']:.2f}  p99 {out['ratio_p99']:.2f}")
    emit_result("money", out)


if __name__ == "__main__":
    main()
