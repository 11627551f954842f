import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# Multi-threaded BLAS on the small training matrices is up to 10x slower on a
# loaded 2-core machine (see docs/benchmarks.md, Training speed).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
# Local runners a test starts exit once their test's queue is empty (each test has a run store of
# its own: a runner waiting for more work would only poll a finished test's store); the wait
# itself is tested in test_jobs with the variable set.
os.environ.setdefault("CLIPVIZ_RUNNER_IDLE_S", "0")

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data next to the checkout; tests that need it skip only where it is absent."""
    if not DATA.is_dir():
        pytest.skip(f"shared data folder {DATA} is absent (expected at ../shared/data; CI has it)")
    return DATA


@pytest.fixture
def store_env(tmp_path, monkeypatch):
    """The embedded job layer on a run store of this test's own, two local runners."""
    monkeypatch.setenv("CLIPVIZ_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("CLIPVIZ_REDIS_URL", raising=False)
    monkeypatch.setenv("CLIPVIZ_LOCAL_WORKERS", "2")
    return tmp_path


@pytest.fixture
def make_app(tmp_path):
    """A fresh clipviz app with its own filesystem cache."""
    from clipviz.web.app import create_app

    def make(**kw):
        cfg = {"CACHE_TYPE": "clipviz.web.cache.DiskCache", "CACHE_DIR": str(tmp_path / "cache"),
               "CACHE_DEFAULT_TIMEOUT": 600}
        return create_app(cache_config=cfg, **kw)

    return make


def checkout_files() -> list[str]:
    """The files a clone of this checkout would have once committed: tracked, plus untracked ones
    git does not ignore (so a leftover build/ or egg-info never leaks into a build)."""
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                             cwd=REPO, check=True, capture_output=True).stdout.decode()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: cannot list the project's files")
    return [n for n in out.split("\0") if n and (REPO / n).is_file()]


@pytest.fixture(scope="session")
def built_wheel(tmp_path_factory) -> Path:
    """The wheel `pip install .` builds, from a clean copy of the checkout's files, in pip's
    isolated build environment (the setuptools pyproject.toml asks for, not this machine's)."""
    src = tmp_path_factory.mktemp("src")
    for name in checkout_files():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, src / name)
    out = tmp_path_factory.mktemp("dist")
    res = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(src)],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    (wheel,) = out.glob("clipviz-*.whl")
    return wheel


@pytest.fixture(scope="session")
def postgres_server():
    """One throwaway PostgreSQL server for the whole session (Debian's ``postgresql`` package,
    which scripts/test.sh installs; run as the ``postgres`` user when this is root).  It skips only
    where PostgreSQL is absent and this process could not have installed it (not root)."""
    from clipviz.bench.pgserver import PostgresServer, binaries

    if binaries() is None and os.geteuid() != 0:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql; scripts/test.sh does "
                    "as root)")
    srv = PostgresServer()
    yield srv
    srv.stop()


@pytest.fixture
def postgres_url(postgres_server):
    """A fresh, empty database on the session's server; dropped after the test."""
    url = postgres_server.create_database()
    yield url
    postgres_server.drop_database(url)
