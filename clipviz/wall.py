"""Section 2.4's wall, measured where the gradient explodes (issue 16, item 5).

The paper's hypothesis (section 2.4): where |g| explodes, the curvature along
g explodes too, g lies along the Hessian's top eigenvector (a steep wall
perpendicular to g), and the full gradient step jumps off the wall, which the
rescaled step of Algorithm 1 avoids.  At each spike of a run (an update whose
|g| is many times its running median) this module measures:

* |g| and the curvature along g, g^T H g / |g|^2;
* the top Hessian eigenvalue (largest modulus) and the angle between g and its
  eigenvector (0 deg: aligned, as the hypothesis says; 90 deg: orthogonal);
* the window's objective after plain BPTT's step and after Algorithm 1's step
  (threshold tau: by default the running median |g| the spike was measured
  against, section 3.2's "average norm").

:func:`measure_run` does it at the kept snapshots of a real RNN's run
(:mod:`clipviz.landscape`, float64); :func:`one_unit_spikes` at the spikes of
gradient descents on the one-unit model of equation (14), with its exact 2x2
Hessian; :func:`summarise` reduces either (or the one-unit surface of
:func:`clipviz.dynamics.curvature_alignment`) to a :class:`WallSummary`;
:func:`step_slice` is the error-surface slice through both steps.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from . import _validate as V
from . import landscape as L
from .config import SETTINGS

log = logging.getLogger(__name__)

__all__ = ["WallPoint", "WallSummary", "StepSlice", "measure_snapshot", "measure_run",
           "largest_spike", "one_unit_spikes", "summarise", "summarise_points",
           "surface_summaries", "step_slice"]


@dataclass
class WallPoint:
    """Section 2.4's measures at one update (a snapshot of a run, or a step of a descent)."""

    source: str  #: "temporal_order", "music" or "one_unit"
    run: str  #: which run or descent
    update: int  #: the update (1-based) or descent step (1-based)
    kind: str  #: "spike" or "ordinary"
    grad_norm: float  #: |g|
    median_ratio: float  #: |g| / the running median of |g| (nan: too little history)
    tau: float  #: threshold of the clipped step
    curvature_along_g: float  #: g^T H g / |g|^2
    lambda_max_abs: float  #: the Hessian's eigenvalue of largest modulus (signed)
    angle_deg: float  #: angle between g and that eigenvalue's eigenvector, in [0, 90]
    loss: float  #: the objective where g was computed
    loss_unclipped: float  #: ... after plain gradient descent's step (inf: left the finite numbers)
    loss_clipped: float  #: ... after Algorithm 1's step with threshold ``tau``

    @property
    def unclipped_higher(self) -> bool:
        """The plain step lands higher than the clipped one (what section 2.4 predicts)."""
        return self.loss_unclipped > self.loss_clipped

    def to_dict(self) -> dict:
        """A JSON-able dict (non-finite numbers as None)."""
        d = dict(self.__dict__)
        return {k: (None if isinstance(x, float) and not math.isfinite(x) else x)
                for k, x in d.items()}


