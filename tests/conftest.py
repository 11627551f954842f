import os

import pytest


@pytest.fixture
def make_app(tmp_path):
    """A fresh clipviz app with its own filesystem cache."""
    from clipviz.web.app import create_app

    def make(**kw):
        cfg = {"CACHE_TYPE": "FileSystemCache", "CACHE_DIR": str(tmp_path / "cache"),
               "CACHE_DEFAULT_TIMEOUT": 600}
        return create_app(cache_config=cfg, **kw)

    return make
