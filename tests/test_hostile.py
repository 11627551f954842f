"""Faults, load and hostile input against the deployment as the Dockerfile runs it (issue 11).

Each test is a reproduction of something that went wrong when the app was attacked from
127.0.0.1: it failed before the fix.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WORKERS, THREADS = 2, 4  # the Dockerfile's gunicorn


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# one browser session: it keeps the cookie that owns the runs it starts
BROWSER = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())


def _request(port: int, path: str, body: dict | None = None, timeout: float = 30) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method="POST" if data else "GET",
                                 headers={"Content-Type": "application/json"})
    try:
        with BROWSER.open(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


class Gunicorn:
    """``gunicorn app:server`` of this checkout, as the Dockerfile runs it."""

    def __init__(self, port: int, data: Path, log: Path) -> None:
        if shutil.which("gunicorn") is None:
            pytest.skip("gunicorn is not installed (scripts/test.sh runs the suite in the project venv)")
        env = dict(os.environ, CLIPVIZ_DATA_DIR=str(data), PYTHONPATH=str(ROOT))
        env.pop("CLIPVIZ_REDIS_URL", None)
        self.log = log.open("a")
        self.proc = subprocess.Popen(
            ["gunicorn", "-w", str(WORKERS), "--threads", str(THREADS), "--timeout", "120",
             "-b", f"127.0.0.1:{port}", "app:server"], cwd=ROOT, env=env, stdout=self.log,
            stderr=subprocess.STDOUT)
        self.port = port
        end = time.time() + 180
        while time.time() < end:
            assert self.proc.poll() is None, log.read_text()[-3000:]
            try:
                if _request(port, "/health", timeout=2)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise AssertionError(f"gunicorn did not answer /health: {log.read_text()[-3000:]}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()


def _wait_status(port: int, rid: str, want: set[str], timeout: float) -> dict:
    end = time.time() + timeout
    while True:
        code, got = _request(port, f"/api/runs/{rid}?since=10000000")
        assert code == 200, (code, got)
        if got["run"]["status"] in want:
            return got["run"]
        assert time.time() < end, got["run"]
        time.sleep(0.3)


LONG_RUN = {"task": "temporal_order", "hidden": 50, "seq_len": 50, "batch_size": 20, "max_updates": 30000,
            "eval_every": 100}  # a minute or so: it outlives the server that started it
SHORT_RUN = {"task": "temporal_order", "hidden": 8, "seq_len": 10, "batch_size": 10, "max_updates": 50,
             "eval_every": 25}


@pytest.mark.slow
def test_sigterm_during_a_run_then_restart_keeps_every_run_and_the_store_intact(tmp_path):
    """Items 1 and 3.  Runners forked from a web worker shared its SQLite connections without
    holding their locks: after SIGTERM and a restart, new runs answered 201 and vanished, and
    ``PRAGMA integrity_check`` found the database malformed.  The runner also held the server's
    listening socket, so the port could not be bound again while it ran."""
    data, port = tmp_path / "data", _free_port()
    first = Gunicorn(port, data, tmp_path / "gunicorn.log")
    code, got = _request(port, "/api/runs", LONG_RUN)
    assert code == 201, got
    long_id = got["id"]
    _wait_status(port, long_id, {"running"}, 60)
    first.stop(signal.SIGTERM)

    # the port is free at once, though the run goes on (the runner holds no inherited descriptor)
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))

    second = Gunicorn(port, data, tmp_path / "gunicorn.log")
    try:
        assert _wait_status(port, long_id, {"running", "finished", "failed", "cancelled"}, 5)["status"] \
            == "running", "the scenario needs the run to outlive the first server"
        ids = []
        for _ in range(2):
            code, got = _request(port, "/api/runs", SHORT_RUN)
            assert code == 201, got
            ids.append(got["id"])
        for rid in ids:
            run = _wait_status(port, rid, {"finished", "failed", "cancelled"}, 120)
            assert run["status"] == "finished", run
        assert _request(port, f"/api/runs/{long_id}/cancel", {})[0] == 200
        run = _wait_status(port, long_id, {"finished", "failed", "cancelled"}, 30)
        assert run["status"] == "cancelled", run
        for _ in range(5):  # the listing is stable: no 500s, every run in it, every time
            code, listing = _request(port, "/api/runs")
            assert code == 200, listing
            assert {long_id, *ids} <= {r["id"] for r in listing["runs"]}
    finally:
        second.stop()
    con = sqlite3.connect(data / "runs.sqlite")
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert {r[0] for r in con.execute("SELECT id FROM runs")} >= {long_id, *ids}
    finally:
        con.close()


def test_a_runner_inherits_no_descriptor_of_the_process_that_started_it(tmp_path, monkeypatch):
    """Item 3, in one process: a listening socket and an open store connection of the starting
    process are not open in the runner."""
    from clipviz.jobs import Jobs
    from clipviz.runstore import RunStore

    monkeypatch.setenv("CLIPVIZ_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CLIPVIZ_LOCAL_WORKERS", "1")
    listener = socket.socket()
    listener.set_inheritable(True)  # as gunicorn's own listener may be
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    store = RunStore(tmp_path / "runs.sqlite")
    store.list()  # an open connection in this process
    jobs = Jobs(store, backend="local")
    rid = jobs.submit(LONG_RUN)
    try:
        end = time.time() + 60
        while (run := store.get(rid)).status != "running":
            assert time.time() < end, run
            time.sleep(0.1)
        pid = int(run.worker.rsplit(":", 1)[1])
        assert pid != os.getpid()
        fds = {}
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                fds[int(fd)] = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                pass
        sock_inode = f"socket:[{os.fstat(listener.fileno()).st_ino}]"
        assert sock_inode not in fds.values(), fds
        assert not any(v.startswith("socket:") for v in fds.values()), fds
    finally:
        jobs.cancel(rid)
        listener.close()


def test_queued_runs_are_not_stranded_when_every_runner_dies(tmp_path, monkeypatch, make_app):
    """Item 4: with its one runner killed, a queued run stayed queued until something else was
    submitted.  The next read of the runs (the API, the training page's refresh) restarts one."""
    from clipviz.jobs import Jobs
    from clipviz.runstore import shared_store

    monkeypatch.setenv("CLIPVIZ_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CLIPVIZ_LOCAL_WORKERS", "1")
    monkeypatch.delenv("CLIPVIZ_REDIS_URL", raising=False)
    app = make_app(warm=False)
    http = app.server.test_client()
    store = shared_store()
    jobs = Jobs(store, backend="local")
    first = jobs.submit(LONG_RUN)
    second = jobs.submit(SHORT_RUN)
    end = time.time() + 60
    while (run := store.get(first)).status != "running":
        assert time.time() < end, run
        time.sleep(0.1)
    os.kill(int(run.worker.rsplit(":", 1)[1]), signal.SIGKILL)
    end = time.time() + 30
    while store.get(first).status == "running":
        assert time.time() < end
        time.sleep(0.2)
    assert store.get(first).status == "failed" and store.get(second).status == "queued"
    assert http.get("/api/runs").status_code == 200  # a read: the supervisor starts a runner
    end = time.time() + 120
    while (r2 := store.get(second)).status in ("queued", "running"):
        assert time.time() < end, r2
        time.sleep(0.2)
    assert r2.status == "finished", r2


@pytest.fixture
def api(tmp_path, monkeypatch, make_app):
    """The app's API on a fresh data folder, its data sets folder holding one small text file."""
    sets = tmp_path / "sets"
    sets.mkdir()
    (sets / "mine.txt").write_text("to be or not to be, that is the question. " * 40)
    monkeypatch.setenv("CLIPVIZ_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CLIPVIZ_DATA", str(sets))
    monkeypatch.setenv("CLIPVIZ_LOCAL_WORKERS", "1")
    monkeypatch.delenv("CLIPVIZ_REDIS_URL", raising=False)
    app = make_app(warm=False)
    return app.server.test_client(), sets


TEXT_RUN = {"task": "characters", "hidden": 8, "seq_len": 20, "batch_size": 2, "max_updates": 3,
            "eval_every": 3}


@pytest.mark.parametrize("path", ["/etc/passwd", "/proc/self/environ", "../../../../etc/passwd",
                                  "~/.bashrc", "/nonexistent/file.txt", "sets/../../x"])
def test_the_api_reads_no_file_outside_the_data_sets_folder(api, path):
    """Item 5: runs on /etc/passwd, /etc/shadow and /proc/self/environ 'finished' and reported
    their vocabulary size; the reasons also told whether a file existed."""
    http, _ = api
    r = http.post("/api/runs", json=dict(TEXT_RUN, dataset=path))
    assert r.status_code == 400, r.get_json()
    msg = r.get_json()["error"]
    assert "data sets folder" in msg and "known" in msg
    # the same words whether or not the file exists: nothing is learnt about the machine
    assert msg.replace(path, "P") == http.post("/api/runs", json=dict(TEXT_RUN, dataset="/nope/none")) \
        .get_json()["error"].replace("/nope/none", "P")
    r = http.post("/api/sweeps", json={"base": dict(TEXT_RUN, task="temporal_order", dataset=path),
                                       "lengths": [10], "seeds": [0]})
    assert r.status_code == 400


def test_a_symlink_out_of_the_data_sets_folder_is_refused(api, tmp_path):
    http, sets = api
    (sets / "evil.txt").symlink_to("/etc/passwd")
    r = http.post("/api/runs", json=dict(TEXT_RUN, dataset="evil.txt"))
    assert r.status_code == 400 and "data sets folder" in r.get_json()["error"]


def test_a_file_inside_the_data_sets_folder_trains(api):
    http, sets = api
    r = http.post("/api/runs", json=dict(TEXT_RUN, dataset="mine.txt"))
    assert r.status_code == 201, r.get_json()
    rid = r.get_json()["id"]
    end = time.time() + 120
    while (run := http.get(f"/api/runs/{rid}").get_json()["run"])["status"] in ("queued", "running"):
        assert time.time() < end, run
        time.sleep(0.2)
    assert run["status"] == "finished", run["reason"]
    assert run["config"]["dataset"] == str((sets / "mine.txt").resolve())


def test_the_library_and_cli_still_take_any_path(tmp_path):
    """Arbitrary paths stay a command-line and library feature."""
    from clipviz.training import TrainConfig

    f = tmp_path / "t.txt"
    f.write_text("abc " * 200)
    assert TrainConfig.from_dict(dict(TEXT_RUN, dataset=str(f))).dataset == str(f)


@pytest.mark.parametrize("path", ["/api/runs", "/api/sweeps", "/_dash-update-component", "/api/surface/view"])
def test_json_nested_too_deep_is_a_400_with_a_message(api, path):
    """Item 8: JSON nested 1000 deep raised RecursionError and answered 500."""
    http, _ = api
    body = '{"a": ' + "[" * 100_000 + "]" * 100_000 + "}"
    r = http.post(path, data=body, content_type="application/json")
    assert r.status_code == 400, (r.status_code, r.get_data(as_text=True)[:300])
    assert "nest" in r.get_data(as_text=True)


@pytest.mark.parametrize("field", ["lr", "momentum", "threshold"])
def test_a_400_digit_number_in_a_float_field_is_a_400(api, field):
    """Item 8: float(10**400) raised OverflowError and answered 500."""
    http, _ = api
    r = http.post("/api/runs", data='{"task": "temporal_order", "%s": %s}' % (field, "9" * 400),
                  content_type="application/json")
    assert r.status_code == 400 and field in r.get_json()["error"], r.get_data(as_text=True)[:300]


@pytest.mark.parametrize("since", ["1" + "0" * 20, "-" + "9" * 30, "1e20", "x"])
def test_a_huge_since_is_a_400_not_an_sqlite_overflow(api, since):
    http, _ = api
    rid = http.post("/api/runs", json=SHORT_RUN).get_json()["id"]
    r = http.get(f"/api/runs/{rid}?since={since}")
    assert r.status_code == 400 and "since" in r.get_json()["error"]


def test_telemetry_of_a_long_run_is_kept_to_the_cap_with_its_spikes():
    """Item 6: max_metric_rows was never enforced (a 197k-update run stored 20.7 MB and its GET
    returned 18 MB).  Beyond the cap one row per block is kept: its largest ||g||, its first
    evaluation, and the run's last update."""
    import random

    from clipviz.jobs import Decimator

    rnd = random.Random(1)
    total, cap = 10_000, 100
    events = [{"update": u, "grad_norm": rnd.random(), "rho": 1.0 if u % 250 == 0 else None,
               "valid": None} for u in range(1, total + 1)]
    events[4321]["grad_norm"] = 1e9  # the spike
    events[777]["grad_norm"] = float("nan")  # a skipped update is an extreme too
    d = Decimator(total, cap)
    kept = [r for e in events for r in d.push(e)] + d.drain()
    ups = [r["update"] for r in kept]
    assert ups == sorted(set(ups)) and len(kept) <= 2 * cap + 1
    assert 4322 in ups and 778 in ups and ups[-1] == total
    assert {u for u in range(250, total + 1, 250)} <= set(ups)  # every evaluation (one per block here)
    for b in range(cap):  # each block's largest norm is kept
        block = [e for e in events if b * 100 < e["update"] <= (b + 1) * 100]
        top = max(block, key=lambda e: (e["grad_norm"] != e["grad_norm"], e["grad_norm"]))
        assert top["update"] in ups
    short = Decimator(50, cap)
    assert [r for e in events[:50] for r in short.push(e)] + short.drain() == events[:50]


def test_a_long_run_stores_at_most_the_cap(api, monkeypatch):
    from clipviz import jobs as jm
    from clipviz.runstore import shared_store

    monkeypatch.setattr(jm._Telemetry.__init__, "__defaults__", (None, 60))
    store = shared_store()
    rid = store.create_run(jm.validate_config(dict(SHORT_RUN, max_updates=600, eval_every=100)), "local",
                           total=600)
    assert store.claim_next("local", f"local:test:{os.getpid()}") == rid
    jm.execute_run(store, rid)  # in this process, where the cap is 60
    run = store.get(rid)
    m = store.metrics(rid)
    assert run.status == "finished" and len(m["update"]) <= 2 * 60 + 1 and m["update"][-1] == run.done
    assert m["loss"] == store.record(rid)["series"]["loss"]  # the record keeps the same rows


def test_a_request_body_over_the_limit_is_a_413_with_a_message(api):
    """Item 6: 100 MB bodies were accepted."""
    from clipviz.config import SETTINGS

    http, _ = api
    big = '{"label": "' + "x" * (SETTINGS.max_request_bytes + 10) + '"}'
    r = http.post("/api/runs", data=big, content_type="application/json")
    assert r.status_code == 413 and "larger than" in r.get_json()["error"]


def test_labels_are_bounded(api):
    """Item 6: three 100 MB labels made the training page's refresh take 1.6 s."""
    from clipviz.config import SETTINGS

    http, _ = api
    r = http.post("/api/runs", json=dict(SHORT_RUN, label="x" * (SETTINGS.max_label_chars + 1)))
    assert r.status_code == 400 and "label" in r.get_json()["error"]


def test_the_queue_is_bounded_and_says_what_to_do(api, monkeypatch):
    """Item 6: 300 runs in 2 s, and one 1000-run sweep, were accepted."""
    from clipviz.runstore import RunStore

    monkeypatch.setattr(RunStore, "count_active", lambda self: 499)
    http, _ = api
    r = http.post("/api/runs", json=SHORT_RUN)
    assert r.status_code == 201
    r = http.post("/api/sweeps", json={"base": SHORT_RUN, "lengths": [10, 12], "seeds": [0]})
    assert r.status_code == 429 and "wait for some to finish" in r.get_json()["error"]
    r = http.post("/api/sweeps", json={"base": SHORT_RUN, "lengths": list(range(10, 60)),
                                       "seeds": list(range(20))})
    assert r.status_code == 400 and "at most" in r.get_json()["error"]


def test_a_run_too_big_for_the_machine_is_refused_up_front(api):
    """Item 6: hidden 2000 x batch 4096 x T 10000 was accepted and died on a 610 GiB allocation."""
    http, _ = api
    r = http.post("/api/runs", json=dict(SHORT_RUN, hidden=2000, batch_size=4096, seq_len=10000))
    assert r.status_code == 400
    assert "GiB" in r.get_json()["error"] and "make one of them smaller" in r.get_json()["error"]


def test_the_web_budget_is_bounded(api):
    """Item 6: max_updates up to 10M was accepted from anyone."""
    from clipviz.config import SETTINGS

    http, _ = api
    r = http.post("/api/runs", json=dict(SHORT_RUN, max_updates=SETTINGS.web_max_updates + 1))
    assert r.status_code == 400 and "max_updates" in r.get_json()["error"]


def test_the_web_cache_is_bounded_in_bytes(tmp_path):
    """Item 6: the filesystem cache pruned by entry count only (5000 entries: about 28 GB of
    distinct 1024² views).  The disk cache keeps its volume under the byte limit."""
    import numpy as np

    from clipviz.web.cache import DiskCache

    limit = 4 << 20
    c = DiskCache(str(tmp_path / "c"), size_limit=limit, key_prefix="t:")
    for i in range(60):
        assert c.set(f"view{i}", np.full(64 * 1024, float(i)))  # 512 KiB each, 30 MiB in all
    assert c.volume() <= limit + (1 << 20)  # within one entry of the limit
    assert np.array_equal(c.get("view59"), np.full(64 * 1024, 59.0))  # the newest are kept
    assert c.get("view0") is None  # the oldest went first
    assert c.has("view59") and c.delete("view59") and not c.has("view59")


VIEW = dict(w_range=[-2, 12], b_range=[-8, 2], res=256, T=50, x0=0.5, target=0.7, act="sigmoid",
            log_flags=["log"], w0=4.0, b0=-3.6, lr=1.5, n=40, clip="norm", tau_log=0.0, p=10,
            surface=True, paths=True, diag=True)
LOAD_CONCURRENCY, LOAD_SECONDS = 16, 15


def _post_raw(port: int, path: str, body: dict, timeout: float = 60) -> int:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(),
                                 method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            r.read()
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


@pytest.mark.slow
def test_under_load_no_errors_no_worker_restarts_and_health_answers_fast(tmp_path):
    """Items 2 and 7, the load test: the Dockerfile's gunicorn (2 workers x 4 threads) under 16
    clients sending uncached 256² views for 15 s, while /health is timed.  Before: Numba aborts
    (workqueue) rebooted workers and reset connections, and /health waited seconds behind
    surface computations."""
    from concurrent.futures import ThreadPoolExecutor

    port = _free_port()
    log = tmp_path / "gunicorn.log"
    server = Gunicorn(port, tmp_path / "data", log)
    statuses: dict[object, int] = {}
    health_ms: list[float] = []
    stop_at = time.monotonic() + LOAD_SECONDS
    seq = iter(range(10**9))

    def client(_):
        n = 0
        while time.monotonic() < stop_at:
            i = next(seq)
            body = dict(VIEW, w_range=[-2 - i * 1e-3, 12])  # a new view each time: never cached
            try:
                code = _post_raw(port, "/api/surface/view", body)
            except OSError as exc:
                code = type(exc).__name__
            statuses[code] = statuses.get(code, 0) + 1
            n += 1
        return n

    def prober():
        while time.monotonic() < stop_at:
            t = time.perf_counter()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as r:
                    r.read()
                health_ms.append((time.perf_counter() - t) * 1000)
            except OSError:
                health_ms.append(float("inf"))
            time.sleep(0.05)

    try:
        with ThreadPoolExecutor(LOAD_CONCURRENCY + 1) as pool:
            probe = pool.submit(prober)
            sent = sum(pool.map(client, range(LOAD_CONCURRENCY)))
            probe.result()
    finally:
        server.stop()
    text = log.read_text()
    health_ms.sort()
    p50, p95 = health_ms[len(health_ms) // 2], health_ms[int(len(health_ms) * 0.95)]
    print(f"\nload: {sent} view requests, statuses {statuses}; /health n={len(health_ms)} "
          f"p50 {p50:.1f} ms p95 {p95:.1f} ms")
    assert set(statuses) <= {200, 503}, statuses  # 503: the heavy-work limit said "busy, retry"
    assert statuses.get(200, 0) >= LOAD_SECONDS, statuses  # real work got done
    assert "Booting worker" in text and text.count("Booting worker") == WORKERS, text[-3000:]  # no restarts
    assert "Concurrent access" not in text and "WORKER TIMEOUT" not in text, text[-3000:]
    assert p95 < 100, f"/health p95 {p95:.1f} ms under load"


def test_a_worst_case_view_is_refused_with_what_to_do(make_app):
    """Item 7: res 1024 at T 500 took most of a second; eight clients starved /health."""
    from clipviz.config import SETTINGS

    http = make_app(warm=False).server.test_client()
    r = http.post("/api/surface/view", json=dict(VIEW, res=1024, T=500))
    assert r.status_code == 200 and r.get_json()["surface"] is None
    assert "lower the resolution" in r.get_json()["msgs"]["res"]
    ok = dict(VIEW, res=1024, T=SETTINGS.web_max_view_work // 1024**2)
    assert http.post("/api/surface/view", json=ok).get_json()["surface"] is not None


def test_with_every_heavy_slot_taken_a_surface_is_a_503_and_paths_still_answer(make_app):
    from clipviz.web.limits import KEY

    app = make_app(warm=False)
    http = app.server.test_client()
    slots = app.server.extensions[KEY]
    assert slots.acquire(blocking=False)  # as if another request were computing
    try:
        r = http.post("/api/surface/view", json=VIEW)
        assert r.status_code == 503 and r.headers["Retry-After"] and "busy" in r.get_json()["error"]
        r = http.post("/api/surface/view", json=dict(VIEW, surface=False))  # paths only: not heavy
        assert r.status_code == 200 and r.get_json()["paths"] is not None
    finally:
        slots.release()
    assert http.post("/api/surface/view", json=VIEW).status_code == 200


def test_the_parallel_kernels_release_the_gil():
    """While a surface is computed in one thread, another Python thread keeps running."""
    import threading

    import numpy as np

    from clipviz import one_unit

    w, b = np.linspace(-2, 12, 1024), np.linspace(-8, 2, 1024)
    one_unit.error_surface(w[:8], b[:8], steps=5)  # compiled / loaded
    ticks, done = [], threading.Event()

    def other():
        while not done.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.001)

    t = threading.Thread(target=other)
    t.start()
    t0 = time.perf_counter()
    one_unit.error_surface(w, b, steps=200)
    t1 = time.perf_counter()
    done.set()
    t.join()
    during = [x for x in ticks if t0 < x < t1]
    gaps = np.diff([t0, *during, t1])
    assert t1 - t0 > 0.05 and gaps.max() < 0.05, (t1 - t0, gaps.max())


def test_only_the_owner_or_the_admin_token_may_cancel_a_run(api, monkeypatch):
    """Item 9: an anonymous client cancelled every run (1,302 in seconds)."""
    monkeypatch.setenv("CLIPVIZ_ADMIN_TOKEN", "s3cret-token")
    owner, _ = api  # the Flask test client keeps its cookies: one browser session
    r = owner.post("/api/runs", json=LONG_RUN)
    assert r.status_code == 201 and "clipviz_owner=" in r.headers.get("Set-Cookie", "")
    rid = r.get_json()["id"]
    stranger = owner.application.test_client()  # another browser: no cookie of the owner
    r = stranger.post(f"/api/runs/{rid}/cancel")
    assert r.status_code == 403 and "another browser session" in r.get_json()["error"]
    r = stranger.post(f"/api/runs/{rid}/cancel", headers={"X-Clipviz-Token": "wrong"})
    assert r.status_code == 403
    assert owner.post(f"/api/runs/{rid}/cancel").status_code == 200
    rid2 = owner.post("/api/runs", json=LONG_RUN).get_json()["id"]
    r = stranger.post(f"/api/runs/{rid2}/cancel", headers={"Authorization": "Bearer s3cret-token"})
    assert r.status_code == 200
    # the owner cookie is no one's business but its browser's: not in any listing
    assert "owner" not in json.dumps(owner.get("/api/runs").get_json())


def test_a_cross_site_post_is_refused(api):
    """Item 9: a cross-site form POST with a foreign Origin cancelled a run."""
    http, _ = api
    rid = http.post("/api/runs", json=LONG_RUN).get_json()["id"]
    for headers in ({"Origin": "https://evil.example"}, {"Referer": "https://evil.example/page"},
                    {"Origin": "null"}):
        r = http.post(f"/api/runs/{rid}/cancel", headers=headers)
        assert r.status_code == 403 and "another site" in r.get_json()["error"], headers
        r = http.post("/_dash-update-component", headers=headers, json={})
        assert r.status_code == 403
    assert http.get(f"/api/runs/{rid}").get_json()["run"]["status"] in ("queued", "running")
    assert http.post(f"/api/runs/{rid}/cancel", headers={"Origin": "http://localhost"}).status_code == 200


def test_security_headers_on_pages_and_api(api):
    http, _ = api
    for path in ("/", "/surface", "/api/runs", "/health"):
        h = http.get(path).headers
        assert "frame-ancestors 'none'" in h["Content-Security-Policy"], path
        assert h["X-Frame-Options"] == "DENY" and h["X-Content-Type-Options"] == "nosniff", path


def test_read_only_serves_the_figures_and_no_training(tmp_path, monkeypatch, make_app):
    monkeypatch.setenv("CLIPVIZ_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CLIPVIZ_READ_ONLY", "1")
    http = make_app(warm=False).server.test_client()
    assert http.post("/api/runs", json=SHORT_RUN).status_code == 403
    assert http.get("/api/runs").status_code == 403
    assert http.get("/surface").status_code == 200
    assert http.post("/api/surface/view", json=dict(VIEW, res=32)).status_code == 200
    layout = json.dumps(http.get("/_dash-layout").get_json())
    assert '"/training"' not in layout  # not in the menu
    from clipviz.web.pages import home, training

    assert "/training" not in json.dumps(home.layout().to_plotly_json(), default=str)
    assert "switched off" in json.dumps(training.layout().to_plotly_json(), default=str)


def test_a_worst_case_link_opens_the_page_at_the_largest_resolution_its_T_allows(make_app):
    """The bound holds for the page's first view too (its URL once computed 1024² at T 500)."""
    import math

    from clipviz.config import SETTINGS
    from clipviz.web.pages import surface as page

    make_app(warm=False)
    tree = page.layout(res="1024", T="500")
    fit = math.isqrt(SETTINGS.web_max_view_work // 500)
    assert f"lower the resolution (at most {fit} at this T)" in tree["es-msg-res"].children
    assert tree["es-res"].value == fit and fit ** 2 * 500 <= SETTINGS.web_max_view_work < (fit + 1) ** 2 * 500
