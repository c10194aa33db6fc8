"""A private PostgreSQL server for the tests (Debian's postgresql package).

PostgreSQL refuses to run as root, so under root (CI) it runs as the
`postgres` system user that the Debian package creates.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

PG_BIN = Path("/usr/lib/postgresql")


def pg_bindir() -> Path | None:
    for version in sorted(PG_BIN.glob("*/bin"), reverse=True):
        if (version / "postgres").exists():
            return version
    return None


def available() -> bool:
    return pg_bindir() is not None


class Postgres:
    def __init__(self, port: int) -> None:
        self.bindir = pg_bindir()
        # Outside pytest's private (0700) temporary folders, which the
        # postgres user could not enter.
        self.base = Path(tempfile.mkdtemp(prefix="hall-pg-"))
        self.data = self.base / "pgdata"
        self.port = port
        self.url = f"postgresql://hall@127.0.0.1:{port}/auction"

    def _as_owner(self, argv: list[str]) -> list[str]:
        if os.geteuid() == 0:
            return ["runuser", "-u", "postgres", "--"] + argv
        return argv

    def start(self) -> "Postgres":
        self.base.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.base, "postgres")
            os.chmod(self.base, 0o755)
        subprocess.run(self._as_owner([str(self.bindir / "initdb"), "-D", str(self.data), "-U", "hall",
                                       "--auth=trust", "-E", "UTF8", "--no-sync"]),
                       check=True, stdout=subprocess.DEVNULL)
        self.run()
        import psycopg2
        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user="hall", dbname="postgres")
        conn.autocommit = True
        conn.cursor().execute("CREATE DATABASE auction")
        conn.close()
        return self

    def run(self) -> "Postgres":
        """Start the server on an initialised data directory (pg_ctl waits until it accepts)."""
        options = (f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c max_connections=300")
        subprocess.run(self._as_owner([str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l",
                                       str(self.base / "postgres.log"), "-o", options, "-w",
                                       "start"]), check=True, stdout=subprocess.DEVNULL)
        return self

    def stop(self) -> None:
        """A fast shutdown: open sessions are cut, as when a database host goes away."""
        if (self.data / "postmaster.pid").exists():
            out = subprocess.run(self._as_owner([str(self.bindir / "pg_ctl"), "-D", str(self.data),
                                                 "-m", "fast", "-w", "stop"]),
                                 capture_output=True, text=True)
            if out.returncode != 0:
                raise RuntimeError(f"pg_ctl stop failed: {out.stdout} {out.stderr}")

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)
