"""The one-unit map of the paper's equation (14) without input (sections 2.4-2.5, Figures 4-6).

    x_t = F(x_{t-1}) = w * sigma(x_{t-1}) + b,     sigma in {"sigmoid", "tanh"}

Its fixed points, folds and period doubling, the bifurcation diagram of
Figure 4 by continuation, orbits, basins of attraction, the exact
sensitivities dx_T/db and dx_T/dx_0, and the input-driven map of
Figures 5/6.  Public names are re-exported by :mod:`clipviz.dynamics`.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from .. import _validate as v
from ..config import ACTIVATIONS, SETTINGS
from ..kernels import dynamics as k
from ..kernels.activations import CODES, SIGMOID, act_d2, dmax, sigma_array

log = logging.getLogger(__name__)

__all__ = [
    "map_values", "FixedPoint", "fixed_points", "fold_points", "period_doubling_points",
    "Branch", "SpecialPoint", "BifurcationDiagram", "bifurcation_diagram",
    "OrbitDiagram", "orbit_diagram", "basins", "Attractors", "attractors",
    "Sensitivity", "sensitivity", "SensitivityGrid", "sensitivity_grid", "fixed_point_b", "sensitivity_bs",
    "VectorField", "vector_field", "InputDriven", "input_driven",
]


# ---------------------------------------------------------------------------
# validation helpers
# ---------------------------------------------------------------------------


def _act(activation) -> int:
    return CODES[v.choice("activation", activation, ACTIVATIONS)]


def _param(name: str, value) -> float:
    x = v.finite(name, value)
    lim = SETTINGS.dyn_max_abs_param
    if abs(x) > lim:
        raise ValueError(f"{name} must lie in [-{lim:g}, {lim:g}], got {x:g}")
    return x


def _params_array(name: str, values, max_len: int) -> np.ndarray:
    a = v.finite_array(name, values, max_len)
    lim = SETTINGS.dyn_max_abs_param
    if np.max(np.abs(a)) > lim:
        raise ValueError(f"{name} must lie in [-{lim:g}, {lim:g}]")
    return a


def _work(points: int, steps: int) -> None:
    lim = SETTINGS.dyn_max_work
    if points * steps > lim:
        raise ValueError(f"grid points x steps = {points * steps:.3g} exceeds the limit {lim:.3g}; "
                         "use a smaller grid or fewer steps")


def _sigma_values(x: np.ndarray, act: int) -> np.ndarray:
    out = np.empty_like(x)
    sigma_array(x, act, out)
    return out


def _dsigma(x: float, act: int) -> float:
    _s, d1, _d2 = act_d2(float(x), act)
    return d1


def _F(x: float, w: float, b: float, act: int) -> float:
    s, _d1, _d2 = act_d2(float(x), act)
    return w * s + b


def map_values(w: float, b: float, xs, activation: str = "sigmoid") -> np.ndarray:
    """F(x) = w sigma(x) + b, the one-unit map of equation (14) without input, at every x in ``xs``."""
    w = _param("w", w)
    b = _param("b", b)
    xs = v.finite_array("xs", xs, SETTINGS.max_grid)
    return w * _sigma_values(xs, _act(activation)) + b


# ---------------------------------------------------------------------------
# 1. fixed points
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FixedPoint:
    """A fixed point x* = F(x*) of the one-unit map."""

    x: float  #: the fixed point x*
    slope: float  #: F'(x*) = w sigma'(x*)
    stable: bool  #: |F'(x*)| < 1 (attracting)


def fixed_points(w: float, b: float, activation: str = "sigmoid") -> list[FixedPoint]:
    """Every fixed point of F(x) = w sigma(x) + b, sorted by x.

    There is one, or three when (w, b) is in the bistable region between the
    folds (sigmoid: w > 4; tanh: w > 1), two only exactly at a fold.  Each is
    accurate to a few ulp (safeguarded Newton on monotone pieces of
    G = F - x, see :func:`clipviz.kernels.dynamics.fixed_points`).
    """
    w = _param("w", w)
    b = _param("b", b)
    act = _act(activation)
    out = np.empty(3)
    n = k.fixed_points(w, b, act, out)
    res = []
    for x in out[:n]:
        slope = w * _dsigma(x, act)
        res.append(FixedPoint(float(x), float(slope), bool(abs(slope) < 1.0)))
    return res


def _special_points(w: float, act: int, m: float) -> list[tuple[float, float]]:
    target = m / w if w != 0.0 else 0.0
    if not 0.0 < target < dmax(act):
        return []
    c = k.sigma_prime_inverse(target, act)
    pts = []
    for guess in (-c, c):
        x, b, ok = k.refine_special(w, guess, act, m)
        if not ok:
            log.warning("special point refinement did not converge (w=%g, m=%g)", w, m)
        pts.append((float(b), float(x)))
    return sorted(pts)


def fold_points(w: float, activation: str = "sigmoid") -> list[tuple[float, float]]:
    """The folds (limit points) of the fixed-point branch at this w, as (b, x) sorted by b.

    A fold solves F(x) = x and F'(x) = 1.  They exist exactly when
    w * max sigma' > 1 (sigmoid: w > 4; tanh: w > 1), and then come in a pair
    bounding the bistable ("rich") b-interval of section 2.5.  Refined by
    Newton on the 2x2 system (G, G_x) = 0.
    """
    w = _param("w", w)
    return _special_points(w, _act(activation), 1.0)


def period_doubling_points(w: float, activation: str = "sigmoid") -> list[tuple[float, float]]:
    """Period-doubling points (F(x) = x, F'(x) = -1) at this w, as (b, x) sorted by b.

    They exist exactly when -w * max sigma' > 1 (sigmoid: w < -4; tanh:
    w < -1); between them the fixed point is unstable and a period-2 orbit
    attracts.
    """
    w = _param("w", w)
    return _special_points(w, _act(activation), -1.0)


# ---------------------------------------------------------------------------
# 2. bifurcation diagram by continuation
# ---------------------------------------------------------------------------


@dataclass
class Branch:
    """A continuation branch in the (b, x) plane.

    ``kind`` is ``"fixed"`` (fixed points of F) or ``"period2"`` (points of a
    period-2 orbit: the branch is the closed curve traced by both orbit
    points, and ``partner`` holds F(x), the other point of the orbit).
    ``stable[i]`` is |multiplier[i]| < 1 with multiplier = F'(x) for fixed
    points and F'(x) F'(F(x)) for period-2 points.  Special points found on
    the branch are inserted as exact vertices, so a change of ``stable``
    happens exactly at a fold / period-doubling point.
    """

    b: np.ndarray
    x: np.ndarray
    stable: np.ndarray
    multiplier: np.ndarray
    kind: str = "fixed"
    partner: np.ndarray | None = None

    def segments(self) -> list[tuple[np.ndarray, np.ndarray, bool]]:
        """Maximal runs of equal stability as (b, x, stable); neighbours share their end vertex."""
        segs = []
        n = self.b.size
        start = 0
        for i in range(1, n + 1):
            if i == n or self.stable[i] != self.stable[start]:
                end = min(i + 1, n) if i < n else n
                # a run ends at the special point where stability flips; share it
                segs.append((self.b[start:end], self.x[start:end], bool(self.stable[start])))
                start = i
        return segs


@dataclass(frozen=True)
class SpecialPoint:
    """A special point of the diagram: ``kind`` is "fold" or "period_doubling"."""

    kind: str
    b: float
    x: float


@dataclass
class BifurcationDiagram:
    """The bifurcation diagram of F over b in [b_min, b_max] at fixed w (Figure 4)."""

    w: float
    b_min: float
    b_max: float
    activation: str
    branches: list[Branch]
    special: list[SpecialPoint]

    @property
    def bistable(self) -> tuple[float, float] | None:
        """The b-interval between the two folds (two attractors: the "rich" regime), or None.

        None also when a fold lies outside the window; :func:`fold_points` gives both always.
        """
        folds = sorted(p.b for p in self.special if p.kind == "fold")
        return (folds[0], folds[1]) if len(folds) == 2 else None


def _trace(eq, w, act, x0, b0, ox, ob, b_min, b_max, ds_max, close):
    cap = SETTINGS.dyn_max_branch_points
    xs = np.empty(cap)
    bs = np.empty(cap)
    n, status = k.continue_curve(eq, w, act, x0, b0, ox, ob, b_min, b_max, ds_max,
                                 SETTINGS.dyn_max_turn, xs, bs, close)
    if status >= 2:
        log.warning("continuation stopped early (status %d) at w=%g after %d points", status, w, n)
    return xs[:n].copy(), bs[:n].copy(), status


def _insert_specials(xs, bs, act, w, m, kind, specials):
    """Find sign changes of w sigma'(x) - m along a fixed-point branch, refine, insert."""
    d1 = np.array([_dsigma(x, act) for x in xs])
    tau = w * d1 - m
    idx = np.nonzero(np.sign(tau[:-1]) * np.sign(tau[1:]) < 0)[0]
    if idx.size == 0:
        return xs, bs
    new_x = list(xs)
    new_b = list(bs)
    for i in idx[::-1]:
        guess = xs[i] - tau[i] * (xs[i + 1] - xs[i]) / (tau[i + 1] - tau[i])
        x, b, _ok = k.refine_special(w, guess, act, m)
        lo, hi = sorted((xs[i], xs[i + 1]))
        if not lo <= x <= hi:  # keep the refined point only if it belongs here
            continue
        new_x.insert(i + 1, x)
        new_b.insert(i + 1, b)
        specials.append(SpecialPoint(kind, float(b), float(x)))
    return np.array(new_x), np.array(new_b)


