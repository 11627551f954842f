"""The one-unit model (equation 14): values, exact derivatives, surfaces, descent."""

import math

import numpy as np
import pytest

from clipviz import one_unit as o
from clipviz.config import SETTINGS

from . import reference as ref

ACTS = ["sigmoid", "tanh"]


def well_conditioned_points(activation, n, seed):
    """Random (w, b) where the 50-step map is contracting or mildly expanding.

    Well-conditioned: |dx_T/db| stays moderate, so central differences with
    h ~ 1e-5 are accurate to ~1e-9 and a 1e-6 comparison is meaningful.
    """
    rng = np.random.default_rng(seed)
    pts = []
    while len(pts) < n:
        w = rng.uniform(-3, 3) if activation == "sigmoid" else rng.uniform(-0.9, 0.9)
        b = rng.uniform(-2, 2)
        _, gw, gb, *_ = ref.one_unit(w, b, activation=activation)
        E = o.loss(w, b, activation=activation)
        if E > 1e-4 and abs(gw) + abs(gb) > 1e-4:
            pts.append((w, b))
    return pts


@pytest.mark.parametrize("activation", ACTS)
def test_forward_matches_reference(activation):
    xs = o.forward(2.5, -0.7, steps=30, x0=0.3, activation=activation)
    assert xs.shape == (31,)
    np.testing.assert_allclose(xs, ref.forward(2.5, -0.7, 30, 0.3, activation), rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("activation", ACTS)
def test_gradient_matches_central_differences(activation):
    h = 1e-5
    for w, b in well_conditioned_points(activation, 25, seed=1):
        E, gw, gb = o.loss_grad(w, b, activation=activation)
        assert E == pytest.approx(o.loss(w, b, activation=activation), rel=1e-15)
        fw = (o.loss(w + h, b, activation=activation) - o.loss(w - h, b, activation=activation)) / (2 * h)
        fb = (o.loss(w, b + h, activation=activation) - o.loss(w, b - h, activation=activation)) / (2 * h)
        scale = max(abs(gw), abs(gb))
        assert abs(gw - fw) <= 1e-6 * scale, (w, b, gw, fw)
        assert abs(gb - fb) <= 1e-6 * scale, (w, b, gb, fb)


@pytest.mark.parametrize("activation", ACTS)
def test_hessian_matches_differences_of_the_exact_gradient(activation):
    h = 1e-6
    for w, b in well_conditioned_points(activation, 25, seed=2):
        H = o.loss_hessian(w, b, activation=activation)
        assert H.shape == (2, 2) and H[0, 1] == H[1, 0]
        gp = np.array(o.loss_grad(w + h, b, activation=activation)[1:])
        gm = np.array(o.loss_grad(w - h, b, activation=activation)[1:])
        col_w = (gp - gm) / (2 * h)
        gp = np.array(o.loss_grad(w, b + h, activation=activation)[1:])
        gm = np.array(o.loss_grad(w, b - h, activation=activation)[1:])
        col_b = (gp - gm) / (2 * h)
        fd = np.column_stack([col_w, col_b])
        assert np.abs(H - fd).max() <= 1e-5 * max(np.abs(H).max(), 1e-3), (w, b, H, fd)


@pytest.mark.parametrize("activation", ACTS)
def test_point_values_match_numpy_reference(activation):
    for w, b in well_conditioned_points(activation, 10, seed=3):
        E, gw, gb = o.loss_grad(w, b, activation=activation, steps=37, x0=-0.2, target=0.1)
        H = o.loss_hessian(w, b, activation=activation, steps=37, x0=-0.2, target=0.1)
        r = ref.one_unit(w, b, steps=37, x0=-0.2, target=0.1, activation=activation)
        np.testing.assert_allclose([E, gw, gb, H[0, 0], H[0, 1], H[1, 1]], r, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("activation", ACTS)
def test_surface_512_matches_reference_in_max_norm(activation):
    # The paper's window (Figure 3); for tanh the bistable threshold is w = 1.
    if activation == "sigmoid":
        ws = np.linspace(SETTINGS.w_min, SETTINGS.w_max, 512)
        bs = np.linspace(SETTINGS.b_min, SETTINGS.b_max, 512)
    else:
        ws = np.linspace(-2, 4, 512)
        bs = np.linspace(-2, 2, 512)
    s = o.error_surface(ws, bs, activation=activation)
    W, B = np.meshgrid(ws, bs)
    E, gw, gb, *_ = ref.one_unit(W, B, activation=activation)
    for got, want in ((s.E, E), (s.dE_dw, gw), (s.dE_db, gb)):
        assert got.shape == (512, 512) and got.dtype == np.float64
        assert np.abs(got - want).max() <= 1e-10 * np.abs(want).max()


def test_surface_hessian_pass_agrees_with_gradient_pass_and_reference():
    ws = np.linspace(-2, 12, 96)
    bs = np.linspace(-8, 2, 64)
    s = o.error_surface(ws, bs, hessian=True)
    g = o.error_surface(ws, bs)
    np.testing.assert_array_equal(s.E, g.E)
    np.testing.assert_array_equal(s.dE_dw, g.dE_dw)
    W, B = np.meshgrid(ws, bs)
    r = ref.one_unit(W, B)
    for got, want in zip((s.d2E_dw2, s.d2E_dwdb, s.d2E_db2), r[3:]):
        assert np.abs(got - want).max() <= 1e-10 * np.abs(want).max()
    # rows are b, columns are w
    assert s.E[5, 7] == pytest.approx(o.loss(ws[7], bs[5]), rel=1e-15)


@pytest.mark.parametrize("activation, ws, bs, overflow", [
    ("sigmoid", [2.0, 5.0, 8.0], [-4.0, -1.75, 0.0], [(0, 2)]),
    ("tanh", [0.5, 2.0, 3.0], [0.0, 0.3], [(0, 1), (0, 2)]),
])
def test_surface_overflow_is_inf_never_nan(activation, ws, bs, overflow):
    """From x0 = 0, the starts (w, b) = (8, -4) (sigmoid) and (2, 0), (3, 0) (tanh) sit exactly on
    the unstable fixed point x = 0 (|w sigma'(0)| = 2, 2, 3), so dx_t/db grows like (w sigma'(0))^t
    and overflows float64 within the 5000 steps.  There E is finite, the gradient is the
    reference's -inf, and the Hessian, where the reference meets 0 * inf (sigma''(0) = 0 times an
    overflowed derivative) and gives NaN, is inf.  Every other point is finite and matches the
    reference."""
    steps = 5000
    s = o.error_surface(ws, bs, steps=steps, x0=0.0, activation=activation, hessian=True)
    W, B = np.meshgrid(s.ws, s.bs)
    with np.errstate(over="ignore", invalid="ignore"):
        want = ref.one_unit(W, B, steps=steps, x0=0.0, activation=activation)
    over = np.zeros(W.shape, dtype=bool)
    for ij in overflow:
        over[ij] = True
        assert not ref.forward(W[ij], B[ij], steps, 0.0, activation).any()  # x_t = 0 throughout
    got = (s.E, s.dE_dw, s.dE_db, s.d2E_dw2, s.d2E_dwdb, s.d2E_db2)
    for a, r in zip(got, want):
        assert not np.isnan(a).any()
        assert np.isfinite(a[~over]).all()
        np.testing.assert_allclose(a[~over], r[~over], rtol=1e-9, atol=1e-15)
        np.testing.assert_array_equal(a[over], np.where(np.isnan(r[over]), np.inf, r[over]))
    assert np.isfinite(s.E).all()
    assert np.all(s.dE_db[over] == -np.inf)  # the overflow is there, as -inf
    assert np.isnan(want[5][over]).all() and np.all(s.d2E_db2[over] == np.inf)  # 0 * inf read as inf


def test_the_wall_paper_phenomenon():
    """Section 3.2 / Figure 3 on the paper's own setting: x0 = 0.5, target 0.7, T = 50.

    Start (w0, b0) = (5.0, -1.75), lr = 0.2.  Unclipped descent walks down
    towards the wall (the basin boundary near b = 0.5 - w sigma(0.5)), meets a
    gradient of norm ~50 and is thrown ~10 units away onto the flat plateau
    where sigma(x_50) ~ 1 and E = 0.09, where it stays.  Norm clipping with
    tau = 0.1 from the same start keeps descending to E < 1e-3.
    """
    kw = dict(lr=0.2, n_steps=300)
    u = o.descend(5.0, -1.75, **kw)
    c = o.descend(5.0, -1.75, clip="norm", threshold=0.1, **kw)
    step = np.hypot(*np.diff(u.params, axis=0).T)
    k = int(np.argmax(step))
    assert u.grad_norm[k] > 10          # it hit the wall
    assert step[k] > 5                  # and was thrown far away
    assert u.loss[k + 1] > u.loss[k] + 0.03   # its loss jumped up
    assert u.loss[-1] > 0.08            # and it never came back down
    assert c.clipped.any()
    assert np.all(np.diff(c.loss) < 0.005)    # clipped run: no jump
    assert c.loss[-1] < 1e-3 < u.loss[-1]
    assert np.max(np.hypot(*(c.params - c.params[0]).T)) < 1.5


def test_descend_records_shapes_and_clipping():
    t = o.descend(5.0, -1.75, lr=0.2, n_steps=40, clip="norm", threshold=0.1)
    assert t.params.shape == (41, 2) and t.loss.shape == (41,)
    assert t.grad_norm.shape == (40,) and t.clipped.shape == (40,) and t.clipped.dtype == bool
    assert t.diverged_at is None
    np.testing.assert_array_equal(t.clipped, t.grad_norm >= 0.1)
    # each clipped step moves exactly lr * tau
    moves = np.hypot(*np.diff(t.params, axis=0).T)
    np.testing.assert_allclose(moves[t.clipped], 0.2 * 0.1, rtol=1e-12)
    for i in range(40):
        assert t.loss[i] == pytest.approx(o.loss(*t.params[i]), rel=1e-14)


def test_descend_unclipped_follows_the_exact_gradient():
    t = o.descend(2.0, 0.5, lr=0.3, n_steps=3)
    w, b = 2.0, 0.5
    for i in range(3):
        _, gw, gb = o.loss_grad(w, b)
        w, b = w - 0.3 * gw, b - 0.3 * gb
        np.testing.assert_allclose(t.params[i + 1], [w, b], rtol=1e-15)


def test_descend_divergence_by_runaway_parameters_ends_cleanly():
    t = o.descend(5.0, -1.75, lr=1e9, n_steps=100, steps=50)
    assert t.diverged_at is not None
    k = t.diverged_at
    assert t.params.shape == (k + 1, 2) and t.grad_norm.shape == (k + 1,)
    for a in (t.params, t.loss, t.grad_norm):
        assert not np.isnan(a).any()
    assert np.isfinite(t.params).all()


def test_descend_non_finite_gradient_is_skipped_and_reported():
    # The map is monotone, so over reasonable inputs dx_T/dw stays finite; at the
    # edge of float64 the state itself overflows and so does the gradient.
    assert not np.isfinite(o.loss_grad(-1e308, 1e308)[1])
    t = o.descend(-1e308, 1e308, lr=0.1, n_steps=10)
    assert t.diverged_at == 0
    assert t.params.shape == (1, 2) and t.grad_norm[0] == math.inf
    assert not np.isnan(t.loss).any()


@pytest.mark.parametrize("call, match", [
    (lambda: o.loss(1, 1, steps=0), "steps must be between 1 and 100000"),
    (lambda: o.loss(1, 1, steps=100_001), "steps must be between"),
    (lambda: o.loss(1, 1, steps=2.5), "integer"),
    (lambda: o.loss(1, 1, activation="relu"), "activation must be one of 'sigmoid', 'tanh'"),
    (lambda: o.loss(float("nan"), 1), "w must be a finite number"),
    (lambda: o.loss_grad(1, float("inf")), "b must be a finite number"),
    (lambda: o.loss(1, 1, x0="a"), "x0 must be a finite number"),
    (lambda: o.error_surface(np.zeros(2049), [0.0]), "at most 2048"),
    (lambda: o.error_surface([], [0.0]), "non-empty"),
    (lambda: o.error_surface([0.0, np.nan], [0.0]), "finite"),
    (lambda: o.descend(1, 1, lr=0.1, n_steps=5, clip="norm"), "needs a threshold"),
    (lambda: o.descend(1, 1, lr=0.1, n_steps=5, clip="max"), "clip rule must be one of"),
    (lambda: o.descend(1, 1, lr=-1, n_steps=5), "lr must be > 0"),
    (lambda: o.descend(1, 1, lr=0.1, n_steps=0), "n_steps must be between"),
    (lambda: o.descend(1, 1, lr=0.1, n_steps=5, clip="autoclip"), "percentile"),
])
def test_bad_arguments_say_what_is_allowed(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_forked_child_computes_the_same_surface_after_parent_ran_parallel_kernel():
    """Gunicorn / Celery prefork / Dash background jobs fork after kernels ran."""
    import multiprocessing as mp

    ws = np.linspace(-2, 12, 64)
    bs = np.linspace(-8, 2, 48)
    parent = o.error_surface(ws, bs).dE_dw  # parallel kernel runs in the parent first
    ctx = mp.get_context("fork")
    with ctx.Pool(2) as pool:
        results = pool.starmap(_child_surface, [(ws, bs)] * 2)
    for r in results:
        np.testing.assert_array_equal(r, parent)


def _child_surface(ws, bs):
    return o.error_surface(ws, bs).dE_dw
