"""The run store: every training run's config, live telemetry and result, in SQLite.

One SQLite file (``runs.sqlite`` in the data directory, ``CLIPVIZ_DATA_DIR`` or
``./clipviz-data`` by default) is shared by the web app and by every worker
process.  It runs in WAL mode, so the web app reads a run's curves while its
worker appends to them, and several processes may write at once (each write is
one short ``BEGIN IMMEDIATE`` transaction; waits are bounded by a busy timeout).

Tables
------
``runs``     one row per run: id, sweep, config JSON, status, reason, worker
             identity (host, pid) and heartbeat, created/updated/started/ended
             times, progress, cancel flag, result JSON and the full run record.
``metrics``  one row per training update (loss, ||g|| before and after
             clipping, clipped, skipped, rho(W_rec), validation metric, elapsed),
             appended in batches by the worker.
``sweeps``   one row per sweep (its specification JSON).
``runners``  the embedded job layer's live runner processes.

Statuses: ``queued`` -> ``running`` -> ``finished`` | ``cancelled`` | ``failed``.
A run whose worker died is never shown as running for ever: every read first
*reaps* running runs whose worker process is gone (same host, checked by pid)
or whose heartbeat is older than ``heartbeat_timeout_s``, marking them failed
with the reason.  Reaping never touches a run that reached a final status, and
a worker that turns out to be alive after all (a very long update) puts its
run back to running with its next heartbeat; nothing a run wrote is deleted.
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from . import config
from .config import SETTINGS

log = logging.getLogger(__name__)

STATUSES = ("queued", "running", "finished", "cancelled", "failed")
FINAL = ("finished", "cancelled", "failed")
METRIC_COLUMNS = ("loss", "grad_norm", "grad_norm_clipped", "clipped", "skipped", "rho", "valid",
                  "elapsed")
"""Telemetry columns, in the order of the training callback's event keys (``update`` is the key)."""

