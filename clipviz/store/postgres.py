"""The networked run store: PostgreSQL, for workers on several machines.

Chosen by ``CLIPVIZ_DATABASE_URL=postgresql://user:password@host:5432/dbname`` (or a URL given
to :class:`~clipviz.store.base.RunStore`).  The web app and every Celery worker, on any host,
connect to the same database; nothing is shared through files.  The driver is psycopg 3.

Concurrency: each thread of each process has its own connection, in autocommit mode; every
write is one short transaction.  Claiming a queued run locks its row (``FOR UPDATE SKIP
LOCKED``), so concurrent claimers never take the same run nor wait for each other; the runner
registry's read-then-write transactions take a transaction-level advisory lock.  Partial
indexes cover the queue and the active runs, so their scans stay small however many runs the
store has kept.

Clocks: every time the store records (heartbeats, start and end) is on the database server's
clock (each connection measures its offset once), so workers on hosts whose clocks disagree
still agree on how old a heartbeat is.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from typing import Iterator

from .base import METRIC_COLUMNS, SCHEMA_VERSION, RunStore, redact

log = logging.getLogger("clipviz.runstore")

_SCHEMA_LOCK = 0x636C6970  # advisory-lock keys ("clip"): schema creation and migration ...
_RUNNERS_LOCK = 0x636C6971  # ... and the runner registry
_MIGRATIONS: dict[int, list[str]] = {}
"""SQL that takes a PostgreSQL store from schema ``k`` to ``k + 1`` (the first was 3)."""
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    seq BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
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
    heartbeat DOUBLE PRECISION,
    created DOUBLE PRECISION NOT NULL,
    updated DOUBLE PRECISION NOT NULL,
    started DOUBLE PRECISION,
    ended DOUBLE PRECISION,
    done INTEGER NOT NULL DEFAULT 0,
    total INTEGER,
    cancel INTEGER NOT NULL DEFAULT 0,
    result TEXT,
    record TEXT,
    code_version TEXT,
    owner TEXT,
    heartbeat_timeout DOUBLE PRECISION
);
CREATE INDEX IF NOT EXISTS runs_active ON runs (status) WHERE status IN ('queued', 'running');
CREATE INDEX IF NOT EXISTS runs_queue ON runs (backend, created, seq) WHERE status = 'queued';
CREATE INDEX IF NOT EXISTS runs_sweep ON runs (sweep_id);
CREATE INDEX IF NOT EXISTS runs_newest ON runs (created DESC, seq DESC);
CREATE TABLE IF NOT EXISTS metrics (
    run_id TEXT NOT NULL,
    step INTEGER NOT NULL,
    loss DOUBLE PRECISION, grad_norm DOUBLE PRECISION, grad_norm_clipped DOUBLE PRECISION,
    clipped INTEGER, skipped INTEGER, rho DOUBLE PRECISION, valid DOUBLE PRECISION,
    elapsed DOUBLE PRECISION,
    PRIMARY KEY (run_id, step)
);
CREATE TABLE IF NOT EXISTS sweeps (id TEXT PRIMARY KEY, spec TEXT NOT NULL,
                                   created DOUBLE PRECISION NOT NULL);
CREATE TABLE IF NOT EXISTS runners (
    id TEXT PRIMARY KEY, host TEXT NOT NULL, pid INTEGER NOT NULL,
    heartbeat DOUBLE PRECISION NOT NULL, started DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS snapshots (
    run_id TEXT NOT NULL, step INTEGER NOT NULL, kinds TEXT NOT NULL, grad_norm DOUBLE PRECISION,
    data TEXT NOT NULL,
    PRIMARY KEY (run_id, step)
);
CREATE TABLE IF NOT EXISTS slices (
    id TEXT PRIMARY KEY, run_id TEXT NOT NULL, step INTEGER NOT NULL, status TEXT NOT NULL,
    progress DOUBLE PRECISION NOT NULL DEFAULT 0, result TEXT, error TEXT, backend TEXT NOT NULL,
    owner TEXT, worker TEXT, host TEXT, pid INTEGER, heartbeat DOUBLE PRECISION,
    created DOUBLE PRECISION NOT NULL, updated DOUBLE PRECISION NOT NULL, started DOUBLE PRECISION, ended DOUBLE PRECISION
);
CREATE INDEX IF NOT EXISTS slices_status ON slices (status);
CREATE INDEX IF NOT EXISTS slices_run ON slices (run_id, step)
"""
_TYPES = {"loss": "float8", "grad_norm": "float8", "grad_norm_clipped": "float8", "clipped": "int4",
          "skipped": "int4", "rho": "float8", "valid": "float8", "elapsed": "float8"}
_INSERT_METRICS = (
    "INSERT INTO metrics (run_id, step, " + ", ".join(METRIC_COLUMNS) + ") "
    "SELECT %s::text, * FROM unnest(%s::int4[], " + ", ".join(f"%s::{_TYPES[k]}[]" for k in METRIC_COLUMNS)
    + ") ON CONFLICT (run_id, step) DO UPDATE SET "
    + ", ".join(f"{k} = excluded.{k}" for k in METRIC_COLUMNS))