@dataclass
class WallSummary:
    """The measures over a set of points (one row of ``clipviz reproduce wall``'s table)."""

    source: str  #: what was measured
    label: str  #: the row's label
    points: int  #: points measured
    grad_norm_median: float | None  #: median |g|
    spearman_curvature: float | None  #: Spearman rank correlation of |g^T H g|/|g|^2 with |g|
    angle_median: float | None  #: median angle between g and the top eigenvector (deg)
    angle_q1: float | None  #: its first quartile
    angle_q3: float | None  #: its third quartile
    aligned_share: float | None  #: share of points with that angle below ``SETTINGS.wall_aligned_deg``
    curvature_share: float | None  #: median |g^T H g / |g|^2| / |lambda_max|: 1 when g is the
    #: top eigenvector, as small as |lambda_min / lambda_max| otherwise
    compared: int | None  #: points with both step losses (None: not measured)
    unclipped_higher: int | None  #: ... where the plain step landed higher than the clipped one
    loss_gap_median: float | None  #: median of (loss after plain step - loss after clipped step)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def summarise(source: str, label: str, grad_norm, curvature_along_g, lambda_max_abs, angle_deg,
              loss_unclipped=None, loss_clipped=None) -> WallSummary:
    """Reduce per-point measures (equal-length arrays) to a :class:`WallSummary`.

    Points with a non-finite |g|, curvature or angle are left out; the loss columns count the
    points where both losses are known (an infinite loss after the plain step counts: it left
    the finite numbers, higher than any finite loss).  Spearman needs at least 3 points.
    """
    from scipy.stats import spearmanr

    g = np.asarray(grad_norm, dtype=np.float64).ravel()
    c = np.asarray(curvature_along_g, dtype=np.float64).ravel()
    lam = np.asarray(lambda_max_abs, dtype=np.float64).ravel()
    a = np.asarray(angle_deg, dtype=np.float64).ravel()
    if not g.size == c.size == lam.size == a.size:
        raise ValueError("grad_norm, curvature_along_g, lambda_max_abs and angle_deg must have "
                         "the same length")
    ok = np.isfinite(g) & (g > 0) & np.isfinite(c) & np.isfinite(a) & np.isfinite(lam)
    g, c, lam, a = g[ok], np.abs(c[ok]), np.abs(lam[ok]), a[ok]
    n = int(g.size)
    rho = None
    if n >= 3 and np.ptp(g) > 0 and np.ptp(c) > 0:
        rho = V.finite_or_none(spearmanr(g, c).statistic)
    compared = higher = gap = None
    if loss_unclipped is not None and loss_clipped is not None:
        lu = np.asarray(loss_unclipped, dtype=np.float64).ravel()
        lc = np.asarray(loss_clipped, dtype=np.float64).ravel()
        both = ~np.isnan(lu) & np.isfinite(lc)
        compared = int(both.sum())
        higher = int(np.sum(lu[both] > lc[both]))
        gap = V.finite_or_none(np.median(lu[both] - lc[both])) if compared else None
    with np.errstate(divide="ignore", invalid="ignore"):
        share = c / lam
    share = share[np.isfinite(share)]
    return WallSummary(
        source=source, label=label, points=n,
        grad_norm_median=V.finite_or_none(np.median(g)) if n else None, spearman_curvature=rho,
        angle_median=V.finite_or_none(np.median(a)) if n else None,
        angle_q1=V.finite_or_none(np.quantile(a, 0.25)) if n else None,
        angle_q3=V.finite_or_none(np.quantile(a, 0.75)) if n else None,
        aligned_share=V.finite_or_none(np.mean(a < SETTINGS.wall_aligned_deg)) if n else None,
        curvature_share=V.finite_or_none(np.median(share)) if share.size else None,
        compared=compared, unclipped_higher=higher, loss_gap_median=gap)


def summarise_points(points: Sequence[WallPoint], source: str, label: str) -> WallSummary:
    """:func:`summarise` over :class:`WallPoint` s."""
    cols = {k: [getattr(p, k) for p in points] for k in
            ("grad_norm", "curvature_along_g", "lambda_max_abs", "angle_deg", "loss_unclipped",
             "loss_clipped")}
    return summarise(source, label, **cols)


# ---------------------------------------------------------------------------
# real networks: the snapshots of a run (clipviz.training.snapshots)
# ---------------------------------------------------------------------------


def _running_median_tau(snapshot: dict) -> float | None:
    g, r = snapshot.get("grad_norm"), snapshot.get("median_ratio")
    if g is None or r is None or not (math.isfinite(g) and math.isfinite(r) and r > 0):
        return None
    return g / r


def measure_snapshot(config, snapshot: dict, *, tau: float | None = None, source: str = "",
                     run: str = "", kind: str | None = None, tol: float | None = None,
                     seed: int = 0) -> WallPoint:
    """Section 2.4's measures at one kept snapshot of a run (:func:`clipviz.landscape.at_snapshot`).

    Parameters
    ----------
    config : TrainConfig or dict
        The run's config.
    snapshot : dict
        One of the run record's ``result["snapshots"]``.
    tau : float, optional
        Threshold of the clipped step (Algorithm 1).  Default: the running median |g| the
        snapshot was measured against (|g| / ``median_ratio``); where the snapshot has none
        (fewer than 10 earlier updates), the run's own threshold.
    tol : float, optional
        Lanczos tolerance (:func:`clipviz.landscape.curvature`).
    """
    if tau is None:
        tau = _running_median_tau(snapshot)
    p = L.at_snapshot(config, snapshot, tau=tau)
    losses = L.step_losses(p)
    cv = L.curvature(p.float64(), p.theta, p.window, tol=tol, seed=seed)
    kinds = tuple(snapshot.get("kinds", ()))
    ratio = snapshot.get("median_ratio")
    return WallPoint(
        source=source, run=run, update=p.update,
        kind=kind or ("spike" if "spike" in kinds else kinds[0] if kinds else "ordinary"),
        grad_norm=cv.grad_norm, median_ratio=math.nan if ratio is None else float(ratio),
        tau=p.tau, curvature_along_g=cv.curvature_along_g, lambda_max_abs=cv.lambda_max_abs,
        angle_deg=cv.angle_deg, loss=losses["at_theta"], loss_unclipped=losses["unclipped"],
        loss_clipped=losses["clipped"])


