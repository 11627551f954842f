"""The embedded job layer: forked local runners training real (small) temporal-order runs."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from clipviz.jobs import Jobs
from clipviz.runstore import RunStore

ROOT = Path(__file__).resolve().parents[1]

SMALL = {"task": "temporal_order", "hidden": 8, "seq_len": 10, "batch_size": 10,
         "max_updates": 150, "eval_every": 50, "seed": 1}
# minutes, and far from solved (the engine stops a solved temporal-order run): only ever cancelled/killed
# (20 000 updates: within the telemetry cap, so every update is stored)
LONG = dict(SMALL, seq_len=60, max_updates=20_000, eval_every=1000)


def evaluations(done: int, cfg: dict) -> int:
    """Updates with rho/validation: every eval_every-th and the last of the budget."""
    return sum(1 for u in range(1, done + 1) if u % cfg["eval_every"] == 0 or u == cfg["max_updates"])


@pytest.fixture
def jobs(tmp_path, monkeypatch):
    monkeypatch.setenv("CLIPVIZ_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("CLIPVIZ_REDIS_URL", raising=False)
    monkeypatch.setenv("CLIPVIZ_LOCAL_WORKERS", "2")
    j = Jobs(RunStore(heartbeat_timeout_s=30))
    assert j.backend == "local" and j.store.path == tmp_path / "runs.sqlite"
    yield j
    for r in j.store.list():  # never leave a runner training after a test
        if r.active:
            j.cancel(r.id)
    try:
        j.wait([r.id for r in j.store.list()], timeout=10)
    except TimeoutError:  # pragma: no cover - kill what did not stop
        for r in j.store.list():
            if r.active and r.worker:
                os.kill(int(r.worker.rsplit(":", 1)[1]), signal.SIGKILL)


def _wait_progress(store, run_id, at_least=1, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = store.get(run_id)
        if r.done >= at_least:
            return r
        assert r.active, (r.status, r.reason)
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} made no progress in {timeout} s")


def test_bad_config_is_refused_before_anything_is_queued(jobs):
    with pytest.raises(ValueError):
        jobs.submit(dict(SMALL, hidden=-3))
    with pytest.raises(ValueError):
        jobs.submit(dict(SMALL, task="chess"))
    with pytest.raises(ValueError, match="at most"):
        jobs.submit_sweep(SMALL, lengths=list(range(10, 1100)), seeds=[0], methods=["none"])
    with pytest.raises(ValueError, match="methods"):
        jobs.submit_sweep(SMALL, lengths=[10], seeds=[0], methods=["magic"])
    assert jobs.store.list() == []


def test_local_run_end_to_end(jobs):
    rid = jobs.submit(SMALL, label="small")
    (run,) = jobs.wait([rid], timeout=120)
    assert run.status == "finished", run.reason
    # the whole budget, or fewer updates when the task was solved (the engine stops there)
    assert run.done == run.result["updates"] and run.total == SMALL["max_updates"]
    assert run.done == SMALL["max_updates"] or run.result["solved"]
    m = jobs.store.metrics(rid)
    rec = jobs.store.record(rid)
    assert m["update"] == list(range(1, run.done + 1))
    assert m["loss"] == rec["series"]["loss"]  # live telemetry == the record's series
    assert rec["config"]["hidden"] == 8
    assert sum(v is not None for v in m["valid"]) == evaluations(run.done, SMALL)
    assert run.worker.startswith("local:")


def test_local_cancel_within_a_second(jobs):
    rid = jobs.submit(LONG)
    _wait_progress(jobs.store, rid, at_least=20)
    t = time.monotonic()
    assert jobs.cancel(rid) == "running"
    while jobs.store.get(rid).active:
        assert time.monotonic() - t < 1.0, "cancel took longer than a second"
        time.sleep(0.02)
    run = jobs.store.get(rid)
    assert run.status == "cancelled" and 0 < run.done < LONG["max_updates"]
    assert jobs.store.record(rid)["status"] == "cancelled"
    assert jobs.store.metrics(rid)["update"][-1] == run.done  # nothing lost at the end


def test_two_runs_at_once_do_not_mix(jobs):
    a = jobs.submit(dict(SMALL, max_updates=400, hidden=6, seed=3))
    b = jobs.submit(dict(SMALL, max_updates=400, hidden=12, seed=4, clip="none"))
    runs = jobs.wait([a, b], timeout=120)
    assert [r.status for r in runs] == ["finished", "finished"]
    assert runs[0].worker != runs[1].worker  # really two processes at once
    for rid in (a, b):
        rec = jobs.store.record(rid)
        m = jobs.store.metrics(rid)
        assert m["loss"] == rec["series"]["loss"]
        assert m["grad_norm"] == rec["series"]["grad_norm"]
    assert jobs.store.metrics(a)["loss"] != jobs.store.metrics(b)["loss"]


def test_killed_runner_marks_run_failed(jobs):
    rid = jobs.submit(LONG)
    run = _wait_progress(jobs.store, rid, at_least=20)
    pid = int(run.worker.rsplit(":", 1)[1])
    before = jobs.store.metrics(rid)["update"]
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while jobs.store.get(rid).active:
        assert time.monotonic() < deadline, "killed run still shown as running"
        time.sleep(0.05)
    run = jobs.store.get(rid)
    assert run.status == "failed" and f"worker process {pid}" in run.reason
    after = jobs.store.metrics(rid)["update"]
    assert after[:len(before)] == before and after == list(range(1, len(after) + 1))  # intact


def test_an_idle_runner_waits_for_the_next_run_then_exits(jobs, monkeypatch):
    """A runner with nothing queued waits (CLIPVIZ_RUNNER_IDLE_S) and takes the next run itself:
    no interpreter is started for it; past the wait it exits and unregisters."""
    monkeypatch.setenv("CLIPVIZ_RUNNER_IDLE_S", "4")
    first = jobs.wait([jobs.submit(dict(SMALL, max_updates=20))], timeout=120)[0]
    assert first.status == "finished"
    assert jobs.store.live_runners() == 1  # it waits, registered
    second = jobs.wait([jobs.submit(dict(SMALL, max_updates=20, seed=1))], timeout=120)[0]
    assert second.status == "finished" and second.worker == first.worker  # the same process
    deadline = time.monotonic() + 30
    while jobs.store.live_runners():
        assert time.monotonic() < deadline, "the idle runner did not exit after its wait"
        time.sleep(0.2)
    pid = int(first.worker.rsplit(":", 1)[1])
    with pytest.raises(ProcessLookupError):
        for _ in range(50):  # unregistered, then gone
            os.kill(pid, 0)
            time.sleep(0.1)


def test_local_sweep_runs_with_two_runners(jobs):
    sweep, ids = jobs.submit_sweep(dict(SMALL, max_updates=60), lengths=[8, 12], seeds=[0, 1],
                                   methods=["none", "norm"])
    assert len(ids) == 8
    runs = jobs.wait(ids, timeout=180)
    assert all(r.status == "finished" for r in runs), [(r.status, r.reason) for r in runs]
    assert len({r.worker for r in runs}) == 2  # drained by exactly the two allowed runners
    assert {(r.config["seq_len"], r.config["seed"], r.config["clip"]) for r in runs} == \
        {(L, s, m) for L in (8, 12) for s in (0, 1) for m in ("none", "norm")}
    assert jobs.store.sweep(sweep)["lengths"] == [8, 12]


FORK_SCRIPT = textwrap.dedent("""
    import os, sys, numpy as np, numba
    import clipviz
    from clipviz.jobs import Jobs
    from clipviz.runstore import RunStore

    @numba.njit(parallel=True, cache=False)
    def psum(a):
        s = 0.0
        for i in numba.prange(a.size):
            s += a[i]
        return s

    assert psum(np.ones(100000)) == 100000.0  # the parallel backend is now initialised
    print("layer", numba.threading_layer())
    import clipviz.training as tr
    _train = tr.train

    def train(config, callback=None):  # the forked runner runs a parallel kernel too
        assert psum(np.ones(1000)) == 1000.0
        return _train(config, callback)

    tr.train = train
    j = Jobs(RunStore(sys.argv[1]), backend="local")
    rid = j.submit({"task": "temporal_order", "hidden": 8, "seq_len": 10, "batch_size": 10,
                    "max_updates": 50, "eval_every": 25})
    (run,) = j.wait([rid], timeout=120)
    print("status", run.status, run.reason)
