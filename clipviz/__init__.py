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

from .config import select_threading_layer

select_threading_layer()

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())