def _period2_branches(w, act, b_min, b_max, ds_max, pds) -> list[Branch]:
    """Period-2 branches in the window: from each period-doubling point (both ways, or
    once round a closed loop) and from period-2 orbits on the window's edges (for a
    window that cuts the period-2 loop without containing a period-doubling point)."""
    seeds = [("pd", p.x, p.b, 0.0) for p in pds]
    if w < 0:
        for be, ob in ((b_min, 1.0), (b_max, -1.0)):
            (fp,) = [q for q in fixed_points(w, be, ACTIVATIONS[act])][:1] or [None]
            if fp is not None and fp.slope < -1.0:
                pnt = k.period2_point(w, be, fp.x, act)
                if math.isfinite(pnt):
                    seeds += [("edge", pnt, be, ob), ("edge", _F(pnt, w, be, act), be, ob)]
    done = [False] * len(seeds)
    out = []
    for i, (kind, x0, b0, ob) in enumerate(seeds):
        if done[i]:
            continue
        done[i] = True
        if kind == "pd":
            pieces = []
            for ox in (+1.0, -1.0):
                xs, bs, status = _trace(1, w, act, x0, b0, ox, 0.0, b_min, b_max, ds_max, True)
                pieces.append((xs, bs))
                if status == 1:  # closed loop: one direction covers it
                    break
            if len(pieces) == 2:  # join the two halves through the start point
                xs = np.concatenate([pieces[1][0][::-1], pieces[0][0][1:]])
                bs = np.concatenate([pieces[1][1][::-1], pieces[0][1][1:]])
            else:
                xs, bs = pieces[0]
        else:
            xs, bs, _status = _trace(1, w, act, x0, b0, 0.0, ob, b_min, b_max, ds_max, False)
        # other seeds on this curve: edge seeds are its exits; period-doubling points it
        # passes (F(x) - x changes sign there) are marked and put in as exact vertices
        gap = np.array([_F(x, w, b, act) - x for x, b in zip(xs, bs)])
        for j, (kj, xj, bj, _o) in enumerate(seeds):
            if done[j]:
                continue
            if kj == "edge":
                ends = ((xs[0], bs[0]), (xs[-1], bs[-1]))
                if any(be == bj and abs(xe - xj) <= 1e-6 * (1 + abs(xj)) for xe, be in ends):
                    done[j] = True
                continue
            if np.min(np.hypot(xs - xj, bs - bj)) > 2 * ds_max:
                continue
            done[j] = True
            flips = np.nonzero(np.sign(gap[:-1]) * np.sign(gap[1:]) < 0)[0]
            if flips.size:
                near = flips[np.argmin(np.hypot(xs[flips] - xj, bs[flips] - bj))]
                xs = np.insert(xs, near + 1, xj)
                bs = np.insert(bs, near + 1, bj)
                gap = np.insert(gap, near + 1, 0.0)
        partner = np.array([_F(x, w, b, act) for x, b in zip(xs, bs)])
        mult = np.array([w * w * _dsigma(x, act) * _dsigma(y, act) for x, y in zip(xs, partner)])
        out.append(Branch(bs, xs, np.abs(mult) < 1.0, mult, "period2", partner))
    return out


