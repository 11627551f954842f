"""The run store's contract, on both backends (SQLite and a real PostgreSQL server): run
lifecycle, telemetry appends and ``since=`` reads, cancel flags, dead workers (same host by pid,
other hosts by heartbeat), finished runs never overwritten, concurrent processes; then what is
particular to each backend (SQLite files and their migration, PostgreSQL's schema and the copy
of a SQLite store into it)."""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import subprocess
import sys
import time

import pytest

from clipviz.runstore import RunStore, pid_alive
from clipviz.store.postgres import PostgresStore
from clipviz.store.sqlite import SQLiteStore

CFG = {"task": "temporal_order", "hidden": 8, "max_updates": 10}


def _event(i, loss=1.0, clipped=False):
    return {"update": i, "total": 100, "loss": loss, "grad_norm": 2.0 * i, "grad_norm_clipped": 1.0,
            "clipped": clipped, "skipped": i // 4, "rho": 0.5 if i % 10 == 0 else None,
            "valid": None, "elapsed": 0.01 * i}


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request, tmp_path):
    """Where a fresh store lives: a SQLite file, or a new database on the session's server."""
    if request.param == "sqlite":
        return str(tmp_path / "runs.sqlite")
    return request.getfixturevalue("postgres_url")


def test_location_picks_the_backend(location):
    st = RunStore(location)
    assert type(st) is (PostgresStore if location.startswith("postgresql://") else SQLiteStore)
    assert isinstance(st, RunStore) and st.location == location


def test_lifecycle_and_series(location):
    st = RunStore(location)
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


def test_many_runs_are_read_in_the_order_asked(location):
    st = RunStore(location, heartbeat_timeout_s=0.3)
    ids = [st.create_run(dict(CFG, seed=i), "celery") for i in range(5)]
    st.claim(ids[2], "remote", pid=1, host="elsewhere")
    time.sleep(0.45)
    runs = st.get_many(ids[::-1])
    assert [r.id for r in runs] == ids[::-1] and [r.config["seed"] for r in runs] == [4, 3, 2, 1, 0]
    assert runs[2].status == "failed" and "no heartbeat" in runs[2].reason  # reaped first
    assert st.get_many([]) == []
    with pytest.raises(KeyError):
        st.get_many([ids[0], "nope"])


def test_nonfinite_values_and_bad_arguments(location):
    st = RunStore(location)
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


def test_a_directory_is_no_sqlite_store(tmp_path):
    with pytest.raises(ValueError, match="directory"):
        RunStore(tmp_path)


def test_survives_reopen(location):
    p = location
    st = RunStore(p)
    ids = [st.create_run(dict(CFG, seed=i), "celery") for i in range(3)]
    st.claim(ids[0], "w")
    st.append_metrics(ids[0], [_event(i) for i in range(1, 4)])
    st.close()
    st2 = RunStore(p)  # a restarted web app
    assert {r.id for r in st2.list()} == set(ids)
    assert st2.metrics(ids[0])["update"] == [1, 2, 3]
    assert [r.config["seed"] for r in st2.list()] == [2, 1, 0]  # newest first


def test_cancel(location):
    st = RunStore(location)
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


def test_dead_worker_process_is_reaped(location):
    st = RunStore(location)
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


def test_stale_heartbeat_is_reaped_and_a_live_worker_recovers(location):
    st = RunStore(location, heartbeat_timeout_s=0.3)
    rid = st.create_run(CFG, "celery")
    st.claim(rid, "remote", pid=123, host="some-other-host")
    assert st.get(rid).status == "running"
    time.sleep(0.45)
    r = st.get(rid)
    assert r.status == "failed" and "no heartbeat" in r.reason
    st.append_metrics(rid, [_event(1)])  # the worker was alive after all
    r = st.get(rid)
    assert r.status == "running" and r.reason is None


