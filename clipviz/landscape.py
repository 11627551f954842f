"""Error-surface slices and curvature of a real RNN at one update (issue 16).

Section 2.4 of the paper hypothesises that when the gradient explodes the
curvature explodes along it: the error surface has a steep wall, and
clipping (Algorithm 1) keeps the step from flying off it.  This module
measures that on the real networks of :mod:`clipviz.training`:

* :func:`slice_2d` -- the window's objective (the same objective and
  normalisation as :meth:`clipviz.training.model.RNN.window`:
  loss_sum / norm) on the grid theta + alpha d1 + beta d2;
* directions -- :func:`gradient_direction`, :func:`filter_normalised_direction`
  (Li et al. 2018), :func:`given_direction` (e.g. the update actually taken),
  the top Hessian eigenvector (:attr:`Curvature.eigenvector`), and
  :func:`orthogonalise`;
* curvature -- :func:`hvp` (exact Hessian-vector product, Pearlmutter's
  R-operator through BPTT), :func:`curvature` (g^T H g / |g|^2, the top
  Hessian eigenvalues by Lanczos, the angle between g and the top
  eigenvector) and :func:`dense_hessian` (for small models and tests).

Every computation here is on one window (a minibatch of sequences and the
state carried into it); the carried-in state is a constant of the window, as
in truncated BPTT.  Curvature is always computed in float64.
"""

from __future__ import annotations

import contextlib
import logging
import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from . import _validate as V
from .config import SETTINGS
from .kernels import landscape as kl
from .kernels import rnn as kr
from .training.model import RNN

log = logging.getLogger(__name__)

__all__ = ["Window", "Direction", "Slice", "Curvature", "slice_2d", "gradient_direction",
           "filter_normalised_direction", "given_direction", "orthogonalise", "hvp",
           "curvature", "dense_hessian", "window_loss", "SnapshotPoint", "at_snapshot",
           "step_losses", "Cancelled", "SnapshotSlice", "snapshot_slice"]


class Cancelled(Exception):
    """A computation stopped by its ``cancel`` check (:func:`slice_2d`, :func:`snapshot_slice`)."""


@dataclass
class Window:
    """One window of data: what an update of :func:`clipviz.training.runner` used.

    X : (T, B, I) inputs; targets : (T, B) class ids (softmax) or (T, B, O)
    binary (sigmoid outputs); weights : (T, B) step weights; state : (B, H)
    carried-in state (None: zeros); norm : divisor of the objective (None: B,
    as :meth:`RNN.window`).
    """

    X: np.ndarray
    targets: np.ndarray
    weights: np.ndarray
    state: np.ndarray | None = None
    norm: float | None = None


@dataclass
class Direction:
    """A direction in parameter space (flat layout of :class:`RNN`)."""

    vector: np.ndarray  #: the direction (float64, length n_params)
    kind: str  #: "gradient", "eigenvector", "filter", "given", or "orthogonalised ..."
    raw_norm: float  #: |.| of the vector before any normalisation (e.g. |g|)

    @property
    def norm(self) -> float:
        """|vector| (the scale of one unit of alpha or beta)."""
        return float(np.linalg.norm(self.vector))


@dataclass
class Slice:
    """The objective on theta + alpha d1 + beta d2."""

    alphas: np.ndarray  #: (na,) coordinates along d1
    betas: np.ndarray  #: (nb,) coordinates along d2
    losses: np.ndarray  #: (nb, na) float64 objective; rows are beta, columns alpha
    d1_norm: float  #: |d1|
    d2_norm: float  #: |d2|
    cosine: float  #: d1 . d2 / (|d1| |d2|) (0 after :func:`orthogonalise`)
    dtype: str  #: precision of the evaluation (the model's)


@dataclass
class Curvature:
    """Curvature of the window's objective at theta (float64)."""

    loss: float  #: the objective at theta
    grad_norm: float  #: |g|
    curvature_along_g: float  #: g^T H g / |g|^2 (nan when g = 0)
    lambda_max_abs: float  #: the eigenvalue of largest modulus (signed)
    lambda_max: float  #: the largest algebraic eigenvalue
    eigenvector: np.ndarray  #: unit eigenvector of lambda_max_abs
    angle_deg: float  #: angle between g and +-eigenvector, in [0, 90] degrees
    hvps: int  #: Hessian-vector products used


# ---------------------------------------------------------------------------
# arguments
# ---------------------------------------------------------------------------


