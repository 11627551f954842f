"""Plain-NumPy references written for the tests (no Numba, libm exp via NumPy).

Forward mode with explicit first and second derivatives of the state, for
the one-unit model x_t = w s(x_{t-1}) + b, E = (s(x_T) - target)^2.
"""

from __future__ import annotations

import numpy as np


def act(x, activation):
    """sigma, sigma', sigma'' by NumPy."""
    if activation == "sigmoid":
        s = 1.0 / (1.0 + np.exp(-x))
        d1 = s * (1.0 - s)
        return s, d1, d1 * (1.0 - 2.0 * s)
    t = np.tanh(x)
    d1 = 1.0 - t * t
    return t, d1, -2.0 * t * d1


def one_unit(w, b, steps=50, x0=0.5, target=0.7, activation="sigmoid"):
    """E, gradient (w, b) and Hessian entries (ww, wb, bb), elementwise over broadcast w, b."""
    w = np.asarray(w, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    w, b = np.broadcast_arrays(w, b)
    x = np.full(w.shape, float(x0))
    # state and its derivatives, as a dict of arrays
    xw = np.zeros_like(x)
    xb = np.zeros_like(x)
    xww = np.zeros_like(x)
    xwb = np.zeros_like(x)
    xbb = np.zeros_like(x)
    for _ in range(steps):
        s, d1, d2 = act(x, activation)
        # d/dw (w s(x)) = s + w s' xw ; second derivatives by the product rule
        nxww = 2 * d1 * xw + w * (d2 * xw ** 2 + d1 * xww)
        nxwb = d1 * xb + w * (d2 * xw * xb + d1 * xwb)
        nxbb = w * (d2 * xb ** 2 + d1 * xbb)
        nxw = s + w * d1 * xw
        nxb = 1 + w * d1 * xb
        x = w * s + b
        xw, xb, xww, xwb, xbb = nxw, nxb, nxww, nxwb, nxbb
    s, d1, d2 = act(x, activation)
    r = s - target
    E = r ** 2
    gw = 2 * r * d1 * xw
    gb = 2 * r * d1 * xb

    def h(xa, xc, xac):
        return 2 * d1 ** 2 * xa * xc + 2 * r * (d2 * xa * xc + d1 * xac)

    return E, gw, gb, h(xw, xw, xww), h(xw, xb, xwb), h(xb, xb, xbb)


def forward(w, b, steps, x0, activation):
    """x_0..x_T for scalar w, b."""
    xs = [float(x0)]
    for _ in range(steps):
        xs.append(w * act(np.float64(xs[-1]), activation)[0] + b)
    return np.array(xs)
