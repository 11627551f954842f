"""clipviz.dynamics: kernels' elementary functions, the n-unit theory of sections
2.2-2.3 (items 8) and the curvature measurement of section 2.4 (item 9).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from clipviz import dynamics as dyn
from clipviz import one_unit
from clipviz.kernels import dynamics as k
from clipviz.kernels.activations import act_d2

from .kernel_probes import fexp_array, grid_activation_array

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------- elementary functions
def test_vexp_within_two_ulp():
    rng = np.random.default_rng(0)
    z = np.concatenate([rng.uniform(-708, 708, 200_000), rng.uniform(-3, 3, 200_000),
                        [0.0, 1.0, -1.0, 1e-300, -1e-300, 700.0, -700.0]])
    out = np.empty_like(z)
    fexp_array(z, out)
    ref = np.exp(z)
    ulp = np.abs(out - ref) / np.spacing(ref)
    assert ulp.max() <= 2.0


def test_vexp_clamps_without_overflow():
    z = np.array([-1e4, -709.5, 709.5, 1e4])
    out = np.empty_like(z)
    fexp_array(z, out)
    assert np.all(np.isfinite(out)) and np.all(out > 0)
    assert out[0] == pytest.approx(math.exp(-708)) and out[-1] == pytest.approx(math.exp(708))


@pytest.mark.parametrize("act", ["sigmoid", "tanh"])
def test_grid_activation_vs_numpy(act):
    x = np.concatenate([np.linspace(-40, 40, 100_001), [-800.0, 800.0, 0.0]])
    s = np.empty_like(x)
    d = np.empty_like(x)
    grid_activation_array(x, 0 if act == "sigmoid" else 1, s, d)
    # the references overflow harmlessly at |x| = 800
    with np.errstate(over="ignore"):
        rs, rd = _ref_act(x, act)
    assert not np.isnan(s).any()
    assert np.allclose(s, rs, rtol=4e-16, atol=4e-16)
    big = rd > 1e-300
    assert np.allclose(d[big], rd[big], rtol=1e-14, atol=0)


def _ref_act(x, act):
    if act == "sigmoid":
        rs = 1 / (1 + np.exp(-x))
        rd = np.exp(-np.abs(x)) / (1 + np.exp(-np.abs(x))) ** 2
    else:
        rs = np.tanh(x)
        rd = 1 / np.cosh(x) ** 2
    return rs, rd


def test_divided_difference():
    for act, f in ((0, lambda x: 1 / (1 + math.exp(-x))), (1, math.tanh)):
        for p, q in [(0.3, 1.7), (-2.0, 3.0), (-5.0, -4.9), (10.0, -12.0), (0.0, 1e-3)]:
            ref = (f(q) - f(p)) / (q - p)
            assert k.divided_difference(p, q, act) == pytest.approx(ref, rel=1e-9)
        # the limit q -> p is sigma'(p), without cancellation
        for p in (-3.0, 0.0, 0.7, 20.0):
            _s, d1, _d2 = act_d2(p, act)
            assert k.divided_difference(p, p, act) == pytest.approx(d1, rel=1e-14)
            assert k.divided_difference(p, p + 1e-9, act) == pytest.approx(d1, rel=1e-8)


# ---------------------------------------------------------------- n units
def test_w_rec_has_the_asked_spectral_radius():
    for rho in (0.5, 1.0, 2.5):
        r = dyn.jacobian_norms(n=30, rho=rho, steps=5, seed=3)
        assert np.max(np.abs(np.linalg.eigvals(r.W_rec))) == pytest.approx(rho, rel=1e-12)


@pytest.mark.parametrize("act", ["identity", "tanh", "sigmoid"])
@pytest.mark.parametrize("norm", ["spectral", "frobenius"])
@pytest.mark.parametrize("n,T", [(8, 25), (40, 60)])
def test_jacobian_norms_vs_explicit_products(act, norm, n, T):
    """log ||dx_T/dx_{T-l}|| against products of eq. (5) built in plain NumPy (SVD for the 2-norm)."""
    seed = 5
    r = dyn.jacobian_norms(n=n, rho=1.3, steps=T, activation=act, seed=seed, norm=norm,
                           n_in=2, input_scale=0.7)
    # replay the same draws
    rng = np.random.default_rng(seed)
    W = rng.normal(0.0, 1.0 / math.sqrt(n), (n, n))
    W *= 1.3 / np.max(np.abs(np.linalg.eigvals(W)))
    Win = rng.normal(0.0, 1.0 / math.sqrt(2), (n, 2))
    U = rng.normal(0.0, 0.7, (T, 2))
    x = rng.normal(0.0, 0.1, n)
    e = rng.normal(0.0, 1.0, n)
    e /= np.linalg.norm(e)
    assert np.allclose(r.W_rec, W)
    sig = {"identity": lambda z: z, "tanh": np.tanh, "sigmoid": lambda z: 1 / (1 + np.exp(-z))}[act]
    dsig = {"identity": lambda z: np.ones_like(z), "tanh": lambda z: 1 - np.tanh(z) ** 2,
            "sigmoid": lambda z: sig(z) * (1 - sig(z))}[act]
    xs = [x]
    for t in range(T):
        xs.append(W @ sig(xs[-1]) + Win @ U[t])
    P = np.eye(n)
    for l in range(T + 1):
        if l > 0:
            P = P @ (W @ np.diag(dsig(xs[T - l])))
        ref = np.linalg.norm(P, 2 if norm == "spectral" else "fro")
        assert r.log_norm[l] == pytest.approx(math.log(ref), abs=1e-9)
        assert r.log_contrib[l] == pytest.approx(math.log(np.linalg.norm(e @ P)), abs=1e-9)
    assert np.allclose(r.log_rho_l, np.arange(T + 1) * math.log(1.3))


@pytest.mark.parametrize("rho,seed", [(1.5, 0), (2.0, 1), (0.8, 2), (1.2, 3), (3.0, 4)])
def test_identity_growth_rate_is_log_rho(rho, seed):
    """Section 2.2: for sigma = identity, ||W^l|| grows like rho^l (within 1% for l >= 50)."""
    r = dyn.jacobian_norms(n=20, rho=rho, steps=600, activation="identity", seed=seed)
    rate = r.growth_rate(l_min=50)
    assert abs(rate - math.log(rho)) <= 0.01 * abs(math.log(rho)), (rate, math.log(rho))
    # never overflows: ||.|| up to 3^600 carried in logs
    assert np.all(np.isfinite(r.log_norm))


def test_necessary_condition_nonlinear():
    """Below the necessary condition (rho <= 1 tanh, rho <= 4 sigmoid) the Jacobians cannot expand."""
    for act, rho in (("tanh", 0.9), ("sigmoid", 3.5)):
        r = dyn.jacobian_norms(n=40, rho=rho, steps=300, activation=act, seed=1)
        assert r.growth_rate(l_min=50) < 0
        assert r.necessary_condition == (1.0 if act == "tanh" else 4.0)
    # past it, long-term components can dominate (linear-like regime with small inputs)
    r = dyn.jacobian_norms(n=40, rho=1.5, steps=200, activation="tanh", seed=1, input_scale=0.0,
                           x0_scale=1e-8)
    assert r.growth_rate(l_min=50, l_max=150) > 0
    assert r.long_term_share(100) > 0.5


def test_bound_uses_gamma_and_the_necessary_condition_is_not_sufficient():
    """Section 2.1: each factor of equation (5) is at most ||W_rec|| gamma (gamma = 1/4 for the
    sigmoid); rho past 1 / gamma is necessary, not sufficient: the same tanh network grows under
    small inputs (near-linear units) and vanishes under large ones (saturated units)."""
    sigm = dyn.jacobian_norms(n=20, rho=6.0, steps=50, activation="sigmoid", seed=0)
    assert sigm.gamma == 0.25
    assert np.allclose(sigm.log_bound, np.arange(51) * math.log(6.0 / 4.0))
    tanh = dyn.jacobian_norms(n=20, rho=1.5, steps=50, activation="tanh", seed=0)
    assert tanh.gamma == 1.0 and np.array_equal(tanh.log_bound, tanh.log_rho_l)
    small, large = (dyn.jacobian_norms(n=50, rho=1.5, steps=200, activation="tanh", seed=0, input_scale=s)
                    for s in (0.1, 1.0))
    assert small.rho > small.necessary_condition and large.rho > large.necessary_condition
    assert small.grows() and small.log_norm[-1] / math.log(10) > 3
    assert not large.grows() and large.log_norm[-1] / math.log(10) < -3
    assert (small.input_scale, large.input_scale) == (0.1, 1.0)


def test_long_term_share_and_norm_properties():
    r = dyn.jacobian_norms(n=10, rho=0.7, steps=100, activation="identity", seed=0)
    assert r.long_term_share(0) == pytest.approx(1.0)
    assert r.long_term_share(50) < 1e-3  # decaying: short-term contributions dominate
    assert r.norm[0] == pytest.approx(1.0)
    assert np.allclose(np.log(r.norm), r.log_norm)
    big = dyn.jacobian_norms(n=10, rho=3.0, steps=800, activation="identity", seed=0)
    assert np.isinf(big.norm[-1]) and np.isfinite(big.log_norm[-1])  # overflow only on exp


@pytest.mark.parametrize("kwargs,msg", [
    (dict(n=0), "n must be between"),
    (dict(n=10**6), "n must be between"),
    (dict(rho=0.0), "rho must be in"),
    (dict(rho=float("nan")), "rho must be a finite number"),
    (dict(activation="relu"), "activation must be one of"),
    (dict(norm="max"), "norm must be one of"),
    (dict(steps=0), "steps must be between"),
    (dict(input_scale=-1.0), "input_scale and x0_scale must be >= 0"),
    (dict(seed=-1), "seed must be between"),
    (dict(n=500, steps=5000), "exceeds the limit"),
])
def test_jacobian_norms_bad_arguments(kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        dyn.jacobian_norms(**kwargs)


def test_growth_rate_bad_range():
    r = dyn.jacobian_norms(n=5, steps=20)
    with pytest.raises(ValueError, match="need at least two"):
        r.growth_rate(l_min=50)


# ---------------------------------------------------------------- curvature (section 2.4)
def test_curvature_alignment_pointwise():
    ws = np.linspace(-2, 12, 24)
    bs = np.linspace(-8, 2, 20)
    c = dyn.curvature_alignment(ws, bs)
    rng = np.random.default_rng(0)
    checked = 0
    for _ in range(40):
        i, j = rng.integers(len(bs)), rng.integers(len(ws))
        E, gw, gb = one_unit.loss_grad(ws[j], bs[i])
        H = one_unit.loss_hessian(ws[j], bs[i])
        g = np.array([gw, gb])
        if np.linalg.norm(g) == 0 or not np.isfinite(c.angle_deg[i, j]):
            continue
        lam, vec = np.linalg.eigh(H)
        m = int(np.argmax(np.abs(lam)))
        ang = math.degrees(math.acos(min(1.0, abs(g @ vec[:, m]) / np.linalg.norm(g))))
        if abs(abs(lam[0]) - abs(lam[1])) > 1e-6 * abs(lam[m]):  # leading eigenvector well defined
            assert c.angle_deg[i, j] == pytest.approx(ang, abs=1e-5)
        assert c.lead_eig[i, j] == pytest.approx(lam[m], rel=1e-7, abs=1e-12)
        assert c.curv_along_grad[i, j] == pytest.approx(g @ H @ g / (g @ g), rel=1e-7, abs=1e-12)
        checked += 1
    assert checked > 20
    a = c.angle_deg[np.isfinite(c.angle_deg)]
    assert a.min() >= 0 and a.max() <= 90
    assert c.decile_grad_norm.shape == (10,) and np.all(np.diff(c.decile_grad_norm) >= 0)
    assert -1 <= c.spearman <= 1 and np.isfinite(c.loglog_slope)


def test_curvature_alignment_rejects_bad_grid():
    with pytest.raises(ValueError, match="ws must be"):
        dyn.curvature_alignment([], [0.0])
    with pytest.raises(ValueError, match="too few grid points"):
        dyn.curvature_alignment([5.0], [0.0])


def test_curvature_claims_in_docstring_hold():
    """The qualitative findings written in curvature_alignment's docstring, at a small grid."""
    c = dyn.curvature_alignment(np.linspace(-2, 12, 96), np.linspace(-8, 2, 96))
    s = c.summary
    assert c.spearman > 0.9  # curvature along g grows with ||g||
    assert 0.8 < c.loglog_slope < 1.1
    assert s["median_curv_top1pct"] > 50 * s["median_curv_all"]
    assert s["median_angle_all_deg"] < 1.0  # aligned almost everywhere ...
    assert s["median_angle_top1pct_deg"] > 5.0  # ... but less so where ||g|| is largest
    assert s["median_curv_over_lead_top1pct"] > 0.9
    # the deciles tell the same story: angle and curvature rise with ||g||
    assert np.all(np.diff(c.decile_curv) > 0) and c.decile_angle[-1] > 10 * c.decile_angle[0]


