"""BPTT kernels against a plain-NumPy reference forward and central finite differences."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from clipviz.training.model import RNN


def np_sigma(z, act):
    return 1.0 / (1.0 + np.exp(-z)) if act == "sigmoid" else np.tanh(z)


def reference_window(m: RNN, theta, state, X, targets, weights, norm):
    """Plain-NumPy forward of one window: (objective, loss_sum, new state)."""
    v = m.views(np.asarray(theta, dtype=np.float64))
    W, U, V = v["W"], v["U"], v["V"]
    b = v.get("b", np.zeros(m.n_hidden))
    c = v.get("c", np.zeros(m.n_out))
    T, B, _ = X.shape
    if m.parametrisation == "paper":
        x = state.copy()                           # x_0
        total = 0.0
        for t in range(T):
            x = np_sigma(x, m.activation) @ W.T + X[t] @ U.T + b   # equation (2)
            a = np_sigma(x, m.activation)
            total += _ref_loss(m, a @ V.T + c, targets[t], weights[t])
        new_state = x
    else:
        h = state.copy()
        total = 0.0
        for t in range(T):
            h = np_sigma(h @ W.T + X[t] @ U.T + b, m.activation)
            total += _ref_loss(m, h @ V.T + c, targets[t], weights[t])
        new_state = h
    return total / norm, total, new_state


def _ref_loss(m, y, tgt, w):
    if m.output == "softmax":
        lse = np.log(np.exp(y - y.max(1, keepdims=True)).sum(1)) + y.max(1)
        return float(np.sum(w * (lse - y[np.arange(len(tgt)), tgt])))
    p = 1.0 / (1.0 + np.exp(-y))
    return float(np.sum(w * -(tgt * np.log(p) + (1 - tgt) * np.log(1 - p)).sum(1)))


def make_case(param, act, bias, output, seed=0, T=7, B=3, I=4, H=5, O=3):
    rng = np.random.default_rng(seed)
    m = RNN(I, H, O, activation=act, parametrisation=param, output=output, bias=bias)
    m.theta[:] = rng.normal(0, 0.6, m.n_params)
    X = rng.normal(0, 1, (T, B, I))
    if output == "softmax":
        tg = rng.integers(0, O, (T, B))
    else:
        tg = (rng.random((T, B, O)) < 0.4).astype(float)
    w = (rng.random((T, B)) < 0.8).astype(float)
    return m, X, tg, w


CASES = list(itertools.product(("paper", "standard"), ("tanh", "sigmoid"), (True, False)))


@pytest.mark.parametrize("param,act,bias", CASES)
@pytest.mark.parametrize("output", ("softmax", "sigmoid"))
def test_forward_matches_numpy_reference(param, act, bias, output):
    m, X, tg, w = make_case(param, act, bias, output)
    s0 = np.random.default_rng(1).normal(0, 0.5, (3, 5))
    res, s1 = m.window(s0, X, tg, w)
    _, ref_total, ref_state = reference_window(m, m.theta, s0, X, tg, w, 3)
    assert res.loss_sum == pytest.approx(ref_total, rel=1e-12)
    assert res.weight_sum == w.sum()
    np.testing.assert_allclose(s1, ref_state, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("param,act,bias", CASES)
@pytest.mark.parametrize("output", ("softmax", "sigmoid"))
def test_bptt_matches_central_differences_across_windows(param, act, bias, output):
    """Three windows with the state carried: gradient of the third window's
    objective (carried-in state held fixed, i.e. truncated BPTT) vs central
    differences of the NumPy reference."""
    m, X, tg, w = make_case(param, act, bias, output, T=15)
    s = m.zero_state(3)
    for k in range(2):  # carry the state through two earlier windows
        _, s = m.window(s, X[5 * k:5 * k + 5], tg[5 * k:5 * k + 5], w[5 * k:5 * k + 5])
    Xw, tw, ww = X[10:], tg[10:], w[10:]
    g = np.zeros(m.n_params)
    res, _ = m.window(s, Xw, tw, ww, grad=g, norm=2.5)
    assert res.loss_sum / 2.5 == pytest.approx(reference_window(m, m.theta, s, Xw, tw, ww, 2.5)[0],
                                               rel=1e-12)
    fd = np.empty(m.n_params)
    eps = 1e-5
    for i in range(m.n_params):
        tp = m.theta.copy(); tp[i] += eps
        tm = m.theta.copy(); tm[i] -= eps
        fd[i] = (reference_window(m, tp, s, Xw, tw, ww, 2.5)[0]
                 - reference_window(m, tm, s, Xw, tw, ww, 2.5)[0]) / (2 * eps)
    rel = np.linalg.norm(g - fd) / np.linalg.norm(fd)
    assert rel < 1e-6, rel
    # and the non-zero state really mattered: a zero carried-in state changes the gradient
    g0 = np.zeros(m.n_params)
    m.window(m.zero_state(3), Xw, tw, ww, grad=g0, norm=2.5)
    assert np.linalg.norm(g0 - g) > 1e-6


def test_float32_close_to_float64():
    m, X, tg, w = make_case("paper", "tanh", True, "softmax")
    g64 = np.zeros(m.n_params)
    r64, s64 = m.window(m.zero_state(3), X, tg, w, grad=g64)
    m32 = RNN(4, 5, 3, activation="tanh", parametrisation="paper", output="softmax", dtype="float32")
    m32.theta[:] = m.theta
    g32 = np.zeros(m32.n_params, dtype=np.float32)
    r32, s32 = m32.window(m32.zero_state(3), X, tg, w, grad=g32)
    assert g32.dtype == np.float32 and s32.dtype == np.float32
    assert r32.loss_sum == pytest.approx(r64.loss_sum, rel=1e-5)
    np.testing.assert_allclose(g32, g64, rtol=1e-3, atol=1e-5)


def test_parameters_are_views_into_one_flat_vector():
    m, *_ = make_case("standard", "tanh", True, "softmax")
    v = m.views(m.theta)
    v["W"][0, 0] = 123.0
    assert m.theta[0] == 123.0
    assert sum(a.size for a in v.values()) == m.n_params == m.theta.size


def test_vectorisable_log1p_matches_numpy():
    from numba import njit

    from clipviz.kernels.fastmath import log1p_unit

    f = njit(lambda a: [log1p_unit(x) for x in a])
    xs = np.concatenate([np.linspace(0.0, 1.0, 20001), np.logspace(-300, 0, 600)])
    got = np.array(f(xs))
    ref = np.log1p(xs)
    np.testing.assert_allclose(got, ref, rtol=2e-15, atol=0)


def test_initialisations_of_the_icml_version():
    from clipviz.training.model import spectral_radius

    rng = np.random.default_rng(0)
    m = RNN(8, 200, 4, activation="tanh")
    m.initialise(rng, "smart_tanh")
    W = m.W_rec
    assert np.all((W != 0).sum(axis=1) == 15)
    assert spectral_radius(W) == pytest.approx(0.95, rel=1e-9)
    assert np.all(m.views(m.theta)["b"] == 0)
    for act, std in (("sigmoid", 0.01), ("tanh", 0.1)):
        m = RNN(8, 200, 4, activation=act)
        m.initialise(rng)
        assert np.std(m.W_rec) == pytest.approx(std, rel=0.03)


def test_float32_tanh_within_a_few_ulp_of_numpy():
    from numba import njit

    from clipviz.kernels.fastmath import tanh_f32

    @njit
    def f(a, out):
        for i in range(a.size):
            out[i] = tanh_f32(a[i])

    xs = np.concatenate([np.linspace(-12, 12, 200001), np.logspace(-30, 1.2, 3000),
                         -np.logspace(-30, 1.2, 3000), [0.0, 7.9, 8.0, 50.0, -50.0]]).astype(np.float32)
    got = np.empty_like(xs)
    f(xs, got)
    ref = np.tanh(xs.astype(np.float64))
    ulp = np.spacing(np.abs(ref).astype(np.float32)).astype(np.float64)
    assert np.max(np.abs(got - ref) / ulp) <= 6.0  # measured: 5.5 ulp, close to +-1
    assert np.max(np.abs(got - ref)) < 4e-7
    assert got[-5] == 0.0 and np.all(np.abs(got) <= 1.0)


@pytest.mark.parametrize("param,act", [("standard", "tanh"), ("paper", "tanh"), ("standard", "sigmoid")])
@pytest.mark.parametrize("output", ("softmax", "sigmoid"))
def test_float32_window_matches_float64_reference(param, act, output):
    """The float32 kernels (float32 tanh, float32 BLAS) against the float64
    NumPy reference and the float64 gradient, at float32 accuracy."""
    m, X, tg, w = make_case(param, act, True, output, T=20, H=16)
    m.theta[:] *= 0.5
    s0 = np.random.default_rng(1).normal(0, 0.5, (3, 16))
    g64 = np.zeros(m.n_params)
    r64, _ = m.window(s0, X, tg, w, grad=g64)
    m32 = RNN(4, 16, 3, activation=act, parametrisation=param, output=output, dtype="float32")
    m32.theta[:] = m.theta
    g32 = np.zeros(m32.n_params, dtype=np.float32)
    r32, s32 = m32.window(s0.astype(np.float32), X, tg, w, grad=g32)
    _, ref_total, ref_state = reference_window(m, m.theta, s0, X, tg, w, 3)
    assert r32.loss_sum == pytest.approx(ref_total, rel=1e-5)
    np.testing.assert_allclose(s32, ref_state, rtol=1e-5, atol=1e-5)
    assert np.linalg.norm(g32 - g64) / np.linalg.norm(g64) < 1e-5


@pytest.mark.parametrize("param,act", [("standard", "tanh"), ("paper", "sigmoid")])
def test_wide_layer_path_matches_reference_and_directional_differences(param, act):
    """H >= 192 with B >= 4 takes the transposed recurrent products (a BLAS
    layout choice); check it against the NumPy reference forward and the
    gradient against central differences along random directions."""
    m, X, tg, w = make_case(param, act, True, "softmax", T=6, B=4, I=4, H=200, O=3)
    m.theta[:] *= 0.2
    s0 = np.random.default_rng(1).normal(0, 0.5, (4, 200))
    g = np.zeros(m.n_params)
    res, s1 = m.window(s0, X, tg, w, grad=g, norm=4.0)
    obj, ref_total, ref_state = reference_window(m, m.theta, s0, X, tg, w, 4.0)
    assert res.loss_sum == pytest.approx(ref_total, rel=1e-12)
    np.testing.assert_allclose(s1, ref_state, rtol=1e-12, atol=1e-13)
    rng = np.random.default_rng(2)
    eps = 1e-5
    for _ in range(4):
        d = rng.normal(0, 1, m.n_params)
        fd = (reference_window(m, m.theta + eps * d, s0, X, tg, w, 4.0)[0]
              - reference_window(m, m.theta - eps * d, s0, X, tg, w, 4.0)[0]) / (2 * eps)
        assert g @ d == pytest.approx(fd, rel=1e-6)
