"""A vanilla RNN whose parameters are views into one flat vector.

The flat layout (also the layout of the gradient) is::

    W_rec (H*H) | W_in (H*I) | b (H) | W_out (O*H) | c (O)

with ``b`` and ``c`` absent when the model has no biases.  Keeping one flat
vector lets :meth:`clipviz.clipping.Clipper.step` clip the *global* gradient
norm (Algorithm 1 of the paper) and lets SGD update everything in one
vectorised operation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..kernels import rnn as k
from ..kernels.activations import SIGMOID, TANH

PARAMETRISATIONS = ("paper", "standard")
"""``paper``: equation (2), x_t = W_rec sigma(x_{t-1}) + W_in u_t + b;
``standard``: h_t = sigma(W h_{t-1} + U u_t + b)."""
ACTIVATIONS = ("sigmoid", "tanh")
OUTPUTS = ("softmax", "sigmoid")
INITS = ("default", "smart_tanh", "smart_tanh_authors")
DTYPES = ("float64", "float32")


@dataclass
class WindowResult:
    """What one window's forward (and backward) pass gave."""

    loss_sum: float  #: sum over steps of weight * loss (nats)
    weight_sum: float  #: sum of the step weights (number of scored steps)
    correct: float  #: weighted count of argmax hits (softmax outputs only)


