"""The recurrent non-linearity sigma of the paper: codes, values and derivatives.

Every kernel takes the activation as an integer code:

* ``SIGMOID = 0``: the logistic sigmoid 1 / (1 + exp(-x)), max sigma' = 1/4;
* ``TANH = 1``: tanh, max sigma' = 1;
* ``IDENTITY = 2``: sigma(x) = x, only in the n-unit kernels of equation (2)
  (the linear case of section 2.2, equation (6)).

The library maps names to codes with :data:`CODES`.

All functions here are built on :func:`clipviz.kernels.fastmath.fexp`
(arithmetic only, no libm call), are inlined into their callers and make no
division by a possible zero (denominators are 1 + exp(.) >= 1), so a loop
over independent points that calls them vectorises.  Where a form appears
twice (``sigmoid`` and ``sigmoid_direct``; ``tanh`` and the value of
``tanh_d2``) the two round differently in the last bit; each kernel keeps
the form it was validated with, so its results stay bit for bit the same.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .fastmath import fexp

SIGMOID = 0
TANH = 1
IDENTITY = 2

CODES = {"sigmoid": SIGMOID, "tanh": TANH, "identity": IDENTITY}
"""Activation name -> kernel code."""


# ---------------------------------------------------------------------------
# float64 values
# ---------------------------------------------------------------------------


@njit(inline="always", cache=True, fastmath={"contract"}, error_model="numpy")
def sigmoid_from_exp(x: float, e: float) -> float:
    """sigma(x) given e = exp(-|x|): 1/(1+e) for x >= 0, e/(1+e) for x < 0.

    Neither form overflows or cancels, so sigma keeps its relative accuracy
    in both tails.  Callers that need e for something else (the binary
    cross-entropy's log(1 + e)) pass it in instead of computing it twice.
    """
    inv = 1.0 / (1.0 + e)
    return inv if x >= 0.0 else e * inv


@njit(inline="always", cache=True, fastmath={"contract"}, error_model="numpy")
def sigmoid(x: float) -> float:
    """The logistic sigmoid by :func:`sigmoid_from_exp`."""
    return sigmoid_from_exp(x, fexp(-abs(x)))


@njit(inline="always", cache=True, fastmath={"contract"}, error_model="numpy")
def sigmoid_direct(x: float) -> float:
    """1 / (1 + exp(-x)) as written: no sign test, the form the iteration kernels use.

    No cancellation on either side; fexp clamps its argument, so nothing
    overflows.  Rounds differently from :func:`sigmoid` in the last bit.
    """
    return 1.0 / (1.0 + fexp(-x))


@njit(inline="always", cache=True, fastmath={"contract"}, error_model="numpy")
def tanh(x: float) -> float:
    """tanh(x) = sign(x) (1 - e) / (1 + e) with e = exp(-2|x|)."""
    e = fexp(-2.0 * abs(x))
    a = (1.0 - e) / (1.0 + e)
    return a if x >= 0.0 else -a


@njit(inline="always", cache=True, fastmath={"contract"}, error_model="numpy")
def sigma(x: float, act: int) -> float:
    """sigma(x) for activation code ``act`` (:func:`sigmoid` or :func:`tanh`)."""
    if act == SIGMOID:
        return sigmoid(x)
    return tanh(x)


@njit(inline="always", cache=True, fastmath={"contract"}, error_model="numpy")
def sigma_direct(x: float, act: int) -> float:
    """sigma(x) for code ``act`` with :func:`sigmoid_direct` for the sigmoid."""
    if act == SIGMOID:
        return sigmoid_direct(x)
    return tanh(x)


@njit(cache=True, fastmath={"contract"}, error_model="numpy")
def sigma_array(x: np.ndarray, act: int, out: np.ndarray) -> None:
    """out[i] = sigma(x[i]) (:func:`sigma`) over a 1-D array."""
    if act == SIGMOID:
        for i in range(x.shape[0]):
            out[i] = sigmoid(x[i])
    else:
        for i in range(x.shape[0]):
            out[i] = tanh(x[i])


@njit(inline="always", cache=True)
def sigmoid_libm(x: float) -> float:
    """1 / (1 + exp(-x)) with libm's exp, for scalar code that wants the last bit.

    Not vectorisable (a libm call); overflows to 0 for x < -709.
    """
    return 1.0 / (1.0 + math.exp(-x))


# ---------------------------------------------------------------------------
# derivatives
# ---------------------------------------------------------------------------


@njit(inline="always", cache=True, fastmath={"contract"}, error_model="numpy")
def sigmoid_d2(x: float):
    """Logistic sigmoid and its first two derivatives, without cancellation.

    Uses e = exp(-|x|) so nothing overflows: sigma = 1/(1+e) for x >= 0 and
    e/(1+e) for x < 0; sigma' = e/(1+e)^2; sigma'' = sigma'(1 - 2 sigma).
    """
    e = fexp(-abs(x))
    inv = 1.0 / (1.0 + e)
    s = inv if x >= 0.0 else e * inv
    d1 = e * inv * inv
    d2 = d1 * (1.0 - 2.0 * s)
    return s, d1, d2


@njit(inline="always", cache=True, fastmath={"contract"}, error_model="numpy")
def tanh_d2(x: float):
    """tanh and its first two derivatives.

    t = sign(x) (1 - e)/(1 + e) with e = exp(-2|x|); tanh' = 4e/(1+e)^2 (no
    cancellation as |x| grows); tanh'' = -2 t tanh'.
    """
    e = fexp(-2.0 * abs(x))
    inv = 1.0 / (1.0 + e)
    a = (1.0 - e) * inv
    t = a if x >= 0.0 else -a
    d1 = 4.0 * e * inv * inv
    d2 = -2.0 * t * d1
    return t, d1, d2


@njit(inline="always", cache=True, error_model="numpy")
def act_d2(x: float, act: int):
    """sigma, sigma', sigma'' for activation code ``act``."""
    if act == SIGMOID:
        return sigmoid_d2(x)
    return tanh_d2(x)


@njit(inline="always", cache=True, fastmath={"contract"}, error_model="numpy")
def sigmoid_prime_from_value(s):
    """sigma' = s (1 - s) from the value s = sigma(x) (BPTT's equation (5))."""
    return s * (1.0 - s)


@njit(inline="always", cache=True, fastmath={"contract"}, error_model="numpy")
def tanh_prime_from_value(t):
    """tanh' = 1 - t^2 from the value t = tanh(x)."""
    return 1.0 - t * t


@njit(inline="always", cache=True)
def dmax(act: int) -> float:
    """max sigma' (at x = 0): 1/4 for the sigmoid, 1 for tanh (and the identity).

    Section 2.3: rho > 1 / dmax is necessary for exploding gradients.
    """
    return 0.25 if act == SIGMOID else 1.0


# ---------------------------------------------------------------------------
# float32
# ---------------------------------------------------------------------------

_ZERO32 = np.float32(0.0)
_ONE32 = np.float32(1.0)


@njit(inline="always", cache=True, fastmath={"contract"}, error_model="numpy")
def sigmoid_from_exp_f32(x, e):
    """:func:`sigmoid_from_exp` in float32 arithmetic (x, e float32)."""
    inv = _ONE32 / (_ONE32 + e)
    return inv if x >= _ZERO32 else e * inv
