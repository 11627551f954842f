"""The SQLite run store: persistence, concurrent processes, liveness, cancel flags."""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import subprocess
import sys
import time

import pytest

from clipviz.runstore import RunStore, pid_alive

CFG = {"task": "temporal_order", "hidden": 8, "max_updates": 10}


def _event(i, loss=1.0, clipped=False):
    return {"update": i, "total": 100, "loss": loss, "grad_norm": 2.0 * i, "grad_norm_clipped": 1.0,
            "clipped": clipped, "skipped": i // 4, "rho": 0.5 if i % 10 == 0 else None,
            "valid": None, "elapsed": 0.01 * i}


def test_lifecycle_and_series(tmp_path):
    st = RunStore(tmp_path / "runs.sqlite")
    rid = st.create_run(CFG, "local", label="a")
    r = st.get(rid)
    assert r.status == "queued" and r.config == CFG and r.done == 0
    assert st.claim(rid, "test-worker")
    assert not st.claim(rid, "other")  # a run is claimed once
    assert st.get(rid).status == "running"
    cancel = st.append_metrics(rid, [_event(i, clipped=i == 3) for i in range(1, 6)], total=100)
    assert cancel is False
    m = st.metrics(rid)
    assert m["update"] == [1, 2, 3, 4, 5]
    assert m["clipped"] == [0, 0, 1, 0, 0]
    assert m["skipped"] == [0, 0, 0, 1, 1]  # a cumulative count, kept as such
    assert m["rho"] == [None] * 5 and m["grad_norm"] == [2.0, 4.0, 6.0, 8.0, 10.0]
    assert st.metrics(rid, since=3)["update"] == [4, 5]
    r = st.get(rid)
    assert r.done == 5 and r.total == 100
    rec = {"config": CFG, "status": "finished", "series": {"loss": [1.0] * 5},
           "result": {"accuracy": 0.9}, "code_version": "x"}
    st.finish(rid, rec, [_event(6)])
    r = st.get(rid)
    assert r.status == "finished" and r.result == {"accuracy": 0.9} and r.ended is not None
    assert st.record(rid) == rec
    assert st.metrics(rid)["update"][-1] == 6
    # a later failure report or reaping never overwrites a finished run
    st.fail(rid, "late error")
    assert st.reap(now=time.time() + 1e6) == []
    assert st.get(rid).status == "finished"


def test_nonfinite_values_and_bad_arguments(tmp_path):
    st = RunStore(tmp_path / "r.sqlite")
    rid = st.create_run(CFG, "inline")
    st.claim(rid, "w")
    st.append_metrics(rid, [dict(_event(1), loss=float("nan"), grad_norm=float("inf"))])
    m = st.metrics(rid)
    assert m["loss"] == [None] and m["grad_norm"] == [math.inf]
    with pytest.raises(ValueError, match="backend"):
        st.create_run(CFG, "spark")
    with pytest.raises(ValueError, match="status"):
        st.finish(rid, {"status": "exploded"})
    with pytest.raises(KeyError):
        st.get("nope")
    with pytest.raises(ValueError, match="directory"):
        RunStore(tmp_path)


def test_survives_reopen(tmp_path):
    p = tmp_path / "runs.sqlite"
    st = RunStore(p)
    ids = [st.create_run(dict(CFG, seed=i), "celery") for i in range(3)]
    st.claim(ids[0], "w")
    st.append_metrics(ids[0], [_event(i) for i in range(1, 4)])
    st.close()
    st2 = RunStore(p)  # a restarted web app
    assert {r.id for r in st2.list()} == set(ids)
    assert st2.metrics(ids[0])["update"] == [1, 2, 3]
    assert [r.config["seed"] for r in st2.list()] == [2, 1, 0]  # newest first


def test_cancel(tmp_path):
    st = RunStore(tmp_path / "r.sqlite")
    queued = st.create_run(CFG, "local")
    assert st.request_cancel(queued) == "cancelled"
    assert st.get(queued).status == "cancelled"
    assert not st.claim(queued, "w")  # a cancelled run is never started
    running = st.create_run(CFG, "local")
    st.claim(running, "w")
    assert not st.cancel_requested(running)
    assert st.request_cancel(running) == "running"
    assert st.cancel_requested(running)
    assert st.append_metrics(running, [_event(1)]) is True


def test_dead_worker_process_is_reaped(tmp_path):
    st = RunStore(tmp_path / "r.sqlite")
    rid = st.create_run(CFG, "local")
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    assert not pid_alive(p.pid)
    assert st.claim(rid, "gone-worker", pid=p.pid)
    st.append_metrics(rid, [_event(1), _event(2)])
    r = st.get(rid)  # reading reaps
    assert r.status == "failed"
    assert f"worker process {p.pid}" in r.reason and "exited without finishing" in r.reason
    assert st.metrics(rid)["update"] == [1, 2]  # what it wrote is kept


