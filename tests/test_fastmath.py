"""The arithmetic exp / sigmoid / tanh used inside the kernels."""

import numpy as np
import pytest
from numba import njit

from clipviz.kernels.activations import sigmoid_d2, tanh_d2
from clipviz.kernels.fastmath import fexp


@njit(cache=False)
def _map(f_id, xs):
    out = np.empty((xs.size, 3))
    for i in range(xs.size):
        if f_id == 0:
            out[i, 0] = fexp(xs[i])
        elif f_id == 1:
            out[i, 0], out[i, 1], out[i, 2] = sigmoid_d2(xs[i])
        else:
            out[i, 0], out[i, 1], out[i, 2] = tanh_d2(xs[i])
    return out


def test_exp_within_a_few_ulp_over_its_range():
    rng = np.random.default_rng(0)
    z = np.concatenate([np.linspace(-708, 708, 400_001), rng.uniform(-50, 50, 100_000),
                        [0.0, 1.0, -1.0, np.log(2.0), 1e-300, -1e-300]])
    got = _map(0, z)[:, 0]
    ref = np.exp(z)
    ulp = np.abs(got - ref) / np.spacing(ref)
    assert ulp.max() <= 4, ulp.max()
    assert got[-6] == 1.0


def test_exp_clamps_instead_of_overflowing():
    got = _map(0, np.array([-1000.0, 1000.0]))[:, 0]
    assert 0 < got[0] < 1e-300 and np.isfinite(got[1]) and got[1] > 1e307


@pytest.mark.parametrize("name", ["sigmoid", "tanh"])
def test_activation_and_derivatives_match_numpy(name):
    x = np.concatenate([np.linspace(-40, 40, 20001), [0.0, 1e-12, -1e-12]])
    got = _map(1 if name == "sigmoid" else 2, x)
    if name == "sigmoid":
        s = 1 / (1 + np.exp(-x))
        d1 = s * (1 - s)
        d2 = d1 * (1 - 2 * s)
    else:
        s = np.tanh(x)
        d1 = 1 - s * s
        d2 = -2 * s * d1
    for k, ref in enumerate((s, d1, d2)):
        err = np.abs(got[:, k] - ref)
        assert np.all(err <= 1e-15 + 1e-13 * np.abs(ref)), (k, err.max())


def test_sigmoid_tails_do_not_lose_relative_accuracy():
    # e/(1+e) form: sigma(-30) keeps its digits instead of cancelling 1 - sigma(30)
    got = _map(1, np.array([-30.0, 30.0]))
    assert got[0, 0] == pytest.approx(1 / (1 + np.exp(30.0)), rel=1e-14)
    assert got[1, 1] == pytest.approx(np.exp(-30.0) / (1 + np.exp(-30.0)) ** 2, rel=1e-14)


def test_float32_exp_and_log1p_within_a_few_ulp():
    from clipviz.kernels.fastmath import fexp_f32, log1p_unit_f32

    @njit
    def both(xs, es):
        a = np.empty_like(xs)
        b = np.empty_like(es)
        for i in range(xs.size):
            a[i] = fexp_f32(xs[i])
        for i in range(es.size):
            b[i] = log1p_unit_f32(es[i])
        return a, b

    xs = np.concatenate([np.linspace(-87, 88, 400_001), [0.0, 1.0, -1.0, 1e-30, -1e-30]]).astype(np.float32)
    es = np.concatenate([np.linspace(0, 1, 200_001), np.logspace(-38, 0, 2000)]).astype(np.float32)
    a, b = both(xs, es)
    assert a.dtype == np.float32 and b.dtype == np.float32
    ref = np.exp(xs.astype(np.float64))
    assert np.max(np.abs(a - ref) / np.spacing(ref.astype(np.float32))) <= 2
    assert a[-5] == 1.0
    refl = np.log1p(es.astype(np.float64))
    nz = refl > 0
    assert np.max(np.abs(b - refl)[nz] / np.spacing(refl[nz].astype(np.float32))) <= 3  # measured 2.6
    assert b[0] == 0.0
