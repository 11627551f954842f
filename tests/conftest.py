import os
from pathlib import Path

import pytest

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not DATA.is_dir():
        pytest.skip(f"shared data folder {DATA} is absent (expected at ../shared/data)")
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