def _as_window(window) -> Window:
    if isinstance(window, Window):
        return window
    if isinstance(window, (tuple, list)) and 3 <= len(window) <= 5:
        return Window(*window)
    raise ValueError("window must be a clipviz.landscape.Window or a tuple "
                     "(X, targets, weights[, state[, norm]])")


def _theta(model: RNN, theta, dtype) -> np.ndarray:
    th = model.theta if theta is None else theta
    th = np.asarray(th)
    if th.shape != (model.n_params,):
        raise ValueError(f"theta must have the model's {model.n_params} parameters, got shape "
                         f"{th.shape}")
    th = np.ascontiguousarray(th, dtype=dtype)
    if not np.all(np.isfinite(th)):
        raise ValueError("theta must contain only finite numbers")
    return th


def _vector(model: RNN, name: str, v) -> np.ndarray:
    if isinstance(v, Direction):
        v = v.vector
    a = np.asarray(v, dtype=np.float64)
    if a.shape != (model.n_params,):
        raise ValueError(f"{name} must have the model's {model.n_params} parameters, got shape "
                         f"{a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} must contain only finite numbers")
    return np.ascontiguousarray(a)


@dataclass
class _Data:
    X2: np.ndarray
    ti: np.ndarray
    tb: np.ndarray
    w: np.ndarray
    state: np.ndarray
    norm: float
    T: int
    B: int


def _data(model: RNN, window, dtype) -> _Data:
    win = _as_window(window)
    X = np.asarray(win.X)
    if X.ndim != 3 or X.shape[2] != model.n_in:
        raise ValueError(f"X must have shape (T, B, {model.n_in}), got {X.shape}")
    T, B, I = X.shape
    if T < 1 or B < 1:
        raise ValueError("the window must have at least one step and one sequence")
    if model.output == "softmax":
        tg = np.asarray(win.targets)
        if tg.shape != (T, B):
            raise ValueError(f"targets must have shape {(T, B)} (class ids), got {tg.shape}")
        ti = np.ascontiguousarray(tg, dtype=np.int64).reshape(T * B)
        if ti.size and (ti.min() < 0 or ti.max() >= model.n_out):
            raise ValueError(f"targets must be class ids from 0 to {model.n_out - 1}")
        tb = np.zeros((0, 0), dtype=dtype)
    else:
        tg = np.asarray(win.targets)
        if tg.shape != (T, B, model.n_out):
            raise ValueError(f"targets must have shape {(T, B, model.n_out)}, got {tg.shape}")
        ti = np.zeros(0, dtype=np.int64)
        tb = np.ascontiguousarray(tg, dtype=dtype).reshape(T * B, model.n_out)
    w = np.asarray(win.weights, dtype=np.float64)
    if w.shape != (T, B) or not np.all(np.isfinite(w)):
        raise ValueError(f"weights must be finite with shape {(T, B)}, got {w.shape}")
    state = model.zero_state(B) if win.state is None else np.asarray(win.state)
    if state.shape != (B, model.n_hidden):
        raise ValueError(f"state must have shape {(B, model.n_hidden)}, got {state.shape}")
    norm = V.finite("norm", B if win.norm is None else win.norm)
    if norm <= 0:
        raise ValueError("norm must be positive")
    X2 = np.ascontiguousarray(X, dtype=dtype).reshape(T * B, I)
    return _Data(X2, ti, tb, np.ascontiguousarray(w.reshape(T * B)),
                 np.ascontiguousarray(state, dtype=dtype), float(norm), T, B)