def test_zombie_counts_as_dead():
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.time() + 10
    while time.time() < deadline and pid_alive(p.pid):  # exits, not yet waited for: a zombie
        time.sleep(0.02)
    assert not pid_alive(p.pid)
    p.wait()
    assert pid_alive(os.getpid())


def test_stale_heartbeat_is_reaped_and_a_live_worker_recovers(tmp_path):
    st = RunStore(tmp_path / "r.sqlite", heartbeat_timeout_s=0.3)
    rid = st.create_run(CFG, "celery")
    st.claim(rid, "remote", pid=123, host="some-other-host")
    assert st.get(rid).status == "running"
    time.sleep(0.45)
    r = st.get(rid)
    assert r.status == "failed" and "no heartbeat" in r.reason
    st.append_metrics(rid, [_event(1)])  # the worker was alive after all
    r = st.get(rid)
    assert r.status == "running" and r.reason is None


def _writer(path, run_id, n):
    st = RunStore(path)
    st.claim(run_id, f"writer-{os.getpid()}")
    for i in range(1, n + 1, 10):
        st.append_metrics(run_id, [dict(_event(j), loss=float(hash(run_id) % 1000) + j)
                                   for j in range(i, min(i + 10, n + 1))])
    st.finish(run_id, {"status": "finished", "series": {}, "result": {"n": n}, "config": {}})


def test_concurrent_processes_do_not_mix(tmp_path):
    """Four processes write their own runs at once while this one reads."""
    path = tmp_path / "r.sqlite"
    st = RunStore(path)
    ids = [st.create_run(dict(CFG, seed=i), "local") for i in range(4)]
    n = 300
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(path, rid, n)) for rid in ids]
    for p in procs:
        p.start()
    while any(p.is_alive() for p in procs):
        for rid in ids:  # reading while they write never blocks or errors
            assert len(st.metrics(rid)["update"]) <= n
        time.sleep(0.005)
    for p in procs:
        p.join()
        assert p.exitcode == 0
    for rid in ids:
        m = st.metrics(rid)
        assert m["update"] == list(range(1, n + 1))
        base = float(hash(rid) % 1000)
        assert m["loss"] == [base + j for j in range(1, n + 1)]
        assert st.get(rid).status == "finished" and st.get(rid).result == {"n": n}


def test_runner_slots(tmp_path):
    st = RunStore(tmp_path / "r.sqlite")
    a = st.reserve_runner(2)
    b = st.reserve_runner(2)
    assert a and b and st.reserve_runner(2) is None
    st.runner_unregister(a)
    assert st.reserve_runner(2) is not None
    rid = st.create_run(CFG, "local")
    assert not st.runner_exit_if_idle(b)  # a queued run keeps a runner alive
    assert st.claim_next("local", "w") == rid
    assert st.claim_next("local", "w") is None
    assert st.runner_exit_if_idle(b)


# The schema-1 store as clipviz 0.1.0 before run owners wrote it (its _SCHEMA, verbatim).
SCHEMA_1 = """
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
    code_version TEXT
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


def test_a_schema_1_store_is_migrated_on_open_and_keeps_its_runs(tmp_path):
    import sqlite3

    from clipviz.runstore import SCHEMA_VERSION

    path = tmp_path / "runs.sqlite"
    con = sqlite3.connect(path)
    con.executescript(SCHEMA_1)
    con.execute("INSERT INTO meta VALUES ('schema', '1')")
    con.execute("INSERT INTO runs (id, config, backend, status, created, updated, done) "
                "VALUES ('old1', '{\"hidden\": 8}', 'local', 'finished', 1.0, 2.0, 150)")
    con.commit()
    con.close()
    st = RunStore(path)
    run = st.get("old1")
    assert (run.status, run.done, run.config) == ("finished", 150, {"hidden": 8})
    assert st.owner_of("old1") is None  # no owner: only the admin token cancels it from the web
    rid = st.create_run({"hidden": 4}, "local", owner="abc")
    assert st.owner_of(rid) == "abc"
    con = sqlite3.connect(path)
    assert con.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()[0] == str(SCHEMA_VERSION)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()
    RunStore(path)  # opening it again migrates nothing more


def test_a_store_from_a_newer_clipviz_is_refused(tmp_path):
    import sqlite3

    path = tmp_path / "runs.sqlite"
    RunStore(path)
    con = sqlite3.connect(path)
    con.execute("UPDATE meta SET value = '99' WHERE key = 'schema'")
    con.commit()
    con.close()
    with pytest.raises(ValueError, match="newer than this clipviz reads"):
        RunStore(path)
