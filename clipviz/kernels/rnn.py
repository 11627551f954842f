"""Kernels for a vanilla RNN trained by exact back-propagation through time.

Two parametrisations (``paper`` flag):

* the paper's equation (2), state x (pre-activation)::

      x_t = W_rec sigma(x_{t-1}) + W_in u_t + b

* the usual one, state h (activation)::

      h_t = sigma(W h_{t-1} + U u_t + b)

Footnote 1 of the paper: the two describe the same map with h_t = sigma(x_t),
so one recursion serves both.  They differ in the state carried between
windows (x_T or h_T) and in how the initial state enters: equation (2)
starts from sigma(x_0), the usual form from h_0 itself.  Outputs read
a_t = sigma(x_t) (= h_t):  y_t = W_out a_t + c, followed by a softmax
(``out_kind`` 0, one class index per step) or independent sigmoids
(``out_kind`` 1, a binary vector per step, e.g. 88 piano keys).

Layout: time major, batch, then units, i.e. arrays of shape (T, B, n) in
C order.  The batch rows of one step are contiguous, so every step's
recurrent product is one matrix product (``np.dot`` calls BLAS) and the
weight gradients are single (T*B)-row matrix products after the backward
sweep (BPTT, equations (3)-(5) of the paper, truncated at the window start:
the carried-in state is a constant of the window).

Losses per (t, b): softmax cross-entropy -log p(target) or, for sigmoid
outputs, the binary cross-entropy summed over output units; both in nats.
The objective of a window is  sum_{t,b} w_{t,b} loss_{t,b} / norm  with
per-step weights w (0 masks padding or steps without a target).

Activation codes: those of :mod:`clipviz.kernels.activations` (0 = logistic
sigmoid, 1 = tanh).

All kernels use ``error_model="numpy"``: with Numba's default (Python)
error model every float division carries a zero-division check that stops
LLVM from vectorising the loop.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .activations import (
    SIGMOID,
    TANH,
    sigma,
    sigmoid,
    sigmoid_from_exp,
    sigmoid_from_exp_f32,
    sigmoid_prime_from_value,
    tanh,
    tanh_prime_from_value,
)
from .fastmath import fexp, fexp_f32, log1p_unit, log1p_unit_f32, tanh_f32

SOFTMAX = 0
SIGMOIDS = 1

_H0 = np.float32(0.0)


@njit(cache=True, fastmath={"contract"}, error_model="numpy")
def _loss_rows_sigmoids_f32(Y, tgt_bin, wts, norm, dY):
    """:func:`_loss_rows` for independent sigmoid outputs and float32 logits,
    element-wise in float32 arithmetic (16 lanes with AVX-512); each row's loss
    is summed and accumulated in float64."""
    N, O = Y.shape
    total = 0.0
    wsum = 0.0
    buf = np.empty(O, dtype=np.float32)
    for r in range(N):
        w = wts[r]
        if w == 0.0:
            for o in range(O):
                dY[r, o] = 0.0
            continue
        wsum += w
        f = np.float32(w / norm)
        for o in range(O):
            y = np.float32(Y[r, o])
            t = np.float32(tgt_bin[r, o])
            e = fexp_f32(-abs(y))
            buf[o] = max(y, _H0) - t * y + log1p_unit_f32(e)
            dY[r, o] = (sigmoid_from_exp_f32(y, e) - t) * f
        rl = 0.0
        for o in range(O):
            rl += buf[o]
        total += w * rl
    return total, wsum, 0.0


@njit(cache=True, fastmath={"contract"}, error_model="numpy")
def activate(Z, A, act):
    """A = sigma(Z) element-wise (2-D arrays of the same shape)."""
    n, m = Z.shape
    for i in range(n):
        for j in range(m):
            A[i, j] = sigma(Z[i, j], act)


@njit(cache=True, fastmath={"contract"}, error_model="numpy")
def _loss_rows(Y, out_kind, tgt_idx, tgt_bin, wts, norm, dY):
    """Per-row losses of logits Y (N, O); writes dY = d(objective)/dY.

    Element-wise work goes through a row buffer so the inner loops have no
    reductions and vectorise; the row sums follow in separate loops.

    Returns (weighted loss sum, weight sum, number of correct argmax
    predictions among weighted rows (softmax only)).
    """
    N, O = Y.shape
    total = 0.0
    wsum = 0.0
    correct = 0.0
    buf = np.empty(O)
    for r in range(N):
        w = wts[r]
        if w == 0.0:
            for o in range(O):
                dY[r, o] = 0.0
            continue
        wsum += w
        f = w / norm
        if out_kind == SOFTMAX:
            m = Y[r, 0]
            am = 0
            for o in range(1, O):
                if Y[r, o] > m:
                    m = Y[r, o]
                    am = o
            k = tgt_idx[r]
            if am == k:
                correct += w
            for o in range(O):
                buf[o] = fexp(Y[r, o] - m)
            s = 0.0
            for o in range(O):
                s += buf[o]
            inv = 1.0 / s
            total += w * (m + math.log(s) - Y[r, k])
            for o in range(O):
                dY[r, o] = f * (buf[o] * inv)
            dY[r, k] -= f
        else:
            for o in range(O):
                y = Y[r, o]
                t = tgt_bin[r, o]
                e = fexp(-abs(y))
                buf[o] = max(y, 0.0) - t * y + log1p_unit(e)
                dY[r, o] = (sigmoid_from_exp(y, e) - t) * f
            rl = 0.0
            for o in range(O):
                rl += buf[o]
            total += w * rl
    return total, wsum, correct


@njit(cache=True, fastmath={"contract"}, error_model="numpy")
def _step_forward(Zt, rec, b, Ht, act, fast):
    """One time step: Zt += rec + b (in place) and Ht = sigma(Zt).

    The activation choice is hoisted out of the loops so that each inner
    loop is branch-free and vectorises (``fast``: float32 tanh in float32
    arithmetic).
    """
    B, H = Zt.shape
    if fast:
        for i in range(B):
            zr = Zt[i]
            rr = rec[i]
            hr = Ht[i]
            for j in range(H):
                z = zr[j] + rr[j] + b[j]
                zr[j] = z
                hr[j] = tanh_f32(z)
    elif act == TANH:
        for i in range(B):
            zr = Zt[i]
            rr = rec[i]
            hr = Ht[i]
            for j in range(H):
                z = zr[j] + rr[j] + b[j]
                zr[j] = z
                hr[j] = tanh(z)
    else:
        for i in range(B):
            zr = Zt[i]
            rr = rec[i]
            hr = Ht[i]
            for j in range(H):
                z = zr[j] + rr[j] + b[j]
                zr[j] = z
                hr[j] = sigmoid(z)


_TRANSPOSED_MIN_H = 192


@njit(cache=True, fastmath={"contract"}, error_model="numpy")
def _transpose_into(src, dst):
    """dst = src.T for a small (H, B) block."""
    H, B = src.shape
    for i in range(B):
        for j in range(H):
            dst[i, j] = src[j, i]


@njit(cache=True, fastmath={"contract"}, error_model="numpy")
def _step_backward(dHt, back, At, DZt, act):
    """DZt = sigma'(.) * (dHt + back), with sigma' from the activations At."""
    B, H = DZt.shape
    if act == SIGMOID:
        for i in range(B):
            for j in range(H):
                DZt[i, j] = (dHt[i, j] + back[i, j]) * sigmoid_prime_from_value(At[i, j])
    else:
        for i in range(B):
            for j in range(H):
                DZt[i, j] = (dHt[i, j] + back[i, j]) * tanh_prime_from_value(At[i, j])


@njit(cache=True, fastmath={"contract"}, error_model="numpy")
def rnn_window(W, U, b, V, c, act, out_kind, paper, s0, X, tgt_idx, tgt_bin, wts, norm,
               Z, Hs, Y, dY, dH, DZ, want_grad, gW, gU, gb, gV, gc, s_out):
    """Forward pass over one window and, if ``want_grad``, exact BPTT.

    Parameters
    ----------
    W : (H, H) recurrent weights W_rec.   U : (H, I) input weights W_in.
    b : (H,) bias (zeros when the model has none).
    V : (O, H) output weights.   c : (O,) output bias.
    act : 0 sigmoid, 1 tanh.   out_kind : 0 softmax, 1 independent sigmoids.
    paper : True for equation (2) (state x), False for h_t = sigma(...).
    s0 : (B, H) carried-in state (x_0 for equation (2), h_0 otherwise).
    X : (T*B, I) inputs u_t, row t*B + b.
    tgt_idx : (T*B,) int64 class targets (softmax).
    tgt_bin : (T*B, O) binary targets (sigmoid outputs; (0, 0) otherwise).
    wts : (T*B,) float64 weights per step; norm: divisor of the objective.
    Z, Hs, Y, dY, dH, DZ : work arrays (dY is written even without ``want_grad``) of shapes (T*B, H), ((T+1)*B, H),
        (T*B, O), (T*B, O), (T*B, H), (T*B, H), same dtype as W.
        Rows t*B..(t+1)*B-1 of Z hold step t+1's pre-activations, those of
        Hs hold a_t = sigma(x_t) (row block 0 is the initial state).
    gW, gU, gb, gV, gc : gradient outputs (overwritten), same shapes as the
        parameters; gb and gc are left at zero by the caller when the model
        has no biases (the caller ignores them).
    s_out : (B, H) receives the state to carry into the next window.

    Returns
    -------
    (weighted loss sum, weight sum, weighted correct count)
    """
    TB, I = X.shape
    B = s0.shape[0]
    T = TB // B
    H = W.shape[0]
    O = V.shape[0]
    # initial state
    if paper:
        for i in range(B):
            for j in range(H):
                Hs[i, j] = sigma(s0[i, j], act)
    else:
        for i in range(B):
            for j in range(H):
                Hs[i, j] = s0[i, j]
    # input projections for all steps at once: Z = X U^T (one (T*B)-row GEMM)
    Ut = U.T.copy()  # contiguous copies: OpenBLAS is slower on transposed operands
    Wt = W.T.copy()
    np.dot(X, Ut, Z)
    rec = np.empty((B, H), dtype=W.dtype)
    recT = np.empty((H, B), dtype=W.dtype)
    fast = act == TANH and W.itemsize == 4  # float32
    # OpenBLAS (single thread, AVX-512) multiplies a (B, H) block by an (H, H) matrix faster
    # as W (B rows)^T, i.e. with the (H, B) product, once H is a few hundred; for small H the
    # direct product is faster.
    transposed = H >= _TRANSPOSED_MIN_H and B >= 4
    # only the genuinely sequential product W a_{t-1} stays in the time loop
    for t in range(T):
        if transposed:
            np.dot(W, Hs[t * B:(t + 1) * B].T, recT)
            _transpose_into(recT, rec)
        else:
            np.dot(Hs[t * B:(t + 1) * B], Wt, rec)
        _step_forward(Z[t * B:(t + 1) * B], rec, b, Hs[(t + 1) * B:(t + 2) * B], act, fast)
    # carried state
    for i in range(B):
        for j in range(H):
            s_out[i, j] = Z[(T - 1) * B + i, j] if paper else Hs[T * B + i, j]
    # outputs
    Ha = Hs[B:]
    np.dot(Ha, V.T, Y)
    for r in range(TB):
        for o in range(O):
            Y[r, o] += c[o]
    if out_kind == SIGMOIDS and Y.itemsize == 4:  # float32
        total, wsum, correct = _loss_rows_sigmoids_f32(Y, tgt_bin, wts, norm, dY)
    else:
        total, wsum, correct = _loss_rows(Y, out_kind, tgt_idx, tgt_bin, wts, norm, dY)
    if not want_grad:
        return total, wsum, correct
    # output layer gradients
    # gV = dY^T Ha, computed as its transpose Ha^T dY: OpenBLAS takes the latter faster when
    # H is a few hundred
    gVT = np.empty((H, O), dtype=W.dtype)
    np.dot(Ha.T, dY, gVT)
    _transpose_into(gVT, gV)
    for o in range(O):
        gc[o] = 0.0
    for r in range(TB):
        for o in range(O):
            gc[o] += dY[r, o]
    np.dot(dY, V, dH)
    # backward through time (equation (5)): dz_t = sigma'(z_t) (dh_t + W^T dz_{t+1})
    back = np.zeros((B, H), dtype=W.dtype)
    for t in range(T - 1, -1, -1):
        _step_backward(dH[t * B:(t + 1) * B], back, Hs[(t + 1) * B:(t + 2) * B],
                       DZ[t * B:(t + 1) * B], act)
        if t > 0:
            if transposed:
                np.dot(Wt, DZ[t * B:(t + 1) * B].T, recT)
                _transpose_into(recT, back)
            else:
                np.dot(DZ[t * B:(t + 1) * B], W, back)
    np.dot(DZ.T, Hs[:TB], gW)
    np.dot(DZ.T, X, gU)
    for j in range(H):
        gb[j] = 0.0
    for r in range(TB):
        for j in range(H):
            gb[j] += DZ[r, j]
    return total, wsum, correct