def _blas_one_thread():
    """One BLAS thread: the slice kernel's parallel blocks each call BLAS."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - a declared dependency
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


# ---------------------------------------------------------------------------
# the objective, its gradient and Hessian-vector products (float64)
# ---------------------------------------------------------------------------


class _Engine:
    """rnn_window + rnn_hvp on one window in float64, with reusable work arrays."""

    def __init__(self, model: RNN, theta, window):
        self.model = model
        self.theta = _theta(model, theta, np.float64)
        self.d = _data(model, window, np.float64)
        d = self.d
        H, O, TB = model.n_hidden, model.n_out, d.T * d.B
        self.Z = np.empty((TB, H))
        self.Hs = np.empty(((d.T + 1) * d.B, H))
        self.Y = np.empty((TB, O))
        self.dY = np.empty((TB, O))
        self.dH = np.empty((TB, H))
        self.DZ = np.empty((TB, H))
        self.grad = np.zeros(model.n_params)
        self.loss = self._forward_backward(self.theta, self.grad)
        self.n_hvp = 0

    def _parts(self, flat):
        m = self.model
        v = m.views(flat)
        zb = np.zeros(m.n_hidden)
        zc = np.zeros(m.n_out)
        return v["W"], v["U"], v.get("b", zb), v["V"], v.get("c", zc)

    def _forward_backward(self, theta, grad) -> float:
        m, d = self.model, self.d
        W, U, b, Vo, c = self._parts(theta)
        gW, gU, gb, gV, gc = self._parts(grad)
        if not m.bias:
            gb, gc = np.zeros(m.n_hidden), np.zeros(m.n_out)
        s_out = np.empty_like(d.state)
        total, _, _ = kr.rnn_window(W, U, b, Vo, c, m._act, m._out, m.parametrisation == "paper",
                                    d.state, d.X2, d.ti, d.tb, d.w, d.norm, self.Z, self.Hs,
                                    self.Y, self.dY, self.dH, self.DZ, True, gW, gU, gb, gV, gc,
                                    s_out)
        return float(total) / d.norm

    def gradient_at(self, theta) -> tuple[float, np.ndarray]:
        """Objective and gradient at another theta (work arrays are rewritten)."""
        g = np.zeros(self.model.n_params)
        loss = self._forward_backward(np.ascontiguousarray(theta, dtype=np.float64), g)
        self._forward_backward(self.theta, np.zeros(self.model.n_params))  # restore
        return loss, g

    def hvp(self, v: np.ndarray) -> np.ndarray:
        m, d = self.model, self.d
        W, U, _, Vo, _ = self._parts(self.theta)
        vW, vU, vb, vV, vc = self._parts(np.ascontiguousarray(v, dtype=np.float64))
        out = np.zeros(m.n_params)
        hW, hU, hb, hV, hc = self._parts(out)
        if not m.bias:
            hb, hc = np.zeros(m.n_hidden), np.zeros(m.n_out)
        kl.rnn_hvp(W, U, Vo, vW, vU, vb, vV, vc, m._act, m._out, d.B, d.X2, self.Hs, self.Y,
                   self.dY, self.dH, self.DZ, d.w, d.norm, hW, hU, hb, hV, hc)
        self.n_hvp += 1
        return out


def window_loss(model: RNN, theta, window) -> tuple[float, np.ndarray]:
    """The objective loss_sum / norm and its gradient (float64, exact BPTT) at theta."""
    e = _Engine(model, theta, window)
    return e.loss, e.grad.copy()


def hvp(model: RNN, theta, window, v) -> np.ndarray:
    """The exact Hessian-vector product H v of the window's objective at theta (float64).

    Forward-over-reverse (Pearlmutter 1994): the R-operator applied to the
    forward pass (equation (2)) and to BPTT (equations (3)-(5)); see
    :func:`clipviz.kernels.landscape.rnn_hvp`.
    """
    e = _Engine(model, theta, window)
    return e.hvp(_vector(model, "v", v))


def dense_hessian(model: RNN, theta, window) -> np.ndarray:
    """The full (n, n) Hessian, column by column from n HVPs (small models only)."""
    if model.n_params > SETTINGS.max_dense_hessian_params:
        raise ValueError(f"dense_hessian builds n HVPs; the model has {model.n_params} "
                         f"parameters, at most {SETTINGS.max_dense_hessian_params} are allowed "
                         "(use curvature() for large models)")
    e = _Engine(model, theta, window)
    n = model.n_params
    Hm = np.empty((n, n))
    unit = np.zeros(n)
    for i in range(n):
        unit[i] = 1.0
        Hm[:, i] = e.hvp(unit)
        unit[i] = 0.0
    return Hm


def _angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        return math.nan
    c = min(1.0, abs(float(a @ b)) / (na * nb))
    return math.degrees(math.acos(c))


def curvature(model: RNN, theta, window, *, tol: float | None = None,
              maxiter: int | None = None, seed: int = 0,
              cancel: Callable[[], bool] | None = None) -> Curvature:
    """Curvature of the window's objective at theta (section 2.4's wall).

    * g^T H g / |g|^2: the curvature along the gradient;
    * the top Hessian eigenvalues (largest modulus, largest algebraic) by
      Lanczos (:func:`scipy.sparse.linalg.eigsh`) on exact HVPs, with
      ``tol`` and ``maxiter`` (defaults :attr:`Settings.lanczos_tol`,
      :attr:`Settings.lanczos_maxiter`), started from a seeded random vector;
    * the angle between g and the eigenvector of largest modulus.

    The paper's hypothesis predicts a large |lambda| and a small angle where
    |g| explodes.  ``cancel()`` is asked before every HVP: True stops the
    computation with :class:`Cancelled`.
    """
    from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh

    tol = SETTINGS.lanczos_tol if tol is None else V.finite("tol", tol)
    if tol < 0:
        raise ValueError("tol must be >= 0")
    maxiter = V.integer("maxiter", SETTINGS.lanczos_maxiter if maxiter is None else maxiter,
                        1, 100_000)
    e = _Engine(model, theta, window)
    n = model.n_params
    g = e.grad
    gn = float(np.linalg.norm(g))
    cg = float(g @ e.hvp(g)) / gn ** 2 if gn > 0 else math.nan

    def matvec(x):
        if cancel is not None and cancel():
            raise Cancelled("curvature cancelled")
        return e.hvp(np.ravel(x))

    op = LinearOperator((n, n), matvec=matvec, dtype=np.float64)
    v0 = np.random.default_rng(seed).standard_normal(n)
    ncv = min(n, max(SETTINGS.lanczos_ncv, 3))

    def top(which):
        if n <= 2:  # ARPACK needs n > k + 1; tiny models: the dense Hessian
            Hm = np.column_stack([e.hvp(np.eye(n)[i]) for i in range(n)])
            lam, vec = np.linalg.eigh(0.5 * (Hm + Hm.T))
            i = int(np.argmax(np.abs(lam))) if which == "LM" else int(np.argmax(lam))
            return float(lam[i]), vec[:, i]
        try:
            lam, vec = eigsh(op, k=1, which=which, tol=tol, maxiter=maxiter, v0=v0, ncv=ncv)
        except ArpackNoConvergence as exc:
            if len(exc.eigenvalues) == 0:
                raise ValueError(f"Lanczos did not converge in {maxiter} iterations "
                                 f"(tol {tol}); raise maxiter or tol") from None
            log.warning("Lanczos stopped at maxiter=%d before tol=%g", maxiter, tol)
            lam, vec = exc.eigenvalues, exc.eigenvectors
        return float(lam[0]), np.asarray(vec[:, 0], dtype=np.float64)

    lam_abs, vec = top("LM")
    lam_alg, _ = top("LA")
    lam_alg = max(lam_alg, lam_abs)  # the LM pair may be the larger
    vec = vec / np.linalg.norm(vec)
    return Curvature(loss=e.loss, grad_norm=gn, curvature_along_g=cg, lambda_max_abs=lam_abs,
                     lambda_max=lam_alg, eigenvector=vec, angle_deg=_angle_deg(g, vec),
                     hvps=e.n_hvp)


# ---------------------------------------------------------------------------
# directions
# ---------------------------------------------------------------------------


def gradient_direction(model: RNN, theta, window, *, normalise: bool = True) -> Direction:
    """The window's gradient g (exact BPTT, float64), scaled to unit length if ``normalise``."""
    _, g = window_loss(model, theta, window)
    n = float(np.linalg.norm(g))
    if normalise:
        if n == 0:
            raise ValueError("the gradient is zero here; it gives no direction")
        g = g / n
    return Direction(g, "gradient", n)


