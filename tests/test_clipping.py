"""Invariants of every clipping rule, by property tests."""

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from clipviz import clipping
from clipviz.clipping import RULES, Clipper, clip

finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)


def true_norm(x: np.ndarray) -> float:
    """||x|| measured without underflow or overflow of the squares (the reference for the
    invariants: np.linalg.norm of a vector of 1e-160s is off by 1e-5 relative)."""
    s = float(np.max(np.abs(x))) if x.size else 0.0
    return 0.0 if s == 0.0 else s * float(np.linalg.norm(x / s))
vectors = arrays(np.float64, st.integers(1, 12), elements=finite)
taus = st.floats(1e-3, 1e3)


@given(vectors, taus)
def test_norm_rescales_to_tau_when_at_or_above_and_leaves_it_otherwise(g, tau):
    out, fired = clip(g, "norm", tau)
    n = np.linalg.norm(g)
    if n >= tau:
        assert fired
        assert np.linalg.norm(out) == pytest.approx(tau, rel=1e-12)
        # direction preserved: out is a positive multiple of g
        assert np.allclose(out * n / tau, g, rtol=1e-9, atol=1e-9 * n)
        assert np.all(out * g >= 0)  # no component flips sign (a subnormal may underflow to 0)
    else:
        assert not fired
        assert np.array_equal(out, g)


@given(vectors, taus)
def test_norm_is_idempotent(g, tau):
    once, _ = clip(g, "norm", tau)
    twice, _ = clip(once, "norm", tau)
    np.testing.assert_allclose(twice, once, rtol=1e-12, atol=0)


@given(vectors, taus)
def test_value_bounds_every_element_and_is_idempotent(g, tau):
    out, fired = clip(g, "value", tau)
    assert np.all(np.abs(out) <= tau)
    assert fired == bool(np.any(np.abs(g) > tau))
    inside = np.abs(g) <= tau
    assert np.array_equal(out[inside], g[inside])
    assert np.array_equal(clip(out, "value", tau)[0], out)


@given(vectors, st.lists(st.floats(0, 1e6), max_size=30), st.floats(1, 100))
def test_autoclip_never_exceeds_the_percentile_of_its_history(g, history, p):
    out, fired = clip(g, "autoclip", history=history, percentile=p)
    tau = np.percentile(np.append(history, true_norm(g)), p)
    assert true_norm(out) <= tau * (1 + 1e-12) + 1e-300
    if not fired:
        assert np.array_equal(out, g)


@given(vectors)
def test_none_never_fires(g):
    out, fired = clip(g, "none")
    assert out is g and not fired


@settings(max_examples=50)
@given(st.lists(arrays(np.float64, 3, elements=finite), min_size=1, max_size=40), st.floats(1, 100))
def test_clipper_autoclip_matches_the_stateless_rule_step_by_step(gs, p):
    c = Clipper("autoclip", percentile=p)
    history = []
    for g in gs:
        o = c.step(g)
        want, fired = clip(g, "autoclip", history=history, percentile=p)
        np.testing.assert_allclose(o.g, want, rtol=1e-12, atol=1e-300)
        assert o.norm == pytest.approx(true_norm(g))
        history.append(true_norm(g))


@given(vectors, taus, st.sampled_from(["norm", "value"]))
def test_clipper_matches_clip(g, tau, rule):
    o = Clipper(rule, tau).step(g)
    want, fired = clip(g, rule, tau)
    assert np.array_equal(o.g, want) and o.fired == fired and not o.skipped


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_gradient_is_never_applied(rule, bad):
    """One semantics for every rule and both entry points: zeros, skipped, not fired, norm inf,
    and the norm never enters the rule's state."""
    g = np.array([1.0, bad, 2.0])
    kw = {"threshold": 1.0} if clipping.get(rule).line == "threshold" else {}  # norm, value, norm_shrink
    if rule == "autoclip":
        kw = {"percentile": 50.0, "history": [1.0, 2.0]}
    out, fired = clip(g, rule, **kw)
    assert np.array_equal(out, np.zeros(3)) and not fired
    c = Clipper(rule, kw.get("threshold"), kw.get("percentile"))
    o = c.step(g)
    assert o.skipped and not o.fired and np.array_equal(o.g, np.zeros(3)) and o.norm == math.inf
    assert o.g is not g  # a new array: applying it can never move the parameters
    # the skipped norm does not enter autoclip's history: the next step is as from a fresh rule
    nxt, fresh = c.step(np.array([3.0, 4.0, 0.0])), c.fresh().step(np.array([3.0, 4.0, 0.0]))
    assert nxt.norm == 5.0 and not nxt.skipped
    assert (nxt.fired, nxt.threshold) == (fresh.fired, fresh.threshold) or \
        (math.isnan(nxt.threshold) and math.isnan(fresh.threshold) and nxt.fired == fresh.fired)
    np.testing.assert_array_equal(nxt.g, fresh.g)


@pytest.mark.parametrize("args, match", [
    (("max", 1.0), "clip rule must be one of 'none', 'norm', 'value', 'autoclip'"),
    (("norm", None), "needs a threshold"),
    (("value", 0.0), "positive finite"),
    (("norm", -1.0), "positive finite"),
    (("norm", float("nan")), "positive finite"),
    (("norm", "x"), "positive finite"),
])
def test_bad_rule_arguments(args, match):
    with pytest.raises(ValueError, match=match):
        clip(np.ones(2), *args)
    with pytest.raises(ValueError, match=match):
        Clipper(*args)


@pytest.mark.parametrize("p", [None, 0, -5, 101, "x"])
def test_autoclip_needs_a_percentile_in_range(p):
    with pytest.raises(ValueError, match="percentile"):
        clip(np.ones(2), "autoclip", percentile=p)


def test_norm_fires_at_exactly_tau():
    out, fired = clip(np.array([3.0, 4.0]), "norm", 5.0)
    assert fired and np.allclose(out, [3.0, 4.0])


@given(arrays(np.float64, st.integers(1, 12), elements=st.floats(-1e3, 1e3).filter(lambda v: abs(v) > 1e-3)),
       st.integers(-1070, 1010), taus)
def test_norm_clipping_holds_at_every_magnitude(g, k, tau):
    """Exploding (1e300) and vanishing (1e-300) gradients: no overflow to a zero step, no
    underflow past tau.  The squares of such entries leave the float range; the norm must not."""
    g = np.ldexp(g, k)
    assume(np.all(np.isfinite(g)) and np.all(g != 0))
    n = true_norm(g)
    assume(np.isfinite(n))
    o = Clipper("norm", tau).step(g)
    assert o.norm == pytest.approx(n, rel=1e-12)
    if n >= tau:
        assert o.fired and true_norm(o.g) == pytest.approx(tau, rel=1e-12)
        assert np.all(o.g * g > 0) or tau / n < 1e-300  # same direction (entries may underflow)
    else:
        assert not o.fired and np.array_equal(o.g, g)
