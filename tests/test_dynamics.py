"""clipviz.dynamics, one-unit map F(x) = w sigma(x) + b (issue 3, items 1-7).

References here are written for the tests in plain NumPy / math (libm exp),
independent of the Numba kernels.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import brentq

from clipviz import dynamics as dyn

ACTS = ["sigmoid", "tanh"]


# ---------------------------------------------------------------- references
def sig(x, act):
    x = np.asarray(x, dtype=np.float64)
    if act == "sigmoid":
        return 1.0 / (1.0 + np.exp(-x))
    return np.tanh(x)


def dsig(x, act):
    s = sig(x, act)
    return s * (1 - s) if act == "sigmoid" else 1 - s * s


def F(x, w, b, act):
    return w * sig(x, act) + b


def iterate(x, w, b, act, n):
    x = np.asarray(x, dtype=np.float64).copy()
    for _ in range(n):
        x = F(x, w, b, act)
    return x


def closed_form_folds(w, act):
    """Folds from sigma'(x) = 1/w (so F'(x) = 1) and b = x - w sigma(x) (so F(x) = x).

    sigmoid: sigma' = s(1 - s) = 1/w  ->  s = (1 +- sqrt(1 - 4/w)) / 2, x = log(s / (1 - s)).
    tanh:    sigma' = 1 - t^2 = 1/w   ->  t = +- sqrt(1 - 1/w),          x = atanh(t).
    Real solutions exist iff 1 - 4/w > 0 (sigmoid) / 1 - 1/w > 0 (tanh) with w > 0.
    Returns [(b, x)] sorted by b.
    """
    pts = []
    if act == "sigmoid":
        if w <= 4:
            return []
        r = math.sqrt(1 - 4 / w)
        for s in ((1 - r) / 2, (1 + r) / 2):
            x = math.log(s / (1 - s))
            pts.append((x - w * s, x))
    else:
        if w <= 1:
            return []
        r = math.sqrt(1 - 1 / w)
        for t in (-r, r):
            x = math.atanh(t)
            pts.append((x - w * t, x))
    return sorted(pts)


def all_roots_scan(w, b, act, n=200000):
    """Fixed points by a dense sign-change scan of F(x) - x, polished by brentq."""
    lo, hi = b - abs(w) - 1, b + abs(w) + 1
    xs = np.linspace(lo, hi, n)
    g = F(xs, w, b, act) - xs
    idx = np.nonzero(np.sign(g[:-1]) * np.sign(g[1:]) < 0)[0]
    f = lambda x: float(F(x, w, b, act) - x)  # noqa: E731
    return [brentq(f, xs[i], xs[i + 1], xtol=1e-15, rtol=1e-15) for i in idx]


# ---------------------------------------------------------------- 1. fixed points
@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("w,b", [(5, -2.5), (5, -2.4), (5, -2.6), (5, 0.0), (5, -6.0), (2, -1.0),
                                 (-3, 0.7), (-8, 2.0), (12, -6.0), (8, -3.0), (1.5, 0.2)])
def test_fixed_points_match_dense_scan(w, b, act):
    got = dyn.fixed_points(w, b, act)
    ref = all_roots_scan(w, b, act)
    assert len(got) == len(ref)
    for p, r in zip(got, ref):
        assert p.x == pytest.approx(r, abs=1e-12)
        assert abs(F(p.x, w, b, act) - p.x) < 1e-12
        assert p.slope == pytest.approx(w * dsig(p.x, act), abs=1e-13)
        assert p.stable == (abs(p.slope) < 1)


def test_fixed_points_one_or_three_at_w5():
    folds = dyn.fold_points(5.0)
    b1, b2 = folds[0][0], folds[1][0]
    for b in np.linspace(-6, 2, 81):
        n = len(dyn.fixed_points(5.0, b))
        inside = b1 < b < b2
        assert n == (3 if inside else 1), b


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("w,b", [(5, -2.5), (5, -2.40), (5, -2.62), (5, 1.0), (6, -3.1), (2.5, -1.2),
                                 (-3, 0.5), (-0.5, 0.1), (3, -1.0), (9, -4.4)])
def test_stability_by_direct_iteration(w, b, act):
    """Stable points attract iteration started next to them; unstable ones repel it."""
    pts = dyn.fixed_points(w, b, act)
    assert pts
    for p in pts:
        assert abs(abs(p.slope) - 1) > 1e-3  # not at a bifurcation here
        for side in (-1, 1):
            x0 = p.x + side * 1e-4
            if p.stable:
                xT = iterate(x0, w, b, act, 3000)
                assert abs(xT - p.x) < 1e-9
            else:
                xs = [x0]
                for _ in range(3000):
                    xs.append(float(F(xs[-1], w, b, act)))
                assert max(abs(np.array(xs) - p.x)) > 1e-2


# ---------------------------------------------------------------- folds
@pytest.mark.parametrize("act,ws", [("sigmoid", [4.0001, 4.01, 4.5, 5.0, 6.0, 8.0, 12.0, 20.0, 50.0]),
                                    ("tanh", [1.0001, 1.01, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0])])
def test_folds_closed_form_and_residuals(act, ws):
    for w in ws:
        got = dyn.fold_points(w, act)
        ref = closed_form_folds(w, act)
        assert len(got) == 2 == len(ref)
        for (b, x), (rb, rx) in zip(got, ref):
            assert abs(b - rb) < 1e-10 and abs(x - rx) < 1e-10, (w, b, x, rb, rx)
            assert abs(F(x, w, b, act) - x) < 1e-12
            assert abs(w * dsig(x, act) - 1) < 1e-12
        assert got[0][0] < got[1][0]


@pytest.mark.parametrize("act,ws", [("sigmoid", [-10.0, -4.0, 0.0, 1.0, 3.9, 3.9999, 4.0]),
                                    ("tanh", [-3.0, -1.0, 0.0, 0.5, 0.999, 1.0])])
def test_no_folds_below_threshold(act, ws):
    for w in ws:
        assert dyn.fold_points(w, act) == []
        assert closed_form_folds(w, act) == []


def test_paper_w5_rich_regime():
    bd = dyn.bifurcation_diagram(5.0, -6.0, 2.0)
    ref = closed_form_folds(5.0, "sigmoid")
    lo, hi = bd.bistable
    assert lo == pytest.approx(ref[0][0], abs=1e-10)
    assert hi == pytest.approx(ref[1][0], abs=1e-10)


# ---------------------------------------------------------------- 2. continuation
@pytest.mark.parametrize("act,w,b_min,b_max", [("sigmoid", 5.0, -6.0, 2.0), ("sigmoid", 12.0, -10.0, 3.0),
                                               ("tanh", 3.0, -4.0, 4.0), ("sigmoid", 2.0, -4, 2),
                                               ("sigmoid", 5.0, -2.5, -2.4),
                                               ("sigmoid", -8.0, -3.0, 11.0), ("tanh", -2.5, -3, 3)])
def test_branches_are_fixed_points_and_cover_window(act, w, b_min, b_max):
    bd = dyn.bifurcation_diagram(w, b_min, b_max, act)
    fixed = [br for br in bd.branches if br.kind == "fixed"]
    for br in fixed:
        assert np.all(np.abs(F(br.x, w, br.b, act) - br.x) < 1e-10)
        assert np.all((br.b >= b_min - 1e-12) & (br.b <= b_max + 1e-12))
        mult = w * dsig(br.x, act)
        assert np.allclose(br.multiplier, mult, atol=1e-12)
        off = np.abs(np.abs(mult) - 1) > 1e-9  # away from the special points themselves
        assert np.array_equal(br.stable[off], np.abs(mult[off]) < 1)
        # consecutive points close: the branch is a connected curve, not scattered points
        steps = np.hypot(np.diff(br.b), np.diff(br.x))
        assert steps.max() < 0.05 * math.hypot(b_max - b_min, abs(w) * 2 + b_max - b_min)
    # every fixed point at any b in the window lies on some branch
    for b in np.linspace(b_min, b_max, 23):
        for p in dyn.fixed_points(w, b, act):
            d = min(_dist_to_curve(br.b, br.x, b, p.x) for br in fixed)
            assert d < 1e-3, (b, p)


def _dist_to_curve(cb, cx, b, x):
    """Distance from (b, x) to a polyline."""
    p = np.array([b, x])
    a = np.stack([cb[:-1], cx[:-1]], 1)
    z = np.stack([cb[1:], cx[1:]], 1)
    d = z - a
    t = np.clip(np.einsum("ij,ij->i", p - a, d) / np.maximum(np.einsum("ij,ij->i", d, d), 1e-300), 0, 1)
    q = a + t[:, None] * d
    return float(np.min(np.hypot(*(q - p).T)))


def test_branch_turns_at_folds_not_breaks():
    """One connected S-shaped branch at w = 5 over [-6, 2]: b increases, turns back, increases."""
    bd = dyn.bifurcation_diagram(5.0, -6.0, 2.0)
    fixed = [br for br in bd.branches if br.kind == "fixed"]
    assert len(fixed) == 1
    br = fixed[0]
    assert br.b[0] == -6.0 and br.b[-1] == 2.0
    assert np.all(np.diff(br.x) > 0)  # parametrised along x, monotone
    db = np.sign(np.diff(br.b))
    changes = np.count_nonzero(db[1:] != db[:-1])
    assert changes == 2
    segs = br.segments()
    assert [s[2] for s in segs] == [True, False, True]
    folds = sorted((p.b, p.x) for p in bd.special if p.kind == "fold")
    # the unstable middle segment ends exactly on the folds
    mids = segs[1]
    assert {mids[0][0], mids[0][-1]} == {folds[0][0], folds[1][0]}


def test_diagram_special_points_residuals():
    for act, w in [("sigmoid", 5.0), ("sigmoid", 7.0), ("tanh", 2.0)]:
        bd = dyn.bifurcation_diagram(w, -20.0, 20.0, act)
        folds = [p for p in bd.special if p.kind == "fold"]
        assert len(folds) == 2
        for p, (rb, rx) in zip(sorted(folds, key=lambda s: s.b), closed_form_folds(w, act)):
            assert abs(p.b - rb) < 1e-10 and abs(p.x - rx) < 1e-10
            assert abs(F(p.x, w, p.b, act) - p.x) < 1e-12
            assert abs(w * dsig(p.x, act) - 1) < 1e-12


# ---------------------------------------------------------------- period doubling
def closed_form_pd(w, act):
    """sigma'(x) = -1/w, the same algebra as the folds with w -> -w (sign of b term kept)."""
    pts = []
    if act == "sigmoid":
        r = math.sqrt(1 + 4 / w)
        for s in ((1 - r) / 2, (1 + r) / 2):
            x = math.log(s / (1 - s))
            pts.append((x - w * s, x))
    else:
        r = math.sqrt(1 + 1 / w)
        for t in (-r, r):
            x = math.atanh(t)
            pts.append((x - w * t, x))
    return sorted(pts)