def measure_run(record, *, kinds: Sequence[str] = ("spike", "ordinary"), source: str = "",
                run: str = "", tau: float | None = None, tol: float | None = None) -> list[WallPoint]:
    """:func:`measure_snapshot` at every kept snapshot of ``record`` (a
    :class:`~clipviz.training.RunRecord` trained with a snapshot policy) of one of ``kinds`` and
    with a finite |g|, in update order.  A snapshot kept as both spike and clipped counts as a
    spike."""
    snaps = (record.result or {}).get("snapshots")
    if snaps is None:
        raise ValueError("the run kept no snapshots: train it with a SnapshotPolicy "
                         "(clipviz.training.runner.run(cfg, None, snapshots=policy))")
    out = []
    for s in snaps:
        mine = [k for k in ("spike", "clipped", "ordinary") if k in s.get("kinds", ()) and k in kinds]
        if not mine or s.get("grad_norm") is None:
            continue
        try:
            out.append(measure_snapshot(record.config, s, tau=tau, source=source, run=run,
                                        kind=mine[0], tol=tol))
        except ValueError as exc:  # a step left the finite numbers, Lanczos did not converge
            log.warning("%s update %s not measured: %s", run, s.get("update"), exc)
    return out


def largest_spike(record) -> dict:
    """The kept spike of ``record`` with the largest |g| (a non-finite |g| first): where a
    diverging run jumped off the wall."""
    spikes = [s for s in (record.result or {}).get("snapshots", []) if "spike" in s.get("kinds", ())]
    if not spikes:
        raise ValueError("the run kept no spike snapshot")
    return max(spikes, key=lambda s: math.inf if s.get("grad_norm") is None else s["grad_norm"])


# ---------------------------------------------------------------------------
# the slice through both steps
# ---------------------------------------------------------------------------


@dataclass
class StepSlice:
    """The window's objective on theta + alpha d1 + beta d2 with d1 = plain BPTT's step and d2
    spanning Algorithm 1's step with it (or a filter-normalised direction where the two steps
    are parallel: no momentum)."""

    slice: L.Slice  #: the grid of losses (rows beta, columns alpha)
    centre: tuple[int, int]  #: (row, column) of theta
    unclipped: tuple[int, int]  #: ... of theta + plain step (alpha 1, beta 0)
    clipped: tuple[int, int]  #: ... of theta + clipped step

    def loss_at(self, where: tuple[int, int]) -> float:
        return float(self.slice.losses[where])


def step_slice(point: L.SnapshotPoint, *, n_alpha: int = 41, n_beta: int = 21,
               span: float = 0.5, seed: int = 0) -> StepSlice:
    """The slice of :func:`clipviz.landscape.slice_2d` through theta, theta + the plain step and
    theta + the clipped step of ``point`` (:func:`clipviz.landscape.at_snapshot`).

    alpha runs over [-span, 1 + span] in units of the plain step, beta over [-1, 1] (in units
    of d2, whose norm is the clipped step's), both with the three points' own coordinates
    added, so the grid holds them exactly.
    """
    n_alpha = V.integer("n_alpha", n_alpha, 2, SETTINGS.max_grid)
    n_beta = V.integer("n_beta", n_beta, 1, SETTINGS.max_grid)
    span = V.finite("span", span)
    m = point.model
    u = np.asarray(point.step_unclipped, dtype=np.float64)
    c = np.asarray(point.step_clipped, dtype=np.float64)
    if not np.any(u):
        raise ValueError("the plain step is zero: there is no slice through it")
    d1 = L.given_direction(m, u, kind="unclipped step")
    try:
        d2 = L.orthogonalise(L.given_direction(m, c, kind="clipped step"), d1)
        # coordinates of the clipped step: c = a d1 + b d2
        a, b = np.linalg.lstsq(np.column_stack([d1.vector, d2.vector]), c, rcond=None)[0]
    except ValueError:  # the two steps are parallel (no momentum): c = a d1
        d2 = L.orthogonalise(L.filter_normalised_direction(m, point.theta, seed), d1)
        a, b = float(c @ u) / float(u @ u), 0.0
    al = np.unique(np.concatenate([np.linspace(-span, 1 + span, n_alpha), [0.0, 1.0, a]]))
    be = np.unique(np.concatenate([np.linspace(-1.0, 1.0, n_beta), [0.0, b]]))
    sl = L.slice_2d(m, point.theta, point.window, d1, d2, al, be)

    def at(x, y):
        return int(np.argmin(np.abs(be - y))), int(np.argmin(np.abs(al - x)))

    return StepSlice(sl, at(0.0, 0.0), at(1.0, 0.0), at(a, b))


