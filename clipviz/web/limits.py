"""Per-process limit on the web app's heavy computations (surface grids).

A surface computation already uses every core (Numba's parallel kernels), so running more of
them at once only makes each slower, and every one of them holds a server thread.  A few clients
asking for worst-case surfaces once starved ``/health`` (docs/benchmarks.md).  Each web
process therefore runs at most ``SETTINGS.web_heavy_slots`` of them at once; a request that finds
no free slot within ``SETTINGS.web_heavy_wait_s`` is answered 503 with ``Retry-After`` (the
surface page retries it), and the other threads stay free for cheap requests.  The semaphore
lives in the Flask app's ``extensions``, not in module state.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Iterator

from flask import Flask, current_app, has_app_context

from ..config import SETTINGS

KEY = "clipviz_heavy_slots"
RETRY_AFTER_S = 1


class Busy(RuntimeError):
    """Every heavy slot of this process is taken."""

    def __init__(self) -> None:
        super().__init__("the server is busy computing other surfaces; it retries in a moment")


def init_limits(server: Flask) -> None:
    """Give ``server`` its heavy-work slots."""
    server.extensions[KEY] = threading.BoundedSemaphore(SETTINGS.web_heavy_slots)


@contextlib.contextmanager
def heavy_work() -> Iterator[None]:
    """Hold one heavy slot for the block, or raise :class:`Busy` (no limit outside an app)."""
    slots = current_app.extensions.get(KEY) if has_app_context() else None
    if slots is None:
        yield
        return
    if not slots.acquire(timeout=SETTINGS.web_heavy_wait_s):  # timeout 0: take a free slot or none
        raise Busy()
    try:
        yield
    finally:
        slots.release()
