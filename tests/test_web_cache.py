"""The web app's result cache (clipviz.web.cache): memoizing, the filesystem cache and Redis."""

from __future__ import annotations

import shutil
import subprocess
import time

import numpy as np
import pytest

from clipviz.figures import surface as fs
from clipviz.web.pages import surface as page

from .web_helpers import free_port


def test_memoized_computation_runs_once_per_key(make_app, monkeypatch):
    app = make_app(warm=False)
    calls = []
    real = fs.compute_surface

    def counting(*a, **k):
        calls.append(a)
        return real(*a, **k)

    monkeypatch.setattr(fs, "compute_surface", counting)
    with app.server.app_context():
        a = page.surface_grid(-2.0, 12.0, -8.0, 2.0, 24, 10, 0.5, 0.7, "sigmoid")
        b = page.surface_grid(-2.0, 12.0, -8.0, 2.0, 24, 10, 0.5, 0.7, "sigmoid")
        page.surface_grid(-2.0, 12.0, -8.0, 2.0, 24, 11, 0.5, 0.7, "sigmoid")
    assert len(calls) == 2
    np.testing.assert_array_equal(a.E, b.E)


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")
def test_redis_cache_when_url_is_set(monkeypatch, tmp_path):
    port = free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--dir", str(tmp_path)], stdout=subprocess.DEVNULL)
    try:
        import redis

        r = redis.Redis(port=port)
        for _ in range(100):
            try:
                r.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        monkeypatch.setenv("CLIPVIZ_REDIS_URL", f"redis://127.0.0.1:{port}/0")
        from clipviz.web.app import create_app
        from clipviz.web.cache import cache_config

        assert cache_config()["CACHE_TYPE"] == "RedisCache"
        app = create_app(warm=False)
        with app.server.app_context():
            page.surface_grid(-2.0, 12.0, -8.0, 2.0, 20, 10, 0.5, 0.7, "sigmoid")
        assert any(k.startswith(b"clipviz:") for k in r.keys())
    finally:
        proc.terminate()
        proc.wait(5)


def test_filesystem_cache_by_default_in_data_dir(monkeypatch, tmp_path):
    from clipviz.web.cache import cache_config

    monkeypatch.delenv("CLIPVIZ_REDIS_URL", raising=False)
    monkeypatch.setenv("CLIPVIZ_DATA_DIR", str(tmp_path / "d"))
    cfg = cache_config()
    assert cfg["CACHE_TYPE"] == "clipviz.web.cache.DiskCache" and cfg["CACHE_DIR"] == str(tmp_path / "d" / "web-cache")
    assert cfg["CACHE_OPTIONS"]["size_limit"] == __import__("clipviz.config").config.SETTINGS.cache_max_bytes


def test_memoized_stores_only_results_slower_than_min_seconds(make_app):
    """Small computations are not written to the cache (a write costs more than they do); slow ones
    are, and a stored result is served without computing again."""
    from clipviz.web.cache import memoized

    calls = []

    @memoized(min_seconds=0.05)
    def work(x, slow):
        calls.append(x)
        if slow:
            time.sleep(0.06)
        return x * 2

    app = make_app(warm=False)
    with app.server.app_context():
        assert work(1, False) == 2 and work(1, False) == 2
        assert calls == [1, 1]  # fast: computed each time, never stored
        assert work(2, True) == 4 and work(2, True) == 4
        assert calls == [1, 1, 2]  # slow: stored once, then read
    assert work(2, True) == 4 and calls == [1, 1, 2, 2]  # outside an app: a plain call
