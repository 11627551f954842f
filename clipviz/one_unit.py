"""The one-unit recurrent model of the paper's section 2.4, equation (14).

    x_t = w * sigma(x_{t-1}) + b,   t = 1..T,   E_T = (sigma(x_T) - target)^2

The paper's Figure 3 plots E_50 with x_0 = 0.5 and target 0.7; these are the
defaults here.  All derivatives are exact (forward-mode recursions in
:mod:`clipviz.kernels.one_unit`), not finite differences.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from . import _validate as v
from . import clipping
from .config import ACTIVATIONS, SETTINGS
from .kernels import one_unit as k
from .kernels.activations import CODES

log = logging.getLogger(__name__)

__all__ = [
    "forward", "loss", "loss_grad", "loss_hessian", "error_surface", "descend",
    "Surface", "Trajectory",
]


def _common(steps, x0, activation, target=None):
    steps = v.integer("steps", steps, 1, SETTINGS.max_steps)
    x0 = v.finite("x0", x0)
    act = CODES[v.choice("activation", activation, ACTIVATIONS)]
    if target is None:
        return steps, x0, act
    return steps, x0, act, v.finite("target", target)


def forward(w: float, b: float, *, steps: int = SETTINGS.steps, x0: float = SETTINGS.x0,
            activation: str = SETTINGS.activation) -> np.ndarray:
    """States of equation (14).

    Returns
    -------
    ndarray, shape (steps + 1,)
        x_0, x_1, ..., x_T.
    """
    steps, x0, act = _common(steps, x0, activation)
    return k.forward(v.finite("w", w), v.finite("b", b), steps, x0, act)


def _derivs(w, b, steps, x0, target, activation) -> np.ndarray:
    steps, x0, act, target = _common(steps, x0, activation, target)
    return k.point_derivatives(v.finite("w", w), v.finite("b", b), steps, x0, target, act)


def loss(w: float, b: float, *, steps: int = SETTINGS.steps, x0: float = SETTINGS.x0,
         target: float = SETTINGS.target, activation: str = SETTINGS.activation) -> float:
    """E_T = (sigma(x_T) - target)^2 at (w, b)."""
    return float(_derivs(w, b, steps, x0, target, activation)[0])


def loss_grad(w: float, b: float, *, steps: int = SETTINGS.steps, x0: float = SETTINGS.x0,
              target: float = SETTINGS.target,
              activation: str = SETTINGS.activation) -> tuple[float, float, float]:
    """E_T and its exact gradient.

    Returns
    -------
    (E, dE_dw, dE_db)
    """
    d = _derivs(w, b, steps, x0, target, activation)
    return float(d[0]), float(d[1]), float(d[2])


def loss_hessian(w: float, b: float, *, steps: int = SETTINGS.steps, x0: float = SETTINGS.x0,
                 target: float = SETTINGS.target,
                 activation: str = SETTINGS.activation) -> np.ndarray:
    """Exact 2x2 Hessian of E_T in the order (w, b)."""
    d = _derivs(w, b, steps, x0, target, activation)
    return np.array([[d[3], d[4]], [d[4], d[5]]])


@dataclass
class Surface:
    """E_T and its derivatives over a grid; arrays have shape (len(bs), len(ws))."""

    ws: np.ndarray  #: w values (columns)
    bs: np.ndarray  #: b values (rows)
    E: np.ndarray  #: E_T
    dE_dw: np.ndarray  #: exact dE/dw
    dE_db: np.ndarray  #: exact dE/db
    d2E_dw2: np.ndarray | None = None  #: Hessian entries, when asked for
    d2E_dwdb: np.ndarray | None = None
    d2E_db2: np.ndarray | None = None

    @property
    def grad_norm(self) -> np.ndarray:
        """||(dE/dw, dE/db)|| at every grid point."""
        return np.hypot(self.dE_dw, self.dE_db)


def error_surface(ws, bs, *, steps: int = SETTINGS.steps, x0: float = SETTINGS.x0,
                  target: float = SETTINGS.target, activation: str = SETTINGS.activation,
                  hessian: bool = False) -> Surface:
    """E_T with its exact gradient (and optionally Hessian) over a (w, b) grid.

    Rows are b, columns are w.  Derivatives that overflow float64 (possible
    for very long unrolls, |w| sigma' > 1 over thousands of steps) come back
    as +/-inf, never NaN.

    Parameters
    ----------
    ws, bs : sequence of float
        Grid coordinates, at most ``SETTINGS.max_grid`` points each.
    hessian : bool
        Also compute the 2x2 Hessian at every point (same single pass).
    """
    ws = v.finite_array("ws", ws, SETTINGS.max_grid)
    bs = v.finite_array("bs", bs, SETTINGS.max_grid)
    steps, x0, act, target = _common(steps, x0, activation, target)
    shape = (bs.size, ws.size)
    E = np.empty(shape)
    gw = np.empty(shape)
    gb = np.empty(shape)
    if hessian:
        hs = [np.empty(shape) for _ in range(3)]
        k.surface_hessian(ws, bs, steps, x0, target, act, E, gw, gb, *hs)
        arrays = [gw, gb, *hs]
    else:
        k.surface_grad(ws, bs, steps, x0, target, act, E, gw, gb)
        hs = [None, None, None]
        arrays = [gw, gb]
    for a in arrays:
        _nan_to_inf(a)
    return Surface(ws, bs, E, gw, gb, *hs)


def _nan_to_inf(a: np.ndarray) -> None:
    # 0 * inf (a saturated sigma' times an overflowed x_w) is an overflow, not an undefined value.
    bad = np.isnan(a)
    if bad.any():
        a[bad] = np.inf


@dataclass
class Trajectory:
    """A gradient-descent run on E_T.

    ``params`` and ``loss`` have one row per visited point; ``grad_norm`` and
    ``clipped`` one entry per step attempted.  If the run diverged at step k
    (its gradient was not finite, or its update left the bound
    ``SETTINGS.divergence_bound``), that step is recorded in ``grad_norm``
    (``inf`` for a non-finite gradient) but not applied: ``params`` stops at
    the last finite point (k + 1 rows), ``grad_norm`` has k + 1 entries and
    ``diverged_at == k``.  No array ever holds NaN.
    """

    params: np.ndarray  #: (n+1, 2) columns w, b
    loss: np.ndarray  #: (n+1,) E_T at each point
    grad_norm: np.ndarray  #: (n,) ||g|| before clipping
    clipped: np.ndarray  #: (n,) bool, the clipping rule fired
    diverged_at: int | None  #: step index where the run diverged, or None
    clip: str = "none"  #: rule used
    threshold: float | None = None  #: tau, when the rule has one

    @property
    def n_steps(self) -> int:
        """Number of steps actually taken."""
        return int(self.grad_norm.size)


def descend(w0: float, b0: float, *, lr: float, n_steps: int, clip: str | clipping.Rule = "none",
            threshold: float | None = None, percentile: float | None = None,
            steps: int = SETTINGS.steps, x0: float = SETTINGS.x0,
            target: float = SETTINGS.target,
            activation: str = SETTINGS.activation) -> Trajectory:
    """Plain gradient descent on E_T from (w0, b0), with any clipping rule.

    theta <- theta - lr * clip(grad E_T(theta)), using a
    :class:`clipviz.clipping.Rule` (the same code path as training).

    Parameters
    ----------
    lr : float
        Learning rate, > 0.
    n_steps : int
        Number of descent steps, 1 .. ``SETTINGS.max_descent_steps``.
    clip : str or Rule
        A registered rule's name (:func:`clipviz.clipping.names`; ``"norm"`` is the paper's
        Algorithm 1) or a rule object, e.g. ``clipping.NormClip(1.0)`` (a fresh copy is used).
    threshold, percentile
        The named rule's parameters (see :mod:`clipviz.clipping`); ignored for a rule object.
    """
    w = v.finite("w0", w0)
    b = v.finite("b0", b0)
    lr = v.finite("lr", lr)
    if lr <= 0:
        raise ValueError(f"lr must be > 0, got {lr}")
    n_steps = v.integer("n_steps", n_steps, 1, SETTINGS.max_descent_steps)
    steps, x0, act, target = _common(steps, x0, activation, target)
    clipper = clipping.make(clip, {"threshold": threshold, "percentile": percentile})
    bound = SETTINGS.divergence_bound

    params = np.empty((n_steps + 1, 2))
    losses = np.empty(n_steps + 1)
    norms = np.empty(n_steps)
    fired = np.zeros(n_steps, dtype=bool)
    params[0] = w, b
    d = k.point_derivatives(w, b, steps, x0, target, act)
    losses[0] = d[0]
    diverged = None
    n = 0
    for i in range(n_steps):
        out = clipper.step(d[1:3])
        if out.skipped:
            norms[i] = out.norm
            diverged = i
            break
        nw = w - lr * out.g[0]
        nb = b - lr * out.g[1]
        if not (abs(nw) <= bound and abs(nb) <= bound):
            norms[i] = out.norm
            fired[i] = out.fired
            diverged = i
            break
        w, b = nw, nb
        norms[i] = out.norm
        fired[i] = out.fired
        d = k.point_derivatives(w, b, steps, x0, target, act)
        params[i + 1] = w, b
        losses[i + 1] = d[0]
        n = i + 1
    if diverged is not None:
        log.debug("descent from (%g, %g) diverged at step %d", w0, b0, diverged)
    taken = n if diverged is None else diverged + 1
    return Trajectory(
        params=params[: n + 1].copy(), loss=losses[: n + 1].copy(),
        grad_norm=norms[:taken].copy(), clipped=fired[:taken].copy(),
        diverged_at=diverged, clip=clipper.name,
        threshold=clipper.threshold if clipper.line else None,
    )