# ---------------------------------------------------------------------------
# the one-unit model of equation (14)
# ---------------------------------------------------------------------------


def _one_unit_point(w, b, lr, tau, *, steps, x0, target, activation, run, update, ratio):
    from . import one_unit

    kw = dict(steps=steps, x0=x0, target=target, activation=activation)
    E, gw, gb = one_unit.loss_grad(w, b, **kw)
    g = np.array([gw, gb])
    gn = float(np.hypot(gw, gb))
    Hm = one_unit.loss_hessian(w, b, **kw)
    lam, vec = np.linalg.eigh(Hm)
    i = int(np.argmax(np.abs(lam)))
    curv = float(g @ Hm @ g) / gn ** 2

    def after(scale):
        nw, nb = w - lr * scale * gw, b - lr * scale * gb
        if not (math.isfinite(nw) and math.isfinite(nb)):
            return math.inf
        return one_unit.loss(nw, nb, **kw)

    return WallPoint(source="one_unit", run=run, update=update, kind="spike", grad_norm=gn,
                     median_ratio=ratio, tau=tau, curvature_along_g=curv,
                     lambda_max_abs=float(lam[i]), angle_deg=L._angle_deg(g, vec[:, i]), loss=E,
                     loss_unclipped=after(1.0), loss_clipped=after(min(1.0, tau / gn)))


def one_unit_spikes(starts: Sequence[tuple[float, float]], *, lr: float = SETTINGS.wall_one_unit_lr,
                    n_steps: int = SETTINGS.wall_one_unit_steps,
                    spike_factor: float = SETTINGS.wall_spike_factor,
                    median_window: int = SETTINGS.wall_median_window, steps: int = SETTINGS.steps,
                    x0: float = SETTINGS.x0, target: float = SETTINGS.target,
                    activation: str = SETTINGS.activation) -> list[WallPoint]:
    """Section 2.4's measures at the spikes of plain gradient descents on E_T(w, b) (equation
    (14), :func:`clipviz.one_unit.descend`) from each of ``starts``.

    A spike is a step whose |g| is above ``spike_factor`` times the median of the previous
    ``median_window`` (at least 10) norms, the rule a training run's snapshots use
    (:class:`clipviz.training.snapshots.SnapshotKeeper`); the clipped step's tau is that
    median.  The gradient and the 2x2 Hessian are exact.
    """
    from . import one_unit
    from .training.snapshots import SnapshotKeeper, SnapshotPolicy

    policy = SnapshotPolicy(max_clipped=0, max_spikes=1, max_ordinary=0,
                            spike_factor=float(spike_factor), median_window=int(median_window))
    out: list[WallPoint] = []
    for w0, b0 in starts:
        tr = one_unit.descend(w0, b0, lr=lr, n_steps=n_steps, steps=steps, x0=x0, target=target,
                              activation=activation)
        keeper = SnapshotKeeper(policy)  # only asked, never given a snapshot: no cap
        for i, gn in enumerate(tr.grad_norm):
            kinds, ratio = keeper.wants(i + 1, float(gn), False)
            if "spike" not in kinds or not math.isfinite(gn) or i >= len(tr.params):
                continue
            w, b = tr.params[i]
            out.append(_one_unit_point(float(w), float(b), lr, float(gn) / ratio, steps=steps,
                                       x0=x0, target=target, activation=activation,
                                       run=f"start ({w0:.3g}, {b0:.3g})", update=i + 1,
                                       ratio=float(ratio)))
    return out


def surface_summaries(ca) -> list[WallSummary]:
    """:class:`WallSummary` rows of the one-unit surface's measure
    (:func:`clipviz.dynamics.curvature_alignment`): every grid point, and the top 1 % of |g|
    (the wall).  The surface has no steps: its loss columns are empty."""
    g = ca.grad_norm.ravel()
    ok = np.isfinite(ca.angle_deg.ravel())
    top = ok & (g >= np.quantile(g[ok], 0.99))
    cols = (ca.grad_norm, ca.curv_along_grad, ca.lead_eig, ca.angle_deg)
    flat = [np.ravel(x) for x in cols]
    return [summarise("one_unit_surface", "one-unit surface, every grid point", *flat),
            summarise("one_unit_surface", "one-unit surface, top 1 % of ‖g‖",
                      *[x[top] for x in flat])]