def given_direction(model: RNN, vector, *, normalise: bool = False,
                    kind: str = "given") -> Direction:
    """An arbitrary direction, e.g. the update actually taken (theta_{k+1} - theta_k)."""
    v = _vector(model, "vector", vector)
    n = float(np.linalg.norm(v))
    if normalise:
        if n == 0:
            raise ValueError("a zero vector gives no direction")
        v = v / n
    return Direction(v, kind, n)


def filter_normalised_direction(model: RNN, theta, rng: np.random.Generator | int = 0, *,
                                bias: str = "zero") -> Direction:
    """A random direction normalised filter by filter, as in Li et al. (2018).

    Gaussian entries; each row of each weight matrix (the incoming weights of
    one unit, a "filter" of tomgoldstein/loss-landscape's
    ``normalize_direction(norm='filter')``) is rescaled to the norm of the
    same row of theta (d <- d |w| / (|d| + 1e-10)).  One-dimensional
    parameters (the biases b and c): ``bias="zero"`` sets them to zero (their
    ``ignore='biasbn'``, the setting of the paper's figures), ``bias="copy"``
    copies theta's values (their default without ``ignore``).
    """
    V.choice("bias", bias, ("zero", "copy"))
    th = _theta(model, theta, np.float64)
    rng = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
    d = rng.standard_normal(model.n_params)
    dv, tv = model.views(d), model.views(th)
    for name, arr in dv.items():
        if arr.ndim == 1:
            arr[...] = 0.0 if bias == "zero" else tv[name]
        else:
            arr *= (np.linalg.norm(tv[name], axis=1) /
                    (np.linalg.norm(arr, axis=1) + 1e-10))[:, None]
    return Direction(d, "filter", float(np.linalg.norm(d)))


