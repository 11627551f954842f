"""The backend-neutral run store: what a run is, and every operation on it in portable SQL.

:class:`RunStore` holds the logic once; a backend (:class:`clipviz.store.sqlite.SQLiteStore`,
:class:`clipviz.store.postgres.PostgresStore`) supplies its connections, transactions, schema and
the few statements whose dialects differ.  SQL here is written with ``?`` placeholders; the
PostgreSQL backend translates them.
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ContextManager, Iterable, Mapping

from .. import config
from ..config import SETTINGS

log = logging.getLogger("clipviz.runstore")

STATUSES = ("queued", "running", "finished", "cancelled", "failed")
FINAL = ("finished", "cancelled", "failed")
METRIC_COLUMNS = ("loss", "grad_norm", "grad_norm_clipped", "clipped", "skipped", "rho", "valid",
                  "elapsed")
"""Telemetry columns, in the order of the training callback's event keys (``update`` is the key)."""

SCHEMA_VERSION = 3
"""1: the first store; 2: ``runs.owner`` (who may cancel a run); 3: ``runs.heartbeat_timeout``
(the timeout the worker that claimed a run promised to beat within; hosts need not share a
setting).  A store with an older schema is migrated on open; one with a newer one is refused.
PostgreSQL stores start at 3."""

POSTGRES_SCHEMES = ("postgresql://", "postgres://")
SQLITE_SCHEME = "sqlite:///"


def default_path() -> Path:
    """The SQLite run store file inside the data directory (:func:`clipviz.config.store_path`)."""
    return config.store_path()


def default_location() -> str | Path:
    """Where the store is by default: ``$CLIPVIZ_DATABASE_URL`` when set, else the SQLite file
    in the data directory."""
    return config.database_url() or default_path()


def redact(url: str) -> str:
    """``url`` without its password (for messages and logs)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


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


def metric_rows(run_id: str, events: Iterable[Mapping]) -> list[tuple]:
    """Training-callback events as ``metrics`` rows: (run_id, step, *METRIC_COLUMNS)."""
    return [(run_id, int(e["update"]), *(_cell(k, e.get(k)) for k in METRIC_COLUMNS))
            for e in events]


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


SLICE_STATUSES = ("queued", "running", "finished", "cancelled", "failed")


@dataclass(frozen=True)
class SliceJob:
    """One error-surface slice of a kept update (:func:`clipviz.jobs.execute_slice`)."""

    id: str
    run_id: str
    update: int
    status: str
    progress: float  #: fraction done, 0 to 1
    result: dict | None  #: :meth:`clipviz.landscape.SnapshotSlice.to_dict` once finished
    error: str | None  #: why it failed or was cancelled
    backend: str
    created: float
    updated: float

    @property
    def active(self) -> bool:
        """True while the slice is queued or running."""
        return self.status in ("queued", "running")


def snapshot_bytes(snapshot: Mapping) -> int:
    """Bytes one encoded snapshot takes in the store (its JSON)."""
    return len(_dumps(dict(snapshot)))


def snapshots_within(snapshots: Iterable[Mapping], max_bytes: int) -> list[dict]:
    """The snapshots a run stores within ``max_bytes``: clipped ones first (largest ‖g‖ first),
    then spikes, then ordinary updates, as many as fit; in update order."""
    def rank(s):
        kinds = s.get("kinds") or ()
        first = 0 if "clipped" in kinds else 1 if "spike" in kinds else 2
        g = s.get("grad_norm")
        return (first, -(g if isinstance(g, (int, float)) else math.inf))

    kept, used = [], 0
    for s in sorted(snapshots, key=rank):
        n = snapshot_bytes(s)
        if used + n <= max_bytes:
            kept.append(dict(s))
            used += n
    return sorted(kept, key=lambda s: int(s["update"]))


def backend_class(location: str | os.PathLike | None) -> type["RunStore"]:
    """The store class for ``location``: a ``postgresql://`` URL, else a SQLite file."""
    if location is None:
        location = default_location()
    if isinstance(location, str) and location.startswith(POSTGRES_SCHEMES):
        from .postgres import PostgresStore

        return PostgresStore
    from .sqlite import SQLiteStore

    return SQLiteStore


