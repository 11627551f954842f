"""The Celery worker: ``CLIPVIZ_REDIS_URL=redis://host:6379/0 celery -A clipviz.worker worker``.

Each task trains one run of the shared run store: ``CLIPVIZ_DATABASE_URL=postgresql://…`` on
every worker and the web app (workers on any host), or, without it, the same SQLite file in
``CLIPVIZ_DATA_DIR`` (workers on the web app's machine).  Results are not kept in Redis: the run
store is where telemetry and records land.
"""

from __future__ import annotations

import logging
import os
import socket

from . import jobs
from .store import shared_store

log = logging.getLogger(__name__)

DEFAULT_URL = "redis://127.0.0.1:6379/0"

app = jobs.celery_app(jobs.redis_url() or DEFAULT_URL)


@app.task(name=jobs.TASK_NAME, ignore_result=True)
def train_run(run_id: str) -> str:
    """Claim run ``run_id`` in the store and train it; its final status (or "skipped")."""
    store = shared_store()  # opened once per worker process, not per task
    worker = f"celery:{socket.gethostname()}:{os.getpid()}"
    if not store.claim(run_id, worker):
        log.info("run %s is not queued any more (cancelled or taken); skipped", run_id)
        return "skipped"
    return jobs.execute_run(store, run_id)


@app.task(name=jobs.SLICE_TASK_NAME, ignore_result=True)
def slice_job(slice_id: str) -> str:
    """Claim slice job ``slice_id`` in the store and compute it; its final status (or
    "skipped" when it was cancelled or taken before this worker got it)."""
    store = shared_store()
    worker = f"celery:{socket.gethostname()}:{os.getpid()}"
    if not store.claim_slice(slice_id, worker):
        log.info("slice %s is not queued any more (cancelled or taken); skipped", slice_id)
        return "skipped"
    return jobs.execute_slice(store, slice_id)
