"""Memoisation of page computations with flask-caching.

A disk cache under the data directory by default (:class:`DiskCache`, bounded in
bytes, shared by all gunicorn workers on one host); Redis when
``CLIPVIZ_REDIS_URL`` is set (bounded by the server's ``maxmemory``).  Cached
functions take only rounded scalars (keys are built from ``repr`` of the
arguments, under which numpy arrays would collide), see
:func:`clipviz.web.params.round_sig` and :func:`memo_key`.

Outside a Flask application context (unit tests, notebooks) a memoised
function simply runs.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import time
from pathlib import Path
from typing import Any, Callable, TypeVar

import diskcache
from flask import Flask, current_app, has_app_context
from flask_caching import Cache
from flask_caching.backends.base import BaseCache

from .. import config
from ..config import SETTINGS

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

# The extension object only records configuration; each Flask app gets its own
# backend in app.extensions, and all cached data lives in the backend.
cache = Cache()


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """A short hash of clipviz's source: part of every cache key, so results computed by an
    older version of the code (another format, a fixed bug) are never served."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:12]


class DiskCache(BaseCache):
    """flask-caching backend on :mod:`diskcache`: bounded in bytes, not only in entries.

    flask-caching's FileSystemCache prunes by entry count only: one client asking for distinct
    1024² views added 48 MB/s, so its 5000 entries allowed about 28 GB.  diskcache keeps the
    total under ``size_limit`` bytes, evicting the least recently stored entries, and is safe for
    the threads and processes of one host (it is SQLite underneath; each gunicorn worker opens it
    after the fork).  ``CACHE_TYPE = "clipviz.web.cache.DiskCache"``, ``CACHE_DIR``,
    ``CACHE_OPTIONS = {"size_limit": bytes}``, ``CACHE_KEY_PREFIX``.
    """

    def __init__(self, directory: str, size_limit: int = SETTINGS.cache_max_bytes, key_prefix: str = "",
                 default_timeout: int = 300, ignore_delete_many_errors: bool = False) -> None:
        super().__init__(default_timeout=default_timeout, ignore_delete_many_errors=ignore_delete_many_errors)
        self.key_prefix = key_prefix
        self._cache = diskcache.Cache(directory, size_limit=int(size_limit),
                                      eviction_policy="least-recently-stored")

    @classmethod
    def factory(cls, app, config, args, kwargs):  # flask-caching's constructor hook
        return cls(config["CACHE_DIR"], key_prefix=config.get("CACHE_KEY_PREFIX") or "", **kwargs)

    def _expire(self, timeout: int | None) -> float | None:
        t = self._normalize_timeout(timeout)
        return None if t == 0 else t

    def get(self, key: str) -> Any:
        return self._cache.get(self.key_prefix + key)

    def set(self, key: str, value: Any, timeout: int | None = None) -> bool:
        return bool(self._cache.set(self.key_prefix + key, value, expire=self._expire(timeout)))

    def add(self, key: str, value: Any, timeout: int | None = None) -> bool:
        return bool(self._cache.add(self.key_prefix + key, value, expire=self._expire(timeout)))

    def delete(self, key: str) -> bool:
        return bool(self._cache.delete(self.key_prefix + key))

    def has(self, key: str) -> bool:
        return (self.key_prefix + key) in self._cache

    def clear(self) -> bool:
        self._cache.clear()
        return True

    def volume(self) -> int:
        """Bytes the cache holds on disk (diskcache's estimate)."""
        return int(self._cache.volume())


def cache_config() -> dict[str, Any]:
    """The flask-caching configuration chosen from the environment."""
    url = config.redis_url()
    common = {"CACHE_DEFAULT_TIMEOUT": SETTINGS.cache_timeout_s,
              "CACHE_KEY_PREFIX": f"clipviz:{code_version()}:"}
    if url:
        return {"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": url, **common}
    path = config.web_cache_dir()
    path.mkdir(parents=True, exist_ok=True)
    return {"CACHE_TYPE": f"{__name__}.DiskCache", "CACHE_DIR": str(path),
            "CACHE_OPTIONS": {"size_limit": SETTINGS.cache_max_bytes}, **common}


def init_cache(server: Flask, config: dict[str, Any] | None = None) -> dict[str, Any]:
    """Attach the cache to ``server``; returns the configuration used."""
    cfg = config if config is not None else cache_config()
    cache.init_app(server, config=cfg)
    log.info("web cache: %s", cfg["CACHE_TYPE"])
    return cfg


def memo_key(fn: Callable[..., Any], args: tuple, kwargs: dict) -> str:
    """The cache key of a call: the function's dotted name and a hash of ``repr`` of its (rounded,
    scalar) arguments.  (flask-caching's own ``memoize`` inspects the signature on every call,
    a sizeable part of a whole descent request: docs/benchmarks.md.)"""
    text = repr((args, sorted(kwargs.items())))
    return f"memo:{fn.__module__}.{fn.__qualname__}:{hashlib.sha1(text.encode()).hexdigest()}"


def memoized(fn: F | None = None, *, min_seconds: float = 0.0):
    """Memoise ``fn`` in the app's flask-caching backend when running inside an app that has the
    cache, else a plain call.  Arguments must be scalars or strings (see :func:`memo_key`).

    ``min_seconds``: store only results that took at least this long to compute (every call still
    looks in the cache first).  Writing an entry (pickle, file or Redis) costs
    more than some of the page's small computations take.

    Use as ``@memoized`` or ``@memoized(min_seconds=...)``.
    """
    if fn is None:
        return functools.partial(memoized, min_seconds=min_seconds)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if not (has_app_context() and cache in current_app.extensions.get("cache", {})):
            return fn(*args, **kwargs)
        key = memo_key(fn, args, kwargs)
        try:
            hit = cache.get(key)
        except Exception:  # an unreadable cache entry or backend hiccup: compute instead
            log.warning("cache read failed for %s", key, exc_info=True)
            hit = None
        if hit is not None:
            return hit
        t = time.perf_counter()
        value = fn(*args, **kwargs)
        if time.perf_counter() - t >= min_seconds:
            try:
                cache.set(key, value, timeout=SETTINGS.cache_timeout_s)
            except Exception:
                log.warning("cache write failed for %s", key, exc_info=True)
        return value

    wrapper.uncached = fn  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]