@pytest.mark.parametrize("act,w", [("sigmoid", -5.0), ("sigmoid", -8.0), ("sigmoid", -15.0),
                                   ("tanh", -1.5), ("tanh", -3.0)])
def test_period_doubling_points(act, w):
    pds = dyn.period_doubling_points(w, act)
    assert len(pds) == 2
    for (b, x), (rb, rx) in zip(pds, closed_form_pd(w, act)):
        assert abs(w * dsig(x, act) + 1) < 1e-12
        assert abs(F(x, w, b, act) - x) < 1e-12
        assert abs(b - rb) < 1e-10 and abs(x - rx) < 1e-10
    bd = dyn.bifurcation_diagram(w, pds[0][0] - 2, pds[1][0] + 2, act)
    got = sorted((p.b, p.x) for p in bd.special if p.kind == "period_doubling")
    assert np.allclose(got, pds, atol=1e-10, rtol=0)
    assert not [p for p in bd.special if p.kind == "fold"]


@pytest.mark.parametrize("act,w", [("sigmoid", -8.0), ("tanh", -3.0)])
def test_iteration_past_period_doubling_settles_on_period_two(act, w):
    (b1, x1), (b2, x2) = dyn.period_doubling_points(w, act)
    for b_pd, inward in ((b1, +1), (b2, -1)):
        # just past the PD point (into the interval where the fixed point is unstable)
        b = b_pd + inward * 0.02 * (b2 - b1)
        (fp,) = dyn.fixed_points(w, b, act)
        assert not fp.stable
        x = iterate(fp.x + 1e-3, w, b, act, 20000)
        x1_ = F(x, w, b, act)
        x2_ = F(x1_, w, b, act)
        assert abs(x2_ - x) < 1e-9  # period 2 ...
        assert abs(x1_ - x) > 1e-3  # ... not period 1
        # and just before the PD point the fixed point attracts
        bo = b_pd - inward * 0.02 * (b2 - b1)
        (fo,) = dyn.fixed_points(w, bo, act)
        assert fo.stable
        assert abs(iterate(fo.x + 1e-3, w, bo, act, 20000) - fo.x) < 1e-9


