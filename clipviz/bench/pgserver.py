"""A throwaway PostgreSQL server for the benchmarks and the tests (never for a deployment).

:class:`PostgresServer` runs ``initdb`` in a fresh temporary folder and starts ``postgres`` on a
free port of 127.0.0.1, from Debian's ``postgresql`` package (``/usr/lib/postgresql/*/bin``) or
whatever ``initdb`` is on the ``PATH``.  PostgreSQL refuses to run as root, so a root process
runs it as the ``postgres`` system user (the Debian package's; created if missing) in a folder
that user owns.  :meth:`PostgresServer.create_database` gives each test a database of its own.
"""

from __future__ import annotations

import glob
import logging
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

log = logging.getLogger(__name__)

SYSTEM_USER = "postgres"


def binaries() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl``: Debian's newest, else the ``PATH``'s; None
    where PostgreSQL is not installed."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    exe = shutil.which("initdb")
    return Path(exe).parent if exe else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """``initdb`` + ``pg_ctl start`` in a temporary folder; :meth:`stop` removes it all.

    Parameters
    ----------
    durable : bool
        False (tests): ``fsync``, ``synchronous_commit`` and full-page writes off, so creating
        a database per test is quick.  True (benchmarks): PostgreSQL's defaults, every commit
        flushed as in a deployment.
    """

    def __init__(self, durable: bool = False) -> None:
        bindir = binaries()
        if bindir is None:
            raise FileNotFoundError("PostgreSQL is not installed (Debian: apt-get install postgresql)")
        self.bindir = bindir
        self.port = _free_port()
        self.root = os.geteuid() == 0
        # a folder the server's user owns, under a parent it may enter (not pytest's 0700 tree)
        self.dir = Path(tempfile.mkdtemp(prefix="clipviz-pg-", dir="/tmp" if os.path.isdir("/tmp") else None))
        self.data, self.logfile = self.dir / "data", self.dir / "server.log"
        if self.root:
            self._ensure_user()
            shutil.chown(self.dir, SYSTEM_USER, SYSTEM_USER)
        opts = [f"-p {self.port}", "-c listen_addresses=127.0.0.1", f"-c unix_socket_directories={self.dir}",
                "-c max_connections=200", "-c shared_buffers=64MB"]
        if not durable:
            opts += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        try:
            self._as_server([str(bindir / "initdb"), "-D", str(self.data), "-U", "postgres",
                             "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"], timeout=120)
            self._as_server([str(bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.logfile),
                             "-o", " ".join(opts), "-w", "-t", "60", "start"], timeout=90)
        except BaseException:
            self.stop()
            raise
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @staticmethod
    def _ensure_user() -> None:
        import pwd

        try:
            pwd.getpwnam(SYSTEM_USER)
        except KeyError:
            subprocess.run(["useradd", "--system", "--user-group", "--no-create-home", "--shell",
                            "/usr/sbin/nologin", SYSTEM_USER], check=True, capture_output=True)

    def _as_server(self, cmd: list[str], timeout: float) -> subprocess.CompletedProcess:
        if self.root:
            cmd = ["runuser", "-u", SYSTEM_USER, "--", *cmd]
        res = subprocess.run(cmd, cwd=self.dir, capture_output=True, text=True, timeout=timeout)
        if res.returncode != 0:
            log_tail = self.logfile.read_text()[-2000:] if self.logfile.exists() else ""
            raise RuntimeError(f"{' '.join(cmd)} failed ({res.returncode}):\n{res.stdout[-2000:]}"
                               f"{res.stderr[-2000:]}{log_tail}")
        return res

    def database_url(self, name: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def create_database(self, prefix: str = "clipviz") -> str:
        """A new empty database; its URL."""
        import psycopg

        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.database_url(name)

    def drop_database(self, url: str) -> None:
        """Drop a database made by :meth:`create_database` (its connections are ended first)."""
        import psycopg

        name = url.rsplit("/", 1)[1]
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        """Stop the server at once and delete its folder."""
        try:
            if (self.data / "postmaster.pid").exists():
                self._as_server([str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate",
                                 "-w", "-t", "30", "stop"], timeout=60)
        except (RuntimeError, subprocess.TimeoutExpired):  # pragma: no cover - logged, then removed
            log.exception("could not stop the PostgreSQL server in %s", self.dir)
        finally:
            deadline = time.monotonic() + 5
            while (self.data / "postmaster.pid").exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "PostgresServer":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
