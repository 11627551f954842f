"""Sweep throughput (issues 6 and 14): a Figure 7-style sweep on 1 and 2 workers.

Starts a private ``redis-server`` on a free port and ``celery -A clipviz.worker
worker --concurrency=1`` processes, submits a sweep of temporal-order runs
(lengths x seeds x {BPTT, rescaling}) through :class:`clipviz.jobs.Jobs` and
times it from submission until every run is finished (median of several
sweeps, after a warm-up sweep that also fills Numba's cache).  The Celery
workers are measured on both run stores: the SQLite file and a private
PostgreSQL server (Debian's ``postgresql``, :mod:`clipviz.bench.pgserver`, with
its default durability: every commit flushed), where each worker has a data
folder of its own.  The embedded backend (local runners) is measured the same
way with 1 and 2 runners, twice: "cold", each sweep starting its runners (fresh
interpreters, which exit once the queue is empty), and "warm", the runners
waiting for work between sweeps (``CLIPVIZ_RUNNER_IDLE_S``) as Celery's workers
do.  The ratio 2 workers / 1 worker is the scaling; on a
machine whose cores are shared it stays below 2.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from clipviz import config

BASE = {"task": "temporal_order", "hidden": 50, "batch_size": 20, "max_updates": 400,
        "eval_every": 200}
LENGTHS = [20, 30]
SEEDS = [0, 1]
METHODS = ["none", "norm"]


LOCAL_COLD = "local (cold)"  # local runners started by each sweep
LOCAL_WARM = "local (warm)"  # local runners waiting for work between sweeps
LOCAL_IDLE_S = 5  # CLIPVIZ_RUNNER_IDLE_S of the warm runs: longer than the gap between sweeps


def _wait_runners_exit(store, timeout: float) -> None:
    """Wait until the store's local runners have exited (before their folder is removed)."""
    deadline = time.monotonic() + timeout
    while store.live_runners() and time.monotonic() < deadline:
        time.sleep(0.2)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(unset: tuple[str, ...] = (), **kw: str) -> dict:
    return config.child_env(path_first=Path(__file__).resolve().parents[2], unset=unset, **kw)


def _start_worker(name: str, env: dict, log: Path) -> subprocess.Popen:
    p = subprocess.Popen([sys.executable, "-m", "celery", "-A", "clipviz.worker", "worker",
                          "-n", f"{name}@%h", "--concurrency=1", "--without-gossip",
                          "--without-mingle", "--without-heartbeat", "--loglevel=WARNING"],
                         env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT,
                         start_new_session=True)
    return p


def _wait_workers(url: str, n: int, timeout: float = 90) -> None:
    from clipviz.jobs import celery_app

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(celery_app(url).control.ping(timeout=0.5) or []) >= n:
            return
    raise RuntimeError(f"{n} Celery workers did not come up in {timeout} s")


def _stop(p: subprocess.Popen) -> None:
    if p.poll() is None:
        os.killpg(p.pid, signal.SIGTERM)
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def _time_sweep(jobs, lengths, seeds) -> tuple[float, int]:
    t = time.perf_counter()
    _, ids = jobs.submit_sweep(BASE, lengths, seeds, METHODS)
    runs = jobs.wait(ids, timeout=3600, poll=0.05)
    dt = time.perf_counter() - t
    bad = [(r.status, r.reason) for r in runs if r.status != "finished"]
    if bad:
        raise RuntimeError(f"sweep runs did not finish: {bad[:3]}")
    return dt, sum(r.done for r in runs)  # a solved run stops before its budget


def _celery(url: str, tmp: Path, store: str, n: int, location: str, seeds: list[int],
            repeats: int) -> tuple[float, float]:
    """Median seconds and updates/s of the sweep on ``n`` Celery workers over ``store``."""
    from clipviz.jobs import Jobs
    from clipviz.runstore import RunStore

    pg = store == "postgresql"
    workers = []
    for i in range(n):  # with PostgreSQL each worker has a folder of its own: nothing shared
        data = tmp / f"{store}{n}" / (f"w{i}" if pg else "shared")
        env = _env(unset=() if pg else (config.ENV_DATABASE_URL,), CLIPVIZ_REDIS_URL=url,
                   CLIPVIZ_DATA_DIR=str(data), **({config.ENV_DATABASE_URL: location} if pg else {}))
        workers.append(_start_worker(f"bench-{store}{n}-{i}", env, tmp / f"w-{store}{n}{i}.log"))
    try:
        with config.environment(CLIPVIZ_REDIS_URL=url, CLIPVIZ_DATA_DIR=str(tmp / f"{store}{n}" / "web"),
                                **{config.ENV_DATABASE_URL: location if pg else None}):
            _wait_workers(url, n)
            jobs = Jobs(RunStore(location), backend="celery", redis=url)
            _time_sweep(jobs, LENGTHS[:1], SEEDS[:1])  # warm-up (and Numba cache)
            res = [_time_sweep(jobs, LENGTHS, seeds) for _ in range(repeats)]
    finally:
        for w in workers:
            _stop(w)
    return statistics.median(t for t, _ in res), statistics.median(u / t for t, u in res)