WARM_UP_SCRIPT = textwrap.dedent("""
    import json
    import numpy as np
    from clipviz import dynamics as dyn
    from clipviz.kernels import dynamics as k
    names = ["continue_curve", "fixed_points", "refine_special", "attractors", "basins_grid", "orbits",
             "sensitivity_grid", "driven", "n_unit_states", "jacobian_products"]
    def sigs():
        return {n: [str(s) for s in getattr(k, n).signatures] for n in names}
    before = sigs()
    dyn.warm_up()
    after = sigs()
    bs = np.linspace(-6.0, 2.0, 40)
    for act in ("sigmoid", "tanh"):
        dyn.bifurcation_diagram(5.0, -6.0, 2.0, act)
        dyn.basins(5.0, bs, np.linspace(-1.0, 1.0, 30), steps=50, activation=act)
        dyn.sensitivity_grid(5.0, bs, np.linspace(-1.0, 1.0, 30), steps=20, activation=act)
        dyn.orbit_diagram(5.0, bs, activation=act)
        dyn.input_driven(5.0, 0.0, steps=60, activation=act)
    for act in dyn.N_UNIT_ACTIVATIONS:
        dyn.jacobian_norms(n=10, steps=20, activation=act)
    print(json.dumps({"before": before, "after": after, "used": sigs()}))
""")


def test_warm_up_compiles_the_kernels_the_api_uses():
    """In a fresh interpreter no dynamics kernel is compiled; after warm_up every one is, with the
    signatures the public functions use: calling them at page sizes compiles nothing more."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    res = subprocess.run([sys.executable, "-c", WARM_UP_SCRIPT], capture_output=True, text=True, timeout=600,
                         env=env, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.splitlines()[-1])
    assert all(s == [] for s in out["before"].values()), out["before"]
    assert all(out["after"].values()), out["after"]  # compiled (or loaded from the cache) by warm_up
    assert out["used"] == out["after"]