@pytest.mark.parametrize("act,w", [("sigmoid", -8.0), ("tanh", -3.0)])
def test_period_two_branch(act, w):
    pds = dyn.period_doubling_points(w, act)
    bd = dyn.bifurcation_diagram(w, pds[0][0] - 1, pds[1][0] + 1, act)
    p2 = [br for br in bd.branches if br.kind == "period2"]
    assert len(p2) == 1
    br = p2[0]
    fx = F(br.x, w, br.b, act)
    ffx = F(fx, w, br.b, act)
    assert np.all(np.abs(ffx - br.x) < 1e-9)  # F(F(x)) = x
    assert np.allclose(br.partner, fx, atol=1e-12)
    # born at the PD points: spans exactly [b_pd1, b_pd2] and is a closed curve
    assert br.b.min() == pytest.approx(pds[0][0], abs=1e-6)
    assert br.b.max() == pytest.approx(pds[1][0], abs=1e-6)
    assert math.hypot(br.b[0] - br.b[-1], br.x[0] - br.x[-1]) < 1e-12
    # genuinely period 2 away from the PD points
    inner = (br.b > pds[0][0] + 0.1) & (br.b < pds[1][0] - 0.1)
    assert np.all(np.abs(fx[inner] - br.x[inner]) > 1e-3)
    mult = w * w * dsig(br.x, act) * dsig(fx, act)
    assert np.allclose(br.multiplier, mult, atol=1e-12)
    off = np.abs(np.abs(mult) - 1) > 1e-9  # at the PD points themselves the multiplier is 1
    assert np.array_equal(br.stable[off], np.abs(mult[off]) < 1)
    # the branch agrees with brute-force iteration in the middle of the bubble
    bm = 0.5 * (pds[0][0] + pds[1][0])
    (fp,) = dyn.fixed_points(w, bm, act)
    xa = iterate(fp.x + 1e-2, w, bm, act, 20000)
    orbit = sorted([float(xa), float(F(xa, w, bm, act))])
    for xo in orbit:
        assert _dist_to_curve(br.b, br.x, bm, xo) < 1e-3