def run(quick: bool = False) -> list[str]:
    from clipviz.bench import pgserver
    from clipviz.jobs import Jobs
    from clipviz.runstore import RunStore

    repeats = 1 if quick else 3
    seeds = SEEDS if quick else SEEDS + [2, 3]
    n_runs = len(LENGTHS) * len(seeds) * len(METHODS)
    lines = [f"sweep throughput: {n_runs} temporal-order runs per sweep (hidden {BASE['hidden']}, "
             f"batch {BASE['batch_size']}, {BASE['max_updates']} updates, T in {LENGTHS}, "
             f"BPTT and rescaling), median of {repeats} after a warm-up sweep; "
             f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start"]
    results: dict[tuple[str, int], tuple[float, float]] = {}
    tmp = Path(tempfile.mkdtemp(prefix="clipviz-bench-sweep-"))
    redis_proc = pg = None
    try:
        # --- Celery over Redis -------------------------------------------------
        if shutil.which("redis-server"):
            port = _free_port()
            url = f"redis://127.0.0.1:{port}/0"
            redis_proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                                           "--save", "", "--appendonly", "no"],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for n in (1, 2):
                results[("celery+sqlite", n)] = _celery(url, tmp, "sqlite", n,
                                                        str(tmp / f"sqlite{n}" / "shared" / "runs.sqlite"),
                                                        seeds, repeats)
            if pgserver.binaries() is not None:
                pg = pgserver.PostgresServer(durable=True)
                for n in (1, 2):
                    results[("celery+postgresql", n)] = _celery(url, tmp, "postgresql", n,
                                                                pg.create_database("bench"), seeds, repeats)
            else:
                lines.append("  celery+postgresql: skipped (PostgreSQL not installed)")
        else:
            lines.append("  celery: skipped (redis-server not installed)")
        # --- embedded: local runners (fresh interpreters) ------------------------
        # "cold": each sweep starts its runners (they exit as soon as the queue is empty: the
        # behaviour before runners waited for work); "warm": they wait between sweeps, as the
        # Celery workers do
        for n in (1, 2):
            for mode, idle in ((LOCAL_COLD, "0"), (LOCAL_WARM, str(LOCAL_IDLE_S))):
                data = tmp / f"local{n}-{idle}"
                with config.environment(CLIPVIZ_REDIS_URL=None, CLIPVIZ_DATA_DIR=str(data),
                                        CLIPVIZ_LOCAL_WORKERS=str(n), **{config.ENV_DATABASE_URL: None,
                                                                         config.ENV_RUNNER_IDLE: idle}):
                    jobs = Jobs(RunStore(data / "runs.sqlite"), backend="local")
                    _time_sweep(jobs, LENGTHS[:1], SEEDS[:1])
                    res = [_time_sweep(jobs, LENGTHS, seeds) for _ in range(repeats)]
                    _wait_runners_exit(jobs.store, LOCAL_IDLE_S + 10)
                results[(mode, n)] = (statistics.median(t for t, _ in res),
                                      statistics.median(u / t for t, u in res))
    finally:
        if redis_proc is not None:
            redis_proc.terminate()
            redis_proc.wait()
        if pg is not None:
            pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    for backend in ("celery+sqlite", "celery+postgresql", LOCAL_COLD, LOCAL_WARM):
        one, two = results.get((backend, 1)), results.get((backend, 2))
        for n, r in ((1, one), (2, two)):
            if r is not None:
                lines.append(f"  {backend:17s} {n} worker{'s' if n > 1 else ' '}: {r[0]:7.2f} s  "
                             f"{n_runs / r[0]:6.2f} runs/s  {r[1]:8.0f} updates/s")
        if one and two:
            lines.append(f"  {backend:17s} scaling 2 vs 1: {one[0] / two[0]:5.2f} x")
    lines.append(f"  load average at the end: {os.getloadavg()[0]:.1f} (other processes share the CPUs)")
    return lines