def orthogonalise(d2: Direction | np.ndarray, d1: Direction | np.ndarray) -> Direction:
    """d2 minus its projection on d1 (Gram-Schmidt), keeping d2's norm."""
    a = d1.vector if isinstance(d1, Direction) else np.asarray(d1, dtype=np.float64)
    b = d2.vector if isinstance(d2, Direction) else np.asarray(d2, dtype=np.float64)
    kind = d2.kind if isinstance(d2, Direction) else "given"
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0:
        raise ValueError("d1 is zero; nothing to orthogonalise against")
    r = b - (b @ a) / (na * na) * a
    nr = np.linalg.norm(r)
    if nr <= 1e-12 * max(nb, 1e-300):
        raise ValueError("d2 is parallel to d1; choose another second direction")
    return Direction(r * (nb / nr), f"orthogonalised {kind}", float(nb))


# ---------------------------------------------------------------------------
# the slice
# ---------------------------------------------------------------------------


def slice_2d(model: RNN, theta, window, d1, d2, alphas: Sequence[float],
             betas: Sequence[float], *, block: int | None = None,
             progress: Callable[[float], object] | None = None,
             cancel: Callable[[], bool] | None = None) -> Slice:
    """The window's objective on the grid theta + alpha d1 + beta d2.

    Same objective and normalisation as :meth:`RNN.window` (sum over steps
    and sequences of w_t loss_t, divided by ``norm``), in the model's dtype;
    ``losses[i, j]`` is at (alphas[j], betas[i]).  The kernel evaluates all
    grid points side by side (:func:`clipviz.kernels.landscape.slice_losses`).

    ``progress(fraction)`` is called after each group of
    :attr:`Settings.slice_rows_per_report` grid rows, and ``cancel()`` before
    each: when it returns True the slice stops there and :class:`Cancelled`
    is raised (the Python loop runs over rows; the kernel computes a group).
    """
    dt = np.dtype(model.dtype)
    th = _theta(model, theta, dt)
    d = _data(model, window, dt)
    v1 = _vector(model, "d1", d1)
    v2 = _vector(model, "d2", d2)
    al = V.finite_array("alphas", alphas, SETTINGS.max_grid)
    be = V.finite_array("betas", betas, SETTINGS.max_grid)
    G = al.size * be.size
    if G > SETTINGS.landscape_max_grid_points:
        raise ValueError(f"the grid has {G} points; at most "
                         f"{SETTINGS.landscape_max_grid_points} are allowed")
    H, O = model.n_hidden, model.n_out
    work = float(G) * d.T * d.B * (H * H + H * O)
    if work > SETTINGS.landscape_max_work:
        raise ValueError(f"this slice is {work:.3g} multiply-adds x 3; at most "
                         f"{SETTINGS.landscape_max_work:.3g} are allowed: use a coarser grid "
                         "or a shorter window")
    block = V.integer("block", SETTINGS.landscape_block if block is None else block, 1, 1 << 16)
    parts = [model.views(x.astype(dt)) for x in (th, v1, v2)]
    Wst = np.stack([p["W"] for p in parts])
    Vst = np.stack([p["V"] for p in parts])
    cc = np.zeros((3, O))
    IB = np.empty((3, d.T * d.B, H), dt)
    for k, p in enumerate(parts):
        np.dot(d.X2, p["U"].T, out=IB[k])
        if model.bias:
            IB[k] += p["b"]
            cc[k] = p["c"]
    out = np.empty((be.size, al.size))
    if progress is not None and not callable(progress):
        raise ValueError("progress must be callable or None")
    if cancel is not None and not callable(cancel):
        raise ValueError("cancel must be callable or None")
    rows = (be.size if progress is None and cancel is None
            else max(1, int(SETTINGS.slice_rows_per_report)))
    al_dt, be_dt = al.astype(dt), be.astype(dt)
    with _blas_one_thread():
        for r0 in range(0, be.size, rows):
            if cancel is not None and cancel():
                raise Cancelled(f"slice cancelled after {r0} of {be.size} rows")
            r1 = min(r0 + rows, be.size)
            kl.slice_losses(Wst, Vst, cc, IB, al_dt, np.ascontiguousarray(be_dt[r0:r1]),
                            model._act, model._out, model.parametrisation == "paper", d.state,
                            d.ti, d.tb, d.w, d.norm, block, out[r0:r1])
            if progress is not None:
                progress(r1 / be.size)
    n1, n2 = float(np.linalg.norm(v1)), float(np.linalg.norm(v2))
    cos = float(v1 @ v2) / (n1 * n2) if n1 > 0 and n2 > 0 else 0.0
    return Slice(al, be, out, n1, n2, cos, str(dt))


