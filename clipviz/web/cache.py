"""Memoisation of page computations with flask-caching.

Filesystem cache under the data directory by default (shared by all gunicorn
workers on one host); Redis when ``CLIPVIZ_REDIS_URL`` is set.  Cached
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

from flask import Flask, current_app, has_app_context
from flask_caching import Cache

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


def cache_config() -> dict[str, Any]:
    """The flask-caching configuration chosen from the environment."""
    url = config.redis_url()
    common = {"CACHE_DEFAULT_TIMEOUT": SETTINGS.cache_timeout_s,
              "CACHE_KEY_PREFIX": f"clipviz:{code_version()}:"}
    if url:
        return {"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": url, **common}
    path = config.web_cache_dir()
    path.mkdir(parents=True, exist_ok=True)
    return {"CACHE_TYPE": "FileSystemCache", "CACHE_DIR": str(path),
            "CACHE_THRESHOLD": SETTINGS.cache_max_items, **common}


def init_cache(server: Flask, config: dict[str, Any] | None = None) -> dict[str, Any]:
    """Attach the cache to ``server``; returns the configuration used."""
    cfg = config if config is not None else cache_config()
    cache.init_app(server, config=cfg)
    log.info("web cache: %s", cfg["CACHE_TYPE"])
    return cfg


def memo_key(fn: Callable[..., Any], args: tuple, kwargs: dict) -> str:
    """The cache key of a call: the function's dotted name and a hash of ``repr`` of its (rounded,
    scalar) arguments.  (flask-caching's own ``memoize`` inspects the signature on every call:
    about 1 ms, a fifth of a whole descent request.)"""
    text = repr((args, sorted(kwargs.items())))
    return f"memo:{fn.__module__}.{fn.__qualname__}:{hashlib.sha1(text.encode()).hexdigest()}"


def memoized(fn: F | None = None, *, min_seconds: float = 0.0):
    """Memoise ``fn`` in the app's flask-caching backend when running inside an app that has the
    cache, else a plain call.  Arguments must be scalars or strings (see :func:`memo_key`).

    ``min_seconds``: store only results that took at least this long to compute (every call still
    looks in the cache first).  Writing an entry costs about a millisecond (pickle, file or Redis),
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
