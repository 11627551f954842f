"""The embedded run store: one SQLite file, no service (the default).

The file (``runs.sqlite`` in the data directory, ``CLIPVIZ_DATA_DIR`` or ``./clipviz-data`` by
default) is shared by the web app and by every worker process on the same machine, or on a
reliably locking shared file system (SQLite over NFS is not safe; use PostgreSQL,
:mod:`clipviz.store.postgres`, for workers on several machines).  It runs in WAL mode, so the web
app reads a run's curves while its worker appends to them, and several processes may write at
once: each write is one short ``BEGIN IMMEDIATE`` transaction, so writers are serialised, and
waits are bounded by a busy timeout.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from pathlib import Path

from ..config import SETTINGS
from .base import SCHEMA_VERSION, SQLITE_SCHEME, RunStore

log = logging.getLogger("clipviz.runstore")

_MIGRATIONS = {
    1: ["ALTER TABLE runs ADD COLUMN owner TEXT"],
    2: ["ALTER TABLE runs ADD COLUMN heartbeat_timeout REAL"],
}
"""SQL that takes a SQLite store from schema ``k`` to ``k + 1``."""
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    sweep_id TEXT,
    label TEXT,
    config TEXT NOT NULL,
    backend TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    reaped INTEGER NOT NULL DEFAULT 0,
    worker TEXT,
    host TEXT,
    pid INTEGER,
    heartbeat REAL,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    started REAL,
    ended REAL,
    done INTEGER NOT NULL DEFAULT 0,
    total INTEGER,
    cancel INTEGER NOT NULL DEFAULT 0,
    result TEXT,
    record TEXT,
    code_version TEXT,
    owner TEXT,
    heartbeat_timeout REAL
);
CREATE INDEX IF NOT EXISTS runs_status ON runs (status);
CREATE INDEX IF NOT EXISTS runs_sweep ON runs (sweep_id);
CREATE TABLE IF NOT EXISTS metrics (
    run_id TEXT NOT NULL,
    step INTEGER NOT NULL,
    loss REAL, grad_norm REAL, grad_norm_clipped REAL, clipped INTEGER, skipped INTEGER,
    rho REAL, valid REAL, elapsed REAL,
    PRIMARY KEY (run_id, step)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sweeps (id TEXT PRIMARY KEY, spec TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS runners (
    id TEXT PRIMARY KEY, host TEXT NOT NULL, pid INTEGER NOT NULL, heartbeat REAL NOT NULL,
    started REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS snapshots (
    run_id TEXT NOT NULL, step INTEGER NOT NULL, kinds TEXT NOT NULL, grad_norm REAL,
    data TEXT NOT NULL,
    PRIMARY KEY (run_id, step)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS slices (
    id TEXT PRIMARY KEY, run_id TEXT NOT NULL, step INTEGER NOT NULL, status TEXT NOT NULL,
    progress REAL NOT NULL DEFAULT 0, result TEXT, error TEXT, backend TEXT NOT NULL,
    owner TEXT, worker TEXT, host TEXT, pid INTEGER, heartbeat REAL,
    created REAL NOT NULL, updated REAL NOT NULL, started REAL, ended REAL
);
CREATE INDEX IF NOT EXISTS slices_status ON slices (status);
CREATE INDEX IF NOT EXISTS slices_run ON slices (run_id, step);
"""

_INHERITED: list[sqlite3.Connection] = []
"""Connections a forked child inherited from its parent: kept open, never used (see _conn)."""


def _wal(conn: sqlite3.Connection, wait_s: float) -> None:
    """Put ``conn``'s file in WAL mode.  Switching the journal mode takes an exclusive lock and
    SQLite answers "database is locked" at once, without its busy handler, while another process
    opens the same new file (two gunicorn workers starting together): retry until ``wait_s``."""
    deadline, pause = time.monotonic() + wait_s, 0.005
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() + pause > deadline:
                raise
            time.sleep(pause)
            pause = min(2 * pause, 0.25)


class _Tx:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.conn.execute("COMMIT")
        else:
            self.conn.execute("ROLLBACK")


class SQLiteStore(RunStore):
    """The SQLite run store (see the module's description).

    Parameters
    ----------
    location : str or Path
        The SQLite file (or ``sqlite:///path``); its directory is created.
    heartbeat_timeout_s : float, optional
        See :class:`~clipviz.store.base.RunStore`.
    """

    dialect = "sqlite"
    _SEQ = "rowid"

    def _open(self, location: str | os.PathLike) -> None:
        if isinstance(location, str) and location.startswith(SQLITE_SCHEME):
            location = location[len(SQLITE_SCHEME):]  # sqlite:///rel/path, sqlite:////abs/path
        self.path = Path(location)
        if self.path.exists() and self.path.is_dir():
            raise ValueError(f"run store path {self.path} is a directory; give a file name")
        self.path.parent.mkdir(parents=True, exist_ok=True)

    @property
    def location(self) -> str:
        return str(self.path)

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r})"

    # --- connections ---------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        """This thread's connection (a new one after a fork: connections never cross processes)."""
        loc = self._local
        if getattr(loc, "pid", None) != os.getpid() or getattr(loc, "conn", None) is None:
            if getattr(loc, "conn", None) is not None:
                # inherited across a fork: never close it here.  Closing a descriptor drops every
                # POSIX lock this process holds on the file, its own new connection's included.
                _INHERITED.append(loc.conn)
            busy = SETTINGS.sqlite_busy_s
            conn = sqlite3.connect(self.path, timeout=busy, isolation_level=None,
                                   check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {int(busy * 1000)}")
            _wal(conn, busy)
            conn.execute("PRAGMA synchronous = FULL")  # a committed result survives power loss
            conn.execute("PRAGMA foreign_keys = ON")
            conn.row_factory = sqlite3.Row
            loc.conn, loc.pid = conn, os.getpid()
        return loc.conn

    def _tx(self, lock: bool = False) -> _Tx:
        # BEGIN IMMEDIATE takes the write lock at once: every write transaction is serialised,
        # so ``lock`` needs nothing more here
        return _Tx(self._conn())

    def _insert_metrics(self, c: sqlite3.Connection, rows: list[tuple]) -> None:
        c.executemany("INSERT OR REPLACE INTO metrics VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)

    def _init_schema(self) -> None:
        with self._tx() as c:
            # every store has had its meta table, written together with its runs table
            has_meta = c.execute("SELECT 1 FROM sqlite_master WHERE name = 'meta'").fetchone()
            row = c.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone() if has_meta else None
            version = int(row[0]) if row is not None else SCHEMA_VERSION  # None: a new store
            if version > SCHEMA_VERSION:
                raise ValueError(f"run store {self.path} has schema {version}, newer than this clipviz "
                                 f"reads ({SCHEMA_VERSION}): upgrade clipviz")
            while version < SCHEMA_VERSION:  # migrate in place, in this transaction
                for sql in _MIGRATIONS[version]:
                    c.execute(sql)
                log.info("run store %s migrated from schema %d to %d", self.path, version, version + 1)
                version += 1
            for stmt in filter(str.strip, _SCHEMA.split(";")):
                c.execute(stmt)
            c.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            conn.close()
        self._local.conn = None
