"""Numba kernels: ``@njit`` functions only, arrays and scalars in, arrays out.

Nothing here imports plotly or Dash; validation lives in the library modules
that call these kernels.
"""