class RunStore:
    """The run store (safe to share between threads and processes).

    ``RunStore(location)`` opens the backend that ``location`` names: a ``postgresql://`` URL
    opens :class:`~clipviz.store.postgres.PostgresStore`, a file name (or ``sqlite:///path``)
    :class:`~clipviz.store.sqlite.SQLiteStore`.  Without one, ``$CLIPVIZ_DATABASE_URL`` or the
    SQLite file in the data directory (:func:`default_location`).

    Parameters
    ----------
    location : str or Path, optional
        A database URL or a SQLite file name.
    heartbeat_timeout_s : float, optional
        A run that this store's process claims promises a heartbeat at least this often; a
        running run without one for its own timeout (this value where the run has none) is
        reaped as failed.  Default :func:`clipviz.config.heartbeat_timeout_s`.
    """

    dialect = "portable"
    _SEQ = "rowid"
    """The insertion-order column that breaks ties of ``created``."""
    _FOR_UPDATE = ""
    """Appended to a SELECT whose rows the transaction then updates (row locks, where needed)."""
    _SKIP_LOCKED = ""
    """Appended to the queue's SELECT: concurrent claimers skip each other's rows."""

    def __new__(cls, location: str | os.PathLike | None = None,
                heartbeat_timeout_s: float | None = None):
        if cls is RunStore:
            cls = backend_class(location)
        return super().__new__(cls)

    def __init__(self, location: str | os.PathLike | None = None,
                 heartbeat_timeout_s: float | None = None) -> None:
        self.heartbeat_timeout_s = float(heartbeat_timeout_s if heartbeat_timeout_s is not None
                                         else config.heartbeat_timeout_s())
        if not self.heartbeat_timeout_s > 0:
            raise ValueError("heartbeat_timeout_s must be > 0")
        self._local = threading.local()
        self._reaped_at = -math.inf  # time.monotonic() of the last reap_due scan in this process
        self._open(default_location() if location is None else location)
        self._init_schema()

    # --- what a backend supplies ---------------------------------------------
    @property
    def location(self) -> str:
        """What names this store to another process (a file name or a database URL)."""
        raise NotImplementedError

    def _open(self, location: str | os.PathLike) -> None:
        raise NotImplementedError

    def _conn(self):
        """This thread's connection: ``execute(sql, args)`` returns a cursor (rows by name)."""
        raise NotImplementedError

    def _tx(self, lock: bool = False) -> ContextManager:
        """One write transaction (``lock``: serialised with every other ``lock`` transaction)."""
        raise NotImplementedError

    def _init_schema(self) -> None:
        raise NotImplementedError

    def _insert_metrics(self, c, rows: list[tuple]) -> None:
        """Upsert telemetry rows ``(run_id, step, *METRIC_COLUMNS)`` in one batch."""
        raise NotImplementedError

    def _now(self) -> float:
        """The store's clock (seconds since the epoch) for times it records."""
        return time.time()

    def close(self) -> None:
        """Close this thread's connection (others close when their thread ends)."""
        raise NotImplementedError

    # --- writing: the web app ------------------------------------------------
    def create_run(self, config: Mapping, backend: str, *, sweep_id: str | None = None,
                   label: str | None = None, total: int | None = None, owner: str | None = None) -> str:
        """Record a new queued run and return its id (``owner``: who may cancel it, see
        :meth:`owner_of`; None: anyone with access to the store)."""
        if backend not in ("local", "celery", "inline"):
            raise ValueError("backend must be 'local', 'celery' or 'inline'")
        run_id = uuid.uuid4().hex[:12]
        now = self._now()
        with self._tx() as c:
            c.execute("INSERT INTO runs (id, sweep_id, label, config, backend, status, created, "
                      "updated, total, owner) VALUES (?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?)",
                      (run_id, sweep_id, label, _dumps(dict(config)), backend, now, now, total, owner))
        return run_id

    def create_sweep(self, spec: Mapping) -> str:
        """Record a sweep specification and return its id."""
        sweep_id = "s" + uuid.uuid4().hex[:11]
        with self._tx() as c:
            c.execute("INSERT INTO sweeps (id, spec, created) VALUES (?, ?, ?)",
                      (sweep_id, _dumps(dict(spec)), self._now()))
        return sweep_id

    def owner_of(self, run_id: str) -> str | None:
        """The owner recorded with the run (KeyError if unknown)."""
        row = self._conn().execute("SELECT owner FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise KeyError(run_id)
        return row["owner"]

    def request_cancel(self, run_id: str) -> str:
        """Ask a run to stop; a queued run is cancelled at once.  Returns its status after."""
        now = self._now()
        with self._tx() as c:
            row = c.execute("SELECT status FROM runs WHERE id = ?" + self._FOR_UPDATE,
                            (run_id,)).fetchone()
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
        """Mark a queued run as running in this worker; False if it is not queued any more.

        The run carries this store's :attr:`heartbeat_timeout_s`: the worker promises a
        heartbeat at least that often, and any reader reaps the run when it stops.
        """
        now = self._now()
        with self._tx() as c:
            cur = c.execute("UPDATE runs SET status = 'running', worker = ?, host = ?, pid = ?, "
                            "heartbeat = ?, heartbeat_timeout = ?, started = ?, updated = ? "
                            "WHERE id = ? AND status = 'queued'",
                            (worker, host or hostname(), pid or os.getpid(), now,
                             self.heartbeat_timeout_s, now, now, run_id))
            return cur.rowcount == 1

    def claim_next(self, backend: str, worker: str) -> str | None:
        """Claim the oldest queued run of ``backend``; its id, or None if none is queued."""
        now = self._now()
        with self._tx() as c:
            row = c.execute("SELECT id FROM runs WHERE status = 'queued' AND backend = ? "
                            f"ORDER BY created, {self._SEQ} LIMIT 1" + self._SKIP_LOCKED,
                            (backend,)).fetchone()
            if row is None:
                return None
            c.execute("UPDATE runs SET status = 'running', worker = ?, host = ?, pid = ?, "
                      "heartbeat = ?, heartbeat_timeout = ?, started = ?, updated = ? WHERE id = ?",
                      (worker, hostname(), os.getpid(), now, self.heartbeat_timeout_s, now, now,
                       row["id"]))
            return row["id"]

    def claim_companions(self, run_id: str, worker: str, limit: int,
                         compatible: Callable[[dict], bool], share: int = 1) -> list[str]:
        """Claim up to ``limit`` more queued runs of ``run_id``'s sweep and backend whose config
        ``compatible`` accepts, oldest first, for a worker that trains them together with
        ``run_id`` (:func:`clipviz.jobs.execute_run`); their ids, none for a run outside a sweep.

        ``share``: how many workers the compatible runs are to be shared among; this one takes
        its share (``run_id`` and the queued compatible runs, divided by ``share``, rounded up),
        so that other workers find work too.  Each is marked running exactly as :meth:`claim`
        marks one.
        """
        if limit <= 0:
            return []
        now = self._now()
        with self._tx() as c:
            row = c.execute("SELECT sweep_id, backend FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None or row["sweep_id"] is None:
                return []
            rows = c.execute("SELECT id, config FROM runs WHERE status = 'queued' AND backend = ? "
                             f"AND sweep_id = ? AND id <> ? ORDER BY created, {self._SEQ}"
                             + self._SKIP_LOCKED,
                             (row["backend"], row["sweep_id"], run_id)).fetchall()
            cands = [r["id"] for r in rows if compatible(json.loads(r["config"]))]
            limit = min(limit, -(-(len(cands) + 1) // max(1, share)) - 1)
            picked = []
            for rid in cands:
                if len(picked) >= limit:
                    break
                cur = c.execute("UPDATE runs SET status = 'running', worker = ?, host = ?, pid = ?, "
                                "heartbeat = ?, heartbeat_timeout = ?, started = ?, updated = ? "
                                "WHERE id = ? AND status = 'queued'",
                                (worker, hostname(), os.getpid(), now, self.heartbeat_timeout_s,
                                 now, now, rid))
                if cur.rowcount == 1:
                    picked.append(rid)
            return picked

    def append_metrics(self, run_id: str, events: Iterable[Mapping], *,
                       done: int | None = None, total: int | None = None) -> bool:
        """Append telemetry rows (training-callback events), beat the heart, update progress.

        One transaction however many rows (:attr:`Settings.metrics_batch_rows` per statement).
        Returns True if a cancel was requested for this run (the worker should stop).
        """
        rows = metric_rows(run_id, events)
        now = self._now()
        with self._tx() as c:
            step = max(1, SETTINGS.metrics_batch_rows)
            for i in range(0, len(rows), step):
                self._insert_metrics(c, rows[i:i + step])
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
        now = self._now()
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
        now = self._now()
        with self._tx() as c:
            c.execute("UPDATE runs SET status = 'failed', reason = ?, reaped = 0, ended = ?, "
                      "updated = ? WHERE id = ? AND status IN ('queued', 'running')",
                      (reason[:2000], now, now, run_id))

    # --- snapshots at explosion events (issue 16) -----------------------------
    def put_snapshots(self, run_id: str, snapshots: Iterable[Mapping],
                      max_bytes: int | None = None) -> list[int]:
        """Store a run's kept snapshots (encoded, :mod:`clipviz.training.snapshots`), at most
        ``max_bytes`` of them (:attr:`Settings.snapshot_max_run_bytes`,
        :func:`snapshots_within`); the updates stored."""
        cap = SETTINGS.snapshot_max_run_bytes if max_bytes is None else int(max_bytes)
        kept = snapshots_within(snapshots, cap)
        rows = [(run_id, int(s["update"]), _dumps(list(s.get("kinds") or ())),
                 _num(s.get("grad_norm")), _dumps(s)) for s in kept]
        if rows:
            with self._tx() as c:
                c.execute("DELETE FROM snapshots WHERE run_id = ?", (run_id,))
                c.executemany("INSERT INTO snapshots (run_id, step, kinds, grad_norm, data) "
                              "VALUES (?, ?, ?, ?, ?)", rows)
        return [r[1] for r in rows]

    def snapshot_index(self, run_id: str) -> list[dict]:
        """A run's stored snapshots without their arrays: ``{"update", "kinds", "grad_norm"}``
        in update order."""
        return [{"update": r["step"], "kinds": json.loads(r["kinds"]), "grad_norm": r["grad_norm"]}
                for r in self._conn().execute(
                    "SELECT step, kinds, grad_norm FROM snapshots WHERE run_id = ? ORDER BY step",
                    (run_id,)).fetchall()]

    def snapshot(self, run_id: str, update: int) -> dict:
        """One stored snapshot (encoded; KeyError if the run kept none at ``update``)."""
        r = self._conn().execute("SELECT data FROM snapshots WHERE run_id = ? AND step = ?",
                                 (run_id, int(update))).fetchone()
        if r is None:
            raise KeyError((run_id, update))
        return json.loads(r["data"])

    # --- slice jobs (issue 16): the surface around a kept update ----------------
    _SLICE_COLS = "id, run_id, step, status, progress, result, error, backend, created, updated"

    @staticmethod
    def _slice(r: Mapping) -> SliceJob:
        return SliceJob(id=r["id"], run_id=r["run_id"], update=int(r["step"]), status=r["status"],
                        progress=float(r["progress"] or 0.0),
                        result=json.loads(r["result"]) if r["result"] else None,
                        error=r["error"], backend=r["backend"], created=r["created"],
                        updated=r["updated"])

    def create_slice(self, run_id: str, update: int, backend: str, owner: str | None = None) -> str:
        """Queue a slice of run ``run_id`` at kept update ``update``; its id (KeyError when the
        run kept no snapshot there)."""
        if backend not in ("local", "celery", "inline"):
            raise ValueError("backend must be 'local', 'celery' or 'inline'")
        if self._conn().execute("SELECT 1 AS one FROM snapshots WHERE run_id = ? AND step = ?",
                                (run_id, int(update))).fetchone() is None:
            raise KeyError((run_id, update))
        slice_id = "c" + uuid.uuid4().hex[:11]
        now = self._now()
        with self._tx() as c:
            c.execute("INSERT INTO slices (id, run_id, step, status, progress, backend, owner, "
                      "created, updated) VALUES (?, ?, ?, 'queued', 0, ?, ?, ?, ?)",
                      (slice_id, run_id, int(update), backend, owner, now, now))
        return slice_id

    def claim_slice(self, slice_id: str, worker: str) -> bool:
        """Mark a queued slice running in this worker; False if it is not queued any more."""
        with self._tx() as c:
            return self._claim_slice_row(c, slice_id, worker)

    _CLAIM_SLICE = ("UPDATE slices SET status = 'running', worker = ?, host = ?, pid = ?, "
                    "heartbeat = ?, started = ?, updated = ? WHERE id = ? AND status = 'queued'")

    def _claim_slice_row(self, c, slice_id: str, worker: str) -> bool:
        """In transaction ``c``: mark queued slice ``slice_id`` running in ``worker``."""
        now = self._now()
        return c.execute(self._CLAIM_SLICE, (worker, hostname(), os.getpid(), now, now, now,
                                             slice_id)).rowcount == 1

    def claim_next_slice(self, backend: str, worker: str) -> str | None:
        """Claim the oldest queued slice of ``backend``; its id, or None."""
        with self._tx() as c:
            row = c.execute("SELECT id FROM slices WHERE status = 'queued' AND backend = ? "
                            "ORDER BY created, id LIMIT 1" + self._SKIP_LOCKED,
                            (backend,)).fetchone()
            if row is None or not self._claim_slice_row(c, row["id"], worker):
                return None
            return row["id"]

    def slice_progress(self, slice_id: str, fraction: float | None = None) -> bool:
        """Record a running slice's progress (None: a heartbeat only); False once it is not
        running any more (cancelled, or reaped): the worker stops."""
        now = self._now()
        with self._tx() as c:
            cur = c.execute("UPDATE slices SET progress = COALESCE(?, progress), heartbeat = ?, "
                            "updated = ? WHERE id = ? AND status = 'running'",
                            (None if fraction is None else min(max(float(fraction), 0.0), 1.0),
                             now, now, slice_id))
            return cur.rowcount == 1

    def finish_slice(self, slice_id: str, result: Mapping) -> bool:
        """Store a running slice's result; False (nothing stored) if it was cancelled."""
        now = self._now()
        with self._tx() as c:
            cur = c.execute("UPDATE slices SET status = 'finished', progress = 1, result = ?, "
                            "ended = ?, updated = ? WHERE id = ? AND status = 'running'",
                            (_dumps(dict(result)), now, now, slice_id))
            return cur.rowcount == 1

    def fail_slice(self, slice_id: str, error: str) -> None:
        """Mark a queued or running slice failed with ``error``."""
        now = self._now()
        with self._tx() as c:
            c.execute("UPDATE slices SET status = 'failed', error = ?, ended = ?, updated = ? "
                      "WHERE id = ? AND status IN ('queued', 'running')",
                      (error[:2000], now, now, slice_id))

    def cancel_slice(self, slice_id: str) -> str:
        """Cancel a queued or running slice (its worker stops at its next check); its status
        after (KeyError if unknown)."""
        now = self._now()
        with self._tx() as c:
            c.execute("UPDATE slices SET status = 'cancelled', error = 'cancelled by request', "
                      "ended = ?, updated = ? WHERE id = ? AND status IN ('queued', 'running')",
                      (now, now, slice_id))
            row = c.execute("SELECT status FROM slices WHERE id = ?", (slice_id,)).fetchone()
        if row is None:
            raise KeyError(slice_id)
        return row["status"]

    def slice_owner(self, slice_id: str) -> str | None:
        """Who started the slice (KeyError if unknown)."""
        row = self._conn().execute("SELECT owner FROM slices WHERE id = ?", (slice_id,)).fetchone()
        if row is None:
            raise KeyError(slice_id)
        return row["owner"]

    def _reap_slices(self) -> None:
        """Running slices whose worker is gone (same host by pid, any host by heartbeat) fail."""
        now, me = self._now(), hostname()
        dead = []
        for r in self._conn().execute("SELECT id, host, pid, heartbeat FROM slices "
                                      "WHERE status = 'running'").fetchall():
            if self._worker_gone(r, now, me, self.heartbeat_timeout_s):
                dead.append(r["id"])
        for sid in dead:
            self.fail_slice(sid, "its worker stopped before the slice was done")
            log.warning("slice %s marked failed: its worker is gone", sid)

    def get_slice(self, slice_id: str) -> SliceJob:
        """One slice job (KeyError if unknown)."""
        self._reap_slices()
        r = self._conn().execute(f"SELECT {self._SLICE_COLS} FROM slices WHERE id = ?",
                                 (slice_id,)).fetchone()
        if r is None:
            raise KeyError(slice_id)
        return self._slice(r)

    def find_slice(self, run_id: str, update: int) -> SliceJob | None:
        """The newest finished or active slice of ``run_id`` at ``update`` (None: none)."""
        self._reap_slices()
        r = self._conn().execute(
            f"SELECT {self._SLICE_COLS} FROM slices WHERE run_id = ? AND step = ? AND status IN "
            "('queued', 'running', 'finished') ORDER BY status = 'finished' DESC, created DESC "
            "LIMIT 1", (run_id, int(update))).fetchone()
        return None if r is None else self._slice(r)

    def count_active_slices(self) -> int:
        """Slices queued or running."""
        self._reap_slices()
        return int(self._conn().execute("SELECT COUNT(*) AS n FROM slices WHERE status IN "
                                        "('queued', 'running')").fetchone()["n"])

    def count_queued_slices(self, backend: str) -> int:
        """Slices of ``backend`` waiting for a worker."""
        return int(self._conn().execute("SELECT COUNT(*) AS n FROM slices WHERE status = 'queued' "
                                        "AND backend = ?", (backend,)).fetchone()["n"])

    # --- liveness ------------------------------------------------------------
    @staticmethod
    def _worker_gone(r: Mapping, now: float, me: str, limit: float) -> str | None:
        """Why the worker of a running job's row (``host``, ``pid``, ``heartbeat``) is gone:
        "exited" (a process on this host that has exited, checked by pid), "silent" (no
        heartbeat for longer than ``limit`` seconds, on any host); None while it lives."""
        if r["host"] == me and r["pid"] and not pid_alive(r["pid"]):
            return "exited"
        if now - (r["heartbeat"] or 0.0) > limit:
            return "silent"
        return None

    def reap(self, now: float | None = None) -> list[str]:
        """Mark running runs whose worker is gone as failed; return their ids.

        Gone: a worker on this host whose process has exited (checked by pid), or a worker
        anywhere whose last heartbeat is older than the run's own timeout (this store's
        :attr:`heartbeat_timeout_s` for a run that has none).
        """
        now = self._now() if now is None else now
        me = hostname()
        dead: list[tuple[str, str]] = []
        for r in self._conn().execute("SELECT id, worker, host, pid, heartbeat, heartbeat_timeout "
                                      "FROM runs WHERE status = 'running'").fetchall():
            ago = now - (r["heartbeat"] or 0.0)
            limit = r["heartbeat_timeout"] or self.heartbeat_timeout_s
            gone = self._worker_gone(r, now, me, limit)
            if gone == "exited":
                dead.append((r["id"], f"worker process {r['pid']} on {r['host']} ({r['worker']}) "
                                      f"exited without finishing the run (last heartbeat "
                                      f"{ago:.1f} s before)"))
            elif gone == "silent":
                dead.append((r["id"], f"no heartbeat from worker {r['worker']} on {r['host']} for "
                                      f"{ago:.0f} s (limit {limit:g} s): its process died or hung"))
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
        """:meth:`reap`, at most once per heartbeat period in this process: for a page that
        refreshes several times a second in every open tab, a dead worker's run is marked failed
        within a heartbeat period of its timeout without a scan of the running runs each time."""
        now = time.monotonic()
        if now - self._reaped_at < heartbeat_period(self.heartbeat_timeout_s):
            return []
        self._reaped_at = now
        return self.reap()

    # --- reading -------------------------------------------------------------
    @staticmethod
    def _run(r: Mapping) -> Run:
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

    def get_many(self, run_ids: Iterable[str]) -> list[Run]:
        """Several runs in the order asked, with one reap and one query (KeyError if any is
        unknown): a poll over a whole sweep costs the store one round trip, not one per run."""
        ids = list(run_ids)
        self.reap()
        found: dict[str, Run] = {}
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            marks = ", ".join("?" * len(chunk))
            for r in self._conn().execute(f"SELECT {self._RUN_COLS} FROM runs WHERE id IN ({marks})",
                                          chunk).fetchall():
                found[r["id"]] = self._run(r)
        missing = [i for i in ids if i not in found]
        if missing:
            raise KeyError(missing[0])
        return [found[i] for i in ids]

    def count_active(self) -> int:
        """How many runs are queued or running (dead workers' runs reaped first)."""
        self.reap()
        return int(self._conn().execute(
            "SELECT COUNT(*) AS n FROM runs WHERE status IN ('queued', 'running')").fetchone()["n"])

    def count_queued(self, backend: str) -> int:
        """How many runs of ``backend`` wait in the queue."""
        return int(self._conn().execute(
            "SELECT COUNT(*) AS n FROM runs WHERE status = 'queued' AND backend = ?",
            (backend,)).fetchone()["n"])

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
        q += f" ORDER BY created DESC, {self._SEQ} DESC LIMIT ?"
        args.append(int(limit))
        return [self._run(r) for r in self._conn().execute(q, args).fetchall()]

    def metrics(self, run_id: str, since: int = -1) -> dict[str, list]:
        """Telemetry rows with ``update > since`` as columns: update, loss, grad_norm, ..."""
        rows = self._conn().execute(
            "SELECT step, " + ", ".join(METRIC_COLUMNS) + " FROM metrics WHERE run_id = ? AND "
            "step > ? ORDER BY step", (run_id, int(since))).fetchall()
        cols: dict[str, list] = {"update": [r["step"] for r in rows]}
        for k in METRIC_COLUMNS:
            cols[k] = [r[k] for r in rows]
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
    # Every read-then-write on ``runners`` runs in a ``lock`` transaction: a runner that finds
    # no queued run and unregisters, and a process that counts the live runners before starting
    # one, see each other's outcome (SQLite serialises every write transaction anyway).
    def runner_register(self, runner_id: str) -> None:
        now = self._now()
        with self._tx(lock=True) as c:
            c.execute("INSERT INTO runners (id, host, pid, heartbeat, started) VALUES (?, ?, ?, ?, ?) "
                      "ON CONFLICT (id) DO UPDATE SET host = excluded.host, pid = excluded.pid, "
                      "heartbeat = excluded.heartbeat, started = excluded.started",
                      (runner_id, hostname(), os.getpid(), now, now))

    def busy_workers(self, backend: str) -> int:
        """How many workers of ``backend`` are training a run or computing a slice (a worker
        that trains an ensemble of runs counts once)."""
        return int(self._conn().execute(
            "SELECT COUNT(*) AS n FROM (SELECT worker FROM runs WHERE status = 'running' AND "
            "backend = ? UNION SELECT worker FROM slices WHERE status = 'running' AND backend = ?) "
            "AS busy", (backend, backend)).fetchone()["n"])

    def runner_beat(self, runner_id: str) -> None:
        with self._tx() as c:
            c.execute("UPDATE runners SET heartbeat = ? WHERE id = ?", (self._now(), runner_id))

    def runner_exit_if_idle(self, runner_id: str, backend: str = "local") -> bool:
        """Unregister the runner if no run of ``backend`` is queued (atomically); True if it did."""
        with self._tx(lock=True) as c:
            if c.execute("SELECT 1 AS one FROM runs WHERE status = 'queued' AND backend = ? LIMIT 1",
                         (backend,)).fetchone():
                return False
            if c.execute("SELECT 1 AS one FROM slices WHERE status = 'queued' AND backend = ? "
                         "LIMIT 1", (backend,)).fetchone():
                return False
            c.execute("DELETE FROM runners WHERE id = ?", (runner_id,))
            return True

    def runner_unregister(self, runner_id: str) -> None:
        with self._tx(lock=True) as c:
            c.execute("DELETE FROM runners WHERE id = ?", (runner_id,))

    def reserve_runner(self, max_runners: int) -> str | None:
        """Reserve a slot for a new runner if fewer than ``max_runners`` are alive; its id or None.

        The slot is held under the caller's pid until the runner registers its own.
        """
        with self._tx(lock=True) as c:
            if self.live_runners(c) >= max_runners:
                return None
            runner_id = "r" + uuid.uuid4().hex[:11]
            now = self._now()
            c.execute("INSERT INTO runners (id, host, pid, heartbeat, started) VALUES (?, ?, ?, ?, ?)",
                      (runner_id, hostname(), os.getpid(), now, now))
            return runner_id

    def live_runners(self, c=None) -> int:
        """Number of registered runners still alive (dead ones are removed)."""
        conn = c or self._conn()
        me, now, alive, gone = hostname(), self._now(), 0, []
        for r in conn.execute("SELECT id, host, pid, heartbeat FROM runners").fetchall():
            if (r["host"] == me and not pid_alive(r["pid"])) or \
                    now - r["heartbeat"] > self.heartbeat_timeout_s:
                gone.append(r["id"])
            else:
                alive += 1
        for g in gone:
            conn.execute("DELETE FROM runners WHERE id = ?", (g,))
        return alive

    # --- copying a whole store (SQLite file -> PostgreSQL) --------------------
    _TABLES = {
        "runs": ("id", "sweep_id", "label", "config", "backend", "status", "reason", "reaped",
                 "worker", "host", "pid", "heartbeat", "heartbeat_timeout", "created", "updated",
                 "started", "ended", "done", "total", "cancel", "result", "record", "code_version",
                 "owner"),
        "sweeps": ("id", "spec", "created"),
        "metrics": ("run_id", "step", *METRIC_COLUMNS),
        "snapshots": ("run_id", "step", "kinds", "grad_norm", "data"),
    }

    def copy_to(self, other: "RunStore", batch: int = 5000) -> dict[str, int]:
        """Copy every run, sweep, telemetry row and kept snapshot of this store into ``other``
        (slice jobs are not copied: a slice is computed again on demand; runs already
        there, by id, are left alone); how many rows of each table were copied.

        The way from an existing ``runs.sqlite`` to a PostgreSQL store: both are at
        :data:`SCHEMA_VERSION` once opened, so the rows carry over column for column.  Runs that
        were active are copied as they are; a reader of ``other`` reaps them if their workers
        are gone.
        """
        copied: dict[str, int] = {}
        have = {r["id"] for r in other._conn().execute("SELECT id FROM runs").fetchall()}
        have_sweeps = {r["id"] for r in other._conn().execute("SELECT id FROM sweeps").fetchall()}
        src = self._conn()
        for table, cols in self._TABLES.items():
            key = "run_id" if table in ("metrics", "snapshots") else "id"
            skip = have_sweeps if table == "sweeps" else have
            order = "run_id, step" if table in ("metrics", "snapshots") else key
            cur = src.execute(f"SELECT {', '.join(cols)} FROM {table} ORDER BY {order}")
            n = 0
            marks = ", ".join("?" * len(cols))
            while True:
                chunk = [tuple(r[k] for k in cols) for r in cur.fetchmany(batch)]
                if not chunk:
                    break
                chunk = [row for row in chunk if row[0] not in skip]
                if chunk:
                    with other._tx() as c:
                        c.executemany(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({marks})",
                                      chunk)
                    n += len(chunk)
            copied[table] = n
        return copied


def heartbeat_period(timeout_s: float) -> float:
    """How often a worker beats for a run whose timeout is ``timeout_s``: every
    :attr:`Settings.heartbeat_s`, or four times per timeout where that is shorter."""
    return min(SETTINGS.heartbeat_s, timeout_s / 4)