# ---------------------------------------------------------------------------
# a training run's snapshot (clipviz.training.snapshots)
# ---------------------------------------------------------------------------


@dataclass
class SnapshotPoint:
    """One kept update of a training run, rebuilt: where its gradient was computed and the
    three steps from there (section 3.2 of the paper, Algorithm 1).

    ``step_unclipped`` is plain BPTT's step -lr g (+ momentum's term); ``step_clipped`` the
    same with g rescaled to norm ``tau`` where |g| > tau (Algorithm 1); ``step_taken`` the one
    the run took (one of the two for the norm rule; the rule's own otherwise).
    """

    update: int  #: the update (1-based)
    kinds: tuple  #: why it was kept: "clipped", "spike", "ordinary"
    model: RNN  #: the run's model (float64 copy for curvature: :meth:`float64`)
    theta: np.ndarray  #: parameters at which the update's gradient was computed (model dtype)
    window: Window  #: the update's window, regenerated from the seed, and its carried-in state
    loss: float | None  #: the loss the run recorded for this update
    grad: np.ndarray  #: g at theta, recomputed exactly in float64
    step_taken: np.ndarray  #: theta_{u+1} - theta_u as the run took it
    step_unclipped: np.ndarray  #: plain BPTT's step
    step_clipped: np.ndarray  #: Algorithm 1's step with threshold ``tau``
    tau: float  #: the threshold of ``step_clipped``
    lr: float  #: the run's learning rate

    def float64(self) -> RNN:
        """The model in float64 (curvature is always computed in float64)."""
        m = self.model
        return RNN(m.n_in, m.n_hidden, m.n_out, activation=m.activation,
                   parametrisation=m.parametrisation, output=m.output, bias=m.bias,
                   dtype="float64")


def at_snapshot(config, snapshot: dict, *, tau: float | None = None) -> SnapshotPoint:
    """Rebuild a snapshot a run kept (``record.result["snapshots"][i]``).

    Parameters
    ----------
    config : TrainConfig or dict
        The run's config (``record.config``).
    snapshot : dict
        One stored snapshot (encoded, as in the record, or decoded).
    tau : float, optional
        Threshold of the clipped step.  Default: the run's own when its rule has one
        (``norm``, ``value``, ``norm_shrink``); required otherwise (a BPTT run).
    """
    from .training import TrainConfig
    from .training.snapshots import decode, replay

    cfg = config if isinstance(config, TrainConfig) else TrainConfig.from_dict(dict(config))
    cfg.validate()
    if not isinstance(snapshot, dict) or "theta" not in snapshot or "update" not in snapshot:
        raise ValueError("snapshot must be one of a run record's result['snapshots']")
    s = snapshot if isinstance(snapshot["theta"], np.ndarray) else decode(snapshot)
    if tau is None:
        tau = getattr(cfg.rule(), "threshold", None)  # NoClip's is nan
        if tau is None or not math.isfinite(tau):
            raise ValueError(f"the run's rule ({cfg.clip}) has no threshold: give tau, the "
                             "threshold of the clipped step to compare with")
    tau = V.finite("tau", tau)
    if not tau > 0:
        raise ValueError(f"tau must be a positive number, got {tau!r}")
    model, (X, Y, W, _) = replay(cfg, int(s["update"]))
    win = Window(X, Y, W, s["state"])
    theta = np.asarray(s["theta"])
    _, g = window_loss(model, theta, win)
    gn = float(np.linalg.norm(g))
    unclipped = np.asarray(s["step_unclipped"], dtype=np.float64)
    # the momentum term is what the plain step holds beyond -lr g
    momentum_term = unclipped + cfg.lr * g
    scale = min(1.0, tau / gn) if gn > 0 else 1.0
    clipped = momentum_term - cfg.lr * scale * g
    return SnapshotPoint(int(s["update"]), tuple(s.get("kinds", ())), model, theta, win,
                         s.get("loss"), g, np.asarray(s["step"], dtype=np.float64), unclipped,
                         clipped, float(tau), float(cfg.lr))


