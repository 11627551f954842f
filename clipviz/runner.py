"""A local runner process: ``python -m clipviz.runner DB RUNNER_ID HEARTBEAT_TIMEOUT_S``.

Started by :func:`clipviz.jobs.Jobs.ensure_runners` as a fresh interpreter (never a fork of the
web process): it opens its own connection to the run store at ``DB`` (a SQLite file, or ``-``
for the configured store, ``CLIPVIZ_DATABASE_URL``), registers as ``RUNNER_ID``
(the slot the starting process reserved), claims queued local runs one after another, and exits
once none has been queued for ``CLIPVIZ_RUNNER_IDLE_S`` seconds (:func:`clipviz.jobs.runner_main`).
"""

from __future__ import annotations

import logging
import sys


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__.splitlines()[0], file=sys.stderr)
        return 2
    db_path, runner_id, timeout = argv
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from .jobs import runner_main

    try:
        runner_main(None if db_path == "-" else db_path, runner_id, float(timeout))
    except Exception:  # noqa: BLE001 - logged with its traceback; the store marks the runs
        logging.getLogger("clipviz.runner").exception("local runner %s crashed", runner_id)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