def bifurcation_diagram(w: float, b_min: float, b_max: float,
                        activation: str = "sigmoid", *,
                        period2: bool = True) -> BifurcationDiagram:
    """Fixed-point and period-2 branches over b in [b_min, b_max] at fixed w.

    Branches are computed by pseudo-arclength continuation of
    G(x, b) = w sigma(x) + b - x = 0 (so they turn at folds instead of
    breaking), started from every fixed point on the window's edges b_min and
    b_max and continued until they leave the window.  Folds (F' = 1) and
    period-doubling points (F' = -1) are located by sign changes of
    F'(x) - 1 and F'(x) + 1 along the branch and refined by Newton on the
    2x2 system; from each period-doubling point (and from period-2 orbits on
    the window's edges, when the window cuts the period-2 loop) the period-2
    branch is continued on M(x, b) = 1 + w sigma[x, F(x)] = 0, i.e.
    F(F(x)) = x with the period-1 factor divided out (see
    :mod:`clipviz.kernels.dynamics`).

    Parameters
    ----------
    w : float
        Recurrent weight (Figure 4 uses 5.0).
    b_min, b_max : float
        The b window, b_min < b_max.
    activation : {"sigmoid", "tanh"}
    period2 : bool
        Also continue the period-2 branch born at period doubling.
    """
    w = _param("w", w)
    if abs(w) > SETTINGS.dyn_max_diagram_w:
        raise ValueError(f"w must lie in [-{SETTINGS.dyn_max_diagram_w:g}, "
                         f"{SETTINGS.dyn_max_diagram_w:g}] for the bifurcation diagram, got {w:g}")
    b_min = _param("b_min", b_min)
    b_max = _param("b_max", b_max)
    if not b_min < b_max:
        raise ValueError(f"b_min must be smaller than b_max, got {b_min:g} >= {b_max:g}")
    act = _act(activation)
    span = b_max - b_min
    x_span = span + abs(w) * (1.0 if act == SIGMOID else 2.0)
    ds_max = SETTINGS.dyn_ds_fraction * math.hypot(span, x_span)

    # entry points on the window's edges, each piece traced once
    entries = [(x.x, b_min, +1.0) for x in fixed_points(w, b_min, activation)]
    entries += [(x.x, b_max, -1.0) for x in fixed_points(w, b_max, activation)]
    done = [False] * len(entries)
    branches: list[Branch] = []
    special: list[SpecialPoint] = []
    for i, (x0, b0, ob) in enumerate(entries):
        if done[i]:
            continue
        done[i] = True
        xs, bs, status = _trace(0, w, act, x0, b0, 0.0, ob, b_min, b_max, ds_max, False)
        if status == 0:  # left the window: its exit is another entry
            for j, (xe, be, _o) in enumerate(entries):
                if not done[j] and be == bs[-1] and abs(xe - xs[-1]) <= 1e-7 * (1 + abs(xe)):
                    done[j] = True
        if xs[-1] < xs[0]:  # x is monotone along a fixed branch: order it by increasing x
            xs, bs = xs[::-1], bs[::-1]
        xs, bs = _insert_specials(xs, bs, act, w, 1.0, "fold", special)
        xs, bs = _insert_specials(xs, bs, act, w, -1.0, "period_doubling", special)
        mult = np.array([w * _dsigma(x, act) for x in xs])
        stable = np.abs(mult) < 1.0
        # exactly at a special point, stability is that of the side continuing after it
        for sp in special:
            hit = np.nonzero((xs == sp.x) & (bs == sp.b))[0]
            for h in hit:
                if h + 1 < xs.size:
                    stable[h] = stable[h + 1]
        branches.append(Branch(bs, xs, stable, mult, "fixed"))

    if period2:
        branches += _period2_branches(w, act, b_min, b_max, ds_max,
                                      [p for p in special if p.kind == "period_doubling"])

    special.sort(key=lambda s: (s.b, s.x))
    return BifurcationDiagram(w, b_min, b_max, activation, branches, special)


