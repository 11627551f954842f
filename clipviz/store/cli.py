"""``clipviz store``: look at a run store, or copy one into another.

``clipviz store info [LOCATION]`` prints the backend, schema version and counts (opening a store
migrates it to the current schema).  ``clipviz store copy SRC DST`` copies every run, sweep and
telemetry row of SRC into DST, leaving the runs DST already has: the way from an existing
``runs.sqlite`` to PostgreSQL::

    clipviz store copy clipviz-data/runs.sqlite postgresql://clipviz:PASSWORD@db-host:5432/clipviz

A LOCATION is a SQLite file or a ``postgresql://`` URL; without one, the configured store
(``CLIPVIZ_DATABASE_URL``, else the SQLite file in ``CLIPVIZ_DATA_DIR``).
"""

from __future__ import annotations

import argparse
import sys

from .base import SCHEMA_VERSION, RunStore, redact


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="store_command", metavar="ACTION")
    sub.required = True
    info = sub.add_parser("info", help="backend, schema version and number of runs")
    info.add_argument("location", nargs="?", help="SQLite file or postgresql:// URL (default: the configured store)")
    copy = sub.add_parser("copy", help="copy every run of SRC into DST (e.g. runs.sqlite -> PostgreSQL)")
    copy.add_argument("src", help="SQLite file or postgresql:// URL to read")
    copy.add_argument("dst", help="SQLite file or postgresql:// URL to write")


def _name(store: RunStore) -> str:
    return redact(store.location)


def run(args: argparse.Namespace) -> int:
    if args.store_command == "info":
        st = RunStore(args.location)
        runs = st.list(limit=10**9, reap=False)
        by = {s: sum(r.status == s for r in runs) for s in ("queued", "running", "finished", "cancelled", "failed")}
        sys.stdout.write(f"{_name(st)}: {st.dialect}, schema {SCHEMA_VERSION}, {len(runs)} runs ("
                         + ", ".join(f"{n} {s}" for s, n in by.items()) + f"), {len(st.sweeps())} sweeps\n")
        return 0
    src, dst = RunStore(args.src), RunStore(args.dst)
    if src.location == dst.location:
        raise ValueError("SRC and DST are the same store")
    n = src.copy_to(dst)
    sys.stdout.write(f"copied {n['runs']} runs, {n['sweeps']} sweeps and {n['metrics']} telemetry rows "
                     f"from {_name(src)} to {_name(dst)}\n")
    return 0