# ---------------------------------------------------------------- 3. orbit diagram
def test_orbit_diagram_matches_iteration():
    bs = np.linspace(-6, 2, 17)
    x0s = np.array([-4.0, 0.3, 4.0])
    od = dyn.orbit_diagram(5.0, bs, x0s=x0s, transient=50, keep=5)
    assert od.states.shape == (3, 17, 5)
    x = np.broadcast_to(x0s[:, None], (3, 17)).copy()
    x = iterate(x, 5.0, bs[None, :], "sigmoid", 50)
    for t in range(5):
        x = F(x, 5.0, bs[None, :], "sigmoid")
        assert np.allclose(od.states[:, :, t], x, rtol=1e-13, atol=1e-13)
    b, xx = od.points()
    assert b.shape == xx.shape == (3 * 17 * 5,)


def test_orbit_diagram_distinct_points_once_per_value_and_b():
    bs = np.linspace(-6, 2, 41)
    od = dyn.orbit_diagram(5.0, bs)
    b, x = od.distinct_points(1e-3)
    for j, bj in enumerate(bs):  # each settled value once: one or two fixed points at each b
        xs = np.sort(x[b == bj])
        ref = np.unique(np.round(od.states[:, j, :].ravel() / 1e-3)) * 1e-3
        assert np.allclose(xs, ref) and 1 <= xs.size <= 2
    od = dyn.orbit_diagram(-8.0, [4.0], x0s=[0.1, 1.0])
    assert od.distinct_points(1e-6)[1].size == 2  # period 2: both points, once each
    with pytest.raises(ValueError, match="resolution must be > 0"):
        od.distinct_points(0.0)


def test_orbit_diagram_shows_both_attractors_and_period_two():
    od = dyn.orbit_diagram(5.0, [-2.5], x0s=[-4.0, 4.0], transient=500, keep=4)
    lo, hi = od.states[0, 0, -1], od.states[1, 0, -1]
    fps = dyn.fixed_points(5.0, -2.5)
    assert lo == pytest.approx(fps[0].x, abs=1e-9) and hi == pytest.approx(fps[2].x, abs=1e-9)
    od = dyn.orbit_diagram(-8.0, [4.0], x0s=[0.1], transient=2000, keep=4)
    s = od.states[0, 0]
    assert abs(s[0] - s[2]) < 1e-9 and abs(s[0] - s[1]) > 1.0


# ---------------------------------------------------------------- 4. basins
@pytest.mark.parametrize("act,w,b_lo,b_hi", [("sigmoid", 5.0, -3.2, -1.8), ("sigmoid", 8.0, -5.5, -2.5),
                                          ("tanh", 2.0, -1.2, 1.2)])
def test_basins_agree_with_direct_iteration_off_boundary(act, w, b_lo, b_hi):
    bs = np.linspace(b_lo, b_hi, 57)
    x0s = np.linspace(-w + b_lo, w + b_hi, 41)
    lab = dyn.basins(w, bs, x0s, steps=200, activation=act)
    assert lab.shape == (41, 57) and lab.dtype.kind == "i"
    db = bs[1] - bs[0]
    dx = x0s[1] - x0s[0]
    # direct iteration for much longer; every stable fixed point lies outside [-c, c]
    # (c: the fold's |x|), so lower attractor < 0 < upper attractor
    X = iterate(np.broadcast_to(x0s[:, None], lab.shape), w, bs[None, :], act, 5000)
    direct = (X > 0).astype(int)
    (bf1, xf1), (bf2, xf2) = closed_form_folds(w, act)
    c = abs(xf1)
    checked = 0
    for j, b in enumerate(bs):
        if min(abs(b - bf1), abs(b - bf2)) <= db:
            continue  # one grid step from a bifurcation boundary
        u = None
        if bf1 < b < bf2:  # the unstable fixed point is the basin boundary
            u = brentq(lambda x: float(F(x, w, b, act) - x), -c, c)
        for i, x0 in enumerate(x0s):
            if u is not None and abs(x0 - u) <= dx:
                continue
            assert lab[i, j] == direct[i, j], (b, x0, lab[i, j], direct[i, j])
            checked += 1
    assert checked > 0.8 * lab.size
    # both labels occur, and inside the bistable interval the boundary splits columns
    jmid = np.argmin(np.abs(bs - (bf1 + bf2) / 2))
    assert {0, 1} <= set(np.unique(lab[:, jmid]).tolist())


