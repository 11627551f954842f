"""Kernels for the one-unit model of the paper's equation (14).

    x_t = w * sigma(x_{t-1}) + b,        E_T = (sigma(x_T) - target)^2

Derivatives are exact, by forward-mode recursions carried along the
iteration (no finite differences):

    dx_t/dw   = sigma(x) + w sigma'(x) x_w
    dx_t/db   = 1 + w sigma'(x) x_b
    d2x/dw2   = 2 sigma'(x) x_w + w (sigma''(x) x_w^2 + sigma'(x) x_ww)
    d2x/dwdb  = sigma'(x) x_b + w (sigma''(x) x_w x_b + sigma'(x) x_wb)
    d2x/db2   = w (sigma''(x) x_b^2 + sigma'(x) x_bb)

with x = x_{t-1} on the right and x_w = dx_{t-1}/dw etc.  Then with
s = sigma(x_T), r = s - target:

    dE/dθ      = 2 r s' x_θ
    d2E/dθdφ   = 2 s'^2 x_θ x_φ + 2 r (s'' x_θ x_φ + s' x_θφ)

Activation codes: those of :mod:`clipviz.kernels.activations` (0 = logistic
sigmoid, 1 = tanh).

Grid kernels are parallel over rows (one b per row) and keep the row's
w values in the innermost loop, so that loop vectorises.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .activations import act_d2


@njit(cache=True, fastmath={"contract"}, error_model="numpy")
def forward(w: float, b: float, steps: int, x0: float, act: int) -> np.ndarray:
    """States x_0 ... x_T of equation (14)."""
    xs = np.empty(steps + 1)
    xs[0] = x0
    x = x0
    for t in range(steps):
        s, _d1, _d2 = act_d2(x, act)
        x = w * s + b
        xs[t + 1] = x
    return xs


@njit(cache=True, fastmath={"contract"}, error_model="numpy")
def point_derivatives(w: float, b: float, steps: int, x0: float, target: float,
                      act: int) -> np.ndarray:
    """E_T, its gradient and Hessian at one (w, b).

    Returns
    -------
    ndarray, shape (6,)
        ``[E, dE/dw, dE/db, d2E/dw2, d2E/dwdb, d2E/db2]``.
    """
    x = x0
    xw = 0.0
    xb = 0.0
    xww = 0.0
    xwb = 0.0
    xbb = 0.0
    for _ in range(steps):
        s, d1, d2 = act_d2(x, act)
        wd1 = w * d1
        wd2 = w * d2
        nww = 2.0 * d1 * xw + wd2 * xw * xw + wd1 * xww
        nwb = d1 * xb + wd2 * xw * xb + wd1 * xwb
        nbb = wd2 * xb * xb + wd1 * xbb
        xw, xb = s + wd1 * xw, 1.0 + wd1 * xb
        xww, xwb, xbb = nww, nwb, nbb
        x = w * s + b
    s, d1, d2 = act_d2(x, act)
    r = s - target
    out = np.empty(6)
    out[0] = r * r
    out[1] = 2.0 * r * d1 * xw
    out[2] = 2.0 * r * d1 * xb
    a = 2.0 * d1 * d1
    c = 2.0 * r * d2
    e = 2.0 * r * d1
    out[3] = (a + c) * xw * xw + e * xww
    out[4] = (a + c) * xw * xb + e * xwb
    out[5] = (a + c) * xb * xb + e * xbb
    return out


@njit(parallel=True, nogil=True, cache=True, fastmath={"contract"}, error_model="numpy")
def surface_grad(ws: np.ndarray, bs: np.ndarray, steps: int, x0: float,
                 target: float, act: int, E: np.ndarray, gw: np.ndarray,
                 gb: np.ndarray) -> None:
    """E_T and its gradient over the grid bs x ws, written into E, gw, gb.

    Output arrays have shape (len(bs), len(ws)): rows are b, columns are w.
    """
    nw = ws.shape[0]
    for i in prange(bs.shape[0]):
        b = bs[i]
        x = np.full(nw, x0)
        xw = np.zeros(nw)
        xb = np.zeros(nw)
        for _ in range(steps):
            for j in range(nw):
                w = ws[j]
                s, d1, _d2 = act_d2(x[j], act)
                wd1 = w * d1
                xw[j] = s + wd1 * xw[j]
                xb[j] = 1.0 + wd1 * xb[j]
                x[j] = w * s + b
        for j in range(nw):
            s, d1, _d2 = act_d2(x[j], act)
            r = s - target
            E[i, j] = r * r
            g = 2.0 * r * d1
            gw[i, j] = g * xw[j]
            gb[i, j] = g * xb[j]


@njit(parallel=True, nogil=True, cache=True, fastmath={"contract"}, error_model="numpy")
def surface_hessian(ws: np.ndarray, bs: np.ndarray, steps: int, x0: float,
                    target: float, act: int, E: np.ndarray, gw: np.ndarray,
                    gb: np.ndarray, hww: np.ndarray, hwb: np.ndarray,
                    hbb: np.ndarray) -> None:
    """E_T, gradient and 2x2 Hessian over the grid bs x ws in one pass."""
    nw = ws.shape[0]
    for i in prange(bs.shape[0]):
        b = bs[i]
        x = np.full(nw, x0)
        xw = np.zeros(nw)
        xb = np.zeros(nw)
        xww = np.zeros(nw)
        xwb = np.zeros(nw)
        xbb = np.zeros(nw)
        for _ in range(steps):
            for j in range(nw):
                w = ws[j]
                s, d1, d2 = act_d2(x[j], act)
                wd1 = w * d1
                wd2 = w * d2
                a_w = xw[j]
                a_b = xb[j]
                xww[j] = 2.0 * d1 * a_w + wd2 * a_w * a_w + wd1 * xww[j]
                xwb[j] = d1 * a_b + wd2 * a_w * a_b + wd1 * xwb[j]
                xbb[j] = wd2 * a_b * a_b + wd1 * xbb[j]
                xw[j] = s + wd1 * a_w
                xb[j] = 1.0 + wd1 * a_b
                x[j] = w * s + b
        for j in range(nw):
            s, d1, d2 = act_d2(x[j], act)
            r = s - target
            E[i, j] = r * r
            e = 2.0 * r * d1
            gw[i, j] = e * xw[j]
            gb[i, j] = e * xb[j]
            q = 2.0 * d1 * d1 + 2.0 * r * d2
            hww[i, j] = q * xw[j] * xw[j] + e * xww[j]
            hwb[i, j] = q * xw[j] * xb[j] + e * xwb[j]
            hbb[i, j] = q * xb[j] * xb[j] + e * xbb[j]