def test_a_run_carries_the_heartbeat_timeout_of_the_worker_that_claimed_it(location):
    """A worker on another host is judged by its own promise, not by the reader's setting."""
    reader = RunStore(location, heartbeat_timeout_s=60)
    quick = RunStore(location, heartbeat_timeout_s=0.3)  # a worker with a short timeout
    slow = RunStore(location, heartbeat_timeout_s=60)
    a, b = reader.create_run(CFG, "celery"), reader.create_run(CFG, "celery")
    assert quick.claim(a, "celery:far-away:1", pid=1, host="far-away")
    assert slow.claim(b, "celery:far-away:2", pid=2, host="far-away")
    quick.append_metrics(a, [_event(1), _event(2)])
    time.sleep(0.45)
    assert reader.reap() == [a]
    ra, rb = reader.get(a), reader.get(b)
    assert ra.status == "failed" and "limit 0.3 s" in ra.reason and "far-away" in ra.reason
    assert rb.status == "running"
    assert reader.metrics(a)["update"] == [1, 2]  # its telemetry is kept
    reader.finish(b, {"status": "finished", "series": {}, "result": {}})
    assert reader.reap(now=time.time() + 1e6) == []  # a finished run is never reaped
    assert reader.get(b).status == "finished"


def test_telemetry_in_batches_larger_than_one_statement(location):
    from clipviz import config

    n = 2 * config.SETTINGS.metrics_batch_rows + 7
    st = RunStore(location)
    rid = st.create_run(CFG, "local")
    st.claim(rid, "w")
    st.append_metrics(rid, [_event(i) for i in range(1, n + 1)])
    m = st.metrics(rid)
    assert m["update"] == list(range(1, n + 1))
    assert m["grad_norm"] == [2.0 * i for i in range(1, n + 1)]
    assert m["rho"] == [0.5 if i % 10 == 0 else None for i in range(1, n + 1)]
    assert st.get(rid).done == n
    st.append_metrics(rid, [dict(_event(n), loss=7.0)])  # the same update again: replaced
    assert st.metrics(rid, since=n - 1)["loss"] == [7.0]


def _writer(path, run_id, n):
    st = RunStore(path)
    st.claim(run_id, f"writer-{os.getpid()}")
    for i in range(1, n + 1, 10):
        st.append_metrics(run_id, [dict(_event(j), loss=float(hash(run_id) % 1000) + j)
                                   for j in range(i, min(i + 10, n + 1))])
    st.finish(run_id, {"status": "finished", "series": {}, "result": {"n": n}, "config": {}})


def test_concurrent_processes_do_not_mix(location):
    """Four processes write their own runs at once while this one reads."""
    path = location
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


def _claimer(path, out):
    st = RunStore(path)
    got = []
    while (rid := st.claim_next("local", f"claimer-{os.getpid()}")) is not None:
        got.append(rid)
    out.put(got)


def test_concurrent_claimers_take_every_queued_run_exactly_once(location):
    st = RunStore(location)
    ids = [st.create_run(dict(CFG, seed=i), "local") for i in range(40)]
    ctx = mp.get_context("fork")
    out = ctx.Queue()
    procs = [ctx.Process(target=_claimer, args=(location, out)) for _ in range(4)]
    for p in procs:
        p.start()
    got = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    claimed = [rid for g in got for rid in g]
    assert sorted(claimed) == sorted(ids)  # each once, none lost
    by_id = {r.id: r for r in st.list(reap=False)}  # (the claimers have exited: not reaped here)
    for g in got:
        assert len({by_id[rid].worker for rid in g}) <= 1  # recorded as claimed by who took it
    assert all(r.status == "running" for r in by_id.values())


def test_runner_slots(location):
    st = RunStore(location)
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


def test_busy_workers_count_each_worker_training_or_slicing_once(location):
    st = RunStore(location)
    assert st.busy_workers("local") == 0
    runs = [st.create_run(CFG, "local") for _ in range(3)]
    assert st.claim_next("local", "w1") == runs[0] and st.claim(runs[1], "w1")  # an ensemble
    assert st.busy_workers("local") == 1 and st.busy_workers("celery") == 0
    assert st.claim_next("local", "w2") == runs[2]
    assert st.busy_workers("local") == 2
    st.fail(runs[2], "stopped")  # w2 is free again
    assert st.busy_workers("local") == 1
    st.put_snapshots(runs[0], [_snap(7, ["clipped"], 12.0)])
    sl = st.create_slice(runs[0], 7, "local")
    assert st.claim_next_slice("local", "w3") == sl
    assert st.busy_workers("local") == 2  # w1 training, w3 computing a slice


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