def test_basins_without_folds_single_label_and_period_two():
    lab = dyn.basins(3.0, np.linspace(-3, 1, 9), np.linspace(-5, 5, 7), steps=300)
    assert np.all(lab == 0)
    # negative w past period doubling: the 2-cycle is the attractor (label 0)
    lab = dyn.basins(-8.0, [4.0], np.linspace(-5, 5, 10), steps=4000)
    assert np.all(lab == 0)
    # steps too few to settle near a fold -> -1, never a wrong label
    (bf1, _), (bf2, _) = closed_form_folds(5.0, "sigmoid")
    # just below the lower-b fold the upper attractor is gone, but its ghost holds x near 0.96
    assert dyn.basins(5.0, [bf1 - 1e-6], [4.0], steps=20)[0, 0] == -1
    assert dyn.basins(5.0, [bf1 - 1e-6], [4.0], steps=100000)[0, 0] == 0


@pytest.mark.parametrize("act", ACTS)
def test_basins_match_numpy_reference(act):
    from clipviz.bench.dynamics import numpy_basins

    w = 5.0 if act == "sigmoid" else 2.0
    bs = np.linspace(-4, 1, 33)
    x0s = np.linspace(-5, 5, 29)
    att = dyn.attractors(w, bs, act)
    ref = numpy_basins(w, bs, x0s, 200, act, att.x, att.label, 1e-3)
    assert np.array_equal(dyn.basins(w, bs, x0s, steps=200, activation=act), ref)


def test_attractors():
    att = dyn.attractors(5.0, [-6.0, -2.5, 2.0])
    assert att.label[0].tolist() == [0, -1]
    assert att.label[1].tolist() == [0, 1]
    assert att.label[2].tolist() == [1, -1]
    fps = dyn.fixed_points(5.0, -2.5)
    assert att.x[1].tolist() == [fps[0].x, fps[2].x]
    assert np.isnan(att.boundary[0]) and np.isnan(att.boundary[2])
    assert att.boundary[1] == fps[1].x and not fps[1].stable


# ---------------------------------------------------------------- 5. sensitivity
def numpy_sensitivity(w, bs, x0, steps, act):
    x = np.full(len(bs), float(x0))
    gb = np.zeros_like(x)
    g0 = np.ones_like(x)
    for _ in range(steps):
        d = w * dsig(x, act)
        gb = 1 + d * gb
        g0 = d * g0
        x = F(x, w, bs, act)
    return x, gb, g0


@pytest.mark.parametrize("act", ACTS)
def test_sensitivity_vs_numpy_and_finite_differences(act):
    w = 5.0 if act == "sigmoid" else 2.0
    bs = np.linspace(-4, 1, 41)
    s = dyn.sensitivity(w, bs, x0=0.5, steps=30, activation=act)
    x, gb, g0 = numpy_sensitivity(w, bs, 0.5, 30, act)
    assert np.allclose(s.xT, x, rtol=1e-11, atol=1e-11)
    assert np.allclose(s.dxT_db, gb, rtol=1e-9, atol=1e-9)
    assert np.allclose(s.dxT_dx0, g0, rtol=1e-9, atol=1e-9)
    h = 1e-6
    fd_b = (numpy_sensitivity(w, bs + h, 0.5, 30, act)[0] - numpy_sensitivity(w, bs - h, 0.5, 30, act)[0]) / (2 * h)
    fd_0 = (numpy_sensitivity(w, bs, 0.5 + h, 30, act)[0] - numpy_sensitivity(w, bs, 0.5 - h, 30, act)[0]) / (2 * h)
    ok = np.abs(s.dxT_db) < 1e3  # FD is only trustworthy where x_T is not on a cliff
    assert ok.sum() > 30
    assert np.allclose(s.dxT_db[ok], fd_b[ok], rtol=1e-5, atol=1e-6)
    assert np.allclose(s.dxT_dx0[ok], fd_0[ok], rtol=1e-5, atol=1e-6)


def test_sensitivity_grid_consistent():
    bs = np.linspace(-4, 0, 13)
    x0s = np.array([-1.0, 0.5, 2.0])
    g = dyn.sensitivity_grid(5.0, bs, x0s, steps=40)
    for i, x0 in enumerate(x0s):
        s = dyn.sensitivity(5.0, bs, x0=x0, steps=40)
        assert np.array_equal(g.dxT_db[i], s.dxT_db) and np.array_equal(g.dxT_dx0[i], s.dxT_dx0)


@pytest.mark.parametrize("x0", [0.5, -0.3, 0.9])
def test_sensitivity_peak_at_basin_boundary_w5(x0):
    """For x0 inside the unstable branch's range, the peak over b is where x0 is the unstable fixed point."""
    w = 5.0
    bs = np.linspace(-6, 2, 2001)
    s = dyn.sensitivity(w, bs, x0=x0, steps=200)
    b_star = x0 - w * float(sig(x0, "sigmoid"))  # F(x0) = x0 at this b
    step = bs[1] - bs[0]
    for arr in (s.dxT_db, s.dxT_dx0):
        j = int(np.argmax(np.abs(arr)))
        assert abs(bs[j] - b_star) <= step, (bs[j], b_star)


@pytest.mark.parametrize("w,x0,act", [(5.0, 0.5, "sigmoid"), (5.0, -0.3, "sigmoid"), (2.0, 0.4, "tanh"),
                                      (5.0, 1e-3, "sigmoid")])
