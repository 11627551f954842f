"""Branch-free elementary functions that vectorise without SVML.

The llvmlite wheels on PyPI ship no SVML, so ``math.exp`` inside an ``@njit``
loop becomes a scalar libm call and stops LLVM from vectorising the loop.  The
functions here are made of arithmetic only, so a loop that calls them
vectorises with AVX2/AVX-512:

* :func:`fexp` -- exp in float64 (a Cody–Waite range reduction, a 64-entry
  table of 2**(j/64), a degree-5 polynomial and an exponent built by
  bit-casting an integer); :func:`fexp_f32` its float32 counterpart;
* :func:`log1p_unit`, :func:`log1p_unit_f32` -- log(1 + e) for e in [0, 1]
  (the binary cross-entropy of sigmoid outputs);
* :func:`tanh_f32` -- tanh in float32 arithmetic.

The activations built on them (sigmoid, tanh and their derivatives) are in
:mod:`clipviz.kernels.activations`.

Accuracy: ``fexp`` is within about 2 ulp of the correctly rounded exp over
[-708, 708] (checked in ``tests/test_fastmath.py`` against NumPy); arguments
outside are clamped (exp(-708) ~ 3e-308 stands in for anything smaller, which
only matters for saturated sigmoids where it is far below every tolerance).
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

# exp(z) = 2**(k/64) * exp(r) with k = round(64 z / ln 2), |r| <= ln2/128.
_INV_STEP = 92.33248261689366  # 64 / ln 2
# ln2/64 split so that k * _STEP_HI is exact for |k| < 2**17 (Cody & Waite).
_STEP_HI = 0.010830424696223417
_STEP_LO = 2.572804622327669e-14
_CLAMP = 708.0
_SHIFT = 6755399441055744.0  # 1.5 * 2**52
_SHIFT_BITS = np.int64(4843621399236968448)  # bit pattern of _SHIFT
# 2**(j/64), j = 0..63 (a gather, which AVX2/AVX-512 vectorise).
_TABLE = 2.0 ** (np.arange(64) / 64.0)

@intrinsic
def _bits_to_float64(typingctx, bits):
    """Reinterpret the 64 bits of an int64 as a float64 (no conversion)."""
    if not isinstance(bits, types.Integer):
        return None
    sig = types.float64(types.int64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return sig, codegen


@intrinsic
def _float64_to_bits(typingctx, x):
    """Reinterpret the 64 bits of a float64 as an int64 (no conversion)."""
    if not isinstance(x, types.Float):
        return None
    sig = types.int64(types.float64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return sig, codegen


@njit(inline="always", cache=True, fastmath={"contract"}, error_model="numpy")
def fexp(z: float) -> float:
    """exp(z) by arithmetic and a 64-entry table; vectorisable inside njit loops.

    k = round(64 z / ln 2) comes from the 1.5 * 2**52 "shifter": adding it
    rounds to an integer held in the low mantissa bits, read back by a bit
    cast (no float-to-int conversion, which some targets do not vectorise).
    Taylor degree 5 on |r| <= ln2/128 leaves a truncation error below
    0.0055**6/720 ~ 4e-17, under half an ulp.
    """
    z = min(max(z, -_CLAMP), _CLAMP)
    t = z * _INV_STEP + _SHIFT
    kf = t - _SHIFT
    r = (z - kf * _STEP_HI) - kf * _STEP_LO
    k = _float64_to_bits(t) - _SHIFT_BITS
    p = 1.0 / 120.0
    p = p * r + 1.0 / 24.0
    p = p * r + 1.0 / 6.0
    p = p * r + 0.5
    p = p * r + 1.0
    p = p * r + 1.0
    scale = _bits_to_float64(((k >> np.int64(6)) + np.int64(1023)) << np.int64(52))
    return p * _TABLE[k & np.int64(63)] * scale


@intrinsic
def _bits_to_float32(typingctx, bits):
    """Reinterpret the 32 bits of an int32 as a float32 (no conversion)."""
    if not isinstance(bits, types.Integer):
        return None
    sig = types.float32(types.int32)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())

    return sig, codegen


# float32 exp (Cephes expf): exp(z) = 2**k exp(r), k = round(z / ln 2), |r| <= ln2/2,
# ln 2 split so that k * _E32_HI is exact; degree-6 polynomial; no table, so a float32 loop
# over it vectorises 16 lanes wide with AVX-512.
_F32 = np.float32
_E32_LOG2E = _F32(1.44269504088896341)
_E32_HI = _F32(0.693359375)
_E32_LO = _F32(-2.12194440e-4)
_E32_P0, _E32_P1, _E32_P2 = _F32(1.9875691500e-4), _F32(1.3981999507e-3), _F32(8.3334519073e-3)
_E32_P3, _E32_P4, _E32_P5 = _F32(4.1665795894e-2), _F32(1.6666665459e-1), _F32(5.0000001201e-1)
_E32_MIN = _F32(-87.0)  # exp(-87) ~ 1.6e-38, still a normal float32
_E32_MAX = _F32(88.0)
_E32_HALF = _F32(0.5)
_E32_ONE = _F32(1.0)


@njit(inline="always", cache=True, fastmath={"contract"})
def fexp_f32(z):
    """exp of a float32 in float32 arithmetic, vectorisable (within 2 ulp on
    [-87, 88]; arguments outside are clamped to that range)."""
    z = min(max(_F32(z), _E32_MIN), _E32_MAX)
    kf = np.floor(z * _E32_LOG2E + _E32_HALF)
    r = (z - kf * _E32_HI) - kf * _E32_LO
    r2 = r * r
    p = _E32_P0 * r + _E32_P1
    p = p * r + _E32_P2
    p = p * r + _E32_P3
    p = p * r + _E32_P4
    p = p * r + _E32_P5
    p = p * r2 + r + _E32_ONE
    scale = _bits_to_float32((np.int32(kf) + np.int32(127)) << np.int32(23))
    return p * scale


# log(1+e) = 2 atanh(s) = 2 sum_k s^(2k+1)/(2k+1) with s = e/(2+e) <= 1/3; 19 terms leave
# a truncation below (1/9)^19 / 39 ~ 3e-20 relative.  Written out so the loop that calls it
# vectorises.
@njit(inline="always", cache=True, fastmath={"contract"}, error_model="numpy")
def log1p_unit(e: float) -> float:
    """log(1 + e) for e in [0, 1] by arithmetic only (vectorisable, ~1 ulp)."""
    s = e / (2.0 + e)
    s2 = s * s
    p = 1.0 / 37.0
    p = p * s2 + 1.0 / 35.0
    p = p * s2 + 1.0 / 33.0
    p = p * s2 + 1.0 / 31.0
    p = p * s2 + 1.0 / 29.0
    p = p * s2 + 1.0 / 27.0
    p = p * s2 + 1.0 / 25.0
    p = p * s2 + 1.0 / 23.0
    p = p * s2 + 1.0 / 21.0
    p = p * s2 + 1.0 / 19.0
    p = p * s2 + 1.0 / 17.0
    p = p * s2 + 1.0 / 15.0
    p = p * s2 + 1.0 / 13.0
    p = p * s2 + 1.0 / 11.0
    p = p * s2 + 1.0 / 9.0
    p = p * s2 + 1.0 / 7.0
    p = p * s2 + 1.0 / 5.0
    p = p * s2 + 1.0 / 3.0
    p = p * s2 + 1.0 / 1.0
    return 2.0 * s * p


_H1 = np.float32(1.0)
_H2 = np.float32(2.0)


@njit(inline="always", cache=True, fastmath={"contract"}, error_model="numpy")
def log1p_unit_f32(e):
    """log(1 + e) for a float32 e in [0, 1] in float32 arithmetic: the series of
    :func:`log1p_unit` cut after the s^17 term (truncation < (1/9)^9 / 19 ~ 1e-10; within
    3 float32 ulp, tests/test_fastmath.py)."""
    s = e / (_H2 + e)
    s2 = s * s
    p = np.float32(1.0 / 17.0)
    p = p * s2 + np.float32(1.0 / 15.0)
    p = p * s2 + np.float32(1.0 / 13.0)
    p = p * s2 + np.float32(1.0 / 11.0)
    p = p * s2 + np.float32(1.0 / 9.0)
    p = p * s2 + np.float32(1.0 / 7.0)
    p = p * s2 + np.float32(1.0 / 5.0)
    p = p * s2 + np.float32(1.0 / 3.0)
    p = p * s2 + _H1
    return _H2 * s * p


# tanh in float32 arithmetic: a [13/6] rational minimax approximation on [-7.9, 7.9] (the
# coefficients of Eigen's generic_fast_tanh_float), branch-free and without a table, so a
# loop over it vectorises 16 lanes wide; within 6 float32 ulp of tanh, absolute error < 4e-7
# (tests/test_rnn_bptt.py).
_TA1, _TA3, _TA5 = _F32(4.89352455891786e-03), _F32(6.37261928875436e-04), _F32(1.48572235717979e-05)
_TA7, _TA9 = _F32(5.12229709037114e-08), _F32(-8.60467152213735e-11)
_TA11, _TA13 = _F32(2.00018790482477e-13), _F32(-2.76076847742355e-16)
_TB0, _TB2 = _F32(4.89352518554385e-03), _F32(2.26843463243900e-03)
_TB4, _TB6 = _F32(1.18534705686654e-04), _F32(1.19825839466702e-06)
_TCLAMP = _F32(7.90531110763549805)


@njit(inline="always", cache=True, fastmath={"contract"}, error_model="numpy")
def tanh_f32(x):
    """tanh of a float32 in float32 arithmetic (vectorisable, <= 6 ulp, abs. error < 4e-7)."""
    x = min(max(x, -_TCLAMP), _TCLAMP)
    x2 = x * x
    p = _TA13 * x2 + _TA11
    p = p * x2 + _TA9
    p = p * x2 + _TA7
    p = p * x2 + _TA5
    p = p * x2 + _TA3
    p = p * x2 + _TA1
    p = p * x
    q = _TB6 * x2 + _TB4
    q = q * x2 + _TB2
    q = q * x2 + _TB0
    return p / q
