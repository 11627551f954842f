"""Celery over Redis, end to end: a real redis-server and real Celery workers, driven
through the web app's JSON endpoints; faults: a killed worker, a restarted web app."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .procs import Process
from .web_helpers import free_port

ROOT = Path(__file__).resolve().parents[1]

SMALL = {"task": "temporal_order", "hidden": 8, "seq_len": 10, "batch_size": 10,
         "max_updates": 150, "eval_every": 50, "seed": 1}
# 20 000 updates: never solved in a test's time, and within the telemetry cap (every update stored)
LONG = dict(SMALL, seq_len=60, max_updates=20_000, eval_every=1000)

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None,
                                reason="redis-server is not installed (apt-get install redis-server)")


class CeleryWorker(Process):
    """``celery -A clipviz.worker worker`` in its own process group."""

    stop_timeout = 15.0

    def __init__(self, name: str, env: dict, logdir: Path) -> None:
        self.name = name
        super().__init__(
            [sys.executable, "-m", "celery", "-A", "clipviz.worker", "worker", "-n", f"{name}@%h",
             "--concurrency=1", "--pool=prefork", "--without-gossip", "--without-mingle",
             "--without-heartbeat", "--loglevel=INFO"],
            env, ROOT, logdir / f"{name}.log")

    def wait_ready(self, timeout: float = 90) -> "CeleryWorker":
        self.wait_for_log(b" ready.", timeout, f"worker {self.name}")
        return self


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """redis-server on a free port, two Celery workers, env pointing this process at them."""
    tmp = tmp_path_factory.mktemp("celery")
    port = free_port()
    redis_proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--protected-mode", "yes"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    import redis

    deadline = time.monotonic() + 20
    while True:
        try:
            redis.Redis.from_url(url).ping()
            break
        except redis.ConnectionError:
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)
    saved = {k: os.environ.get(k) for k in ("CLIPVIZ_REDIS_URL", "CLIPVIZ_DATA_DIR")}
    os.environ["CLIPVIZ_REDIS_URL"] = url
    os.environ["CLIPVIZ_DATA_DIR"] = str(tmp / "data")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    workers = [CeleryWorker(f"w{i}", env, tmp) for i in (1, 2)]
    for w in workers:
        w.wait_ready()
    state = {"url": url, "env": env, "tmp": tmp, "workers": workers}
    yield state
    for w in state["workers"]:
        w.stop()
    redis_proc.terminate()
    redis_proc.wait(timeout=10)
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="module")
def client(cluster):
    from clipviz.web.app import create_app

    return create_app().server.test_client()


def _post(client, url, payload):
    r = client.post(url, json=payload)
    return r.status_code, r.get_json()


def _run(client, rid, since=-1):
    r = client.get(f"/api/runs/{rid}?since={since}")
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.get_json()


def _wait(client, rid, timeout=120):
    deadline = time.monotonic() + timeout
    while True:
        d = _run(client, rid)
        if d["run"]["status"] not in ("queued", "running"):
            return d
        assert time.monotonic() < deadline, f"run {rid} still {d['run']['status']}"
        time.sleep(0.1)


def _wait_progress(client, rid, at_least, timeout=90):
    deadline = time.monotonic() + timeout
    while True:
        d = _run(client, rid)
        if d["run"]["done"] >= at_least:
            return d
        assert d["run"]["status"] in ("queued", "running"), d["run"]
        assert time.monotonic() < deadline, f"run {rid} made no progress"
        time.sleep(0.05)


def test_bad_requests(client):
    assert _post(client, "/api/runs", dict(SMALL, hidden=0))[0] == 400
    code, body = _post(client, "/api/runs", [1, 2])
    assert code == 400 and "JSON object" in body["error"]
    assert client.get("/api/runs/doesnotexist").status_code == 404
    assert client.get("/api/runs/x?since=abc").status_code == 400
    assert client.post("/api/runs/doesnotexist/cancel").status_code == 404
    assert _post(client, "/api/sweeps", {"base": SMALL, "lengths": "10", "seeds": [0]})[0] == 400


def test_end_to_end_through_the_endpoints(client, cluster):
    code, body = _post(client, "/api/runs", dict(SMALL, seq_len=30, max_updates=3000, label="e2e"))
    assert code == 201
    rid = body["id"]
    seen = []
    while True:  # progress advances while it runs
        d = _run(client, rid)
        seen.append(d["run"]["done"])
        if d["run"]["status"] not in ("queued", "running"):
            break
        time.sleep(0.05)
    assert d["run"]["status"] == "finished", d["run"]
    assert d["run"]["worker"].startswith("celery:")
    assert len(set(seen)) >= 3 and seen == sorted(seen)
    done = d["run"]["done"]  # the budget, or fewer when solved (the engine stops there)
    assert done == d["run"]["result"]["updates"] and (done == 3000 or d["run"]["result"]["solved"])
    assert d["metrics"]["update"] == list(range(1, done + 1))
    tail = _run(client, rid, since=done - 10)["metrics"]["update"]
    assert tail == list(range(done - 9, done + 1))
    listed = client.get("/api/runs").get_json()["runs"]
    assert any(r["id"] == rid and r["label"] == "e2e" for r in listed)


def test_cancel_stops_a_running_job_within_a_second(client):
    rid = _post(client, "/api/runs", LONG)[1]["id"]
    _wait_progress(client, rid, at_least=20)
    t = time.monotonic()
    r = client.post(f"/api/runs/{rid}/cancel").get_json()
    assert r["status"] == "running"
    while _run(client, rid)["run"]["status"] == "running":
        assert time.monotonic() - t < 1.0, "cancel took longer than a second"
        time.sleep(0.02)
    d = _run(client, rid)
    assert d["run"]["status"] == "cancelled"
    assert d["metrics"]["update"][-1] == d["run"]["done"] < LONG["max_updates"]


def test_two_runs_at_once_do_not_mix(client):
    from clipviz.runstore import shared_store

    a = _post(client, "/api/runs", dict(SMALL, max_updates=1500, hidden=6, seed=3))[1]["id"]
    b = _post(client, "/api/runs", dict(SMALL, max_updates=1500, hidden=12, seed=4, clip="none"))[1]["id"]
    da, db = _wait(client, a), _wait(client, b)
    assert da["run"]["status"] == db["run"]["status"] == "finished"
    store = shared_store()
    for rid, d in ((a, da), (b, db)):
        rec = store.record(rid)
        assert rec["config"]["hidden"] == d["run"]["config"]["hidden"]
        assert d["metrics"]["update"] == list(range(1, d["run"]["done"] + 1))
        assert store.metrics(rid)["loss"] == rec["series"]["loss"]
        assert store.metrics(rid)["grad_norm"] == rec["series"]["grad_norm"]
    assert da["run"]["worker"] != db["run"]["worker"]  # ran on the two workers at once


def test_sweep_of_eight_runs_across_two_workers(client):
    code, body = _post(client, "/api/sweeps", {"base": dict(SMALL, max_updates=300),
                                               "lengths": [8, 12], "seeds": [0, 1],
                                               "methods": ["none", "norm"]})
    assert code == 201 and len(body["runs"]) == 8
    runs = [_wait(client, rid, timeout=240)["run"] for rid in body["runs"]]
    assert all(r["status"] == "finished" for r in runs), [(r["status"], r["reason"]) for r in runs]
    assert len({r["worker"] for r in runs}) == 2  # both workers took part
    summary = client.get(f"/api/sweeps/{body['id']}").get_json()
    assert summary["finished"] == 8 and summary["total"] == 8 and summary["active"] == 0
    assert summary["lengths"] == [8, 12] and set(summary["rate"]) == {"none", "norm"}
    for m in ("none", "norm"):
        for L, rate in zip((8, 12), summary["rate"][m]):
            cell = [r for r in runs if r["config"]["clip"] == m and r["config"]["seq_len"] == L]
            assert rate == sum(bool(r["result"]["solved"]) for r in cell) / len(cell)
    from clipviz.figures.training import success_rate_figure

    fig = success_rate_figure(summary)
    assert len(fig.data) == 2 and list(fig.data[0].x) == [8, 12]


def test_killed_worker_marks_the_run_failed_and_the_store_stays_intact(client, cluster):
    rid = _post(client, "/api/runs", LONG)[1]["id"]
    d = _wait_progress(client, rid, at_least=50)
    worker_pid = int(d["run"]["worker"].rsplit(":", 1)[1])
    victim = next(w for w in cluster["workers"]
                  if str(worker_pid) in subprocess.run(["pgrep", "-g", str(w.proc.pid)],
                                                      capture_output=True, text=True).stdout.split())
    before = _run(client, rid)["metrics"]["update"]
    victim.kill()
    deadline = time.monotonic() + 10
    while (d := _run(client, rid))["run"]["status"] == "running":
        assert time.monotonic() < deadline, "the killed worker's run is still shown as running"
        time.sleep(0.05)
    assert d["run"]["status"] == "failed"
    assert f"worker process {worker_pid}" in d["run"]["reason"]
    after = d["metrics"]["update"]
    assert after[:len(before)] == before and after == list(range(1, len(after) + 1))
    # the rest of the store is intact: every earlier run still has its status and curves
    runs = client.get("/api/runs").get_json()["runs"]
    assert sum(r["status"] == "finished" for r in runs) >= 11
    # a replacement worker picks up new work
    i = cluster["workers"].index(victim)
    cluster["workers"][i] = CeleryWorker(f"w{i + 1}b", cluster["env"], cluster["tmp"]).wait_ready()
    rid2 = _post(client, "/api/runs", SMALL)[1]["id"]
    assert _wait(client, rid2)["run"]["status"] == "finished"


def test_restarted_web_app_lists_every_run_with_its_curves(cluster, client):
    from clipviz.web.app import create_app

    old = client.get("/api/runs").get_json()["runs"]
    fresh = create_app().server.test_client()  # a new app process would see the same store
    new = fresh.get("/api/runs").get_json()["runs"]
    assert [r["id"] for r in new] == [r["id"] for r in old] and len(new) >= 13
    for r in new:
        if r["status"] == "finished":
            m = fresh.get(f"/api/runs/{r['id']}").get_json()["metrics"]
            assert len(m["update"]) == r["done"] > 0


@pytest.mark.browser
def test_training_page_runs_on_celery_in_the_browser(cluster, dash_duo, make_app):
    """The page's Run button sends the job to the Celery workers; curves arrive live."""
    from .test_training_page import run_from_page, wait_for_every_update_on_the_loss_curve

    run_from_page(dash_duo, make_app(), "?hidden=8&seq_len=10&batch=10&updates=2000&eval_every=500&seeds=1",
                  "on the celery backend", finish_timeout=90)
    from clipviz.runstore import shared_store

    run = shared_store().list(limit=1)[0]
    assert run.status == "finished" and run.worker.startswith("celery:")
    assert run.done == 2000 or run.result["solved"]
    wait_for_every_update_on_the_loss_curve(dash_duo, run.done)
    logs = [e for e in dash_duo.get_logs() or [] if e.get("level") in ("SEVERE", "WARNING")]
    assert logs == []


