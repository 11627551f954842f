"""Workers on several machines: no file is shared, every byte goes through Redis and PostgreSQL.

A real redis-server, a real PostgreSQL server (the session's), two Celery workers and the web app
(gunicorn), each process with a working directory and a ``CLIPVIZ_DATA_DIR`` of its own.  As root,
each worker runs in a UTS namespace of its own (``unshare --uts``) with a host name of its own, as
on another machine: the web app cannot check its pid and must rely on the heartbeat.  A 16-run
sweep; one worker killed with SIGKILL in the middle of a run, whose run must be marked failed
within its heartbeat timeout with its telemetry kept; the web app restarted (in a fresh folder);
every run and every curve still there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from .procs import Process
from .web_helpers import free_port

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT_S = 3.0  # the workers' heartbeat timeout (CLIPVIZ_HEARTBEAT_TIMEOUT_S): short for the test
# 16 runs of about a second each: long enough to be killed in the middle, rarely solved early
BASE = {"task": "temporal_order", "hidden": 8, "batch_size": 10, "max_updates": 4000,
        "eval_every": 1000}
LENGTHS, SEEDS, METHODS = [20, 30], [0, 1, 2, 3], ["none", "norm"]

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("redis-server") is None,
                                 reason="redis-server is not installed (apt-get install redis-server)")]

SET_HOST = ("import os, socket, sys; socket.sethostname(sys.argv[1]); "
            "os.execv(sys.executable, [sys.executable] + sys.argv[2:])")


def _own_host_possible() -> bool:
    """True where a child can get a host name of its own (root, and unshare works here)."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    res = subprocess.run(["unshare", "--uts", sys.executable, "-c", SET_HOST, "clipviz-probe", "-c",
                          "import socket; print(socket.gethostname())"],
                         capture_output=True, text=True, timeout=30)
    return res.returncode == 0 and res.stdout.strip() == "clipviz-probe"


class Web(Process):
    """``gunicorn app:server`` (this checkout's app.py) in a folder of its own."""

    def __init__(self, env: dict, cwd: Path, log: Path) -> None:
        self.port = free_port()
        super().__init__([sys.executable, "-m", "gunicorn", "-w", "1", "--threads", "4", "--timeout",
                          "120", "-b", f"127.0.0.1:{self.port}", "app:server"], env, cwd, log)
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
        deadline = time.monotonic() + 120
        while True:
            assert self.proc.poll() is None, self.tail()
            try:
                if self.request("/health")[0] == 200:
                    return
            except OSError:
                pass
            assert time.monotonic() < deadline, f"the web app did not answer /health:\n{self.tail()}"
            time.sleep(0.2)

    def request(self, path: str, body: dict | None = None) -> tuple[int, dict]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data,
                                     method="POST" if data else "GET",
                                     headers={"Content-Type": "application/json"})
        try:
            with self.opener.open(req, timeout=30) as r:
                return r.status, json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")

    def run(self, rid: str) -> dict:
        code, got = self.request(f"/api/runs/{rid}")
        assert code == 200, (code, got)
        return got