def test_a_schema_2_store_gains_the_heartbeat_timeout_and_its_running_runs_keep_being_reaped(tmp_path):
    """A run claimed before schema 3 has no timeout of its own: the reader's applies."""
    import sqlite3

    path = tmp_path / "runs.sqlite"
    con = sqlite3.connect(path)
    con.executescript(SCHEMA_1)
    con.execute("ALTER TABLE runs ADD COLUMN owner TEXT")
    con.execute("INSERT INTO meta VALUES ('schema', '2')")
    con.execute("INSERT INTO runs (id, config, backend, status, created, updated, host, pid, worker, "
                "heartbeat) VALUES ('old2', '{}', 'celery', 'running', 1.0, 2.0, 'elsewhere', 9, 'w', ?)",
                (time.time() - 5,))
    con.commit()
    con.close()
    st = RunStore(path, heartbeat_timeout_s=1)
    r = st.get("old2")
    assert r.status == "failed" and "limit 1 s" in r.reason
    con = sqlite3.connect(path)
    cols = {row[1] for row in con.execute("PRAGMA table_info(runs)")}
    assert {"owner", "heartbeat_timeout"} <= cols
    assert con.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()[0] == "3"
    con.close()


def test_postgres_schema_is_versioned_and_a_newer_one_is_refused(postgres_url):
    import psycopg

    from clipviz.runstore import SCHEMA_VERSION

    RunStore(postgres_url)
    RunStore(postgres_url)  # opening it again changes nothing
    with psycopg.connect(postgres_url, autocommit=True) as con:
        assert con.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()[0] == str(SCHEMA_VERSION)
        idx = {r[0] for r in con.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'runs'")}
        assert {"runs_active", "runs_queue", "runs_sweep", "runs_newest"} <= idx
        con.execute("UPDATE meta SET value = '99' WHERE key = 'schema'")
    with pytest.raises(ValueError, match="newer than this clipviz reads"):
        RunStore(postgres_url)


def _opener(url, out):
    try:
        RunStore(url).create_run(CFG, "local")
        out.put("ok")
    except Exception as exc:  # noqa: BLE001 - reported to the test
        out.put(repr(exc))


def test_processes_opening_a_new_postgres_store_at_once_create_its_schema_once(postgres_url):
    ctx = mp.get_context("fork")
    out = ctx.Queue()
    procs = [ctx.Process(target=_opener, args=(postgres_url, out)) for _ in range(4)]
    for p in procs:
        p.start()
    assert sorted(out.get(timeout=60) for _ in procs) == ["ok"] * 4
    for p in procs:
        p.join(timeout=30)
    assert len(RunStore(postgres_url).list()) == 4


def test_an_old_sqlite_store_is_copied_into_postgres(tmp_path, postgres_url):
    """The way from today's runs.sqlite to PostgreSQL: open it (migrated in place), copy it."""
    import sqlite3

    path = tmp_path / "runs.sqlite"
    con = sqlite3.connect(path)
    con.executescript(SCHEMA_1)
    con.execute("INSERT INTO meta VALUES ('schema', '1')")
    con.execute("INSERT INTO runs (id, config, backend, status, created, updated, done, result, record) "
                "VALUES ('old1', '{\"hidden\": 8}', 'local', 'finished', 1.0, 2.0, 3, '{\"solved\": true}', "
                "'{\"status\": \"finished\"}')")
    con.executemany("INSERT INTO metrics (run_id, step, loss, grad_norm, clipped, skipped) "
                    "VALUES ('old1', ?, ?, ?, 0, 0)", [(i, 1.0 / i, 2.0 * i) for i in (1, 2, 3)])
    con.execute("INSERT INTO sweeps VALUES ('s1', '{\"lengths\": [10]}', 1.5)")
    con.commit()
    con.close()
    src = RunStore(path)
    rid = src.create_run(CFG, "celery", owner="me", sweep_id="s1")
    src.claim(rid, "w")
    src.append_metrics(rid, [_event(i) for i in range(1, 4)])
    src.finish(rid, {"status": "finished", "series": {}, "result": {"solved": False}})
    assert src.put_snapshots(rid, [_snap(3, ["clipped"], 9.0)]) == [3]
    dst = RunStore(postgres_url)
    assert src.copy_to(dst) == {"runs": 2, "sweeps": 1, "metrics": 6, "snapshots": 1}
    assert src.copy_to(dst) == {"runs": 0, "sweeps": 0, "metrics": 0, "snapshots": 0}  # not twice
    assert dst.snapshot(rid, 3) == src.snapshot(rid, 3) and dst.snapshot_index(rid)[0]["update"] == 3
    for run_id in ("old1", rid):
        assert dst.get(run_id) == src.get(run_id)
        assert dst.metrics(run_id) == src.metrics(run_id)
        assert dst.record(run_id) == src.record(run_id)
    assert dst.owner_of(rid) == "me" and dst.sweep("s1") == {"lengths": [10]}
    assert [r.id for r in dst.list()] == [r.id for r in src.list()]


def test_the_configured_store_is_chosen_by_the_environment(tmp_path, monkeypatch, postgres_url):
    from clipviz import config
    from clipviz.runstore import shared_store

    monkeypatch.setenv("CLIPVIZ_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("CLIPVIZ_DATABASE_URL", raising=False)
    assert isinstance(RunStore(), SQLiteStore) and RunStore().path == tmp_path / "runs.sqlite"
    monkeypatch.setenv("CLIPVIZ_DATABASE_URL", postgres_url)
    st = shared_store()
    assert isinstance(st, PostgresStore) and st is shared_store() and st.url == postgres_url
    assert isinstance(RunStore(tmp_path / "x.sqlite"), SQLiteStore)  # a path given wins
    monkeypatch.setenv("CLIPVIZ_DATABASE_URL", "mysql://x")
    with pytest.raises(ValueError, match="CLIPVIZ_DATABASE_URL must be a postgresql://"):
        config.database_url()
    monkeypatch.setenv("CLIPVIZ_DATABASE_URL", f"sqlite:///{tmp_path}/y.sqlite")
    assert RunStore().path == tmp_path / "y.sqlite"
    monkeypatch.setenv("CLIPVIZ_HEARTBEAT_TIMEOUT_S", "2.5")
    assert RunStore().heartbeat_timeout_s == 2.5
    monkeypatch.setenv("CLIPVIZ_HEARTBEAT_TIMEOUT_S", "0")
    with pytest.raises(ValueError, match="CLIPVIZ_HEARTBEAT_TIMEOUT_S"):
        config.heartbeat_timeout_s()


def test_an_unreachable_postgres_says_where_without_the_password():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ConnectionError, match=r"postgresql://clipviz:\*\*\*@127.0.0.1") as info:
        RunStore(f"postgresql://clipviz:secret@127.0.0.1:{port}/runs?connect_timeout=2")
    assert "secret" not in str(info.value)


def test_the_cli_copies_a_sqlite_store_into_postgres(tmp_path, postgres_url, capsys):
    from clipviz.cli import main

    src = RunStore(tmp_path / "runs.sqlite")
    rid = src.create_run(CFG, "local")
    src.claim(rid, "w")
    src.append_metrics(rid, [_event(1), _event(2)])
    src.finish(rid, {"status": "finished", "series": {}, "result": {"solved": True}})
    assert main(["store", "copy", str(tmp_path / "runs.sqlite"), postgres_url]) == 0
    assert "copied 1 runs, 0 sweeps and 2 telemetry rows" in capsys.readouterr().out
    assert main(["store", "info", postgres_url]) == 0
    out = capsys.readouterr().out
    assert "postgresql, schema 3, 1 runs (0 queued, 0 running, 1 finished" in out
    assert RunStore(postgres_url).get(rid).result == {"solved": True}
    assert main(["store", "copy", postgres_url, postgres_url]) == 2  # a message, not a traceback


def test_claim_companions_takes_compatible_queued_runs_of_the_same_sweep(location):
    """A worker that trains a sweep's runs together (issue 15) claims the compatible queued runs
    of the same sweep and backend, oldest first, up to a limit and its share; each marked running
    as claim() marks one."""
    st = RunStore(location)
    s1, s2 = st.create_sweep({"n": 1}), st.create_sweep({"n": 2})
    a = st.create_run(dict(CFG, seed=0), "local", sweep_id=s1)
    b = st.create_run(dict(CFG, seed=1), "local", sweep_id=s1)
    c = st.create_run(dict(CFG, seed=2, hidden=9), "local", sweep_id=s1)
    d = st.create_run(dict(CFG, seed=3), "local", sweep_id=s1)
    e = st.create_run(dict(CFG, seed=4), "local", sweep_id=s2)
    f = st.create_run(dict(CFG, seed=5), "local")
    g = st.create_run(dict(CFG, seed=6), "celery", sweep_id=s1)
    h = st.create_run(dict(CFG, seed=7), "local", sweep_id=s1)
    same = lambda cfg: cfg["hidden"] == 8  # noqa: E731
    assert st.claim_next("local", "w") == a
    assert st.claim_companions(a, "w", 1, same) == [b]
    assert st.claim_companions(a, "w", 10, same, share=2) == [d]  # a, d, h: its share is 2
    assert st.claim_companions(a, "w", 10, same) == [h]
    assert st.claim_companions(a, "w", 10, same) == []
    for rid in (b, d, h):
        r = st.get(rid)
        assert r.status == "running" and r.worker == "w" and r.started is not None
    assert [st.get(x).status for x in (c, e, f, g)] == ["queued"] * 4
    assert st.claim_next("local", "w2") == c
    assert st.claim_companions(c, "w2", 10, lambda cfg: True) == []  # none left in its sweep
    assert st.claim_next("local", "w2") == e
    assert st.claim_companions(e, "w2", 10, lambda cfg: True) == []
    assert st.claim_next("local", "w2") == f
    assert st.claim_companions(f, "w2", 10, lambda cfg: True) == []  # no sweep
    assert st.claim_companions(f, "w2", 0, lambda cfg: True) == []
    assert st.get(g).status == "queued"


def _snap(update, kinds, grad_norm, payload=10):
    """A stand-in for an encoded snapshot (clipviz.training.snapshots): what the store keeps."""
    return {"update": update, "kinds": list(kinds), "grad_norm": grad_norm, "loss": 1.0,
            "theta": {"dtype": "f8", "shape": [payload], "b64": "A" * (8 * payload)}}


def test_snapshots_are_kept_within_the_cap_clipped_first(location):
    from clipviz.store.base import snapshot_bytes

    st = RunStore(location)
    rid = st.create_run(CFG, "local")
    snaps = [_snap(5, ["ordinary"], 1.0), _snap(9, ["spike"], 50.0), _snap(12, ["clipped"], 30.0),
             _snap(20, ["clipped", "spike"], 80.0)]
    size = {s["update"]: snapshot_bytes(s) for s in snaps}
    # room for three: both clipped ones and the spike; the ordinary update is left out
    assert st.put_snapshots(rid, snaps, max_bytes=size[9] + size[12] + size[20] + size[5] - 1) \
        == [9, 12, 20]
    assert st.snapshot_index(rid) == [
        {"update": 9, "kinds": ["spike"], "grad_norm": 50.0},
        {"update": 12, "kinds": ["clipped"], "grad_norm": 30.0},
        {"update": 20, "kinds": ["clipped", "spike"], "grad_norm": 80.0}]
    assert st.snapshot(rid, 12) == snaps[2]
    with pytest.raises(KeyError):
        st.snapshot(rid, 5)
    # room for one: the clipped update with the largest norm
    other = st.create_run(CFG, "local")
    assert st.put_snapshots(other, snaps, max_bytes=size[20]) == [20]
    assert st.put_snapshots(st.create_run(CFG, "local"), snaps,
                            max_bytes=min(size.values()) - 1) == []
    assert [s["update"] for s in st.snapshot_index(rid)] == [9, 12, 20]  # other runs untouched
    assert st.snapshot_index("nobody") == []
    assert RunStore(location).snapshot(rid, 20) == snaps[3]  # on disk / in the database


def test_slice_jobs_lifecycle_cancel_and_failure(location):
    st = RunStore(location, heartbeat_timeout_s=30)
    rid = st.create_run(CFG, "inline")  # no local run queued: only the slices keep a runner
    st.put_snapshots(rid, [_snap(7, ["clipped"], 12.0)])
    with pytest.raises(KeyError):
        st.create_slice(rid, 8, "local")  # no snapshot at update 8
    with pytest.raises(KeyError):
        st.create_slice("nobody", 7, "local")
    a = st.create_slice(rid, 7, "local", owner="me")
    job = st.get_slice(a)
    assert (job.status, job.progress, job.run_id, job.update, job.result) == ("queued", 0.0, rid, 7, None)
    assert st.count_queued_slices("local") == 1 and st.count_queued_slices("celery") == 0
    assert st.slice_owner(a) == "me" and st.find_slice(rid, 7).id == a
    st.runner_register("r1")
    assert not st.runner_exit_if_idle("r1")  # a queued slice keeps a runner
    assert st.claim_next_slice("celery", "w") is None
    assert st.claim_next_slice("local", "w") == a and not st.claim_slice(a, "w2")
    assert st.runner_exit_if_idle("r1")
    assert st.slice_progress(a, 0.25) and st.get_slice(a).progress == 0.25
    assert st.slice_progress(a) and st.get_slice(a).progress == 0.25  # a heartbeat only
    assert st.finish_slice(a, {"update": 7, "losses": [[1.0, math.inf]]})
    done = st.get_slice(a)
    assert done.status == "finished" and done.progress == 1.0 and done.result["update"] == 7
    assert done.result["losses"][0][1] == math.inf
    assert st.cancel_slice(a) == "finished"  # a finished slice stays finished
    # cancelled while running: progress reports say stop, and no result is stored after
    b = st.create_slice(rid, 7, "local")
    assert st.find_slice(rid, 7).id == a  # the finished one is found first
    assert st.claim_slice(b, "w")
    assert st.cancel_slice(b) == "cancelled"
    assert not st.slice_progress(b, 0.5) and not st.finish_slice(b, {"update": 7})
    job = st.get_slice(b)
    assert job.status == "cancelled" and job.result is None and job.error == "cancelled by request"
    # a queued slice cancelled is never claimed; a failure keeps its reason
    c = st.create_slice(rid, 7, "local")
    assert st.cancel_slice(c) == "cancelled" and st.claim_next_slice("local", "w") is None
    d = st.create_slice(rid, 7, "local")
    st.fail_slice(d, "ValueError: no")
    assert st.get_slice(d).status == "failed" and st.get_slice(d).error == "ValueError: no"
    assert st.count_active_slices() == 0
    with pytest.raises(KeyError):
        st.get_slice("nothing")
    with pytest.raises(KeyError):
        st.cancel_slice("nothing")
    # the run itself is untouched by all of it
    r = st.get(rid)
    assert r.status == "queued" and r.result is None and st.metrics(rid)["update"] == []


def test_a_slice_whose_worker_died_is_failed(location):
    st = RunStore(location, heartbeat_timeout_s=30)
    rid = st.create_run(CFG, "local")
    st.put_snapshots(rid, [_snap(7, ["spike"], 12.0)])
    sid = st.create_slice(rid, 7, "local")
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert st.claim_slice(sid, "w")
    with st._tx() as c:  # claimed by a process of this host that has exited since
        c.execute("UPDATE slices SET pid = ? WHERE id = ?", (proc.pid, sid))
    job = st.get_slice(sid)
    assert job.status == "failed" and "worker stopped" in job.error


def test_switching_a_new_sqlite_file_to_wal_waits_for_another_process(monkeypatch):
    """SQLite answers "database is locked" at once, without its busy handler, when the journal
    mode is switched while another process opens the same new file (two gunicorn workers starting
    together, seen in the Docker test): the switch is retried until the busy timeout, and any
    other error is raised at once."""
    import sqlite3

    from clipviz.store import sqlite as sq

    class Conn:
        def __init__(self, fails, message="database is locked"):
            self.fails, self.message, self.calls = fails, message, 0

        def execute(self, sql):
            assert sql == "PRAGMA journal_mode = WAL"
            self.calls += 1
            if self.calls <= self.fails:
                raise sqlite3.OperationalError(self.message)

    monkeypatch.setattr(sq.time, "sleep", lambda s: None)
    c = Conn(fails=5)
    sq._wal(c, wait_s=30.0)
    assert c.calls == 6
    other = Conn(fails=1, message="disk I/O error")
    with pytest.raises(sqlite3.OperationalError, match="disk I/O"):
        sq._wal(other, wait_s=30.0)
    assert other.calls == 1
    clock = iter(range(0, 10_000, 10))  # each call to monotonic() 10 s later
    monkeypatch.setattr(sq.time, "monotonic", lambda: next(clock))
    stuck = Conn(fails=10**6)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        sq._wal(stuck, wait_s=30.0)
    assert 1 < stuck.calls < 10
