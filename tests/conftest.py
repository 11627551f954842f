import os
from pathlib import Path

import pytest

os.environ.setdefault("NUMBA_THREADING_LAYER", "workqueue")
# Multi-threaded BLAS on the small training matrices is up to 10x slower on a
# loaded 2-core machine (see README, Training).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data next to the checkout; tests that need it skip only where it is absent."""
    if not DATA.is_dir():
        pytest.skip(f"shared data folder {DATA} is absent (expected at ../shared/data; CI has it)")
    return DATA


@pytest.fixture
def make_app(tmp_path):
    """A fresh clipviz app with its own filesystem cache."""
    from clipviz.web.app import create_app

    def make(**kw):
        cfg = {"CACHE_TYPE": "FileSystemCache", "CACHE_DIR": str(tmp_path / "cache"),
               "CACHE_DEFAULT_TIMEOUT": 600}
        return create_app(cache_config=cfg, **kw)

    return make