def _worker(i: int, env: dict, tmp: Path, own_host: bool) -> Process:
    cmd = ["-m", "celery", "-A", "clipviz.worker", "worker", "-n", f"w{i}@%h", "--concurrency=1",
           "--pool=prefork", "--without-gossip", "--without-mingle", "--without-heartbeat",
           "--loglevel=INFO"]
    if own_host:  # another "machine": a host name of its own, so no pid check can see it
        cmd = ["unshare", "--uts", sys.executable, "-c", SET_HOST, f"clipviz-host-{i}", *cmd]
    else:
        cmd = [sys.executable, *cmd]
    return Process(cmd, env, tmp / f"worker{i}", tmp / f"worker{i}.log")


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_sweep_on_two_hosts_survives_a_killed_worker_and_a_restarted_web_app(tmp_path, postgres_url):
    from clipviz import config

    own_host = _own_host_possible()
    redis_port = free_port()
    redis = Process(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                     "--appendonly", "no"], dict(os.environ), tmp_path / "redis", tmp_path / "redis.log")
    procs: list[Process] = [redis]
    try:
        common = {"CLIPVIZ_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
                  "CLIPVIZ_DATABASE_URL": postgres_url}
        workers = []
        for i in (1, 2):
            env = config.child_env(path_first=ROOT, CLIPVIZ_DATA_DIR=str(tmp_path / f"worker{i}" / "data"),
                                   CLIPVIZ_HEARTBEAT_TIMEOUT_S=str(TIMEOUT_S), **common)
            workers.append(_worker(i, env, tmp_path, own_host))
        procs += workers
        for w in workers:
            w.wait_for_log(b" ready.", 120, "worker")

        def web(name: str) -> Web:
            env = config.child_env(path_first=ROOT, CLIPVIZ_DATA_DIR=str(tmp_path / name / "data"),
                                   unset=("CLIPVIZ_HEARTBEAT_TIMEOUT_S",), **common)
            w = Web(env, tmp_path / name, tmp_path / f"{name}.log")
            procs.append(w)
            return w

        app = web("web1")
        code, body = app.request("/api/sweeps", {"base": BASE, "lengths": LENGTHS, "seeds": SEEDS,
                                                 "methods": METHODS})
        assert code == 201 and len(body["runs"]) == 16, body
        sweep_id, ids = body["id"], body["runs"]

        # one run in the middle of its budget, on one of the workers: kill that worker at once
        deadline = time.monotonic() + 120
        while True:
            runs = app.request(f"/api/runs?sweep={sweep_id}&status=running")[1]["runs"]
            mid = [r for r in runs if 200 <= r["done"] <= 2000]
            if mid:
                break
            assert time.monotonic() < deadline, [(r["status"], r["done"]) for r in runs]
            time.sleep(0.05)
        victim_run = mid[0]
        # a worker trains the queued runs it claimed together (train_many): killing it fails every
        # run it had in flight, and only those
        in_flight = {r["id"] for r in runs if r["worker"] == victim_run["worker"]}
        host, pid = victim_run["worker"].split(":")[1:]
        if own_host:
            victim = workers[int(host.rsplit("-", 1)[1]) - 1]
        else:
            victim = next(w for w in workers if str(pid) in subprocess.run(
                ["pgrep", "-g", str(w.proc.pid)], capture_output=True, text=True).stdout.split())
        victim.kill()
        killed_at = time.monotonic()
        before = app.run(victim_run["id"])["metrics"]["update"]
        assert before, "the killed run had written telemetry"

        # marked failed within the heartbeat timeout (the web app reaps on every read)
        while (got := app.run(victim_run["id"]))["run"]["status"] == "running":
            assert time.monotonic() - killed_at < TIMEOUT_S + 2, \
                "the killed worker's run is still shown as running past its heartbeat timeout"
            time.sleep(0.1)
        failed_after = time.monotonic() - killed_at
        run = got["run"]
        assert run["status"] == "failed", run
        if own_host:
            assert "no heartbeat" in run["reason"] and host in run["reason"], run["reason"]
            assert f"limit {TIMEOUT_S:g} s" in run["reason"]
        after = got["metrics"]["update"]
        assert after[:len(before)] == before and after == list(range(1, len(after) + 1))
        assert failed_after <= TIMEOUT_S + 2

        # the web app restarted, in a fresh folder: it has nothing but Redis and PostgreSQL
        app.stop()
        app = web("web2")
        deadline = time.monotonic() + 300
        while True:
            summary = app.request(f"/api/sweeps/{sweep_id}")[1]
            if summary["active"] == 0:
                break
            assert time.monotonic() < deadline, summary
            time.sleep(0.3)
        survivor = workers[1 - workers.index(victim)]
        listed = {r["id"]: r for r in app.request(f"/api/runs?sweep={sweep_id}")[1]["runs"]}
        assert set(ids) <= set(listed)
        failed = {r for r in ids if listed[r]["status"] == "failed"}
        assert victim_run["id"] in failed and failed <= in_flight, (failed, in_flight)
        assert (summary["total"], summary["finished"], summary["failed"]) == (16, 16 - len(failed),
                                                                             len(failed)), summary
        for rid in ids:
            d = app.run(rid)
            if rid == victim_run["id"]:
                assert d["run"]["status"] == "failed" and d["metrics"]["update"] == after
                continue
            if rid in failed:  # in flight on the killed worker beside victim_run
                assert d["run"]["worker"] == victim_run["worker"], d["run"]
                if own_host:
                    assert "no heartbeat" in d["run"]["reason"] and host in d["run"]["reason"]
                assert d["metrics"]["update"] == list(range(1, len(d["metrics"]["update"]) + 1))
                continue
            assert d["run"]["status"] == "finished", d["run"]
            assert d["metrics"]["update"] == list(range(1, d["run"]["done"] + 1))  # every update
            assert d["run"]["done"] == d["run"]["result"]["updates"]
            assert d["run"]["worker"].startswith("celery:")
        workers_used = {listed[r]["worker"] for r in ids}
        assert len(workers_used) >= 2  # both hosts took part
        if own_host:
            assert {w.split(":")[1] for w in workers_used} == {"clipviz-host-1", "clipviz-host-2"}
        assert survivor.proc.poll() is None

        # no run store file anywhere: the runs live in PostgreSQL only
        for folder in ("worker1", "worker2", "web1", "web2"):
            stray = [f for f in _files(tmp_path / folder) if "runs.sqlite" in f]
            assert stray == [], (folder, stray)
    finally:
        for p in reversed(procs):
            p.stop()
