"""Background training jobs: the embedded default (local processes) and Celery over Redis.

The run store (:mod:`clipviz.store`) is the single source of truth: a run is
created there as *queued*, a worker claims it, streams its telemetry into it
and stores its record.  Which workers run it depends on the deployment:

* **embedded** (default, no service): the web process starts *runner*
  processes (at most :attr:`Settings.local_workers`, ``CLIPVIZ_LOCAL_WORKERS``)
  that claim queued runs from the store one after another and exit when none
  is left.  The store itself is the queue, so runs submitted from any gunicorn
  worker are shared by the same runners.
* **Celery** (``CLIPVIZ_REDIS_URL`` set): each run is one Celery task
  (``clipviz.train_run``) sent to Redis; ``celery -A clipviz.worker worker``
  processes pick them up: on the same machine with the SQLite store, on any machine with
  the PostgreSQL store (``CLIPVIZ_DATABASE_URL``).  A sweep fans out as one task per run.

Cancel works the same in both: :meth:`Jobs.cancel` sets the run's cancel flag
in the store; the training callback polls it every ``cancel_poll_s`` and
returns False, which stops training after the current update.
"""

from __future__ import annotations

import contextlib
import functools
import hmac
import itertools
import logging
import math
import os
import socket
import subprocess
import sys
import threading
import time
import traceback
from typing import Any, Callable, Iterable, Mapping

from . import clipping, config
from ._validate import show
from .config import SETTINGS
from .store import RunStore, heartbeat_period
from .store import redact  # noqa: F401 - part of this module's interface (messages, tests)

log = logging.getLogger(__name__)

TASK_NAME = "clipviz.train_run"
SLICE_TASK_NAME = "clipviz.slice"


class CapacityError(ValueError):
    """The queue is full: :attr:`Settings.max_active_runs` runs are queued or running (HTTP 429)."""


redis_url = config.redis_url  # ``$CLIPVIZ_REDIS_URL``; read in clipviz.config only


def default_backend() -> str:
    """``"celery"`` when ``CLIPVIZ_REDIS_URL`` is set, else ``"local"``."""
    return "celery" if redis_url() else "local"


local_workers = config.local_workers  # ``$CLIPVIZ_LOCAL_WORKERS`` or the setting
blas_threads = config.blas_threads  # ``$CLIPVIZ_WORKER_BLAS_THREADS`` or the setting


def _blas_limit():
    """Limit the BLAS thread pools of this process while a job trains."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - a declared dependency
        return contextlib.nullcontext()
    return threadpool_limits(limits=blas_threads(), user_api="blas")


def resume_queued() -> int:
    """Embedded backend: start runners for the runs an earlier app process left queued; how many
    were started.  The app factory calls it once; a failure is logged, never raised (the app
    starts all the same, and the next read of the runs tries again)."""
    from .store import shared_store

    try:
        return Jobs(shared_store()).supervise()
    except Exception:  # noqa: BLE001 - never keep the app from starting
        log.exception("could not resume queued runs")
        return 0


def validate_config(config: Mapping | Any) -> dict:
    """The engine's own validation (``TrainConfig.from_dict``); a plain dict back."""
    from .training import TrainConfig

    if isinstance(config, TrainConfig):
        return config.to_dict()
    if not isinstance(config, Mapping):
        raise ValueError("a training config must be a dict of TrainConfig fields")
    return TrainConfig.from_dict(dict(config)).to_dict()


# --------------------------------------------------------------------------
# executing one run (in whichever process claimed it)
# --------------------------------------------------------------------------
def _extremeness(e: dict) -> tuple[int, float]:
    """Order of telemetry rows by ‖g‖: none < finite (by size) < non-finite (a skipped update)."""
    g = e.get("grad_norm")
    if g is None:
        return (0, 0.0)
    return (2, 0.0) if not math.isfinite(g) else (1, float(g))