def test_fixed_point_b_as_exact_as_float64_allows(w, x0, act):
    b, slope = dyn.fixed_point_b(w, x0, act)
    assert b == pytest.approx(x0 - w * float(sig(x0, act)), abs=1e-14)
    assert slope == pytest.approx(w * float(dsig(x0, act)), rel=1e-12)
    one = dyn.sensitivity(w, [b], x0=x0, steps=1, activation=act)
    assert abs(one.xT[0] - x0) <= 2 * np.spacing(abs(b))  # F(x0) = x0 to rounding
    s = dyn.sensitivity(w, [b], x0=x0, steps=200, activation=act)
    closed = (slope ** 200 - 1) / (slope - 1)
    if one.xT[0] == x0:  # exactly a fixed point in float64: the orbit stays, the peak is the closed form
        assert s.xT[0] == x0 and s.dxT_db[0] == pytest.approx(closed, rel=1e-9)
    else:  # the orbit leaves x0 only from a rounding error: still the spike's height
        assert abs(s.dxT_db[0]) > 1e-4 * min(closed, 1e16)


def test_sensitivity_bs_resolves_the_spike_so_the_peak_grows_with_T():
    """Section 2.5: at the basin boundary |dx_T/db| grows like F'(x0)^T; a uniform grid shows
    the opposite (the spike narrows faster than the grid), the refined grid the true peak."""
    w, x0 = 5.0, 0.5
    bs = dyn.sensitivity_bs(w, -6.0, 2.0, x0=x0)
    b_star, slope = dyn.fixed_point_b(w, x0)
    assert b_star in bs and np.all(np.diff(bs) > 0) and bs[0] == -6.0 and bs[-1] == 2.0
    for fold_b, _x in dyn.fold_points(w):
        assert fold_b in bs
    peaks = {T: np.max(np.abs(dyn.sensitivity(w, bs, x0=x0, steps=T).dxT_db)) for T in (20, 50, 200)}
    assert peaks[20] < peaks[50] < peaks[200]
    assert peaks[200] == pytest.approx((slope ** 200 - 1) / (slope - 1), rel=1e-9)
    uniform = np.linspace(-6.0, 2.0, 2000)
    assert np.max(np.abs(dyn.sensitivity(w, uniform, x0=x0, steps=200).dxT_db)) < 1e-6 * peaks[200]
    # no repelling fixed point at x0 (|F'(x0)| < 1): only the folds are refined
    assert dyn.fixed_point_b(5.0, 3.0)[0] not in dyn.sensitivity_bs(5.0, -6.0, 2.0, x0=3.0)
    with pytest.raises(ValueError, match="b_min must be smaller"):
        dyn.sensitivity_bs(5.0, 2.0, -6.0)


@pytest.mark.parametrize("x0,which", [(3.0, 0), (-3.0, 1)])
def test_sensitivity_peak_at_fold_w5(x0, which):
    """From x0 outside the boundary's range the only switch is at a fold: the peak sits there."""
    w = 5.0
    bs = np.linspace(-6, 2, 2001)
    s = dyn.sensitivity(w, bs, x0=x0, steps=200)
    fold_b = dyn.fold_points(w)[which][0]
    j = int(np.argmax(np.abs(s.dxT_db)))
    assert abs(bs[j] - fold_b) <= bs[1] - bs[0]


# ---------------------------------------------------------------- 6. vector field
def test_vector_field():
    bs = np.linspace(-6, 2, 9)
    xs = np.linspace(-4, 6, 11)
    vf = dyn.vector_field(5.0, bs, xs)
    assert vf.dx.shape == (11, 9)
    assert np.allclose(vf.dx, F(xs[:, None], 5.0, bs[None, :], "sigmoid") - xs[:, None], atol=1e-13)
    # points toward the attractors: above the upper fixed point it points down
    fps = dyn.fixed_points(5.0, 2.0)
    assert np.all(vf.dx[xs > fps[-1].x, -1] < 0) and np.all(vf.dx[xs < fps[0].x, -1] > 0)


# ---------------------------------------------------------------- 7. input-driven
def test_input_driven_matches_reference_and_separates():
    w, b = 5.0, -2.5
    rng = np.random.default_rng(3)
    u = rng.normal(0, 0.2, 60)
    u[:40] = 0.0  # no input at first: x0 = -+1e-4 straddle the boundary (x = 0) of the input-free map
    r = dyn.input_driven(w, b, x0=-1e-4, delta=2e-4, inputs=u, threshold=1.0)
    xa = [-1e-4]
    xb = [1e-4]
    for ut in u:
        xa.append(float(F(xa[-1], w, b, "sigmoid") + ut))
        xb.append(float(F(xb[-1], w, b, "sigmoid") + ut))
    assert np.allclose(r.xa, xa, atol=1e-12) and np.allclose(r.xb, xb, atol=1e-12)
    sep = np.abs(np.array(xa) - np.array(xb))
    assert r.separation_time == int(np.argmax(sep >= 1.0))
    assert r.separation_time is not None and r.separation[-1] > 2.0
    # exact dx_t/dx0 agrees with finite differences early on
    h = 1e-7
    r2 = dyn.input_driven(w, b, x0=-1e-4 + h, delta=2e-4, inputs=u)
    fd = (r2.xa[:10] - r.xa[:10]) / h
    assert np.allclose(r.dx_dx0[:10], fd, rtol=1e-4)


