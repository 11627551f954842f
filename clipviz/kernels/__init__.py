"""Numba kernels: ``@njit`` functions only, arrays and scalars in, arrays out.

Nothing here imports plotly or Dash; validation lives in the library modules
that call these kernels.  The parallel grid kernels release the GIL (``nogil``):
in a threaded web worker, cheap requests go on while a surface is computed.
"""