# ---------------------------------------------------------------------------
# 3. orbit diagram
# ---------------------------------------------------------------------------


@dataclass
class OrbitDiagram:
    """States after a transient: ``states[i, j, t]`` from x0s[i] at bs[j]."""

    w: float
    bs: np.ndarray
    x0s: np.ndarray
    states: np.ndarray  #: (len(x0s), len(bs), keep)
    transient: int
    activation: str

    def points(self) -> tuple[np.ndarray, np.ndarray]:
        """Flattened (b, x) pairs of every kept state, for a scatter plot."""
        nx, nb, keep = self.states.shape
        b = np.broadcast_to(self.bs[None, :, None], self.states.shape)
        return b.ravel().copy(), self.states.ravel().copy()

    def distinct_points(self, resolution: float) -> tuple[np.ndarray, np.ndarray]:
        """The (b, x) pairs of :meth:`points` with the repeats at each b removed, x rounded to a
        grid of spacing ``resolution`` (states in one cell count once).

        A settled orbit repeats one value (a fixed point) or two (period 2) ``keep`` times from
        every x_0; a plot needs each once.  Non-finite states are dropped.
        """
        if not resolution > 0:
            raise ValueError(f"resolution must be > 0, got {resolution:g}")
        nx, nb, keep = self.states.shape
        with np.errstate(invalid="ignore", over="ignore"):
            cells = np.sort(np.round(np.moveaxis(self.states, 1, 0).reshape(nb, nx * keep) / resolution), axis=1)
        new = np.ones(cells.shape, dtype=bool)
        new[:, 1:] = cells[:, 1:] != cells[:, :-1]
        keep_mask = new & np.isfinite(cells)
        rows, cols = np.nonzero(keep_mask)
        return self.bs[rows], cells[rows, cols] * resolution


