"""The run store's historic import path: everything is in :mod:`clipviz.store`.

``from clipviz.runstore import RunStore, Run, shared_store`` keeps working for every caller.
"""

from __future__ import annotations

from .store import (FINAL, METRIC_COLUMNS, SCHEMA_VERSION, STATUSES, Run, RunStore,  # noqa: F401
                    backend_class, default_location, default_path, heartbeat_period, hostname,
                    pid_alive, redact, shared_store)
from .store.sqlite import SQLiteStore  # noqa: F401

__all__ = ["FINAL", "METRIC_COLUMNS", "SCHEMA_VERSION", "STATUSES", "Run", "RunStore", "SQLiteStore",
           "default_path", "hostname", "pid_alive", "shared_store"]
