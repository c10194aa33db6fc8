"""Bid throughput and latency: the hall vs a bare `websockets` echo server.

    python bench/bids.py [--clients 100] [--lots 50] [--duration 10] [--procs 2] [--quick]
                         [--profile FILE [--profile-gil] | --profile-cpu FILE]

N connections, each with its own bidder token, spread over --lots lots, each in
a closed loop: bid next_min_bid, wait for accepted/rejected, repeat (see
bench/load.py). The references, driven by the same client with the same N, lots and duration,
each run before the hall stack starts (so the worker's bid ingestion does not
steal their CPU): bench/refserver.py echo, and bench/peer.py (the same room
protocol on the stock websockets server + redis.asyncio, one Lua call per bid;
--no-peer skips it).
Targets: accepted bids/s >= 0.35 x echo replies/s; p99 <= 2 x echo p99 (issue 7);
answers/s >= 2 x the peer's, p99 <= 0.7 x the peer's (issue 17).
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (PeerServer, RefServer, cpu_seconds, cpu_split, emit_result,  # noqa: E402
                    hall_counters, pct)
from load import run_load  # noqa: E402
from stack import BenchStack, raise_nofile  # noqa: E402


def by_command(before: dict, after: dict, n: int) -> dict:
    """Redis' own time per bid in each command over the window, largest first
    (`usec` of INFO commandstats; a script's inner commands count under them
    and under EVALSHA both, so the figures overlap)."""
    per = {}
    for key, st in after.items():
        used = st["usec"] - before.get(key, {}).get("usec", 0)
        if used > 0:
            per[key.removeprefix("cmdstat_")] = used / max(1, n)
    return dict(sorted(per.items(), key=lambda kv: -kv[1]))


def summarize(res: dict) -> dict:
    lat = res["lat"]
    d = res["duration"]
    c = res["counts"]
    return {"answers_per_s": c.get("answers", 0) / d, "accepted_per_s": c.get("accepted", 0) / d,
            "p50_ms": pct(lat, 50) * 1000, "p99_ms": pct(lat, 99) * 1000, "counts": c}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=100)
    ap.add_argument("--lots", type=int, default=0, help="default: clients // 2 (two bidders per lot)")
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--procs", type=int, default=2, help="client processes")
    ap.add_argument("--fsync", default="everysec", choices=["everysec", "always", "no"],
                    help="Redis appendfsync (run.py's embedded Redis uses everysec)")
    ap.add_argument("--no-peer", action="store_true", help="skip the peer reference (bench/peer.py)")
    ap.add_argument("--peer-loop", default="uvloop", choices=["uvloop", "asyncio"],
                    help="the peer's event loop (the hall runs on uvloop)")
    ap.add_argument("--quick", action="store_true", help="tiny sizes, a few seconds")
    ap.add_argument("--profile", metavar="FILE",
                    help="py-spy the hall process over the measured window into FILE (raw "
                         "collapsed stacks; py-spy's own CPU shares the machine)")
    ap.add_argument("--profile-cpu", metavar="FILE",
                    help="sample the hall's own CPU time (SIGPROF, bench/cpuprof) over the "
                         "measured window into FILE (py-spy's raw format): shares of CPU "
                         "spent, without py-spy's count of time preempted")
    ap.add_argument("--profile-gil", action="store_true",
                    help="with --profile: sample only while the hall holds the GIL. py-spy "
                         "samples wall time, so a send that wakes Redis or a client on these "
                         "two cores also shows the wait for the CPU; sends release the GIL")
    a = ap.parse_args(argv)
    if a.quick:
        a.clients, a.duration, a.warmup, a.procs = 4, 1.0, 0.2, 2
    lots = a.lots or max(1, a.clients // 2)
    raise_nofile()
    t0 = time.time()

    with RefServer("echo") as ref:
        res = run_load(ref.url, [(None, 1)] * a.clients, "echo", a.duration, a.procs, a.warmup,
                       probe=lambda: cpu_split(ref.proc.pid))
        echo = summarize(res)
        (eu0, es0), (eu1, es1) = res["probe"]
        replies = max(1, echo["counts"].get("answers", 0))
        echo["cpu_us_per_reply"] = (eu1 + es1 - eu0 - es0) / replies * 1e6
        # The kernel's part (system time): on loopback mostly the sends.
        echo["sys_us_per_reply"] = (es1 - es0) / replies * 1e6
        echo["clients_cpu_us_per_reply"] = (res["clients_cpu_s"]
                                            / max(1, echo["counts"].get("answers", 0)) * 1e6)

    peer = None
    if not a.no_peer:
        with PeerServer(a.peer_loop) as ps:
            # Same lots layout as the hall run; the token is the peer's user name.
            pconns = [(f"peer{i}", 1 + i % lots) for i in range(a.clients)]
            ppids = (ps.proc.pid, ps.redis_proc.pid)
            res = run_load(ps.url, pconns, "hall", a.duration, a.procs, a.warmup,
                           probe=lambda: tuple(cpu_seconds(pid) for pid in ppids))
            peer = summarize(res)
            (s0, r0), (s1, r1) = res["probe"]
            n = max(1, peer["counts"].get("answers", 0))
            peer["cpu_us_per_bid"] = (s1 - s0) / n * 1e6
            peer["redis_cpu_us_per_bid"] = (r1 - r0) / n * 1e6
            peer["clients_cpu_us_per_bid"] = res["clients_cpu_s"] / n * 1e6

    if a.profile_cpu:
        Path(a.profile_cpu).unlink(missing_ok=True)
    hall_env = {"BENCH_CPU_PROFILE": str(Path(a.profile_cpu).resolve()),
                "PYTHONPATH": os.pathsep.join([str(Path(__file__).with_name("cpuprof")),
                                               os.environ.get("PYTHONPATH", "")])
                } if a.profile_cpu else None
    with BenchStack(fsync=a.fsync, hall_env=hall_env) as st:
        users = st.bidders(a.clients)
        _sid, lot_ids = st.live_lots(lots, users)
        conns = [(u["token"], lot_ids[i % lots]) for i, u in enumerate(users)]
        pids = (st.hall.proc.pid, st.redis.proc.pid, st.worker.proc.pid)

        spy: list[subprocess.Popen] = []
        rdb = st.sync_redis()
        stats: list[dict] = []
        batches: list[dict] = []

        def probe() -> tuple[float, float]:
            # Called at the start and at the end of the measured window.
            stats.append(rdb.info("commandstats"))
            batches.append(hall_counters(st.base, "hall_bid_batches_total",
                                         "hall_bid_batch_calls_total"))
            if a.profile_cpu:  # start, then stop and write (bench/cpuprof)
                os.kill(st.hall.proc.pid, signal.SIGUSR2)
            if a.profile and not spy:
                spy.append(subprocess.Popen(
                    [str(Path(sys.executable).with_name("py-spy")), "record", "-r", "100", "--nonblocking",
                     *(["--gil"] if a.profile_gil else []),
                     "-f", "raw", "-o", a.profile, "-p", str(st.hall.proc.pid)],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            elif spy:
                spy[0].send_signal(signal.SIGINT)  # py-spy writes its file on ^C
                spy[0].wait(timeout=60)
            return (*(cpu_seconds(pid) for pid in pids), cpu_split(st.hall.proc.pid)[1])
        res = run_load(st.ws_url, conns, "hall", a.duration, a.procs, a.warmup, probe=probe)
        if a.profile_cpu:  # the hall writes it at its next bytecode: poll, nothing announces it
            deadline = time.monotonic() + 30
            while not Path(a.profile_cpu).exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            st.notes.append(f"CPU profile of the hall: {a.profile_cpu} "
                            f"(read it with python bench/profshare.py {a.profile_cpu})")
        hall = summarize(res)
        (h0, r0, w0, hs0), (h1, r1, w1, hs1) = res["probe"]
        n = max(1, hall["counts"].get("answers", 0))
        hall["cpu_us_per_bid"] = (h1 - h0) / n * 1e6
        hall["sys_us_per_bid"] = (hs1 - hs0) / n * 1e6
        hall["redis_cpu_us_per_bid"] = (r1 - r0) / n * 1e6
        hall["worker_cpu_us_per_bid"] = (w1 - w0) / n * 1e6  # bids -> database (bidlog)
        hall["clients_cpu_us_per_bid"] = res["clients_cpu_s"] / n * 1e6
        hall["redis_us_per_bid_by_command"] = by_command(stats[0], stats[-1], n)
        hall["cores_busy"] = (h1 - h0 + r1 - r0 + w1 - w0 + res["clients_cpu_s"]) / a.duration
        hall["cpu_util"] = (h1 - h0) / a.duration
        sent = batches[-1]["hall_bid_batches_total"] - batches[0]["hall_bid_batches_total"]
        hall["bids_per_batch"] = ((batches[-1]["hall_bid_batch_calls_total"]
                                   - batches[0]["hall_bid_batch_calls_total"]) / sent
                                  if sent else 0.0)
        notes = list(st.notes)

    ratio_tput = hall["accepted_per_s"] / echo["answers_per_s"] if echo["answers_per_s"] else 0.0
    ratio_p99 = hall["p99_ms"] / echo["p99_ms"] if echo["p99_ms"] else float("inf")
    print(f"bids: {a.clients} connections over {lots} lots, {a.duration:g}s measured "
          f"(+{a.warmup:g}s warm-up), {a.procs} client processes, Redis appendfsync {a.fsync}")
    for n in notes:
        print("  note:", n)
    print(f"  {'':22} {'answers/s':>10} {'accepted/s':>11} {'p50 ms':>8} {'p99 ms':>8}")
    print(f"  {'hall':22} {hall['answers_per_s']:10.0f} {hall['accepted_per_s']:11.0f} "
          f"{hall['p50_ms']:8.2f} {hall['p99_ms']:8.2f}")
    print(f"  {'websockets echo (ref)':22} {echo['answers_per_s']:10.0f} {'':>11} "
          f"{echo['p50_ms']:8.2f} {echo['p99_ms']:8.2f}")
    if peer:
        print(f"  {'peer (bench/peer.py)':22} {peer['answers_per_s']:10.0f} {peer['accepted_per_s']:11.0f} "
              f"{peer['p50_ms']:8.2f} {peer['p99_ms']:8.2f}")
    if peer:
        print(f"  peer: bench/peer.py on {a.peer_loop}, its own redis-server (no persistence)")
    print(f"  hall answer codes: {hall['counts']}" + (f"; peer: {peer['counts']}" if peer else ""))
    print(f"  kernel (system) part: hall {hall['sys_us_per_bid']:.0f} us per bid, echo server "
          f"{echo['sys_us_per_reply']:.0f} us per reply")
    print(f"  CPU per answered bid: hall process {hall['cpu_us_per_bid']:.0f} us "
          f"({hall['cpu_util']:.0%} of a core), redis-server {hall['redis_cpu_us_per_bid']:.0f} us; "
          f"echo server {echo['cpu_us_per_reply']:.0f} us per reply")
    print(f"  bid script calls per pipeline to Redis (hall/bidding.py BidBatcher): "
          f"{hall['bids_per_batch']:.2f}")
    print("  Redis time per bid by command (INFO commandstats, us): " + ", ".join(
        f"{k} {v:.1f}" for k, v in list(hall["redis_us_per_bid_by_command"].items())[:8]))
    print(f"  CPU per bid, all processes: hall {hall['cpu_us_per_bid']:.0f} + redis "
          f"{hall['redis_cpu_us_per_bid']:.0f} + worker {hall['worker_cpu_us_per_bid']:.0f} + "
          f"clients {hall['clients_cpu_us_per_bid']:.0f} us; {hall['cores_busy']:.2f} of "
          f"{os.cpu_count()} cores busy. Echo: server {echo['cpu_us_per_reply']:.0f} + clients "
          f"{echo['clients_cpu_us_per_reply']:.0f} us per reply")
    print(f"  accepted/s / echo replies/s = {ratio_tput:.3f} (target >= 0.35: "
          f"{'MET' if ratio_tput >= 0.35 else 'MISSED'})")
    print(f"  p99 hall / p99 echo = {ratio_p99:.2f} (target <= 2: "
          f"{'MET' if ratio_p99 <= 2 else 'MISSED'})")
    out = {"clients": a.clients, "lots": lots, "duration": a.duration, "hall": hall, "echo": echo,
           "ratio_accepted_vs_echo": ratio_tput, "ratio_p99": ratio_p99}
    if peer:
        out["peer"] = peer
        out["ratio_answers_vs_peer"] = r_ans = (hall["answers_per_s"] / peer["answers_per_s"]
                                                if peer["answers_per_s"] else 0.0)
        out["ratio_p99_vs_peer"] = r_p99 = (hall["p99_ms"] / peer["p99_ms"]
                                            if peer["p99_ms"] else float("inf"))
        out["ratio_cpu_vs_peer"] = r_cpu = (hall["cpu_us_per_bid"] / peer["cpu_us_per_bid"]
                                            if peer["cpu_us_per_bid"] else float("inf"))
        print(f"  CPU per accepted bid: hall process {hall['cpu_us_per_bid']:.0f} us, peer process "
              f"{peer['cpu_us_per_bid']:.0f} us (peer's redis {peer['redis_cpu_us_per_bid']:.0f}, "
              f"clients {peer['clients_cpu_us_per_bid']:.0f}); hall/peer {r_cpu:.2f}x")
        print(f"  hall/peer answers/s = {r_ans:.2f} (target >= 2: {'MET' if r_ans >= 2 else 'MISSED'})")
        print(f"  hall/peer p99 = {r_p99:.2f} (target <= 0.7: {'MET' if r_p99 <= 0.7 else 'MISSED'})")
    print(f"  wall time {time.time() - t0:.1f}s")
    emit_result("bids", out)
    return out


if __name__ == "__main__":
    main()