@dataclass
class RNN:
    """Vanilla RNN with flat parameters (see the module docstring)."""

    n_in: int
    n_hidden: int
    n_out: int
    activation: str = "tanh"
    parametrisation: str = "paper"
    output: str = "softmax"
    bias: bool = True
    dtype: str = "float64"
    theta: np.ndarray = field(init=False, repr=False)
    _work: dict = field(init=False, repr=False, default_factory=dict)

    def __post_init__(self) -> None:
        H, I, O = self.n_hidden, self.n_in, self.n_out
        self.sizes = [("W", (H, H)), ("U", (H, I))]
        if self.bias:
            self.sizes.append(("b", (H,)))
        self.sizes.append(("V", (O, H)))
        if self.bias:
            self.sizes.append(("c", (O,)))
        self.n_params = sum(int(np.prod(s)) for _, s in self.sizes)
        self.theta = np.zeros(self.n_params, dtype=self.dtype)
        self._zb = np.zeros(H, dtype=self.dtype)
        self._zc = np.zeros(O, dtype=self.dtype)
        self._act = SIGMOID if self.activation == "sigmoid" else TANH
        self._out = k.SOFTMAX if self.output == "softmax" else k.SIGMOIDS

    # -- views ------------------------------------------------------------
    def views(self, flat: np.ndarray) -> dict[str, np.ndarray]:
        """Name -> view into ``flat`` (parameters or a gradient)."""
        out, pos = {}, 0
        for name, shape in self.sizes:
            n = int(np.prod(shape))
            out[name] = flat[pos:pos + n].reshape(shape)
            pos += n
        return out

    @property
    def W_rec(self) -> np.ndarray:
        """The recurrent matrix (a view into :attr:`theta`)."""
        return self.views(self.theta)["W"]

    def initialise(self, rng: np.random.Generator | np.random.RandomState,
                   init: str = "default") -> None:
        """ICML-version initialisations (``rng``: a Generator, or the RandomState of a run with
        the authors' temporal-order generator, which then draws as RNN.py does).

        ``default``: every weight from N(0, 0.01^2) for sigmoid units and
        N(0, 0.1^2) for tanh units; ``smart_tanh``: W_rec sparse with 15
        incoming connections per unit drawn from N(0, 1) and rescaled to
        spectral radius 0.95, other weights N(0, 0.1^2).  Biases start at 0.

        ``smart_tanh_authors``: the ``smart_tanh`` of the authors' public code
        (``pascanur/trainingRNNs``, RNN.py:125-140), step by step: W_uh, W_hh and W_hy drawn
        from N(0, 0.01^2) (``scale=.01`` is numpy's standard deviation), in that order; in each
        row of W_hh all but 15 entries, chosen by a permutation, set to 0 (RNN.py:130-132); W_hh
        rescaled to spectral radius 0.95 (RNN.py:133-134).  The authors' model computes
        ``h_{t-1} W_hh + u_t W_uh`` (RNN.py:158), so clipviz's W_rec is W_hh transposed: each
        *column* of W_rec (a unit's outgoing weights) keeps 15 non-zeros, and U and V are W_uh
        and W_hy transposed.  ``smart_tanh`` (above) is kept as it was: its runs are recorded.
        """
        v = self.views(self.theta)
        if init == "smart_tanh_authors":
            self._init_authors(rng, v)
            return
        std = 0.01 if self.activation == "sigmoid" else 0.1
        if init == "smart_tanh":
            std = 0.1
        for name in ("W", "U", "V"):
            v[name][...] = rng.normal(0.0, std, v[name].shape)
        if init == "smart_tanh":
            H = self.n_hidden
            W = np.zeros((H, H))
            nnz = min(15, H)
            for i in range(H):
                cols = rng.choice(H, size=nnz, replace=False)
                W[i, cols] = rng.normal(0.0, 1.0, nnz)
            rho = spectral_radius(W)
            if rho > 0:
                W *= 0.95 / rho
            v["W"][...] = W
        for name in ("b", "c"):
            if name in v:
                v[name][...] = 0.0

    def _init_authors(self, rng: np.random.Generator | np.random.RandomState, v: dict[str, np.ndarray]) -> None:
        H, I, O = self.n_hidden, self.n_in, self.n_out
        W_uh = rng.normal(0.0, 0.01, (I, H))  # RNN.py:126-127
        W_hh = rng.normal(0.0, 0.01, (H, H))  # RNN.py:128-129
        for row in range(H):  # RNN.py:130-132
            W_hh[row, rng.permutation(H)[15:]] = 0.0
        sr = spectral_radius(W_hh)  # RNN.py:133-134
        if sr > 0:
            W_hh = 0.95 * W_hh / sr
        W_hy = rng.normal(0.0, 0.01, (H, O))  # RNN.py:136-137
        v["W"][...] = W_hh.T
        v["U"][...] = W_uh.T
        v["V"][...] = W_hy.T
        for name in ("b", "c"):  # RNN.py:138-139
            if name in v:
                v[name][...] = 0.0

    def zero_state(self, batch: int) -> np.ndarray:
        """The initial state (x_0 = 0 or h_0 = 0) for ``batch`` sequences."""
        return np.zeros((batch, self.n_hidden), dtype=self.dtype)

    def _workspace(self, T: int, B: int) -> dict[str, np.ndarray]:
        key = (T, B)
        ws = self._work.get(key)
        if ws is None:
            H, O, dt = self.n_hidden, self.n_out, self.dtype
            ws = dict(Z=np.empty((T * B, H), dt), Hs=np.empty(((T + 1) * B, H), dt),
                      Y=np.empty((T * B, O), dt), dY=np.empty((T * B, O), dt),
                      dH=np.empty((T * B, H), dt), DZ=np.empty((T * B, H), dt))
            if len(self._work) > 8:
                self._work.clear()
            self._work[key] = ws
        return ws

    def window(self, state: np.ndarray, X: np.ndarray, targets: np.ndarray,
               weights: np.ndarray, *, grad: np.ndarray | None = None,
               norm: float | None = None, theta: np.ndarray | None = None) -> tuple[WindowResult, np.ndarray]:
        """Run one window.

        Parameters
        ----------
        state : (B, H) carried-in state.
        X : (T, B, I) inputs.
        targets : (T, B) int class indices (softmax) or (T, B, O) binary (sigmoid outputs).
        weights : (T, B) step weights (0 = not scored).
        grad : flat array to receive d objective / d theta (None: forward only).
        norm : divisor of the objective (default B, the number of sequences).
        theta : parameters to use (default :attr:`theta`).

        Returns
        -------
        (WindowResult, new state)
        """
        theta = self.theta if theta is None else theta
        T, B, I = X.shape
        v = self.views(theta)
        ws = self._workspace(T, B)
        dt = self.dtype
        X2 = np.ascontiguousarray(X, dtype=dt).reshape(T * B, I)
        if self.output == "softmax":
            ti = np.ascontiguousarray(targets, dtype=np.int64).reshape(T * B)
            tb = np.zeros((0, 0), dtype=dt)
        else:
            ti = np.zeros(0, dtype=np.int64)
            tb = np.ascontiguousarray(targets, dtype=dt).reshape(T * B, self.n_out)
        w = np.ascontiguousarray(weights, dtype=np.float64).reshape(T * B)
        s_out = np.empty((B, self.n_hidden), dtype=dt)
        want = grad is not None
        if want:
            g = self.views(grad)
            gb = g.get("b", np.zeros(self.n_hidden, dt))
            gc = g.get("c", np.zeros(self.n_out, dt))
            gW, gU, gV = g["W"], g["U"], g["V"]
        else:
            gW = gU = gV = np.zeros((0, 0), dt)
            gb = gc = np.zeros(0, dt)
        total, wsum, correct = k.rnn_window(
            v["W"], v["U"], v.get("b", self._zb), v["V"], v.get("c", self._zc),
            self._act, self._out, self.parametrisation == "paper",
            np.ascontiguousarray(state, dtype=dt), X2, ti, tb, w,
            float(B if norm is None else norm),
            ws["Z"], ws["Hs"], ws["Y"], ws["dY"], ws["dH"], ws["DZ"], want,
            gW, gU, gb, gV, gc, s_out)
        return WindowResult(float(total), float(wsum), float(correct)), s_out



def spectral_radius(W: np.ndarray) -> float:
    """rho(W): the largest eigenvalue modulus (0 for an empty matrix)."""
    if W.size == 0:
        return 0.0
    return float(np.max(np.abs(np.linalg.eigvals(np.asarray(W, dtype=np.float64)))))