""")


def test_forked_runner_after_a_parallel_kernel(tmp_path):
    """The runner is forked from a process whose parallel Numba kernel already ran."""
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_THREADING_LAYER"}
    env["PYTHONPATH"] = str(ROOT)
    res = subprocess.run([sys.executable, "-c", FORK_SCRIPT, str(tmp_path / "r.sqlite")],
                         capture_output=True, text=True, timeout=240, env=env, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "layer tbb" in res.stdout
    assert "status finished None" in res.stdout, res.stdout + res.stderr[-3000:]


def test_jobs_train_with_one_blas_thread(monkeypatch):
    from threadpoolctl import threadpool_info

    import numpy as np  # noqa: F401 - loads OpenBLAS
    from clipviz import jobs as jm

    with jm._blas_limit():
        blas = [i for i in threadpool_info() if i["user_api"] == "blas"]
        assert blas and all(i["num_threads"] == 1 for i in blas)
    monkeypatch.setenv("CLIPVIZ_WORKER_BLAS_THREADS", "2")
    assert jm.blas_threads() == 2
    monkeypatch.setenv("CLIPVIZ_WORKER_BLAS_THREADS", "many")
    with pytest.raises(ValueError, match="CLIPVIZ_WORKER_BLAS_THREADS"):
        jm.blas_threads()


def test_training_warm_up_runs_without_an_error(caplog):
    """The warm-up the forked runners inherit really trains (it once asked for a sequence shorter
    than the engine accepts, logged an ERROR at every start and warmed nothing)."""
    from clipviz import jobs as jm

    with caplog.at_level(logging.WARNING, logger="clipviz"):
        jm.warm_up.__wrapped__()
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


# --------------------------------------------------------------------------
# the sweep's success rates: n per cell and the 95 % Wilson score interval
# --------------------------------------------------------------------------
@pytest.mark.parametrize("k, n, low, high", [
    # Newcombe (1998), Statistics in Medicine 17: 857-872, Table I (method 3, Wilson score)
    (81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605), (0, 20, 0.0, 0.1611), (1, 29, 0.0061, 0.1718),
    # the textbook small cases: 0/10 -> [0, 27.8 %], 5/10 -> [23.7, 76.3 %], 10/10 -> [72.2 %, 1]
    (0, 10, 0.0, 0.2775), (5, 10, 0.2366, 0.7634), (10, 10, 0.7225, 1.0)])
def test_wilson_interval_known_values(k, n, low, high):
    from clipviz.jobs import wilson_interval

    lo, hi = wilson_interval(k, n)
    assert lo == pytest.approx(low, abs=5e-5) and hi == pytest.approx(high, abs=5e-5)


def test_wilson_interval_edges():
    from clipviz.jobs import wilson_interval

    assert wilson_interval(0, 0) is None  # no finished run: no interval
    assert wilson_interval(0, 5)[0] == 0.0 and wilson_interval(5, 5)[1] == 1.0  # exactly
    lo, hi = wilson_interval(2, 4)
    assert lo == pytest.approx(1 - hi)  # symmetric about 1/2 at k = n/2
    with pytest.raises(ValueError, match="between 0 and n"):
        wilson_interval(6, 5)


def test_sweep_summary_counts_and_intervals(tmp_path):
    from clipviz.jobs import sweep_summary, wilson_interval

    store = RunStore(tmp_path / "runs.sqlite")
    sid = store.create_sweep({"lengths": [10, 20], "methods": ["none", "norm"], "seeds": [0, 1, 2]})

    def run(L, clip, solved, status="finished"):
        rid = store.create_run({"task": "temporal_order", "seq_len": L, "clip": clip}, "local", sweep_id=sid)
        assert store.claim(rid, "test")
        store.finish(rid, {"status": status, "series": {}, "result": {"solved": solved}, "config": {}})

    for solved in (True, False, False):
        run(10, "none", solved)
    for solved in (True, True, True):
        run(10, "norm", solved)
    run(20, "norm", True)
    run(20, "norm", True, status="cancelled")  # not finished: not counted
    s = sweep_summary(store, sid)
    assert s["n"] == {"none": [3, 0], "norm": [3, 1]}
    assert s["solved"] == {"none": [1, 0], "norm": [3, 1]}
    assert s["rate"] == {"none": [pytest.approx(1 / 3), None], "norm": [1.0, 1.0]}
    assert s["interval"]["none"] == [wilson_interval(1, 3), None]
    assert s["interval"]["norm"] == [wilson_interval(3, 3), wilson_interval(1, 1)]
    assert (s["finished"], s["cancelled"], s["total"]) == (7, 1, 8)