def step_losses(point: SnapshotPoint) -> dict[str, float]:
    """The window's objective (float64) at theta and after each step of ``point``: does the
    unclipped step land higher on the wall than the clipped one (section 2.4)?"""
    m = point.float64()
    th = np.asarray(point.theta, dtype=np.float64)
    out = {"at_theta": window_loss(m, th, point.window)[0]}
    for name in ("unclipped", "clipped", "taken"):
        step = getattr(point, f"step_{name}")
        try:
            out[name] = window_loss(m, th + step, point.window)[0]
        except ValueError:  # the step left the finite numbers
            out[name] = math.inf
    return out


@dataclass
class SnapshotSlice:
    """The error surface around a kept update, with plain BPTT's step and the clipped one
    (section 2.4, Algorithm 1), and the curvature there (:func:`snapshot_slice`).

    The plane is theta + alpha d1 + beta d2 with d1 plain BPTT's step (alpha = 1 is that step)
    and d2 orthogonal to it with the same length: the clipped step's own part orthogonal to d1
    where it has one (momentum), else the top Hessian eigenvector's, else a filter-normalised
    random direction's (``d2_kind``).  Step coordinates are (alpha, beta) in that plane.
    """

    update: int  #: the update (1-based)
    kinds: tuple  #: why it was kept
    slice: Slice  #: the objective on the plane (model dtype)
    d2_kind: str  #: what d2 was built from
    unclipped_at: tuple  #: (alpha, beta) of plain BPTT's step: (1, 0)
    clipped_at: tuple  #: (alpha, beta) of Algorithm 1's step
    clipped_off_plane: float  #: |clipped step - its projection on the plane| / |clipped step|
    unclipped_norm: float  #: |plain BPTT's step|
    clipped_norm: float  #: |clipped step|
    grad_norm: float  #: |g| at theta (float64)
    tau: float  #: threshold of the clipped step
    tau_source: str  #: "run" (the run's rule) or "task default" (a run without a threshold)
    lr: float  #: the run's learning rate
    curvature: Curvature  #: at theta (float64)
    step_losses: dict  #: the objective at theta and after each step (float64, :func:`step_losses`)

    def to_dict(self) -> dict:
        """JSON-able (non-finite numbers as None; the eigenvector left out)."""
        sl, c, num = self.slice, self.curvature, V.finite_or_none
        return {
            "update": self.update, "kinds": list(self.kinds),
            "alphas": [float(a) for a in sl.alphas], "betas": [float(b) for b in sl.betas],
            "losses": [[num(x) for x in row] for row in sl.losses],
            "d1_norm": sl.d1_norm, "d2_norm": sl.d2_norm, "dtype": sl.dtype,
            "d2_kind": self.d2_kind,
            "unclipped_at": [float(x) for x in self.unclipped_at],
            "clipped_at": [float(x) for x in self.clipped_at],
            "clipped_off_plane": num(self.clipped_off_plane),
            "unclipped_norm": num(self.unclipped_norm), "clipped_norm": num(self.clipped_norm),
            "grad_norm": num(self.grad_norm), "tau": self.tau, "tau_source": self.tau_source,
            "lr": self.lr,
            "curvature": {"loss": num(c.loss), "grad_norm": num(c.grad_norm),
                          "curvature_along_g": num(c.curvature_along_g),
                          "lambda_max_abs": num(c.lambda_max_abs), "lambda_max": num(c.lambda_max),
                          "angle_deg": num(c.angle_deg), "hvps": int(c.hvps)},
            "step_losses": {k: num(v) for k, v in self.step_losses.items()},
        }


def _slice_tau(cfg) -> tuple[float, str]:
    """The clipped step's threshold: the run's, else its task's default (a BPTT run)."""
    from .training import TrainConfig

    tau = getattr(cfg.rule(), "threshold", None)
    if tau is not None and math.isfinite(tau) and tau > 0:
        return float(tau), "run"
    if cfg.threshold is not None and math.isfinite(cfg.threshold) and cfg.threshold > 0:
        return float(cfg.threshold), "run"
    return float(TrainConfig.for_task(cfg.task).threshold), "task default"