class Decimator:
    """Telemetry of one run, kept to about ``cap`` rows however long the run.

    A run of at most ``cap`` updates keeps every update.  A longer one keeps one row per block of
    ``k = ceil(total / cap)`` consecutive updates, the one with the largest ‖g‖ (the spikes the
    training page exists to show), plus the first evaluation (ρ, validation) in each block and the
    last update: at most ``2 · cap + 1`` rows.  Feed events in update order with :meth:`push`;
    :meth:`drain` hands back what is still held at the end.
    """

    def __init__(self, total: int | None, cap: int = SETTINGS.max_metric_rows) -> None:
        self.k = max(1, -(-int(total or 1) // max(int(cap), 1)))
        self._block: int | None = None
        self._best: dict | None = None
        self._eval: dict | None = None
        self._last: dict | None = None

    def push(self, e: dict) -> list[dict]:
        """The rows to store now, given one more event."""
        if self.k == 1:
            return [e]
        block = (int(e["update"]) - 1) // self.k
        out = self._close() if block != self._block else []
        self._block = block
        if self._best is None or _extremeness(e) > _extremeness(self._best):
            self._best = e
        if self._eval is None and (e.get("rho") is not None or e.get("valid") is not None):
            self._eval = e
        self._last = e
        return out

    def _close(self) -> list[dict]:
        rows = [r for r in (self._best, self._eval) if r is not None]
        rows = list({int(r["update"]): r for r in rows}.values())
        self._best = self._eval = None
        return sorted(rows, key=lambda r: int(r["update"]))

    def drain(self) -> list[dict]:
        """What the last block still holds, and the last update."""
        rows = self._close()
        if self._last is not None and all(int(r["update"]) != int(self._last["update"]) for r in rows):
            rows.append(self._last)
        self._last = None
        return rows


def decimate_series(series: Mapping[str, list], total: int | None,
                    cap: int = SETTINGS.max_metric_rows) -> dict[str, list]:
    """A run record's per-update series kept the way :class:`Decimator` keeps the telemetry, so
    the stored record and the stored curve stay the same rows."""
    dec = Decimator(total, cap)
    keys = list(series)
    if dec.k == 1 or "update" not in series:
        return {k: list(v) for k, v in series.items()}
    rows = [{k: series[k][i] for k in keys} for i in range(len(series["update"]))]
    kept = [r for e in rows for r in dec.push(e)] + dec.drain()
    return {k: [r[k] for r in kept] for k in keys}


class _Telemetry:
    """The training callback: batches events into the store (decimated, :class:`Decimator`),
    polls the cancel flag."""

    def __init__(self, store: RunStore, run_id: str, total: int | None = None,
                 cap: int = SETTINGS.max_metric_rows) -> None:
        self.store, self.run_id = store, run_id
        self.buf: list[dict] = []
        self.total, self.cap = total, cap
        self.dec = Decimator(total, cap)
        self.cancel = False
        now = time.monotonic()
        self.last_flush = self.last_poll = now

    def __call__(self, event: dict) -> bool:
        self.buf.extend(self.dec.push(event))
        now = time.monotonic()
        if now - self.last_flush >= SETTINGS.metrics_flush_s or len(self.buf) >= SETTINGS.metrics_batch_rows:
            self.flush(event)
        elif now - self.last_poll >= SETTINGS.cancel_poll_s:
            self.cancel = self.cancel or self.store.cancel_requested(self.run_id)
            self.last_poll = now
        return not self.cancel

    def drain(self) -> list[dict]:
        """Everything not yet stored (call once, at the end of the run)."""
        rows, self.buf = self.buf + self.dec.drain(), []
        return rows

    def flush(self, last: dict | None = None) -> None:
        last = last or (self.buf[-1] if self.buf else None)
        self.cancel = self.store.append_metrics(
            self.run_id, self.buf, done=None if last is None else int(last["update"]),
            total=None if last is None else last.get("total")) or self.cancel
        self.buf = []
        self.last_flush = self.last_poll = time.monotonic()


def _heartbeat_thread(store: RunStore, run_id: str | set[str], runner_id: str | None,
                      stop: threading.Event, beat_one: Callable[[str], object] | None = None,
                      what: str = "run") -> threading.Thread:
    """Beat ``run_id``'s heart (or those of every run in a set, which the caller may shrink as
    runs end) and the runner's, until ``stop``.  ``beat_one`` beats one job (default
    ``store.heartbeat``; a slice job's is ``store.slice_progress``); ``what`` names it in logs."""
    period = heartbeat_period(store.heartbeat_timeout_s)
    ids = {run_id} if isinstance(run_id, str) else run_id
    beat_one = store.heartbeat if beat_one is None else beat_one

    def beat() -> None:
        while not stop.wait(period):
            for rid in list(ids):
                try:
                    beat_one(rid)
                except Exception:  # pragma: no cover - a locked/unavailable store; retry next beat
                    log.exception("heartbeat for %s %s failed", what, rid)
            try:
                if runner_id:
                    store.runner_beat(runner_id)
            except Exception:  # pragma: no cover
                log.exception("heartbeat for runner %s failed", runner_id)
        store.close()

    name = run_id if isinstance(run_id, str) else f"{len(ids)}-runs"
    t = threading.Thread(target=beat, name=f"clipviz-heartbeat-{what}-{name}", daemon=True)
    t.start()
    return t


def _store_record(store: RunStore, run_id: str, tel: _Telemetry, record) -> str:
    """Store a finished or cancelled run's record (series decimated as its telemetry was); its
    kept snapshots go to the store's ``snapshots`` table (within
    :attr:`Settings.snapshot_max_run_bytes`) and the record says how many: ``snapshots_kept``."""
    rec = record.to_dict()
    rec["series"] = decimate_series(rec.get("series") or {}, tel.total, tel.cap)
    result = rec.get("result")
    if isinstance(result, dict) and "snapshots" in result:
        snaps = result.pop("snapshots") or []
        try:
            result["snapshots_kept"] = len(store.put_snapshots(run_id, snaps))
        except Exception:  # noqa: BLE001 - the run's own record is stored all the same
            log.exception("run %s: its snapshots could not be stored", run_id)
            result["snapshots_kept"] = 0
    store.finish(run_id, rec, tel.drain())
    log.info("run %s %s", run_id, rec.get("status"))
    return str(rec.get("status", "finished"))


def _store_failure(store: RunStore, run_id: str, tel: _Telemetry | None, exc: BaseException) -> None:
    """Record ``exc`` as the run's failure reason, keeping the telemetry it wrote."""
    if tel is not None:
        try:
            tel.buf = tel.drain()
            tel.flush()
        except Exception:  # pragma: no cover
            pass
    reason = f"{type(exc).__name__}: {exc}".strip()
    if not isinstance(exc, (ValueError, KeyboardInterrupt, SystemExit)):
        log.error("run %s failed:\n%s", run_id, traceback.format_exc())
    store.fail(run_id, reason)


def _companions(store: RunStore, run_id: str, cfg) -> list[str]:
    """Claim queued runs of ``run_id``'s sweep that can share its ensemble (same model shape,
    :func:`clipviz.training.ensemble.shape_key`), up to ``ensemble_max_models`` in all."""
    from .training import TrainConfig
    from .training.ensemble import shape_key

    key = shape_key(cfg)
    if key is None or SETTINGS.ensemble_max_models <= 1:
        return []

    def compatible(d: dict) -> bool:
        try:
            return shape_key(TrainConfig.from_dict(d)) == key
        except ValueError:
            return False  # it fails on its own, when claimed alone

    run = store.get(run_id)
    if run.sweep_id is None:
        return []
    # local runners share a sweep's runs (each takes its part, so every core trains); a Celery
    # worker does not know how many others there are and takes a whole ensemble
    share = max(1, store.live_runners()) if run.backend == "local" else 1
    return store.claim_companions(run_id, run.worker or "", SETTINGS.ensemble_max_models - 1,
                                  compatible, share=share)


def execute_run(store: RunStore, run_id: str, runner_id: str | None = None) -> str:
    """Train a claimed (running) run, streaming telemetry into the store; its final status.

    A temporal-order run of a sweep also claims up to ``ensemble_max_models - 1`` queued runs of
    the same sweep and model shape and trains them with it (:func:`clipviz.training.train_many`):
    each streams its own telemetry and heartbeats, a cancel stops only its own model, each stores
    the record a run of its own would store, and a failure marks every run not yet stored.
    Every exception is recorded as the run's failure reason (with what it wrote kept).
    """
    from .training import TrainConfig, train

    tel = _Telemetry(store, run_id, store.get(run_id).total)  # the budget: how far to decimate
    stop = threading.Event()
    beat = _heartbeat_thread(store, run_id, runner_id, stop)
    try:
        cfg = TrainConfig.from_dict(store.get(run_id).config)
        others = _companions(store, run_id, cfg)
        if others:
            stop.set()
            beat.join(timeout=5)
            return _execute_together(store, run_id, tel, cfg, others, runner_id)
        with _blas_limit():
            record = train(cfg, callback=tel, snapshots=True)
        return _store_record(store, run_id, tel, record)
    except BaseException as exc:  # noqa: BLE001 - every failure lands in the store
        _store_failure(store, run_id, tel, exc)
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        return "failed"
    finally:
        stop.set()
        beat.join(timeout=5)


def _execute_together(store: RunStore, run_id: str, tel: _Telemetry, cfg, others: list[str],
                      runner_id: str | None) -> str:
    """:func:`execute_run` for ``run_id`` and the companions it claimed; ``run_id``'s status."""
    from .training import TrainConfig, train_many

    ids, cfgs, tels = [run_id], [cfg], [tel]
    for rid in others:
        t = None
        try:
            t = _Telemetry(store, rid, store.get(rid).total)
            cfgs.append(TrainConfig.from_dict(store.get(rid).config))
            ids.append(rid)
            tels.append(t)
        except BaseException as exc:  # noqa: BLE001 - this run fails alone
            _store_failure(store, rid, t, exc)
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
    log.info("runs %s trained together", ", ".join(ids))
    live = set(ids)
    status = {}
    stop = threading.Event()
    beat = _heartbeat_thread(store, live, runner_id, stop)

    def done(i: int, record) -> None:
        status[ids[i]] = _store_record(store, ids[i], tels[i], record)
        live.discard(ids[i])

    try:
        with _blas_limit():
            train_many(cfgs, tels, on_done=done, snapshots=True)
    except BaseException as exc:  # noqa: BLE001 - every run not yet stored fails
        for i, rid in enumerate(ids):
            if rid not in status:
                _store_failure(store, rid, tels[i], exc)
                status[rid] = "failed"
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
    finally:
        stop.set()
        beat.join(timeout=5)
    return status.get(run_id, "failed")


def execute_slice(store: RunStore, slice_id: str, runner_id: str | None = None) -> str:
    """Compute a claimed (running) slice job: the surface around a kept update of a run
    (:func:`clipviz.landscape.snapshot_slice`), with progress in the store; its final status.

    Reads the run's config and snapshot and writes only the slice's own row: a slice that is
    cancelled (the store's status, checked between groups of grid rows and between HVPs) or
    fails leaves the run, its telemetry and its snapshots as they were.
    """
    from .landscape import Cancelled, snapshot_slice

    stop = threading.Event()
    t = _heartbeat_thread(store, slice_id, runner_id, stop, beat_one=store.slice_progress,
                          what="slice")
    state = {"live": True, "last": 0.0}

    def progress(f: float) -> None:
        state["live"] = store.slice_progress(slice_id, f)
        state["last"] = time.monotonic()

    def cancel() -> bool:
        if state["live"] and time.monotonic() - state["last"] >= SETTINGS.cancel_poll_s:
            state["live"] = store.slice_progress(slice_id)
            state["last"] = time.monotonic()
        return not state["live"]

    try:
        job = store.get_slice(slice_id)
        run = store.get(job.run_id)
        snap = store.snapshot(job.run_id, job.update)
        with _blas_limit():
            out = snapshot_slice(run.config, snap, progress=progress, cancel=cancel)
        if store.finish_slice(slice_id, out.to_dict()):
            log.info("slice %s finished", slice_id)
            return "finished"
        return store.get_slice(slice_id).status
    except Cancelled:
        log.info("slice %s cancelled", slice_id)
        return "cancelled"
    except BaseException as exc:  # noqa: BLE001 - every failure lands in the slice's row
        if not isinstance(exc, (ValueError, KeyError, KeyboardInterrupt, SystemExit)):
            log.error("slice %s failed:\n%s", slice_id, traceback.format_exc())
        reason = ("the run or its snapshot is gone" if isinstance(exc, KeyError)
                  else f"{type(exc).__name__}: {exc}".strip())
        store.fail_slice(slice_id, reason)
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        return "failed"
    finally:
        stop.set()
        t.join(timeout=5)


# --------------------------------------------------------------------------
# the embedded backend: runner processes (fresh interpreters) that drain the store's queue
# --------------------------------------------------------------------------
def runner_main(location: str | None, runner_id: str, heartbeat_timeout_s: float | None = None,
                idle_s: float | None = None) -> None:
    """A local runner: claim queued local slices (short, someone waits on the page) and then
    runs, one by one; once none is left, wait ``idle_s`` seconds (default
    :func:`clipviz.config.runner_idle_s`) for more, looking every ``runner_poll_s``, then exit
    (``location``: the store's, None for the configured one).

    While it waits it stays registered (and beats), so the process that queues the next runs
    finds it alive and starts no interpreter: a sweep after a sweep starts training at once.
    """
    idle_s = config.runner_idle_s() if idle_s is None else idle_s
    store = RunStore(location, heartbeat_timeout_s=heartbeat_timeout_s)
    store.runner_register(runner_id)
    worker = f"local:{socket.gethostname()}:{os.getpid()}"
    period = heartbeat_period(store.heartbeat_timeout_s)
    idle_since = last_beat = None
    try:
        while True:
            slice_id = store.claim_next_slice("local", worker)
            if slice_id is not None:
                log.info("runner %s: slice %s", runner_id, slice_id)
                execute_slice(store, slice_id, runner_id)
                idle_since = None
                continue
            run_id = store.claim_next("local", worker)
            if run_id is not None:
                log.info("runner %s: run %s", runner_id, run_id)
                execute_run(store, run_id, runner_id)
                idle_since = None
                continue
            now = time.monotonic()
            idle_since = now if idle_since is None else idle_since
            if now - idle_since >= idle_s and store.runner_exit_if_idle(runner_id):
                return
            if last_beat is None or now - last_beat >= period:
                store.runner_beat(runner_id)
                last_beat = now
            time.sleep(SETTINGS.runner_poll_s)
    finally:
        store.runner_unregister(runner_id)


@functools.lru_cache(maxsize=1)
def warm_up() -> float:
    """Load the training kernels in this process once (a 2-update run); seconds it took.

    The image build calls it to fill Numba's cache, so that runners and workers load the
    compiled kernels instead of compiling them.
    """
    from .training import TrainConfig, train
    from .training.tasks import MIN_TEMPORAL_LENGTH

    t = time.perf_counter()
    try:  # the smallest run the engine accepts: its shortest temporal-order sequence
        train(TrainConfig.from_dict({"task": "temporal_order", "hidden": 2, "seq_len": MIN_TEMPORAL_LENGTH,
                                     "batch_size": 1, "max_updates": 2, "eval_every": 2}))
    except Exception:  # warming is an optimisation: a failure is logged, never raised
        log.exception("training warm-up failed")
    return time.perf_counter() - t


def _spawn_runner(location: str, runner_id: str, heartbeat_timeout_s: float) -> None:
    """Start a runner as a fresh interpreter (``python -m clipviz.runner``), in a session of its own.

    Not a fork: a child forked from a web worker shares the worker's open SQLite connections but
    holds none of their POSIX locks, and closing an inherited descriptor drops the locks its own
    connection took, which corrupted the store; it also held the server's listening socket, so
    the port could not be bound again while it ran.  The new interpreter inherits no descriptor
    but standard input (``/dev/null``), output and error, and opens its own connection.  Its own
    session keeps it out of the server's signals: a stopped server leaves its runs to finish.
    A daemon thread waits for it, so no zombie is left behind.  A database URL goes to it in
    its environment, not on its command line (where any user of the machine could read it).
    """
    env = None
    if "://" in location:
        env, location = config.child_env(**{config.ENV_DATABASE_URL: location}), "-"
    cmd = [sys.executable, "-m", "clipviz.runner", location, runner_id, repr(float(heartbeat_timeout_s))]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, close_fds=True, start_new_session=True,
                            env=env)
    threading.Thread(target=proc.wait, name=f"clipviz-reap-{runner_id}", daemon=True).start()


# --------------------------------------------------------------------------
# the Celery backend
# --------------------------------------------------------------------------
@functools.lru_cache(maxsize=4)
def celery_app(url: str):
    """A Celery app on ``url`` (broker only: results live in the run store)."""
    from celery import Celery

    app = Celery("clipviz", broker=url)
    app.conf.update(
        task_ignore_result=True,
        # Late acknowledgement with a prefetch of one: a worker holds exactly the task it
        # runs, so a sweep spreads over all workers and a killed worker strands no queued
        # run.  A redelivered task (worker lost, or a run longer than the visibility
        # timeout) is harmless: the run is no longer queued, so its claim fails and it is
        # skipped, never trained twice.
        task_acks_late=True,
        task_reject_on_worker_lost=False,
        worker_prefetch_multiplier=1,
        task_default_queue="clipviz",
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        broker_transport_options={"visibility_timeout": 3600},
        task_publish_retry_policy={"max_retries": 3, "interval_start": 0, "interval_step": 0.2,
                                   "interval_max": 0.5},
    )
    return app


Z95 = 1.959963984540054
"""The standard normal quantile of a two-sided 95 % interval (Phi^-1(0.975))."""


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval of a success rate (95 % by default); None when ``n`` is 0.

    For ``k`` successes in ``n`` runs, ``p = k / n``::

        (p + z²/2n ± z sqrt(p(1 - p)/n + z²/4n²)) / (1 + z²/n)

    Unlike the normal approximation it stays inside [0, 1] and is not empty at 0/n or n/n,
    which is where the cells of a small Figure 7 sweep mostly are (E. B. Wilson, 1927).
    """
    k, n = int(successes), int(n)
    if n <= 0:
        return None
    if not 0 <= k <= n:
        raise ValueError(f"successes must be between 0 and n = {n}, got {k}")
    p, z2 = k / n, z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    # at 0/n and n/n the bound on that side is exactly 0 or 1 (the formula rounds to it)
    return (0.0 if k == 0 else max(0.0, centre - half)), (1.0 if k == n else min(1.0, centre + half))


def sweep_summary(store: RunStore, sweep_id: str) -> dict:
    """Success rate per (method, length) of a temporal-order sweep (Figure 7).

    A run counts as a success when its result says ``solved`` (the paper's
    criterion: 1000 consecutive fresh sequences right); the rate is over the
    runs of that cell that finished.  Returns ``{"spec", "lengths", "methods",
    "rate": {method: [rate or None per length]}, "n": {method: [finished runs per length]},
    "solved": {method: [successes per length]}, "interval": {method: [(low, high) or None per
    length]} (the 95 % Wilson score interval, :func:`wilson_interval`), "finished", "failed",
    "cancelled", "active", "total"}``.
    """
    spec = store.sweep(sweep_id)
    runs = store.list(sweep_id=sweep_id, limit=SETTINGS.max_sweep_runs)
    lengths, methods = list(spec["lengths"]), list(spec["methods"])
    cells: dict[tuple[str, int], list[bool]] = {}
    for r in runs:
        if r.status == "finished" and r.result is not None:
            key = (r.config.get("clip"), int(r.config.get("seq_len")))
            cells.setdefault(key, []).append(bool(r.result.get("solved")))
    n = {m: [len(cells.get((m, L), ())) for L in lengths] for m in methods}
    solved = {m: [sum(cells.get((m, L), ())) for L in lengths] for m in methods}
    rate = {m: [(k / c) if c else None for k, c in zip(solved[m], n[m])] for m in methods}
    interval = {m: [wilson_interval(k, c) for k, c in zip(solved[m], n[m])] for m in methods}
    count = {s: sum(r.status == s for r in runs) for s in ("finished", "failed", "cancelled")}
    return {"spec": spec, "lengths": lengths, "methods": methods, "rate": rate, "n": n,
            "solved": solved, "interval": interval,
            "finished": count["finished"], "failed": count["failed"],
            "cancelled": count["cancelled"], "active": sum(r.active for r in runs),
            "total": len(runs)}


# --------------------------------------------------------------------------
# the public face used by the web app, the CLI and tests
# --------------------------------------------------------------------------
class Jobs:
    """Submit, cancel and inspect training runs on the configured backend.

    Parameters
    ----------
    store : RunStore, optional
        Default: the store in ``$CLIPVIZ_DATA_DIR``.
    backend : {"local", "celery"}, optional
        Default: :func:`default_backend`.
    """

    def __init__(self, store: RunStore | None = None, backend: str | None = None,
                 redis: str | None = None) -> None:
        self.store = store or RunStore()
        self.backend = backend or default_backend()
        if self.backend not in ("local", "celery"):
            raise ValueError("backend must be 'local' or 'celery'")
        self.redis = redis or redis_url()
        if self.backend == "celery" and not self.redis:
            raise ValueError("the celery backend needs CLIPVIZ_REDIS_URL (e.g. redis://127.0.0.1:6379/0)")

    def submit(self, config: Mapping | Any, *, label: str | None = None,
               sweep_id: str | None = None, owner: str | None = None) -> str:
        """Validate ``config`` (ValueError if bad), queue the run, start it; its id.

        ``owner``: who may cancel it (:meth:`cancel`); the web app passes the browser session's.
        """
        cfg = validate_config(config)
        return self._submit_many([cfg], [label], sweep_id, owner)[0]

    def _submit_many(self, cfgs: list[dict], labels: list[str | None],
                     sweep_id: str | None, owner: str | None = None) -> list[str]:
        for lab in labels:
            if lab is not None and (not isinstance(lab, str) or len(lab) > SETTINGS.max_label_chars):
                raise ValueError(f"a label must be a string of at most {SETTINGS.max_label_chars} characters")
        active = self.store.count_active()
        if active + len(cfgs) > SETTINGS.max_active_runs:
            raise CapacityError(
                f"{active} runs are queued or running and at most {SETTINGS.max_active_runs} may be at "
                f"once, so {len(cfgs)} more cannot be queued now: wait for some to finish, or cancel them")
        ids = [self.store.create_run(c, self.backend, sweep_id=sweep_id, label=lab, owner=owner,
                                     total=c.get("max_updates")) for c, lab in zip(cfgs, labels)]
        if self.backend == "local":
            self.ensure_runners(len(ids))
        else:
            app = celery_app(self.redis)
            for i, rid in enumerate(ids):
                try:
                    app.send_task(TASK_NAME, args=(rid,))
                except Exception as exc:  # noqa: BLE001 - broker unreachable: say so, keep no ghost runs
                    reason = (f"could not send the run to the Celery broker at {redact(self.redis)}: "
                              f"{type(exc).__name__}: {exc}")
                    for left in ids[i:]:
                        self.store.fail(left, reason)
                    raise RuntimeError(reason) from exc
        return ids

    def supervise_quietly(self) -> int:
        """:meth:`supervise` for a read path: a failure to start a runner is logged with its
        traceback, never raised into the request that happened to call it."""
        try:
            return self.supervise()
        except Exception:  # noqa: BLE001
            log.exception("could not restart runners for the queued runs")
            return 0

    def supervise(self) -> int:
        """Embedded backend: restart runners while local runs wait and fewer runners live than
        allowed (every runner died, or the server restarted); how many were started.

        Called on reads of the runs (the API, the training page's refresh), so queued work is
        never stranded.  Cheap when nothing waits: one count query.
        """
        if self.backend != "local":
            return 0
        queued = self.store.count_queued("local") + self.store.count_queued_slices("local")
        if not queued or self.store.live_runners() >= local_workers():
            return 0
        started = self.ensure_runners(queued)
        if started:
            log.info("started %d runner(s) for %d queued run(s)", started, queued)
        return started

    def ensure_runners(self, wanted: int | None = None) -> int:
        """Start up to ``wanted`` local runners (default: one per queued job) for the queued
        runs and slices that the runners alive but idle (waiting for work, :func:`runner_main`;
        or started and not yet claiming) will not take, within the limit; how many were
        started."""
        queued = self.store.count_queued("local") + self.store.count_queued_slices("local")
        idle = max(0, self.store.live_runners() - self.store.busy_workers("local"))
        need = queued - idle if wanted is None else min(wanted, queued - idle)
        started = 0
        for _ in range(min(need, local_workers())):
            runner_id = self.store.reserve_runner(local_workers())
            if runner_id is None:
                break
            try:
                _spawn_runner(self.store.location, runner_id, self.store.heartbeat_timeout_s)
            except OSError:
                self.store.runner_unregister(runner_id)
                raise
            started += 1
        return started

    def submit_sweep(self, base: Mapping, lengths: Iterable[int], seeds: Iterable[int],
                     methods: Iterable[str] = ("none", "norm"), *,
                     owner: str | None = None) -> tuple[str, list[str]]:
        """The Figure 7 grid: one run per (length, seed, method); (sweep id, run ids).

        ``method`` is the clipping rule (``"none"`` is plain BPTT).
        """
        lengths, seeds, methods = list(lengths), list(seeds), list(methods)
        if not lengths or not seeds or not methods:
            raise ValueError("a sweep needs at least one length, one seed and one method")
        for m in methods:
            if clipping.lookup(m) is None:
                raise ValueError(f"sweep methods must be among {', '.join(clipping.names())}; "
                                 f"got {show(m)}")
        n = len(lengths) * len(seeds) * len(methods)
        if n > SETTINGS.max_sweep_runs:
            raise ValueError(f"a sweep may have at most {SETTINGS.max_sweep_runs} runs; "
                             f"this one has {n}")
        cfgs, labels = [], []
        for L, s, m in itertools.product(lengths, seeds, methods):
            cfgs.append(validate_config({**dict(base), "seq_len": L, "seed": s, "clip": m}))
            labels.append(f"T={L} seed={s} {m}")
        spec = {"base": dict(base), "lengths": lengths, "seeds": seeds, "methods": methods}
        sweep_id = self.store.create_sweep(spec)
        return sweep_id, self._submit_many(cfgs, labels, sweep_id, owner)

    def cancel(self, run_id: str, *, owner: str | None = None, admin: bool = True) -> str:
        """Ask a run to stop (stops within about a second); its status after the request.

        With ``admin=False`` (the web app, for a request without the admin token) only the run's
        owner may: a run owned by someone else raises PermissionError, and so does a run with no
        owner.  KeyError for an unknown run.
        """
        if not admin:
            recorded = self.store.owner_of(run_id)
            if owner is None or recorded is None or not hmac.compare_digest(recorded, owner):
                raise PermissionError(f"run {run_id} was started by another browser session: only "
                                      "that session (or a request with the admin token) may cancel it")
        return self.store.request_cancel(run_id)

    def submit_slice(self, run_id: str, update: int, *, owner: str | None = None) -> str:
        """Queue the slice around run ``run_id``'s kept update ``update`` and start it; its id.

        KeyError when the run is unknown or kept no snapshot at ``update``; CapacityError when
        :attr:`Settings.slice_max_active` slices are queued or running.
        """
        self.store.get(run_id)  # KeyError for an unknown run
        if self.store.count_active_slices() >= SETTINGS.slice_max_active:
            raise CapacityError(f"{SETTINGS.slice_max_active} slices are queued or running, the "
                                "most at once: wait for one to finish, or cancel one")
        slice_id = self.store.create_slice(run_id, update, self.backend, owner=owner)
        if self.backend == "local":
            self.ensure_runners(1)
        else:
            try:
                celery_app(self.redis).send_task(SLICE_TASK_NAME, args=(slice_id,))
            except Exception as exc:  # noqa: BLE001 - broker unreachable: say so
                reason = (f"could not send the slice to the Celery broker at "
                          f"{redact(self.redis)}: {type(exc).__name__}: {exc}")
                self.store.fail_slice(slice_id, reason)
                raise RuntimeError(reason) from exc
        return slice_id

    def cancel_slice(self, slice_id: str, *, owner: str | None = None, admin: bool = True) -> str:
        """Cancel a slice job (its worker stops at its next check; the run is not touched); its
        status after.  With ``admin=False`` only the session that started it may."""
        if not admin:
            recorded = self.store.slice_owner(slice_id)
            if owner is None or recorded is None or not hmac.compare_digest(recorded, owner):
                raise PermissionError(f"slice {slice_id} was started by another browser session")
        return self.store.cancel_slice(slice_id)

    def wait_slice(self, slice_id: str, timeout: float = 60.0, poll: float = 0.05):
        """Block until the slice job ends; the job (TimeoutError after ``timeout``)."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.store.get_slice(slice_id)
            if not job.active:
                return job
            if time.monotonic() > deadline:
                raise TimeoutError(f"slice {slice_id} still {job.status} after {timeout} s")
            time.sleep(poll)

    def wait(self, run_ids: Iterable[str], timeout: float = 60.0, poll: float = 0.1) -> list:
        """Block until every run reached a final status (TimeoutError after ``timeout``)."""
        ids = list(run_ids)
        deadline = time.monotonic() + timeout
        while True:
            runs = self.store.get_many(ids)
            if all(not r.active for r in runs):
                return runs
            if time.monotonic() > deadline:
                raise TimeoutError(f"runs still active after {timeout} s: "
                                   f"{[r.id for r in runs if r.active]}")
            time.sleep(poll)