def orbit_diagram(w: float, bs, *, x0s=(-4.0, -1.0, 0.0, 1.0, 4.0),
                  transient: int = SETTINGS.orbit_transient, keep: int = SETTINGS.orbit_keep,
                  activation: str = "sigmoid") -> OrbitDiagram:
    """Brute-force orbit diagram: iterate F from each x_0 for each b, drop a transient, keep the rest.

    Shows which attractor each x_0 reaches (both branches in the bistable
    regime when x_0 straddles the boundary) and period-2 orbits as two
    points per b; cannot show unstable branches (use
    :func:`bifurcation_diagram`).  At most ``SETTINGS.dyn_max_orbit_values``
    kept values in all.
    """
    w = _param("w", w)
    bs = _params_array("bs", bs, SETTINGS.max_grid)
    x0s = _params_array("x0s", x0s, 64)
    transient = v.integer("transient", transient, 0, SETTINGS.max_steps)
    keep = v.integer("keep", keep, 1, 1000)
    total = x0s.size * bs.size * keep
    if total > SETTINGS.dyn_max_orbit_values:
        raise ValueError(f"len(x0s) * len(bs) * keep = {total} exceeds the limit "
                         f"{SETTINGS.dyn_max_orbit_values}; use fewer b values or keep fewer states")
    _work(x0s.size * bs.size, transient + keep)
    act = _act(activation)
    out = np.empty((x0s.size, bs.size, keep))
    k.orbits(w, bs, x0s, transient, keep, act, out)
    return OrbitDiagram(w, bs, x0s, out, transient, activation)


# ---------------------------------------------------------------------------
# 4. basins
# ---------------------------------------------------------------------------


@dataclass
class Attractors:
    """Attractors of F at each b: ``x[j]`` up to two points (NaN-padded), ``label[j]`` their labels.

    Labels: 1 = the stable fixed point on the upper branch (x > 0; exists
    for b above the lower fold), 0 = the lower-branch stable fixed point, or
    the only attractor when there are no folds (including the period-2 orbit
    for negative w, both of whose points carry label 0).
    """

    bs: np.ndarray
    x: np.ndarray  #: (len(bs), 2)
    label: np.ndarray  #: (len(bs), 2) int8, -1 for padding
    boundary: np.ndarray  #: (len(bs),) the unstable fixed point between the two attractors, NaN if one


