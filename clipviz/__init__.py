"""clipviz: the exploding-gradient problem of recurrent networks, made visible.

Built on Pascanu, Mikolov & Bengio, "Understanding the exploding gradient
problem" (2012) / "On the difficulty of training recurrent neural networks"
(ICML 2013).

Importing clipviz selects Numba's TBB threading layer (unless the user chose
one), which is both thread- and fork-safe: see :mod:`clipviz.numba_setup`.
"""

from __future__ import annotations

import logging

from .numba_setup import select_threading_layer

select_threading_layer()

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())