"""One statement per batch: the rows travel as one array per column."""

_SQL: dict[str, str] = {}


def _sql(q: str) -> str:
    """A portable statement (``?`` placeholders) in psycopg's form (``%s``)."""
    out = _SQL.get(q)
    if out is None:
        out = _SQL[q] = q.replace("?", "%s")
    return out


class _Conn:
    """A psycopg connection that speaks the portable SQL of :mod:`clipviz.store.base`."""

    __slots__ = ("raw",)

    def __init__(self, raw) -> None:
        self.raw = raw

    def execute(self, q: str, args=()):
        return self.raw.execute(_sql(q), args)

    def executemany(self, q: str, rows) -> None:
        with self.raw.cursor() as cur:
            cur.executemany(_sql(q), rows)


class PostgresStore(RunStore):
    """The PostgreSQL run store (see the module's description).

    Parameters
    ----------
    location : str
        A ``postgresql://`` URL (libpq's: user, password, host, port, database, parameters).
    heartbeat_timeout_s : float, optional
        See :class:`~clipviz.store.base.RunStore`.
    """

    dialect = "postgresql"
    _SEQ = "seq"
    _FOR_UPDATE = " FOR UPDATE"
    _SKIP_LOCKED = " FOR UPDATE SKIP LOCKED"
    path = None  # no file: see ``location``

    def _open(self, location: str | os.PathLike) -> None:
        self.url = str(location)
        self._offset = 0.0  # the server's clock minus this host's, as last measured
        self._offset_lock = threading.Lock()

    @property
    def location(self) -> str:
        return self.url

    def __repr__(self) -> str:
        return f"PostgresStore({redact(self.url)!r})"

    # --- connections ---------------------------------------------------------
    def _connect(self):
        import psycopg
        from psycopg.rows import dict_row

        try:
            raw = psycopg.connect(self.url, autocommit=True, row_factory=dict_row, connect_timeout=10,
                                  application_name="clipviz",
                                  # a lock held longer than SQLite's busy timeout is a fault
                                  options="-c lock_timeout=30000")
        except psycopg.OperationalError as exc:
            raise ConnectionError(f"cannot connect to the run store at {redact(self.url)}: "
                                  f"{str(exc).strip()}") from None
        t0 = time.time()
        server = raw.execute("SELECT EXTRACT(EPOCH FROM clock_timestamp())::float8 AS t").fetchone()["t"]
        t1 = time.time()
        with self._offset_lock:
            self._offset = float(server) - (t0 + t1) / 2
        return _Conn(raw)

    def _conn(self) -> _Conn:
        """This thread's connection (a new one after a fork, or after the old one broke)."""
        loc = self._local
        conn = getattr(loc, "conn", None)
        if conn is None or getattr(loc, "pid", None) != os.getpid() or conn.raw.closed or conn.raw.broken:
            # an inherited connection is dropped, never closed: libpq's own finaliser leaves a
            # connection of another process alone, so the parent's session goes on
            loc.conn, loc.pid = self._connect(), os.getpid()
        return loc.conn

    @contextlib.contextmanager
    def _tx(self, lock: bool = False) -> Iterator[_Conn]:
        c = self._conn()
        with c.raw.transaction():
            if lock:
                c.raw.execute("SELECT pg_advisory_xact_lock(%s)", (_RUNNERS_LOCK,))
            yield c

    def _now(self) -> float:
        return time.time() + self._offset

    def _insert_metrics(self, c: _Conn, rows: list[tuple]) -> None:
        if not rows:
            return
        run_ids = {r[0] for r in rows}
        if len(run_ids) != 1:  # pragma: no cover - append_metrics writes one run's rows
            for rid in run_ids:
                self._insert_metrics(c, [r for r in rows if r[0] == rid])
            return
        cols = list(zip(*rows))
        c.raw.execute(_INSERT_METRICS, (rows[0][0], *[list(col) for col in cols[1:]]))

    def _init_schema(self) -> None:
        with self._tx() as c:
            c.raw.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))  # one opener at a time
            has_meta = c.raw.execute("SELECT to_regclass('meta') IS NOT NULL AS t").fetchone()["t"]
            row = (c.raw.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
                   if has_meta else None)
            version = int(row["value"]) if row is not None else SCHEMA_VERSION  # None: a new store
            if version > SCHEMA_VERSION:
                raise ValueError(f"run store {redact(self.url)} has schema {version}, newer than "
                                 f"this clipviz reads ({SCHEMA_VERSION}): upgrade clipviz")
            while version < SCHEMA_VERSION:
                for q in _MIGRATIONS[version]:
                    c.raw.execute(q)
                log.info("run store %s migrated from schema %d to %d", redact(self.url), version,
                         version + 1)
                version += 1
            for stmt in filter(str.strip, _SCHEMA.split(";")):
                c.raw.execute(stmt)
            c.raw.execute("INSERT INTO meta VALUES ('schema', %s) ON CONFLICT (key) DO UPDATE "
                          "SET value = excluded.value", (str(SCHEMA_VERSION),))

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            conn.raw.close()
        self._local.conn = None
