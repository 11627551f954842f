"""clipviz: the exploding-gradient problem of recurrent networks, made visible.

Built on Pascanu, Mikolov & Bengio, "Understanding the exploding gradient
problem" (2012) / "On the difficulty of training recurrent neural networks"
(ICML 2013).

Importing clipviz selects Numba's ``workqueue`` threading layer (unless the
user chose one): GNU OpenMP, the default here, breaks in processes forked
after a parallel kernel ran (gunicorn, Celery prefork, Dash background jobs).
"""

from __future__ import annotations

import logging
import os

os.environ.setdefault("NUMBA_THREADING_LAYER", "workqueue")

try:  # numba may already have been imported by the caller
    import numba as _numba

    if _numba.config.THREADING_LAYER == "default":
        _numba.config.THREADING_LAYER = os.environ["NUMBA_THREADING_LAYER"]
except ImportError:  # pragma: no cover - numba is a hard dependency
    pass

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())
