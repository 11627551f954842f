"""clipviz.landscape: slices against RNN.window and a NumPy forward; HVPs against finite
differences of the exact gradient, a NumPy second difference and a dense Hessian; Lanczos
against numpy.linalg.eigh; directions (issue 16)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clipviz import landscape as L
from clipviz.training.model import RNN
from tests.test_rnn_bptt import make_case, reference_window

CASES = list(itertools.product(("paper", "standard"), ("tanh", "sigmoid"), (True, False),
                               ("softmax", "sigmoid")))


def _window(m, X, tg, w, seed=1):
    s0 = np.random.default_rng(seed).normal(0, 0.5, (X.shape[1], m.n_hidden))
    return L.Window(X, tg, w, s0)


@pytest.mark.parametrize("param,act,bias,output", CASES)
def test_slice_equals_window_and_numpy(param, act, bias, output):
    m, X, tg, w = make_case(param, act, bias, output)
    win = _window(m, X, tg, w)
    rng = np.random.default_rng(2)
    d1, d2 = rng.normal(size=m.n_params), rng.normal(size=m.n_params)
    al, be = np.array([-0.3, 0.0, 0.1, 0.25]), np.array([0.0, -0.2, 0.15])
    sl = L.slice_2d(m, None, win, d1, d2, al, be)
    assert sl.losses.shape == (3, 4)
    r, _ = m.window(win.state, X, tg, w)
    B = X.shape[1]
    assert abs(sl.losses[0, 1] - r.loss_sum / B) <= 1e-10 * max(1.0, abs(r.loss_sum / B))
    for i, j in itertools.product(range(3), range(4)):
        th = m.theta + al[j] * d1 + be[i] * d2
        ref, _, _ = reference_window(m, th, win.state, X, tg, w, B)
        assert sl.losses[i, j] == pytest.approx(ref, rel=1e-10, abs=1e-12)


@pytest.mark.parametrize("block", [1, 3, 64])
def test_slice_block_sizes_agree(block):
    m, X, tg, w = make_case("standard", "tanh", True, "sigmoid", T=5, B=2)
    win = _window(m, X, tg, w)
    rng = np.random.default_rng(3)
    d1, d2 = rng.normal(size=m.n_params), rng.normal(size=m.n_params)
    al, be = np.linspace(-1, 1, 7), np.linspace(-0.5, 0.5, 5)
    ref = L.slice_2d(m, None, win, d1, d2, al, be, block=1000).losses
    got = L.slice_2d(m, None, win, d1, d2, al, be, block=block).losses
    np.testing.assert_allclose(got, ref, rtol=1e-13)


def test_slice_progress_and_cancel_between_groups_of_rows():
    from clipviz.config import SETTINGS

    m, X, tg, w = make_case("standard", "tanh", True, "softmax", T=5, B=2)
    win = _window(m, X, tg, w)
    rng = np.random.default_rng(4)
    d1, d2 = rng.normal(size=m.n_params), rng.normal(size=m.n_params)
    n = 3 * SETTINGS.slice_rows_per_report + 1  # four groups of rows
    al, be = np.linspace(-1, 1, 6), np.linspace(-0.5, 0.5, n)
    ref = L.slice_2d(m, None, win, d1, d2, al, be).losses
    seen = []
    got = L.slice_2d(m, None, win, d1, d2, al, be, progress=seen.append, cancel=lambda: False)
    np.testing.assert_array_equal(got.losses, ref)  # row by row: the same numbers
    assert len(seen) == 4 and seen == sorted(seen) and seen[-1] == 1.0
    asked = []

    def cancel():
        asked.append(1)
        return len(asked) > 2

    with pytest.raises(L.Cancelled, match=f"after {2 * SETTINGS.slice_rows_per_report} of {n}"):
        L.slice_2d(m, None, win, d1, d2, al, be, cancel=cancel)
    with pytest.raises(ValueError, match="cancel must be callable"):
        L.slice_2d(m, None, win, d1, d2, al, be, cancel=True)
    hvps = []
    with pytest.raises(L.Cancelled):  # curvature asks before every HVP
        L.curvature(m, None, win, cancel=lambda: hvps.append(1) or len(hvps) > 3)
    assert len(hvps) == 4


@pytest.mark.parametrize("act,output", [("tanh", "sigmoid"), ("sigmoid", "softmax")])
def test_slice_float32_close_to_float64(act, output):
    m, X, tg, w = make_case("paper", act, True, output, T=10, B=2)
    m32 = RNN(m.n_in, m.n_hidden, m.n_out, activation=act, parametrisation="paper",
              output=output, dtype="float32")
    m32.theta[:] = m.theta
    win = _window(m, X, tg, w)
    rng = np.random.default_rng(4)
    d1, d2 = rng.normal(size=m.n_params), rng.normal(size=m.n_params)
    al = be = np.linspace(-0.5, 0.5, 9)
    s64 = L.slice_2d(m, None, win, d1, d2, al, be)
    s32 = L.slice_2d(m32, None, win, d1, d2, al, be)
    assert s32.dtype == "float32" and s64.dtype == "float64"
    np.testing.assert_allclose(s32.losses, s64.losses, rtol=2e-4)


# --- Hessian-vector products ----------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), act=st.sampled_from(["tanh", "sigmoid"]),
       param=st.sampled_from(["paper", "standard"]), output=st.sampled_from(["softmax", "sigmoid"]),
       bias=st.booleans(), scale=st.floats(0.1, 1.5))
def test_hvp_matches_finite_differences_of_exact_gradient(seed, act, param, output, bias, scale):
    m, X, tg, w = make_case(param, act, bias, output, seed=seed % 1000, T=6, B=2)
    rng = np.random.default_rng(seed)
    m.theta[:] = rng.normal(0, scale, m.n_params)
    win = _window(m, X, tg, w, seed)
    v = rng.normal(size=m.n_params)
    hv = L.hvp(m, None, win, v)
    # central difference of the exact BPTT gradient: error O(eps^2 |g'''|) + O(u / eps)
    eps = 1e-5
    _, gp = L.window_loss(m, m.theta + eps * v, win)
    _, gm = L.window_loss(m, m.theta - eps * v, win)
    fd = (gp - gm) / (2 * eps)
    assert np.linalg.norm(hv - fd) <= 1e-5 * max(np.linalg.norm(fd), 1e-8)


@pytest.mark.parametrize("param,act,bias,output", CASES)
def test_vHv_matches_numpy_second_difference(param, act, bias, output):
    """Independent of every kernel: the plain-NumPy forward's second difference along v."""
    m, X, tg, w = make_case(param, act, bias, output, seed=5)
    win = _window(m, X, tg, w)
    v = np.random.default_rng(6).normal(size=m.n_params)
    v /= np.linalg.norm(v)
    B = X.shape[1]

    def f(th):
        return reference_window(m, th, win.state, X, tg, w, B)[0]

    eps = 1e-4
    second = (f(m.theta + eps * v) - 2 * f(m.theta) + f(m.theta - eps * v)) / eps ** 2
    vhv = float(v @ L.hvp(m, None, win, v))
    assert vhv == pytest.approx(second, rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("act", ["tanh", "sigmoid"])
def test_dense_hessian_symmetric_and_matches_numpy_jacobian(act):
    m, X, tg, w = make_case("paper", act, True, "softmax", T=5, B=2, I=3, H=4, O=3)
    win = _window(m, X, tg, w)
    Hm = L.dense_hessian(m, None, win)
    n = m.n_params
    assert Hm.shape == (n, n)
    np.testing.assert_allclose(Hm, Hm.T, atol=1e-10 * np.abs(Hm).max())
    # columns against central differences of the exact gradient
    eps = 1e-5
    J = np.empty((n, n))
    for i in range(n):
        e = np.zeros(n)
        e[i] = eps
        J[:, i] = (L.window_loss(m, m.theta + e, win)[1] - L.window_loss(m, m.theta - e, win)[1]) \
            / (2 * eps)
    np.testing.assert_allclose(Hm, J, atol=1e-6 * np.abs(J).max())


@pytest.mark.parametrize("act,output", [("tanh", "sigmoid"), ("sigmoid", "softmax")])
def test_curvature_against_dense_eigendecomposition(act, output):
    m, X, tg, w = make_case("standard", act, True, output, T=6, B=2)
    win = _window(m, X, tg, w)
    Hm = L.dense_hessian(m, None, win)
    lam, vec = np.linalg.eigh(0.5 * (Hm + Hm.T))
    i = int(np.argmax(np.abs(lam)))
    cv = L.curvature(m, None, win, tol=1e-10)
    assert cv.lambda_max_abs == pytest.approx(lam[i], rel=1e-7)
    assert cv.lambda_max == pytest.approx(lam.max(), rel=1e-7)
    assert abs(cv.eigenvector @ vec[:, i]) == pytest.approx(1.0, abs=1e-6)
    loss, g = L.window_loss(m, None, win)
    assert cv.loss == pytest.approx(loss, rel=1e-14)
    assert cv.grad_norm == pytest.approx(np.linalg.norm(g), rel=1e-14)
    assert cv.curvature_along_g == pytest.approx(g @ Hm @ g / (g @ g), rel=1e-9)
    c = abs(g @ vec[:, i]) / np.linalg.norm(g)
    assert cv.angle_deg == pytest.approx(np.degrees(np.arccos(min(c, 1.0))), abs=1e-4)
    assert 0.0 <= cv.angle_deg <= 90.0 and cv.hvps > 1


def test_curvature_iteration_limit_from_arguments():
    m, X, tg, w = make_case("paper", "tanh", True, "softmax", T=6, B=2)
    win = _window(m, X, tg, w)
    with pytest.raises(ValueError, match="maxiter"):
        L.curvature(m, None, win, maxiter=0)


# --- directions -----------------------------------------------------------------------------


@pytest.mark.parametrize("bias", ["zero", "copy"])
def test_filter_normalised_direction_rows_match_theta(bias):
    m, X, tg, w = make_case("paper", "tanh", True, "sigmoid")
    d = L.filter_normalised_direction(m, None, 7, bias=bias)
    dv, tv = m.views(d.vector), m.views(m.theta)
    for name in ("W", "U", "V"):
        np.testing.assert_allclose(np.linalg.norm(dv[name], axis=1),
                                   np.linalg.norm(tv[name], axis=1), rtol=1e-8)
        assert not np.allclose(dv[name], tv[name])  # random, not theta itself
    for name in ("b", "c"):
        expect = np.zeros_like(tv[name]) if bias == "zero" else tv[name]
        np.testing.assert_array_equal(dv[name], expect)
    assert d.kind == "filter" and d.norm == pytest.approx(np.linalg.norm(d.vector))
    again = L.filter_normalised_direction(m, None, 7, bias=bias)
    np.testing.assert_array_equal(again.vector, d.vector)


def test_gradient_and_given_directions_and_orthogonalise():
    m, X, tg, w = make_case("standard", "tanh", True, "softmax")
    win = _window(m, X, tg, w)
    loss, g = L.window_loss(m, None, win)
    dg = L.gradient_direction(m, None, win)
    assert dg.norm == pytest.approx(1.0) and dg.raw_norm == pytest.approx(np.linalg.norm(g))
    np.testing.assert_allclose(dg.vector * dg.raw_norm, g, rtol=1e-12)
    step = -0.1 * g + 0.05 * np.random.default_rng(8).normal(size=m.n_params)
    du = L.given_direction(m, step, kind="update")
    assert du.raw_norm == pytest.approx(np.linalg.norm(step)) and du.kind == "update"
    do = L.orthogonalise(du, dg)
    assert abs(do.vector @ dg.vector) <= 1e-12 * do.norm
    assert do.norm == pytest.approx(du.norm)
    sl = L.slice_2d(m, None, win, dg, do, [0.0, 1.0], [0.0, 1.0])
    assert abs(sl.cosine) < 1e-12
    assert sl.d1_norm == pytest.approx(1.0) and sl.d2_norm == pytest.approx(du.norm)
    # the corner (1, 1) is theta + g/|g| + orthogonalised step
    r, _ = m.window(win.state, X, tg, w, theta=m.theta + dg.vector + do.vector)
    assert sl.losses[1, 1] == pytest.approx(r.loss_sum / X.shape[1], rel=1e-10)
    with pytest.raises(ValueError, match="parallel"):
        L.orthogonalise(dg, L.given_direction(m, 2 * g))


def test_arguments_are_validated():
    m, X, tg, w = make_case("paper", "tanh", True, "softmax")
    win = (X, tg, w)
    d = np.ones(m.n_params)
    with pytest.raises(ValueError, match="parameters"):
        L.slice_2d(m, None, win, d[:-1], d, [0.0], [0.0])
    with pytest.raises(ValueError, match="finite"):
        L.slice_2d(m, None, win, d, d, [np.nan], [0.0])
    with pytest.raises(ValueError, match="X must have shape"):
        L.slice_2d(m, None, (X[..., :-1], tg, w), d, d, [0.0], [0.0])
    with pytest.raises(ValueError, match="class ids"):
        L.hvp(m, None, (X, tg + 10, w), d)
    with pytest.raises(ValueError, match="window must be"):
        L.hvp(m, None, X, d)
    with pytest.raises(ValueError, match="bias"):
        L.filter_normalised_direction(m, None, bias="keep")
    big = RNN(30, 50, 30)
    with pytest.raises(ValueError, match="dense_hessian"):
        L.dense_hessian(big, None, (np.zeros((2, 1, 30)), np.zeros((2, 1), int), np.ones((2, 1))))


def test_curvature_of_float32_model_is_computed_in_float64():
    m, X, tg, w = make_case("paper", "tanh", True, "sigmoid", T=6, B=2)
    m32 = RNN(m.n_in, m.n_hidden, m.n_out, activation="tanh", output="sigmoid", dtype="float32")
    m32.theta[:] = m.theta  # rounded to float32
    win = _window(m, X, tg, w)
    v = np.random.default_rng(9).normal(size=m.n_params)
    th = m32.theta.astype(np.float64)
    np.testing.assert_array_equal(L.hvp(m32, None, win, v), L.hvp(m, th, win, v))
    assert L.window_loss(m32, None, win)[0] == L.window_loss(m, th, win)[0]
