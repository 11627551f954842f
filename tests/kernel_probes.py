"""Numba loops that expose the kernels' inlined elementary functions to the tests.

The kernels inline :mod:`clipviz.kernels.fastmath` and
:mod:`clipviz.kernels.activations` into their loops; these loops call the
same functions over an array so the tests can compare them with NumPy.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from clipviz.kernels.activations import SIGMOID, sigmoid_d2, sigmoid_direct, tanh, tanh_d2
from clipviz.kernels.fastmath import fexp


@njit(fastmath={"contract"}, error_model="numpy")
def fexp_array(z: np.ndarray, out: np.ndarray) -> None:
    """out[i] = fexp(z[i])."""
    for i in range(z.shape[0]):
        out[i] = fexp(z[i])


@njit(fastmath={"contract"}, error_model="numpy")
def grid_activation_array(x: np.ndarray, act: int, s: np.ndarray, d1: np.ndarray) -> None:
    """sigma and sigma' as the dynamics grid kernels compute them, at every x.

    sigma is the form the iteration kernels use (``sigmoid_direct`` / ``tanh``),
    sigma' that of ``sensitivity_grid`` (``sigmoid_d2`` / ``tanh_d2``); s[i] is
    NaN where the value of the latter differs from sigma by more than 4e-16.
    """
    for i in range(x.shape[0]):
        if act == SIGMOID:
            a, b, _ = sigmoid_d2(x[i])
            s[i] = sigmoid_direct(x[i])
        else:
            a, b, _ = tanh_d2(x[i])
            s[i] = tanh(x[i])
        d1[i] = b
        if a != s[i] and abs(a - s[i]) > 4e-16:
            s[i] = np.nan  # the two sigma formulas must agree
