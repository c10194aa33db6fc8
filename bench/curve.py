"""The cost curve: memory, fan-out time and CPU as one room grows, hall vs websockets.broadcast.

    python bench/curve.py [--sizes 1000,5000,10000,20000,50000] [--bids 20] [--runs 1]
                          [--per-proc 5000] [--plot docs/benchmarks/curve.png] [--quick]

ONE server process per run holds one room that grows to each size in turn
(the earlier receivers stay connected; bench/fanout.py's `Receivers`, each
process on its own loopback source address 127.0.0.{40+i} so ephemeral ports
never run short). At each size:
  * memory per connection = (server RSS now - RSS after a warm-up) / size;
  * --bids bids (+3 warm-up), one every max(0.1, size/5000) s: the time until
    the LAST receiver has each bid's `bid` event (p50, p99 over the bids);
  * server CPU per delivered event = server CPU over those bids / (bids x size).
First the reference (bench/refserver.py broadcast: `websockets.broadcast` to
every connection on a control message), then the hall (bench/stack.py, one
hall process, the worker running), same receivers, same sizes, same run.
Sizes that need more file descriptors than RLIMIT_NOFILE's hard limit allows
are replaced by the largest size that fits, and the run says so.
With --runs N the whole thing runs N times; the table shows each figure's
median and every run's value, the plot the medians.
"""
from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RefServer, cpu_seconds, emit_result  # noqa: E402
from fanout import WARMUP_BIDS, Receivers, summarize, trigger_hall, trigger_ref  # noqa: E402
from idle import rss_kb, warm  # noqa: E402
from stack import ROOT, BenchStack, raise_nofile  # noqa: E402

SOURCES = [f"127.0.0.{40 + i}" for i in range(60)]
FD_MARGIN = 1000  # the server's own descriptors: Redis pool (<= 256), listener, database, logs, bidders


def gap_for(size: int) -> float:
    # Long enough for one bid's events to reach every receiver (2 cores shared
    # by the server and the receiver processes) before the next bid.
    return max(0.1, size / 5000)


