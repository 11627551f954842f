"""The run store: every training run's config, live telemetry and result.

Two backends behind one interface (:class:`RunStore`, :mod:`clipviz.store.base`):

* **SQLite** (:mod:`clipviz.store.sqlite`, the default): one file in the data directory, no
  service; the web app and workers on one machine share it.
* **PostgreSQL** (:mod:`clipviz.store.postgres`): chosen by ``CLIPVIZ_DATABASE_URL=postgresql://…``;
  workers on many machines write to one database server.

``RunStore(location)`` opens the backend that ``location`` names (``RunStore()``: the configured
one); both pass the same contract tests (``tests/test_runstore.py``).

Tables
------
``runs``     one row per run: id, sweep, config JSON, status, reason, worker
             identity (host, pid), heartbeat and its timeout, created/updated/started/ended
             times, progress, cancel flag, result JSON and the full run record.
``metrics``  one row per training update (loss, ||g|| before and after
             clipping, clipped, skipped, rho(W_rec), validation metric, elapsed),
             appended in batches by the worker.
``sweeps``   one row per sweep (its specification JSON).
``runners``  the embedded job layer's live runner processes.
``snapshots`` a run's kept updates (issue 16): theta, state and both steps at explosion events,
             at most :attr:`Settings.snapshot_max_run_bytes` per run.
``slices``   slice jobs: the error surface around a kept update (run id, update, status,
             progress, result, error); a slice never writes a run's own rows.
``meta``     the schema version (:data:`SCHEMA_VERSION`; older stores are migrated on open).

Statuses: ``queued`` -> ``running`` -> ``finished`` | ``cancelled`` | ``failed``.
A run whose worker died is never shown as running for ever: every read first
*reaps* running runs whose worker process is gone (same host, checked by pid)
or whose heartbeat is older than the run's timeout (the one its worker promised
when it claimed the run: workers on other hosts are judged by it), marking them
failed with the reason.  Reaping never touches a run that reached a final status,
and a worker that turns out to be alive after all (a very long update) puts its
run back to running with its next heartbeat; nothing a run wrote is deleted.
"""

from __future__ import annotations

import os

from .base import (FINAL, METRIC_COLUMNS, SCHEMA_VERSION, STATUSES, Run, RunStore, SliceJob,
                   backend_class, default_location, default_path, heartbeat_period, hostname,
                   pid_alive, redact)

__all__ = ["FINAL", "METRIC_COLUMNS", "SCHEMA_VERSION", "STATUSES", "Run", "RunStore", "SliceJob",
           "backend_class", "default_location", "default_path", "heartbeat_period", "hostname",
           "pid_alive", "redact", "shared_store"]

_SHARED: dict[tuple[str, int], RunStore] = {}


def shared_store() -> RunStore:
    """This process's store for the current configuration (``CLIPVIZ_DATABASE_URL``, else the
    SQLite file in ``CLIPVIZ_DATA_DIR``), opened once, not per request.

    Only connections are cached here; every read goes to the database, so
    several web processes always agree.
    """
    loc = default_location()
    key = (loc if isinstance(loc, str) else str(loc.resolve()), os.getpid())
    st = _SHARED.get(key)
    if st is None:
        st = _SHARED[key] = RunStore(loc)
    return st