def attractors(w: float, bs, activation: str = "sigmoid") -> Attractors:
    """The attractors used to label :func:`basins`, and the basin boundary, at every b in ``bs``."""
    w = _param("w", w)
    bs = _params_array("bs", bs, SETTINGS.max_grid)
    act = _act(activation)
    ax = np.empty((bs.size, 2))
    al = np.empty((bs.size, 2), dtype=np.int8)
    bnd = np.empty(bs.size)
    k.attractors(w, bs, act, ax, al, bnd)
    return Attractors(bs, ax, al, bnd)


def basins(w: float, bs, x0s, *, steps: int = SETTINGS.basin_steps,
           activation: str = "sigmoid", tol: float = SETTINGS.basin_tol) -> np.ndarray:
    """Which attractor the iteration reaches, over the (b, x_0) grid.

    Returns
    -------
    ndarray of int8, shape (len(x0s), len(bs))
        Label of the attractor (see :class:`Attractors`: 0 lower branch or
        only attractor, 1 upper branch) that x_T (T = ``steps``) lies within
        ``tol`` of; -1 where x_T is not yet within ``tol`` of any attractor
        (slow passage near a fold, or x_0 on the boundary itself).  In the
        bistable regime the boundary between labels 0 and 1 is the unstable
        fixed point (section 2.5).
    """
    w = _param("w", w)
    bs = _params_array("bs", bs, SETTINGS.max_grid)
    x0s = _params_array("x0s", x0s, SETTINGS.max_grid)
    steps = v.integer("steps", steps, 1, SETTINGS.max_steps)
    tol = v.finite("tol", tol)
    if not tol > 0:
        raise ValueError(f"tol must be > 0, got {tol:g}")
    _work(x0s.size * bs.size, steps)
    act = _act(activation)
    att = attractors(w, bs, activation)
    out = np.empty((x0s.size, bs.size), dtype=np.int8)
    k.basins_grid(w, bs, x0s, steps, act, att.x, att.label, tol, out, True, np.empty((1, 0)))
    return out


# ---------------------------------------------------------------------------
# 5. sensitivity
# ---------------------------------------------------------------------------


def _nan_to_inf(a: np.ndarray) -> np.ndarray:
    # 0 * inf (saturated sigma' times an overflowed derivative) is an overflow, not undefined
    bad = np.isnan(a)
    if bad.any():
        a[bad] = np.inf
    return a


@dataclass
class Sensitivity:
    """x_T and its exact derivatives over b at fixed x_0 (signed; take abs() for |.|)."""

    w: float
    bs: np.ndarray
    x0: float
    steps: int
    xT: np.ndarray
    dxT_db: np.ndarray
    dxT_dx0: np.ndarray


def sensitivity(w: float, bs, *, x0: float = SETTINGS.x0, steps: int = SETTINGS.basin_steps,
                activation: str = "sigmoid") -> Sensitivity:
    """dx_T/db and dx_T/dx_0 over b, exact by forward mode (no finite differences).

    Near the basin boundary (the b where x_0 is the unstable fixed point) and
    near the folds these grow without bound as T grows: the paper's claim
    (section 2.5) made visible.  Overflowing derivatives come back as inf.
    """
    w = _param("w", w)
    bs = _params_array("bs", bs, SETTINGS.dyn_max_sensitivity_points)
    x0 = _param("x0", x0)
    steps = v.integer("steps", steps, 1, SETTINGS.max_steps)
    _work(bs.size, steps)
    act = _act(activation)
    xT = np.empty((1, bs.size))
    db = np.empty((1, bs.size))
    d0 = np.empty((1, bs.size))
    k.sensitivity_grid(w, bs, np.array([x0]), steps, act, xT, db, d0)
    return Sensitivity(w, bs, x0, steps, xT[0], _nan_to_inf(db[0]), _nan_to_inf(d0[0]))