def grow(url: str, lot_id: int, mode: str, pid: int, sizes: list[int], bids: int, per_proc: int,
         trigger) -> list[dict]:
    """One room grown through `sizes` on one server process; figures per size."""
    warm(url, lot_id)
    rss0 = rss_kb(pid)
    recv = Receivers([url], lot_id, mode)
    rows, sents, k0 = [], [], 0
    try:
        for size in sizes:
            more = size - recv.count
            t_open = time.monotonic()
            recv.add(more, max(1, -(-more // per_proc)), SOURCES)
            t_open = time.monotonic() - t_open
            time.sleep(1.0)  # let the last joins' buffers settle before reading RSS
            rss = rss_kb(pid)
            n = bids + WARMUP_BIDS
            cpu0 = cpu_seconds(pid)
            try:
                sent = asyncio.run(trigger(n, gap_for(size), k0))
            except TimeoutError:
                # A bid unanswered for 30 s: the box cannot keep up at this size
                # (it is shared); keep the sizes measured so far.
                print(f"  {mode} {size}: a bid went unanswered for 30 s; stopping here", flush=True)
                break
            cpu1 = cpu_seconds(pid)
            k0 += n
            sents.append(sent)
            rows.append({"size": size, "kb_per_conn": (rss - rss0) / size, "rss_kb": rss,
                         "open_s": t_open, "cpu_us_per_delivery": (cpu1 - cpu0) / (n * size) * 1e6})
            print(f"  {mode} {size}: opened in {t_open:.0f}s, RSS {rss / 1024:.0f} MB, "
                  f"{rows[-1]['cpu_us_per_delivery']:.1f} us per delivered event", flush=True)
        time.sleep(1.0)  # the last bid's events in flight
    finally:
        merged, join_errors = recv.collect()
    for row, sent in zip(rows, sents):
        row.update(summarize(sent, merged, row["size"]))
    if rows:
        rows[-1]["join_retries"] = join_errors
    return rows


def one_run(sizes: list[int], bids: int, per_proc: int) -> dict:
    with RefServer("broadcast") as ref:
        ref_rows = grow(ref.url, 0, "ref", ref.proc.pid, sizes, bids, per_proc,
                        lambda n, gap, k0: trigger_ref(ref.url, n, gap, k0))
    st = BenchStack()
    # Tornado closes a socket whose pong is 25 s late (ping interval = timeout):
    # on a shared 2-core box, receiver processes holding thousands of sockets
    # fall that far behind and lost half the room at 19,000. The reference
    # sends no pings at all; the hall pings every 10 minutes here.
    st.env["HALL_WS_PING_INTERVAL_S"] = "600"
    with st:
        users = st.bidders(2)
        _sid, (lot_id,) = st.live_lots(1, users)
        tokens = [u["token"] for u in users]
        hall_rows = grow(st.ws_url, lot_id, "hall", st.hall.proc.pid, sizes, bids, per_proc,
                         lambda n, gap, k0: trigger_hall(st.ws_url, tokens, lot_id, n, gap, k0))
    n = min(len(hall_rows), len(ref_rows))  # sizes both servers got through
    return {"hall": hall_rows[:n], "ref": ref_rows[:n]}


FIGURES = [("kb_per_conn", "KB per connection", "{:.1f}"),
           ("last_p50_ms", "last receiver p50 ms", "{:.1f}"),
           ("last_p99_ms", "last receiver p99 ms", "{:.1f}"),
           ("cpu_us_per_delivery", "server CPU us per delivered event", "{:.1f}")]


def cell(values: list[float], fmt: str) -> str:
    med = fmt.format(statistics.median(values))
    return f"**{med}**" + (" (" + ", ".join(fmt.format(v) for v in values) + ")" if len(values) > 1 else "")


def table(runs: list[dict], sizes: list[int]) -> str:
    """Markdown: one row per size and figure; hall, reference, ratio (medians, then each run)."""
    lines = ["| connections | figure | hall | websockets.broadcast | hall / ref |", "|---|---|---|---|---|"]
    for i, size in enumerate(sizes):
        for key, label, fmt in FIGURES:
            h = [r["hall"][i][key] for r in runs]
            f = [r["ref"][i][key] for r in runs]
            ratio = [a / b if b else float("inf") for a, b in zip(h, f)]
            lines.append(f"| {size:,} | {label} | {cell(h, fmt)} | {cell(f, fmt)} | {cell(ratio, '{:.2f}')} |")
        missing = [r["hall"][i]["missing"] for r in runs], [r["ref"][i]["missing"] for r in runs]
        lines.append(f"| {size:,} | events missing | {', '.join(map(str, missing[0]))} | "
                     f"{', '.join(map(str, missing[1]))} | |")
    return "\n".join(lines)


def plot(runs: list[dict], sizes: list[int], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")  # no display on the box
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    panels = [("kb_per_conn", "memory per connection (KB)"), ("last_ms", "last receiver (ms), p50 and p99"),
              ("cpu_us_per_delivery", "server CPU per delivered event (µs)")]
    for ax, (key, title) in zip(axes, panels):
        for who, label, color in (("hall", "hall", "tab:blue"), ("ref", "websockets.broadcast", "tab:orange")):
            if key == "last_ms":
                for k, style in (("last_p50_ms", "-"), ("last_p99_ms", "--")):
                    ys = [statistics.median(r[who][i][k] for r in runs) for i in range(len(sizes))]
                    ax.plot(sizes, ys, style, marker="o", color=color, label=f"{label} {k[5:8]}")
            else:
                ys = [statistics.median(r[who][i][key] for r in runs) for i in range(len(sizes))]
                ax.plot(sizes, ys, marker="o", color=color, label=label)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("connections in one room")
        ax.set_xscale("log")
        ax.set_xticks(sizes, [f"{s / 1000:g}k" for s in sizes])
        ax.minorticks_off()
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"One process, one room (median of {len(runs)} run{'s' if len(runs) > 1 else ''})",
                 fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def fit_sizes(sizes: list[int]) -> tuple[list[int], list[str]]:
    """Sizes the fd limit allows: one server process holds every connection."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard == resource.RLIM_INFINITY:
        return sizes, []
    top = hard - FD_MARGIN
    fitted = sorted({min(s, top) for s in sizes})
    notes = [f"{s:,} connections need more descriptors than RLIMIT_NOFILE's hard limit ({hard:,}) "
             f"allows one process; measured {top:,} instead" for s in sizes if s > top]
    return fitted, notes


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000,5000,10000,20000,50000")
    ap.add_argument("--bids", type=int, default=20, help="measured bids per size (+3 warm-up)")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--per-proc", type=int, default=5000, help="receivers per client process")
    ap.add_argument("--plot", default=str(ROOT / "docs" / "benchmarks" / "curve.png"),
                    help="PNG to write ('' for none)")
    ap.add_argument("--quick", action="store_true", help="200 and 500 connections, 5 bids, no plot")
    a = ap.parse_args(argv)
    if a.quick:
        a.sizes, a.bids, a.plot = "200,500", 5, ""
    if a.plot:
        try:
            import matplotlib  # noqa: F401  (fail now, not after the runs)
        except ImportError:
            raise SystemExit("matplotlib is missing: pip install '.[bench]', or --plot ''")
    raise_nofile(1 << 20)
    sizes, notes = fit_sizes(sorted(int(s) for s in a.sizes.split(",")))
    t0 = time.time()
    runs = []
    for i in range(a.runs):
        runs.append(one_run(sizes, a.bids, a.per_proc))
        print(f"run {i + 1}/{a.runs} done at {time.time() - t0:.0f}s", flush=True)
    done = min(len(r["hall"]) for r in runs)
    if done < len(sizes):
        notes.append(f"measured only up to {sizes[done - 1] if done else 0:,} connections in every run")
        sizes = sizes[:done]
        runs = [{k: v[:done] for k, v in r.items()} for r in runs]
    print(f"curve: one room grown to {', '.join(f'{s:,}' for s in sizes)} connections, "
          f"{a.bids} bids per size (+{WARMUP_BIDS} warm-up), {a.runs} run(s)")
    for n in notes:
        print("  note:", n)
    print(table(runs, sizes))
    if a.plot:
        plot(runs, sizes, Path(a.plot))
        print(f"  plot: {a.plot}")
    print(f"  wall time {time.time() - t0:.1f}s")
    out = {"sizes": sizes, "bids": a.bids, "notes": notes, "runs": runs}
    emit_result("curve", out)
    return out


if __name__ == "__main__":
    main()