def test_unreachable_broker_fails_fast_with_a_message(tmp_path):
    from clipviz.jobs import Jobs, redact
    from clipviz.runstore import RunStore

    url = f"redis://:secret@127.0.0.1:{free_port()}/0"  # nothing listens there
    jobs = Jobs(RunStore(tmp_path / "r.sqlite"), backend="celery", redis=url)
    t = time.monotonic()
    with pytest.raises(RuntimeError, match="could not send the run to the Celery broker") as info:
        jobs.submit(SMALL)
    assert time.monotonic() - t < 15
    assert "secret" not in str(info.value) and redact(url) == f"redis://:***@127.0.0.1:{url.split(':')[3]}"
    (run,) = jobs.store.list()
    assert run.status == "failed" and "Celery broker" in run.reason  # no ghost queued run


def test_a_slice_job_runs_on_a_celery_worker_and_leaves_the_run_untouched(client, cluster):
    """Issue 16: the run keeps its snapshots in the store; the slice is the task clipviz.slice
    on a worker; a cancelled one is skipped or stopped, and the run is as it was."""
    from clipviz.jobs import Jobs
    from clipviz.store import shared_store

    cfg = dict(SMALL, max_updates=60, clip="norm", threshold=0.05, momentum=0.0, lr=0.05, seed=3)
    rid = _post(client, "/api/runs", cfg)[1]["id"]
    assert _wait(client, rid)["run"]["status"] == "finished"
    jobs = Jobs(shared_store())
    assert jobs.backend == "celery"
    kept = jobs.store.snapshot_index(rid)
    assert len(kept) == jobs.store.get(rid).result["snapshots_kept"] > 0
    before = (jobs.store.get(rid), jobs.store.record(rid), jobs.store.metrics(rid),
              [jobs.store.snapshot(rid, k["update"]) for k in kept])
    sid = jobs.submit_slice(rid, kept[0]["update"])
    job = jobs.wait_slice(sid, timeout=120)
    assert job.status == "finished", job.error
    assert job.result["unclipped_at"] == [1.0, 0.0] and job.result["curvature"]["hvps"] > 0
    sid = jobs.submit_slice(rid, kept[-1]["update"])
    jobs.cancel_slice(sid)
    assert jobs.wait_slice(sid, timeout=60).status in ("cancelled", "finished")
    after = (jobs.store.get(rid), jobs.store.record(rid), jobs.store.metrics(rid),
             [jobs.store.snapshot(rid, k["update"]) for k in kept])
    assert after == before
