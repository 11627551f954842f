"""Numba's threading layer for clipviz: TBB, loaded before Numba needs it.

Numba picks its threading layer at the first parallel kernel.  clipviz runs parallel kernels in
threaded gunicorn workers, Celery workers and runner processes, so the layer must be
thread-safe (``workqueue`` aborts the process with "Concurrent access" when two threads launch
parallel work at once) and fork-safe (GNU OpenMP breaks in a child forked after a parallel
kernel ran).  Intel's TBB is both.  ``pip install tbb`` puts ``libtbb.so.12`` in
``<sys.prefix>/lib``, which the dynamic loader does not search, so it is loaded here with
``RTLD_GLOBAL`` first; Debian's ``libtbb12`` is found by the loader itself.
"""

from __future__ import annotations

import ctypes
import logging
import sys
from pathlib import Path

from . import config

log = logging.getLogger(__name__)


def load_tbb() -> str | None:
    """Load the TBB library into this process for Numba; its path (or soname), or None."""
    candidates = [Path(sys.prefix) / "lib" / config.TBB_LIBRARY,
                  Path(sys.base_prefix) / "lib" / config.TBB_LIBRARY]
    for path in [str(p) for p in candidates if p.is_file()] + [config.TBB_LIBRARY]:
        try:
            ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
        except OSError:
            continue
        return path
    return None


def select_threading_layer() -> str:
    """Choose Numba's threading layer for this process and the processes it starts; the layer.

    The user's ``$NUMBA_THREADING_LAYER`` wins.  Otherwise TBB (``"safe"``) where its library
    loads, else ``"threadsafe"`` (TBB or OpenMP), with a warning.  Safe to call more than once,
    and after Numba was imported, as long as no parallel kernel ran yet.
    """
    layer = config.threading_layer()
    if layer is None:
        if load_tbb() is not None:
            layer = config.DEFAULT_THREADING_LAYER
        else:
            layer = config.FALLBACK_THREADING_LAYER
            log.warning("the TBB library (%s) could not be loaded: Numba's threading layer is %r "
                        "(pip install tbb, or apt install libtbb12, for the thread- and fork-safe one)",
                        config.TBB_LIBRARY, layer)
    elif layer in ("tbb", "safe"):
        load_tbb()
    config.set_threading_layer(layer)
    if "numba" in sys.modules:  # imported before clipviz: its config was read already
        numba = sys.modules["numba"]
        if numba.config.THREADING_LAYER in ("default", layer):
            numba.config.THREADING_LAYER = layer
    return layer