def test_input_driven_far_from_boundary_stays_together():
    r = dyn.input_driven(5.0, -2.5, x0=2.0, delta=1e-3, steps=200, input_scale=0.1, seed=1)
    assert r.separation_time is None and r.separation.max() < 1e-2
    assert r.u.shape == (200,) and r.xa.shape == (201,)


# ---------------------------------------------------------------- bad arguments
@pytest.mark.parametrize("call,msg", [
    (lambda: dyn.fixed_points(float("nan"), 0), "w must be a finite number"),
    (lambda: dyn.fixed_points(5, 0, "relu"), "activation must be one of"),
    (lambda: dyn.fixed_points(5, 1e9), "b must lie in"),
    (lambda: dyn.fold_points("x"), "w must be a finite number"),
    (lambda: dyn.fold_points(5, activation="identity"), "activation must be one of"),
    (lambda: dyn.period_doubling_points(float("inf")), "w must be a finite number"),
    (lambda: dyn.bifurcation_diagram(5, 2, -6), "b_min must be smaller than b_max"),
    (lambda: dyn.bifurcation_diagram(5, 1, 1), "b_min must be smaller than b_max"),
    (lambda: dyn.bifurcation_diagram(5, -6, 2, "softplus"), "activation must be one of"),
    (lambda: dyn.bifurcation_diagram(None, -6, 2), "w must be a finite number"),
    (lambda: dyn.bifurcation_diagram(150, -6, 2), "for the bifurcation diagram"),
    (lambda: dyn.basins(5, [], [0.0]), "bs must be a non-empty"),
    (lambda: dyn.basins(5, [0.0], [[0.0]]), "x0s must be a non-empty 1-D"),
    (lambda: dyn.basins(5, [0.0], [0.0], steps=0), "steps must be between"),
    (lambda: dyn.basins(5, [0.0], [0.0], steps=2.5), "steps must be an integer"),
    (lambda: dyn.basins(5, np.zeros(5000), [0.0]), "at most"),
    (lambda: dyn.basins(5, [0.0], [float("nan")]), "finite"),
    (lambda: dyn.basins(5, [0.0], [0.0], tol=0), "tol must be > 0"),
    (lambda: dyn.sensitivity(5, [0.0], x0=float("nan"), steps=10), "x0 must be a finite number"),
    (lambda: dyn.sensitivity(5, [0.0], x0=0.5, steps=10**9), "steps must be between"),
    (lambda: dyn.sensitivity(5, [0.0], x0=0.5, steps=10, activation="x"), "activation must be one of"),
    (lambda: dyn.sensitivity_grid(5, [0.0], [], steps=10), "x0s must be a non-empty"),
    (lambda: dyn.orbit_diagram(5, np.zeros(2000), x0s=np.zeros(10), keep=1000), "exceeds the limit"),
    (lambda: dyn.orbit_diagram(5, [0.0], keep=0), "keep must be between"),
    (lambda: dyn.vector_field(5, [0.0], "abc"), "xs must be"),
    (lambda: dyn.input_driven(5, 0, threshold=-1), "threshold must be > 0"),
    (lambda: dyn.input_driven(5, 0, inputs=[1.0, float("inf")]), "inputs must contain only finite"),
    (lambda: dyn.input_driven(5, 0, input_scale=-1), "input_scale must be >= 0"),
    (lambda: dyn.attractors(5, [0.0], "tanhh"), "activation must be one of"),
    (lambda: dyn.basins(5, np.zeros(2048), np.zeros(2048), steps=100_000), "exceeds the limit"),
    (lambda: dyn.sensitivity_grid(5, np.zeros(2048), np.zeros(2048), steps=10_000), "exceeds the limit"),
    (lambda: dyn.sensitivity(5, np.zeros(1 << 20), steps=100_000), "exceeds the limit"),
    (lambda: dyn.orbit_diagram(5, np.zeros(2048), x0s=np.zeros(64), transient=100_000, keep=1),
     "exceeds the limit"),
])
def test_bad_arguments_raise_value_error(call, msg):
    with pytest.raises(ValueError, match=msg):
        call()


@pytest.mark.parametrize("window,pieces", [((2.0, 6.0), 2), ((2.0, 11.0), 1), ((-3.0, 3.0), 1)])
def test_period_two_branch_when_window_cuts_the_loop(window, pieces):
    """A window that cuts the period-2 loop still gets its period-2 branch(es), from the edges."""
    w = -8.0
    bd = dyn.bifurcation_diagram(w, *window)
    p2 = [br for br in bd.branches if br.kind == "period2"]
    assert len(p2) == pieces
    for br in p2:
        assert np.all(np.abs(F(F(br.x, w, br.b, "sigmoid"), w, br.b, "sigmoid") - br.x) < 1e-9)
        assert br.b.min() >= window[0] - 1e-12 and br.b.max() <= window[1] + 1e-12
    # every period-2 point in the window is on a traced branch
    for b in np.linspace(window[0] + 0.05, min(window[1], 8.5), 7):
        (fp,) = dyn.fixed_points(w, b)
        if fp.slope >= -1:
            continue
        xa = iterate(fp.x + 1e-2, w, b, "sigmoid", 5000)
        for xo in (float(xa), float(F(xa, w, b, "sigmoid"))):
            assert min(_dist_to_curve(br.b, br.x, b, xo) for br in p2) < 1e-3