SCHEMA_VERSION = 2
"""1: the first store; 2: ``runs.owner`` (who may cancel a run).  Older files are migrated on open."""
_MIGRATIONS = {1: ["ALTER TABLE runs ADD COLUMN owner TEXT"]}
"""SQL that takes a store from schema ``k`` to ``k + 1``."""
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
    owner TEXT
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
"""


def default_path() -> Path:
    """The run store file inside the data directory (:func:`clipviz.config.store_path`)."""
    return config.store_path()


def hostname() -> str:
    """This machine's (or container's) name, as recorded with each worker."""
    return socket.gethostname()


def pid_alive(pid: int) -> bool:
    """True if process ``pid`` exists on this host and is not a zombie."""
    if pid is None or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    try:  # a zombie has exited; only its exit status is left
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
        return stat[stat.rindex(b")") + 2:stat.rindex(b")") + 3] != b"Z"
    except (OSError, ValueError):
        return True


def _dumps(obj: Any) -> str:
    # allow_nan: a diverged run's record may hold inf/NaN; Python's json reads them back.
    return json.dumps(obj, allow_nan=True, separators=(",", ":"))


def _num(v: Any) -> float | None:
    """A finite-or-infinite float for a REAL column; NaN/None become NULL."""
    if v is None:
        return None
    f = float(v)
    return None if math.isnan(f) else f


def _cell(key: str, v: Any) -> float | int | None:
    """One telemetry value for its column: clipped a 0/1 flag, skipped a (cumulative) count."""
    if v is None:
        return None
    if key == "clipped":
        return int(bool(v))
    if key == "skipped":
        return int(v)
    return _num(v)


@dataclass(frozen=True)
class Run:
    """One run as the store shows it (after reaping)."""

    id: str
    sweep_id: str | None
    label: str | None
    config: dict
    backend: str
    status: str
    reason: str | None
    worker: str | None
    heartbeat: float | None
    created: float
    updated: float
    started: float | None
    ended: float | None
    done: int
    total: int | None
    cancel_requested: bool
    result: dict | None
    code_version: str | None

    @property
    def active(self) -> bool:
        """True while the run is queued or running."""
        return self.status in ("queued", "running")

    def to_dict(self) -> dict:
        """A JSON-ready dict (for the web app's endpoints)."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


class RunStore:
    """The SQLite run store (safe to share between threads and processes).

    Parameters
    ----------
    path : str or Path, optional
        The SQLite file; default :func:`default_path`.  Its directory is created.
    heartbeat_timeout_s : float, optional
        A running run without a heartbeat for this long is reaped as failed
        (default :attr:`Settings.heartbeat_timeout_s`).
    """

    def __init__(self, path: str | os.PathLike | None = None,
                 heartbeat_timeout_s: float | None = None) -> None:
        self.path = Path(path) if path is not None else default_path()
        if self.path.exists() and self.path.is_dir():
            raise ValueError(f"run store path {self.path} is a directory; give a file name")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.heartbeat_timeout_s = float(heartbeat_timeout_s if heartbeat_timeout_s is not None
                                         else SETTINGS.heartbeat_timeout_s)
        if not self.heartbeat_timeout_s > 0:
            raise ValueError("heartbeat_timeout_s must be > 0")
        self._local = threading.local()
        self._reaped_at = -math.inf  # time.monotonic() of the last reap_due scan in this process
        self._init_schema()

    # --- connections ---------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        """This thread's connection (a new one after a fork: connections never cross processes)."""
        loc = self._local
        if getattr(loc, "pid", None) != os.getpid() or getattr(loc, "conn", None) is None:
            if getattr(loc, "conn", None) is not None:
                # inherited across a fork: never close it here.  Closing a descriptor drops every
                # POSIX lock this process holds on the file, its own new connection's included.
                _INHERITED.append(loc.conn)
            conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None,
                                   check_same_thread=False)
            conn.execute("PRAGMA busy_timeout = 30000")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")  # a committed result survives power loss
            conn.execute("PRAGMA foreign_keys = ON")
            conn.row_factory = sqlite3.Row
            loc.conn, loc.pid = conn, os.getpid()
        return loc.conn

    class _Tx:
        def __init__(self, conn: sqlite3.Connection, immediate: bool) -> None:
            self.conn, self.immediate = conn, immediate

        def __enter__(self) -> sqlite3.Connection:
            self.conn.execute("BEGIN IMMEDIATE" if self.immediate else "BEGIN")
            return self.conn

        def __exit__(self, exc_type, exc, tb) -> None:
            if exc_type is None:
                self.conn.execute("COMMIT")
            else:
                self.conn.execute("ROLLBACK")

    def _tx(self, immediate: bool = True) -> "RunStore._Tx":
        return RunStore._Tx(self._conn(), immediate)

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
        """Close this thread's connection (others close when their thread ends)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            conn.close()
        self._local.conn = None

    # --- writing: the web app ------------------------------------------------
    def create_run(self, config: Mapping, backend: str, *, sweep_id: str | None = None,
                   label: str | None = None, total: int | None = None, owner: str | None = None) -> str:
        """Record a new queued run and return its id (``owner``: who may cancel it, see
        :meth:`owner_of`; None: anyone with access to the store)."""
        if backend not in ("local", "celery", "inline"):
            raise ValueError("backend must be 'local', 'celery' or 'inline'")
        run_id = uuid.uuid4().hex[:12]
        now = time.time()
        with self._tx() as c:
            c.execute("INSERT INTO runs (id, sweep_id, label, config, backend, status, created, "
                      "updated, total, owner) VALUES (?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?)",
                      (run_id, sweep_id, label, _dumps(dict(config)), backend, now, now, total, owner))
        return run_id

    def create_sweep(self, spec: Mapping) -> str:
        """Record a sweep specification and return its id."""
        sweep_id = "s" + uuid.uuid4().hex[:11]
        with self._tx() as c:
            c.execute("INSERT INTO sweeps VALUES (?, ?, ?)", (sweep_id, _dumps(dict(spec)), time.time()))
        return sweep_id

    def owner_of(self, run_id: str) -> str | None:
        """The owner recorded with the run (KeyError if unknown)."""
        row = self._conn().execute("SELECT owner FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise KeyError(run_id)
        return row["owner"]

    def request_cancel(self, run_id: str) -> str:
        """Ask a run to stop; a queued run is cancelled at once.  Returns its status after."""
        now = time.time()
        with self._tx() as c:
            row = c.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                raise KeyError(run_id)
            if row["status"] == "queued":
                c.execute("UPDATE runs SET status = 'cancelled', reason = 'cancelled before it "
                          "started', cancel = 1, ended = ?, updated = ? WHERE id = ?",
                          (now, now, run_id))
                return "cancelled"
            if row["status"] == "running":
                c.execute("UPDATE runs SET cancel = 1, updated = ? WHERE id = ?", (now, run_id))
            return row["status"]

    # --- writing: the worker -------------------------------------------------
    def claim(self, run_id: str, worker: str, pid: int | None = None,
              host: str | None = None) -> bool:
        """Mark a queued run as running in this worker; False if it is not queued any more."""
        now = time.time()
        with self._tx() as c:
            cur = c.execute("UPDATE runs SET status = 'running', worker = ?, host = ?, pid = ?, "
                            "heartbeat = ?, started = ?, updated = ? WHERE id = ? AND status = "
                            "'queued'", (worker, host or hostname(), pid or os.getpid(), now, now,
                                         now, run_id))
            return cur.rowcount == 1

    def claim_next(self, backend: str, worker: str) -> str | None:
        """Claim the oldest queued run of ``backend``; its id, or None if none is queued."""
        now = time.time()
        with self._tx() as c:
            row = c.execute("SELECT id FROM runs WHERE status = 'queued' AND backend = ? "
                            "ORDER BY created, rowid LIMIT 1", (backend,)).fetchone()
            if row is None:
                return None
            c.execute("UPDATE runs SET status = 'running', worker = ?, host = ?, pid = ?, "
                      "heartbeat = ?, started = ?, updated = ? WHERE id = ?",
                      (worker, hostname(), os.getpid(), now, now, now, row["id"]))
            return row["id"]

    def append_metrics(self, run_id: str, events: Iterable[Mapping], *,
                       done: int | None = None, total: int | None = None) -> bool:
        """Append telemetry rows (training-callback events), beat the heart, update progress.

        Returns True if a cancel was requested for this run (the worker should stop).
        """
        rows = [(run_id, int(e["update"]), *(_cell(k, e.get(k)) for k in METRIC_COLUMNS))
                for e in events]
        now = time.time()
        with self._tx() as c:
            if rows:
                c.executemany("INSERT OR REPLACE INTO metrics VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                              rows)
            if done is None and rows:
                done = rows[-1][1]
            c.execute("UPDATE runs SET heartbeat = ?, updated = ?, done = COALESCE(?, done), "
                      "total = COALESCE(?, total), status = CASE WHEN reaped = 1 AND status = "
                      "'failed' THEN 'running' ELSE status END, reason = CASE WHEN reaped = 1 AND "
                      "status = 'failed' THEN NULL ELSE reason END, reaped = 0 WHERE id = ?",
                      (now, now, done, total, run_id))
            row = c.execute("SELECT cancel FROM runs WHERE id = ?", (run_id,)).fetchone()
        return bool(row and row["cancel"])

    def heartbeat(self, run_id: str) -> bool:
        """Refresh a running run's heartbeat; True if a cancel was requested."""
        return self.append_metrics(run_id, ())

    def cancel_requested(self, run_id: str) -> bool:
        """True if someone asked this run to stop (one cheap read)."""
        row = self._conn().execute("SELECT cancel FROM runs WHERE id = ?", (run_id,)).fetchone()
        return bool(row and row["cancel"])

    def finish(self, run_id: str, record: Mapping, events: Iterable[Mapping] = ()) -> None:
        """Store the final run record (status finished or cancelled) with the last telemetry rows.

        A run that was reaped while its worker was in fact alive gets its real outcome.
        """
        status = record.get("status", "finished")
        if status not in ("finished", "cancelled"):
            raise ValueError(f"a run record's status must be 'finished' or 'cancelled', got {status!r}")
        self.append_metrics(run_id, events)
        now = time.time()
        series = record.get("series") or {}
        done = None
        for key in ("update", "updates", "loss"):
            if isinstance(series.get(key), list) and series[key]:
                done = int(series[key][-1]) if key != "loss" else len(series[key])
                break
        with self._tx() as c:
            c.execute("UPDATE runs SET status = ?, reason = ?, reaped = 0, ended = ?, updated = ?, "
                      "result = ?, record = ?, code_version = ?, done = COALESCE(?, done) "
                      "WHERE id = ?",
                      (status, "cancelled by request" if status == "cancelled" else None, now, now,
                       _dumps(record.get("result")), _dumps(dict(record)),
                       record.get("code_version"), done, run_id))

    def fail(self, run_id: str, reason: str) -> None:
        """Mark a run failed (an exception in the worker), keeping everything it wrote."""
        now = time.time()
        with self._tx() as c:
            c.execute("UPDATE runs SET status = 'failed', reason = ?, reaped = 0, ended = ?, "
                      "updated = ? WHERE id = ? AND status IN ('queued', 'running')",
                      (reason[:2000], now, now, run_id))

    # --- liveness ------------------------------------------------------------
    def reap(self, now: float | None = None) -> list[str]:
        """Mark running runs whose worker is gone as failed; return their ids."""
        now = time.time() if now is None else now
        me = hostname()
        conn = self._conn()
        dead: list[tuple[str, str]] = []
        for r in conn.execute("SELECT id, worker, host, pid, heartbeat FROM runs "
                              "WHERE status = 'running'").fetchall():
            ago = now - (r["heartbeat"] or 0.0)
            if r["host"] == me and r["pid"] and not pid_alive(r["pid"]):
                dead.append((r["id"], f"worker process {r['pid']} on {r['host']} ({r['worker']}) "
                                      f"exited without finishing the run (last heartbeat "
                                      f"{ago:.1f} s before)"))
            elif ago > self.heartbeat_timeout_s:
                dead.append((r["id"], f"no heartbeat from worker {r['worker']} on {r['host']} for "
                                      f"{ago:.0f} s (limit {self.heartbeat_timeout_s:.0f} s): "
                                      f"its process died or hung"))
        if dead:
            with self._tx() as c:
                for run_id, reason in dead:
                    c.execute("UPDATE runs SET status = 'failed', reason = ?, reaped = 1, ended = ?, "
                              "updated = ? WHERE id = ? AND status = 'running'",
                              (reason, now, now, run_id))
            for run_id, reason in dead:
                log.warning("run %s marked failed: %s", run_id, reason)
        return [d[0] for d in dead]

    def reap_due(self) -> list[str]:
        """:meth:`reap`, at most once per :attr:`Settings.heartbeat_s` in this process: for a
        page that refreshes several times a second in every open tab, a dead worker's run is
        marked failed within a heartbeat period without a scan of the running runs each time."""
        now = time.monotonic()
        if now - self._reaped_at < SETTINGS.heartbeat_s:
            return []
        self._reaped_at = now
        return self.reap()

    # --- reading -------------------------------------------------------------
    @staticmethod
    def _run(r: sqlite3.Row) -> Run:
        return Run(id=r["id"], sweep_id=r["sweep_id"], label=r["label"],
                   config=json.loads(r["config"]), backend=r["backend"], status=r["status"],
                   reason=r["reason"], worker=r["worker"], heartbeat=r["heartbeat"],
                   created=r["created"], updated=r["updated"], started=r["started"],
                   ended=r["ended"], done=r["done"], total=r["total"],
                   cancel_requested=bool(r["cancel"]),
                   result=json.loads(r["result"]) if r["result"] else None,
                   code_version=r["code_version"])

    _RUN_COLS = ("id, sweep_id, label, config, backend, status, reason, worker, heartbeat, created, "
                 "updated, started, ended, done, total, cancel, result, code_version")

    def get(self, run_id: str) -> Run:
        """One run (KeyError if unknown)."""
        self.reap()
        r = self._conn().execute(f"SELECT {self._RUN_COLS} FROM runs WHERE id = ?",
                                 (run_id,)).fetchone()
        if r is None:
            raise KeyError(run_id)
        return self._run(r)

    def count_active(self) -> int:
        """How many runs are queued or running (dead workers' runs reaped first)."""
        self.reap()
        return int(self._conn().execute(
            "SELECT COUNT(*) FROM runs WHERE status IN ('queued', 'running')").fetchone()[0])

    def count_queued(self, backend: str) -> int:
        """How many runs of ``backend`` wait in the queue."""
        return int(self._conn().execute("SELECT COUNT(*) FROM runs WHERE status = 'queued' AND backend = ?",
                                        (backend,)).fetchone()[0])

    def list(self, *, sweep_id: str | None = None, status: str | None = None,
             limit: int = 1000, reap: bool = True) -> list[Run]:
        """Runs, newest first, optionally of one sweep or one status (dead workers' runs reaped
        first, unless ``reap=False``: the caller reaps on its own schedule, :meth:`reap_due`)."""
        if reap:
            self.reap()
        q = f"SELECT {self._RUN_COLS} FROM runs"
        cond, args = [], []
        if sweep_id is not None:
            cond.append("sweep_id = ?")
            args.append(sweep_id)
        if status is not None:
            cond.append("status = ?")
            args.append(status)
        if cond:
            q += " WHERE " + " AND ".join(cond)
        q += " ORDER BY created DESC, rowid DESC LIMIT ?"
        args.append(int(limit))
        return [self._run(r) for r in self._conn().execute(q, args).fetchall()]

    def metrics(self, run_id: str, since: int = -1) -> dict[str, list]:
        """Telemetry rows with ``update > since`` as columns: update, loss, grad_norm, ..."""
        rows = self._conn().execute(
            "SELECT step, " + ", ".join(METRIC_COLUMNS) + " FROM metrics WHERE run_id = ? AND "
            "step > ? ORDER BY step", (run_id, int(since))).fetchall()
        cols: dict[str, list] = {"update": [r[0] for r in rows]}
        for i, k in enumerate(METRIC_COLUMNS, start=1):
            cols[k] = [r[i] for r in rows]
        return cols

    def record(self, run_id: str) -> dict | None:
        """The full run record a finished or cancelled run stored (None before that)."""
        r = self._conn().execute("SELECT record FROM runs WHERE id = ?", (run_id,)).fetchone()
        if r is None:
            raise KeyError(run_id)
        return json.loads(r["record"]) if r["record"] else None

    def sweep(self, sweep_id: str) -> dict:
        """A sweep's specification (KeyError if unknown)."""
        r = self._conn().execute("SELECT spec FROM sweeps WHERE id = ?", (sweep_id,)).fetchone()
        if r is None:
            raise KeyError(sweep_id)
        return json.loads(r["spec"])

    def sweeps(self) -> list[tuple[str, dict, float]]:
        """All sweeps, newest first: (id, spec, created)."""
        return [(r["id"], json.loads(r["spec"]), r["created"]) for r in self._conn().execute(
            "SELECT id, spec, created FROM sweeps ORDER BY created DESC").fetchall()]

    # --- the embedded job layer's runner registry ---------------------------
    def runner_register(self, runner_id: str) -> None:
        now = time.time()
        with self._tx() as c:
            c.execute("INSERT OR REPLACE INTO runners VALUES (?, ?, ?, ?, ?)",
                      (runner_id, hostname(), os.getpid(), now, now))

    def runner_beat(self, runner_id: str) -> None:
        with self._tx() as c:
            c.execute("UPDATE runners SET heartbeat = ? WHERE id = ?", (time.time(), runner_id))

    def runner_exit_if_idle(self, runner_id: str, backend: str = "local") -> bool:
        """Unregister the runner if no run of ``backend`` is queued (atomically); True if it did."""
        with self._tx() as c:
            if c.execute("SELECT 1 FROM runs WHERE status = 'queued' AND backend = ? LIMIT 1",
                         (backend,)).fetchone():
                return False
            c.execute("DELETE FROM runners WHERE id = ?", (runner_id,))
            return True

    def runner_unregister(self, runner_id: str) -> None:
        with self._tx() as c:
            c.execute("DELETE FROM runners WHERE id = ?", (runner_id,))

    def reserve_runner(self, max_runners: int) -> str | None:
        """Reserve a slot for a new runner if fewer than ``max_runners`` are alive; its id or None.

        The slot is held under the caller's pid until the runner registers its own.
        """
        with self._tx() as c:
            if self.live_runners(c) >= max_runners:
                return None
            runner_id = "r" + uuid.uuid4().hex[:11]
            now = time.time()
            c.execute("INSERT INTO runners VALUES (?, ?, ?, ?, ?)",
                      (runner_id, hostname(), os.getpid(), now, now))
            return runner_id

    def live_runners(self, c: sqlite3.Connection | None = None) -> int:
        """Number of registered runners still alive (dead ones are removed)."""
        conn = c or self._conn()
        me, now, alive, gone = hostname(), time.time(), 0, []
        for r in conn.execute("SELECT id, host, pid, heartbeat FROM runners").fetchall():
            if (r["host"] == me and not pid_alive(r["pid"])) or \
                    now - r["heartbeat"] > self.heartbeat_timeout_s:
                gone.append(r["id"])
            else:
                alive += 1
        for g in gone:
            conn.execute("DELETE FROM runners WHERE id = ?", (g,))
        return alive


_SHARED: dict[tuple[str, int], RunStore] = {}
_INHERITED: list[sqlite3.Connection] = []
"""Connections a forked child inherited from its parent: kept open, never used (see _conn)."""


def shared_store() -> RunStore:
    """This process's store for the current ``CLIPVIZ_DATA_DIR`` (opened once, not per request).

    Only connections are cached here; every read goes to the database, so
    several web processes always agree.
    """
    key = (str(default_path().resolve()), os.getpid())
    st = _SHARED.get(key)
    if st is None:
        st = _SHARED[key] = RunStore(default_path())
    return st