def fixed_point_b(w: float, x: float, activation: str = "sigmoid") -> tuple[float, float]:
    """The b at which ``x`` is a fixed point of F, b* = x - w sigma(x), and F'(x) = w sigma'(x) there.

    Where |F'(x)| > 1 that fixed point repels: for w > 0 it is the basin boundary of section 2.5
    (the unstable branch of Figure 4), and from x_0 = x the sensitivities dx_T/db and dx_T/dx_0
    grow like |F'(x)|^T at b = b* while the spike around it narrows, so a uniform b grid misses
    it.  b* is returned nudged by at most a few ulp so that the kernels' own F(x) equals x
    exactly where float64 allows: an orbit started at x then stays there and dx_T/db at b* is
    the exact peak, (F'^T - 1) / (F' - 1); where it does not (the sums near x are coarser than
    x's own spacing), the orbit leaves x only after about log(1/ulp) / log|F'| steps.
    """
    w = _param("w", w)
    x = _param("x", x)
    act = _act(activation)
    slope = w * _dsigma(x, act)
    b = x - w * float(_sigma_values(np.array([x]), act)[0])
    cands = [b]
    for direction in (np.inf, -np.inf):
        c = b
        for _ in range(4):
            c = float(np.nextafter(c, direction))
            cands.append(c)
    bs = np.array(cands)
    xT = np.empty((1, bs.size))
    k.sensitivity_grid(w, bs, np.array([x]), 1, act, xT, np.empty((1, bs.size)), np.empty((1, bs.size)))
    exact = np.nonzero(xT[0] == x)[0]
    return (float(bs[exact[0]]) if exact.size else b), float(slope)