_rng = np.random.default_rng(2024)
_CASES = [(str(_rng.choice(ACTS)), float(_rng.uniform(-15, 15)), float(_rng.uniform(-12, 6)),
           float(_rng.uniform(0.05, 12))) for _ in range(30)]
# the largest |w| accepted, with windows much wider than the S-shape (sharp folds)
_CASES += [(a, w, -2 * abs(w), 4 * abs(w)) for a in ACTS for w in (100.0, -100.0)]


@pytest.mark.parametrize("act,w,b_min,width", _CASES)
def test_diagram_random_windows(act, w, b_min, width):
    """Random (w, window, activation): branches are exact, complete, and special points exact."""
    b_max = b_min + width
    bd = dyn.bifurcation_diagram(w, b_min, b_max, act)
    fixed = [br for br in bd.branches if br.kind == "fixed"]
    for br in fixed:
        assert np.all(np.abs(F(br.x, w, br.b, act) - br.x) < 1e-10)
        assert np.all(np.diff(br.x) > 0)  # ordered by x (x is monotone along the curve)
    for br in bd.branches:
        if br.kind == "period2":
            assert np.all(np.abs(F(F(br.x, w, br.b, act), w, br.b, act) - br.x) < 1e-9)
    # polyline (chord) tolerance: 1e-3, or 2e-5 of the window for very wide windows
    tol = max(1e-3, 2e-5 * math.hypot(width, width + 2 * abs(w)))
    for b in np.linspace(b_min, b_max, 9):
        for p in dyn.fixed_points(w, b, act):
            assert min(_dist_to_curve(br.b, br.x, b, p.x) for br in fixed) < tol
    for sp in bd.special:
        m = 1 if sp.kind == "fold" else -1
        assert abs(w * dsig(sp.x, act) - m) < 1e-12 and abs(F(sp.x, w, sp.b, act) - sp.x) < 1e-12
        assert b_min <= sp.b <= b_max
    expect = [p for p in dyn.fold_points(w, act) + dyn.period_doubling_points(w, act)
              if b_min < p[0] < b_max]
    assert len(bd.special) == len(expect)


def _child_basins(q):
    q.put(dyn.basins(5.0, np.linspace(-3, -2, 16), np.linspace(-3, 3, 16), steps=100).tolist())


def test_parallel_kernels_work_in_forked_child():
    """gunicorn / Celery prefork: a parallel kernel ran in the parent, then the child forks."""
    import multiprocessing as mp

    parent = dyn.basins(5.0, np.linspace(-3, -2, 16), np.linspace(-3, 3, 16), steps=100)
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child_basins, args=(q,))
    p.start()
    child = q.get(timeout=60)
    p.join(timeout=60)
    assert p.exitcode == 0
    assert child == parent.tolist()


@pytest.mark.parametrize("act,w,b_lo,b_hi", [("sigmoid", 5.0, -6.0, 2.0), ("sigmoid", -8.0, -2.0, 10.0),
                                          ("tanh", 2.0, -1.5, 1.5), ("tanh", -3.0, -3.0, 3.0)])
@pytest.mark.parametrize("steps", [1, 2, 3, 17, 200])
def test_basins_retirement_is_exact(act, w, b_lo, b_hi, steps):
    """Retiring exactly periodic points (period 1 or 2) gives the x_T of plain iteration."""
    from clipviz.kernels import dynamics as k

    bs = np.linspace(b_lo, b_hi, 37)
    x0s = np.linspace(-6, 6, 23)
    a = 0 if act == "sigmoid" else 1
    att = dyn.attractors(w, bs, act)
    outs = []
    for retire in (True, False):
        lab = np.empty((23, 37), dtype=np.int8)
        xT = np.empty((23, 37))
        k.basins_grid(w, bs, x0s, steps, a, att.x, att.label, 1e-3, lab, retire, xT)
        outs.append((lab, xT))
    assert np.array_equal(outs[0][0], outs[1][0])
    # equal up to the last ulp (vector body and scalar check may round a contraction differently)
    assert np.allclose(outs[0][1], outs[1][1], rtol=4e-15, atol=4e-15)
    ref = iterate(np.broadcast_to(x0s[:, None], (23, 37)), w, bs[None, :], act, steps)
    assert np.allclose(outs[0][1], ref, rtol=1e-12, atol=1e-12)
    assert np.array_equal(outs[0][0], dyn.basins(w, bs, x0s, steps=steps, activation=act))