def snapshot_slice(config, snapshot: dict, *, tau: float | None = None,
                   points: int | None = None,
                   progress: Callable[[float], object] | None = None,
                   cancel: Callable[[], bool] | None = None) -> SnapshotSlice:
    """The error surface around a kept update through plain BPTT's and the clipped step.

    Parameters
    ----------
    config : TrainConfig or dict
        The run's config.
    snapshot : dict
        One of the run's kept snapshots (:func:`at_snapshot`).
    tau : float, optional
        Threshold of the clipped step (Algorithm 1); default the run's, or for a run without
        one the task's default (:data:`clipviz.training.PRESETS`).
    points : int, optional
        Grid points per axis (default :attr:`Settings.slice_points`); alpha spans
        :attr:`Settings.slice_alpha_span` and beta +- :attr:`Settings.slice_beta_span`.
    progress, cancel : callable, optional
        ``progress(fraction)`` as the work advances; ``cancel()`` True stops it with
        :class:`Cancelled` (checked between HVPs and between groups of grid rows).

    Returns
    -------
    SnapshotSlice
        The slice (section 2.4's wall: is the plain step thrown up it, equation (1)'s
        update with the exploded g of equations (3)-(5)?), both steps' coordinates, the
        curvature g^T H g / |g|^2, the top eigenvalue and its angle with g.
    """
    from .training import TrainConfig

    cfg = config if isinstance(config, TrainConfig) else TrainConfig.from_dict(dict(config))
    src = "given"
    if tau is None:
        tau, src = _slice_tau(cfg)
    n = V.integer("points", SETTINGS.slice_points if points is None else points, 3,
                  SETTINGS.max_grid)
    point = at_snapshot(cfg, snapshot, tau=tau)
    if not (np.all(np.isfinite(point.step_unclipped)) and np.all(np.isfinite(point.grad))):
        raise ValueError(f"update {point.update}'s gradient was not finite (the update was "
                         "skipped): there is no step to draw; choose another kept update")
    L = float(np.linalg.norm(point.step_unclipped))
    if L == 0:
        raise ValueError(f"update {point.update}'s plain step is zero: no plane to draw")

    def report(x):
        if progress is not None:
            progress(float(x))

    if cancel is not None and cancel():
        raise Cancelled("slice cancelled before it started")
    m64 = point.float64()
    th64 = np.asarray(point.theta, dtype=np.float64)
    curv = curvature(m64, th64, point.window, cancel=cancel)
    report(0.3)
    d1 = point.step_unclipped
    d2 = None
    c = point.step_clipped
    cn = float(np.linalg.norm(c))
    for kind, vec in (("clipped step", c), ("top Hessian eigenvector", curv.eigenvector)):
        vn = float(np.linalg.norm(vec))
        if vn == 0:
            continue
        sine = np.linalg.norm(vec - (vec @ d1) / (L * L) * d1) / vn
        if sine > 1e-3:
            d2 = orthogonalise(given_direction(m64, vec / vn * L, kind=kind), d1)
            break
    if d2 is None:
        d2 = orthogonalise(filter_normalised_direction(m64, th64, 0), d1)
        d2 = Direction(d2.vector / d2.norm * L, d2.kind, d2.raw_norm)
    lo, hi = SETTINGS.slice_alpha_span
    alphas = np.linspace(lo, hi, n)
    betas = np.linspace(-SETTINGS.slice_beta_span, SETTINGS.slice_beta_span, n)
    sl = slice_2d(point.model, point.theta, point.window, d1, d2, alphas, betas,
                  progress=lambda f: report(0.3 + 0.65 * f), cancel=cancel)
    dv = d2.vector
    dn2 = float(dv @ dv)
    ca, cb = float(c @ d1) / (L * L), float(c @ dv) / dn2
    resid = c - ca * d1 - cb * dv
    off = float(np.linalg.norm(resid)) / cn if cn > 0 else 0.0
    losses = step_losses(point)
    report(1.0)
    return SnapshotSlice(point.update, point.kinds, sl, d2.kind, (1.0, 0.0), (ca, cb), off, L, cn,
                         float(np.linalg.norm(point.grad)), float(tau), src, point.lr, curv,
                         losses)