def sensitivity_bs(w: float, b_min: float, b_max: float, *, x0: float = SETTINGS.x0, n: int = 2000,
                   per_decade: int = 6, activation: str = "sigmoid") -> np.ndarray:
    """A b grid over [b_min, b_max] on which :func:`sensitivity` shows its spikes at their height.

    ``n`` uniform points, plus points clustered geometrically (offsets ±10^-15 ... ±10^-1 of the
    window, ``per_decade`` per decade) about each b where the spike of |dx_T/db| sits: the b*
    at which x_0 is a repelling fixed point (:func:`fixed_point_b`, the point itself
    included: there the peak grows like |F'|^T, section 2.5), and the folds and period-doubling
    points of the window (slow passage).  Sorted, without repeats.
    """
    w = _param("w", w)
    b_min = _param("b_min", b_min)
    b_max = _param("b_max", b_max)
    if not b_min < b_max:
        raise ValueError(f"b_min must be smaller than b_max, got {b_min:g} >= {b_max:g}")
    n = v.integer("n", n, 2, SETTINGS.dyn_max_sensitivity_points // 2)
    per_decade = v.integer("per_decade", per_decade, 1, 50)
    span = b_max - b_min
    centres = [b for b, _x in fold_points(w, activation) + period_doubling_points(w, activation)]
    b_star, slope = fixed_point_b(w, x0, activation)
    if abs(slope) > 1.0:
        centres.append(b_star)
    offsets = span * np.logspace(-15, -1, 14 * per_decade + 1)
    parts = [np.linspace(b_min, b_max, n)]
    for c in centres:
        if b_min <= c <= b_max:
            parts += [np.array([c]), c - offsets, c + offsets]
    bs = np.concatenate(parts)
    return np.unique(bs[(bs >= b_min) & (bs <= b_max)])


@dataclass
class SensitivityGrid:
    """x_T, dx_T/db and dx_T/dx_0 over the (b, x_0) grid, shape (len(x0s), len(bs))."""

    w: float
    bs: np.ndarray
    x0s: np.ndarray
    steps: int
    xT: np.ndarray
    dxT_db: np.ndarray
    dxT_dx0: np.ndarray


def sensitivity_grid(w: float, bs, x0s, *, steps: int = SETTINGS.basin_steps,
                     activation: str = "sigmoid") -> SensitivityGrid:
    """:func:`sensitivity` over the whole (b, x_0) grid (rows x_0, columns b)."""
    w = _param("w", w)
    bs = _params_array("bs", bs, SETTINGS.max_grid)
    x0s = _params_array("x0s", x0s, SETTINGS.max_grid)
    steps = v.integer("steps", steps, 1, SETTINGS.max_steps)
    _work(x0s.size * bs.size, steps)
    act = _act(activation)
    shape = (x0s.size, bs.size)
    xT, db, d0 = np.empty(shape), np.empty(shape), np.empty(shape)
    k.sensitivity_grid(w, bs, x0s, steps, act, xT, db, d0)
    return SensitivityGrid(w, bs, x0s, steps, xT, _nan_to_inf(db), _nan_to_inf(d0))


# ---------------------------------------------------------------------------
# 6. vector field
# ---------------------------------------------------------------------------


@dataclass
class VectorField:
    """Figure 4's arrows: ``dx[i, j] = F(xs[i]) - xs[i]`` at b = bs[j] (the arrows are vertical)."""

    w: float
    bs: np.ndarray
    xs: np.ndarray
    dx: np.ndarray  #: (len(xs), len(bs))


def vector_field(w: float, bs, xs, activation: str = "sigmoid") -> VectorField:
    """x -> F(x) - x over the (b, x) grid: where the state moves in one step."""
    w = _param("w", w)
    bs = _params_array("bs", bs, SETTINGS.max_grid)
    xs = _params_array("xs", xs, SETTINGS.max_grid)
    act = _act(activation)
    dx = w * _sigma_values(xs, act)[:, None] + bs[None, :] - xs[:, None]
    return VectorField(w, bs, xs, dx)


# ---------------------------------------------------------------------------
# 7. input-driven maps
# ---------------------------------------------------------------------------


@dataclass
class InputDriven:
    """Two trajectories of x_t = w sigma(x_{t-1}) + b + u_t under the same inputs (Figures 5, 6)."""

    w: float
    b: float
    u: np.ndarray  #: u_1..u_T
    xa: np.ndarray  #: x_0..x_T from x0
    xb: np.ndarray  #: x_0..x_T from x0 + delta
    dx_dx0: np.ndarray  #: exact dx_t/dx_0 along xa
    threshold: float
    separation_time: int | None  #: first t with |xa_t - xb_t| >= threshold, or None

    @property
    def separation(self) -> np.ndarray:
        """|xa_t - xb_t|."""
        return np.abs(self.xa - self.xb)


def input_driven(w: float, b: float, *, x0: float = SETTINGS.x0, delta: float = 1e-3,
                 inputs=None, steps: int = 100, input_scale: float = 0.5, seed: int = 0,
                 threshold: float = 1.0, activation: str = "sigmoid") -> InputDriven:
    """The input-driven map from x0 and x0 + delta with the same inputs.

    ``inputs`` (u_1..u_T) if given, else T = ``steps`` draws of
    N(0, input_scale^2) from ``seed``.  The separation time is the first t
    at which the two trajectories are ``threshold`` apart; with x_0 near the
    basin boundary of the input-free map a tiny delta sends the two towards
    different attractors (section 2.5).
    """
    w = _param("w", w)
    b = _param("b", b)
    x0 = _param("x0", x0)
    delta = _param("delta", delta)
    threshold = v.finite("threshold", threshold)
    if not threshold > 0:
        raise ValueError(f"threshold must be > 0, got {threshold:g}")
    act = _act(activation)
    if inputs is not None:
        u = _params_array("inputs", inputs, SETTINGS.max_steps)
    else:
        steps = v.integer("steps", steps, 1, SETTINGS.max_steps)
        input_scale = v.finite("input_scale", input_scale)
        if input_scale < 0:
            raise ValueError(f"input_scale must be >= 0, got {input_scale:g}")
        seed = v.integer("seed", seed, 0, 2**32 - 1)
        u = np.random.default_rng(seed).normal(0.0, input_scale, steps)
    T = u.size
    xa, xb, dx = np.empty(T + 1), np.empty(T + 1), np.empty(T + 1)
    k.driven(w, b, u, x0, x0 + delta, act, xa, xb, dx)
    sep = np.nonzero(np.abs(xa - xb) >= threshold)[0]
    return InputDriven(w, b, u, xa, xb, _nan_to_inf(dx), threshold,
                       int(sep[0]) if sep.size else None)
