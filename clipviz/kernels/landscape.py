"""Kernels for error-surface slices and curvature of a real RNN (issue 16, section 2.4).

Two kernels on the model of :mod:`clipviz.kernels.rnn` (same recursion, same
losses, same flat parameter layout W | U | b | V | c):

* :func:`slice_losses` -- the window's objective at many parameter points
  theta_g = theta + alpha_g d1 + beta_g d2 at once.  Since
  W_g a = W a + alpha_g (D1 a) + beta_g (D2 a), and the points of one grid
  row share beta, every step of a block of points on a row is *one* matrix
  product of the stacked (2H, H) matrix [W + beta D2; D1] with the (H, C)
  block of states of C columns (grid points x sequences), followed by an
  element-wise combination whose innermost loop runs over grid points (so it
  vectorises); the same for the read-out [V + beta D2_V; D1_V].  The input and bias
  terms U u_t + b do not depend on the state and are computed once per
  direction.  Blocks of grid points run in parallel (``prange``); the
  caller limits BLAS to one thread so the blocks do not oversubscribe.

* :func:`rnn_hvp` -- the exact Hessian-vector product H v of the window's
  objective by Pearlmutter's R-operator (forward-over-reverse): an R-forward
  pass through equation (2)'s recursion and an R-backward pass through BPTT
  (equations (3)-(5)), using the forward and backward quantities that
  :func:`clipviz.kernels.rnn.rnn_window` leaves in its work arrays.

Layouts: parameters as in :mod:`clipviz.kernels.rnn`; slice state blocks are
(units, columns) with column ``bb * Gb + g`` (sequence bb of grid point g in
a block of Gb points), so the grid index is the contiguous, innermost one.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .activations import SIGMOID, TANH, sigmoid, sigmoid_from_exp, tanh
from .fastmath import fexp, fexp_f32, log1p_unit, log1p_unit_f32, tanh_f32

SOFTMAX = 0
SIGMOIDS = 1
_Z32 = np.float32(0.0)


@njit(cache=True, fastmath={"contract"}, error_model="numpy")
def _activate_block(P, H, al, ib0, ib1, ib2, beta, B, Gb, A, act, fast):
    """A[j, col] = sigma(P0 + al P1 + in0 + beta in2 + al in1) for one step.

    P : (2H, C) stacked products [W + beta D2; D1] @ A_prev.  ib0/ib1/ib2 :
    (B, H) input + bias terms of this step for theta, d1, d2.  Columns bb*Gb + g.
    """
    for j in range(H):
        for bb in range(B):
            c0 = ib0[bb, j] + beta * ib2[bb, j]
            c1 = ib1[bb, j]
            base = bb * Gb
            if fast:
                for g in range(Gb):
                    z = (P[j, base + g] + c0) + al[g] * (P[H + j, base + g] + c1)
                    A[j, base + g] = tanh_f32(z)
            elif act == TANH:
                for g in range(Gb):
                    z = (P[j, base + g] + c0) + al[g] * (P[H + j, base + g] + c1)
                    A[j, base + g] = tanh(z)
            else:
                for g in range(Gb):
                    z = (P[j, base + g] + c0) + al[g] * (P[H + j, base + g] + c1)
                    A[j, base + g] = sigmoid(z)


@njit(cache=True, fastmath={"contract"}, error_model="numpy")
def _loss_block(Q, O, al, cb, t, B, Gb, out_kind, tgt_idx, tgt_bin, wts, Yb, acc, mx, sm,
                L):
    """Add step t's weighted losses of every column to L (float64, length C).

    Q : (2O, C) stacked read-out products [V + beta DV2; DV1] @ A.  cb : (2, O)
    output biases c + beta d2_c and d1_c.  Yb : (O, Gb) logits buffer and acc :
    (Gb,) in the model's dtype (float32 models: the binary cross-entropy of a
    step summed in float32, the steps in float64); mx, sm : (Gb,) float64 buffers.
    """
    for bb in range(B):
        r = t * B + bb
        w = wts[r]
        if w == 0.0:
            continue
        base = bb * Gb
        for o in range(O):
            c0 = cb[0, o]
            c1 = cb[1, o]
            for g in range(Gb):
                Yb[o, g] = (Q[o, base + g] + c0) + al[g] * (Q[O + o, base + g] + c1)
        if out_kind == SIGMOIDS and Yb.itemsize == 4:
            # float32: each step's sum over the outputs in float32 (acc), then into L in float64
            for g in range(Gb):
                acc[g] = 0.0
            for o in range(O):
                tt = tgt_bin[r, o]
                for g in range(Gb):
                    y = Yb[o, g]
                    acc[g] += max(y, _Z32) - tt * y + log1p_unit_f32(fexp_f32(-abs(y)))
            for g in range(Gb):
                L[base + g] += w * acc[g]
        elif out_kind == SIGMOIDS:
            for o in range(O):
                tt = tgt_bin[r, o]
                for g in range(Gb):
                    y = Yb[o, g]
                    L[base + g] += w * (max(y, 0.0) - tt * y + log1p_unit(fexp(-abs(y))))
        else:
            k = tgt_idx[r]
            for g in range(Gb):
                mx[g] = Yb[0, g]
            for o in range(1, O):
                for g in range(Gb):
                    mx[g] = max(mx[g], Yb[o, g])
            for g in range(Gb):
                sm[g] = 0.0
            for o in range(O):
                for g in range(Gb):
                    sm[g] += fexp(Yb[o, g] - mx[g])
            for g in range(Gb):
                L[base + g] += w * (mx[g] + np.log(sm[g]) - Yb[k, g])


@njit(parallel=True, nogil=True, cache=True, fastmath={"contract"}, error_model="numpy")
def slice_losses(Wst, Vst, cc, IB, alphas, betas, act, out_kind, paper, s0, tgt_idx, tgt_bin,
                 wts, norm, block, out):
    """The window's objective sum_t w_t loss_t / norm at every point of the grid alphas x betas.

    The grid is a tensor product, so the points of one row share beta:
    W_g = (W + beta D2) + alpha_g D1, and one step of a block of points on a
    row is the single product [W + beta D2; D1] @ A of a (2H, H) matrix with
    the (H, C) state block (the same for the read-out V).

    Parameters
    ----------
    Wst : (3, H, H) recurrent matrices W, D1_W, D2_W.
    Vst : (3, O, H) read-out matrices V, D1_V, D2_V.
    cc : (3, O) float64 output biases c, d1_c, d2_c (zeros without biases).
    IB : (3, T*B, H) input + bias terms U u_t + b for theta, d1, d2 (row t*B + bb).
    alphas : (na,), betas : (nb,) grid coordinates (model dtype).
    act, out_kind, paper : as in :func:`clipviz.kernels.rnn.rnn_window`.
    s0 : (B, H) carried-in state.   tgt_idx, tgt_bin, wts, norm : as there.
    block : grid points (alphas) per block: a block's work arrays stay in cache.
    out : (nb, na) float64 receives the objectives.
    """
    H = Wst.shape[1]
    O = Vst.shape[1]
    B = s0.shape[0]
    TB = IB.shape[1]
    T = TB // B
    na = alphas.shape[0]
    nb = betas.shape[0]
    per_row = (na + block - 1) // block
    dt = Wst.dtype
    fast = act == TANH and Wst.itemsize == 4
    for ib in prange(nb * per_row):
        row = ib // per_row
        g0 = (ib % per_row) * block
        Gb = min(block, na - g0)
        C = Gb * B
        beta = betas[row]
        al = alphas[g0:g0 + Gb]
        M = np.empty((2 * H, H), dtype=dt)
        for i in range(H):
            for j in range(H):
                M[i, j] = Wst[0, i, j] + beta * Wst[2, i, j]
                M[H + i, j] = Wst[1, i, j]
        N = np.empty((2 * O, H), dtype=dt)
        for i in range(O):
            for j in range(H):
                N[i, j] = Vst[0, i, j] + beta * Vst[2, i, j]
                N[O + i, j] = Vst[1, i, j]
        cb = np.empty((2, O), dtype=dt)
        for o in range(O):
            cb[0, o] = cc[0, o] + beta * cc[2, o]
            cb[1, o] = cc[1, o]
        A = np.empty((H, C), dtype=dt)
        P = np.empty((2 * H, C), dtype=dt)
        Q = np.empty((2 * O, C), dtype=dt)
        Yb = np.empty((O, Gb), dtype=dt)
        acc = np.empty(Gb, dtype=dt)
        mx = np.empty(Gb)
        sm = np.empty(Gb)
        L = np.zeros(C)
        for j in range(H):
            for bb in range(B):
                v = s0[bb, j]
                if paper:
                    v = sigmoid(v) if act == SIGMOID else tanh(v)
                for g in range(Gb):
                    A[j, bb * Gb + g] = v
        for t in range(T):
            np.dot(M, A, P)
            _activate_block(P, H, al, IB[0, t * B:(t + 1) * B], IB[1, t * B:(t + 1) * B],
                            IB[2, t * B:(t + 1) * B], beta, B, Gb, A, act, fast)
            np.dot(N, A, Q)
            _loss_block(Q, O, al, cb, t, B, Gb, out_kind, tgt_idx, tgt_bin, wts, Yb, acc, mx, sm,
                        L)
        for g in range(Gb):
            s = 0.0
            for bb in range(B):
                s += L[bb * Gb + g]
            out[row, g0 + g] = s / norm


# ---------------------------------------------------------------------------
# Hessian-vector product (Pearlmutter's R-operator)
# ---------------------------------------------------------------------------


@njit(cache=True, fastmath={"contract"}, error_model="numpy")
def _dsig(a, act):
    """sigma'(z) and sigma''(z) from the value a = sigma(z)."""
    if act == SIGMOID:
        d1 = a * (1.0 - a)
        return d1, d1 * (1.0 - 2.0 * a)
    d1 = 1.0 - a * a
    return d1, -2.0 * a * d1


@njit(cache=True, fastmath={"contract"}, error_model="numpy")
def rnn_hvp(W, U, V, vW, vU, vb, vV, vc, act, out_kind, B, X, Hs, Y, dY, dH, DZ, wts, norm,
            hW, hU, hb, hV, hc):
    """H v for one window, after :func:`clipviz.kernels.rnn.rnn_window` ran with gradients.

    Pearlmutter's R{.} = d/dr (.)(theta + r v) at r = 0 of the forward pass

        z_t = W a_{t-1} + U u_t + b,  a_t = sigma(z_t),  y_t = V a_t + c

    (equation (2); the carried-in a_0 is a constant of the window) and of
    BPTT (equations (3)-(5)), with e_t = dh_t + W^T delta_{t+1} and
    delta_t = sigma'(z_t) e_t::

        R z_t = vW a_{t-1} + W R a_{t-1} + vU u_t + vb,  R a_t = sigma'(z_t) R z_t
        R y_t = vV a_t + V R a_t + vc,  R dy_t = (w_t / norm) Hess_y(loss) R y_t
        R e_t = vV^T dy_t + V^T R dy_t + vW^T delta_{t+1} + W^T R delta_{t+1}
        R delta_t = sigma''(z_t) R z_t e_t + sigma'(z_t) R e_t

    and H v = (sum R delta_t a_{t-1}^T + delta_t R a_{t-1}^T,  sum R delta_t u_t^T,
    sum R delta_t,  sum R dy_t a_t^T + dy_t R a_t^T,  sum R dy_t).

    Parameters
    ----------
    W, U, V : the parameters (float64).  vW, vU, vb, vV, vc : the direction
        (vb, vc zero without biases).
    B : sequences in the window.  X : (T*B, I) inputs.
    Hs, Y, dY, dH, DZ : rnn_window's work arrays after its gradient pass
        (activations a_0..a_T, logits, d obj/dy, V^T dy, delta).
    wts, norm : step weights and divisor of the objective.
    hW, hU, hb, hV, hc : receive H v (overwritten).
    """
    TB, I = X.shape
    T = TB // B
    H = W.shape[0]
    O = V.shape[0]
    # --- R-forward ---------------------------------------------------------
    RA = np.zeros(((T + 1) * B, H))
    RZ = np.empty((TB, H))
    Rz = np.empty((B, H))
    tmp = np.empty((B, H))
    XvU = np.empty((TB, H))
    np.dot(X, vU.T.copy(), XvU)
    Wt = W.T.copy()
    vWt = vW.T.copy()
    for t in range(T):
        prev = Hs[t * B:(t + 1) * B]
        np.dot(RA[t * B:(t + 1) * B], Wt, Rz)
        np.dot(prev, vWt, tmp)
        for i in range(B):
            r = t * B + i
            for j in range(H):
                z = Rz[i, j] + tmp[i, j] + XvU[r, j] + vb[j]
                RZ[r, j] = z
                d1, _ = _dsig(Hs[(t + 1) * B + i, j], act)
                RA[(t + 1) * B + i, j] = d1 * z
    Ha = Hs[B:]
    RHa = RA[B:]
    RY = np.empty((TB, O))
    np.dot(Ha, vV.T.copy(), RY)
    RY2 = np.empty((TB, O))
    np.dot(RHa, V.T.copy(), RY2)
    RdY = np.zeros((TB, O))
    for r in range(TB):
        w = wts[r]
        if w == 0.0:
            continue
        f = w / norm
        if out_kind == SIGMOIDS:
            for o in range(O):
                ry = RY[r, o] + RY2[r, o] + vc[o]
                y = Y[r, o]
                s = sigmoid_from_exp(y, fexp(-abs(y)))
                RdY[r, o] = f * s * (1.0 - s) * ry
        else:
            m = Y[r, 0]
            for o in range(1, O):
                m = max(m, Y[r, o])
            s = 0.0
            for o in range(O):
                s += fexp(Y[r, o] - m)
            pr = 0.0
            for o in range(O):
                p = fexp(Y[r, o] - m) / s
                pr += p * (RY[r, o] + RY2[r, o] + vc[o])
            for o in range(O):
                p = fexp(Y[r, o] - m) / s
                RdY[r, o] = f * p * ((RY[r, o] + RY2[r, o] + vc[o]) - pr)
    # --- output layer ------------------------------------------------------
    np.dot(RdY.T.copy(), Ha, hV)
    t2 = np.empty((O, H))
    np.dot(dY.T.copy(), RHa, t2)
    for o in range(O):
        hc[o] = 0.0
        for j in range(H):
            hV[o, j] += t2[o, j]
    for r in range(TB):
        for o in range(O):
            hc[o] += RdY[r, o]
    RdH = np.empty((TB, H))
    np.dot(RdY, V, RdH)
    t3 = np.empty((TB, H))
    np.dot(dY, vV, t3)
    for r in range(TB):
        for j in range(H):
            RdH[r, j] += t3[r, j]
    # --- R-backward through time -------------------------------------------
    RD = np.empty((TB, H))
    back = np.zeros((B, H))   # W^T delta_{t+1} (row form: delta_{t+1} @ W)
    rback = np.zeros((B, H))  # vW^T delta_{t+1} + W^T R delta_{t+1}
    for t in range(T - 1, -1, -1):
        for i in range(B):
            r = t * B + i
            for j in range(H):
                d1, d2 = _dsig(Hs[(t + 1) * B + i, j], act)
                e = dH[r, j] + back[i, j]
                re = RdH[r, j] + rback[i, j]
                RD[r, j] = d2 * RZ[r, j] * e + d1 * re
        if t > 0:
            np.dot(DZ[t * B:(t + 1) * B], W, back)
            np.dot(DZ[t * B:(t + 1) * B], vW, rback)
            np.dot(RD[t * B:(t + 1) * B], W, tmp)
            for i in range(B):
                for j in range(H):
                    rback[i, j] += tmp[i, j]
    RDt = RD.T.copy()
    np.dot(RDt, Hs[:TB], hW)
    t4 = np.empty((H, H))
    np.dot(DZ.T.copy(), RA[:TB], t4)
    for i in range(H):
        for j in range(H):
            hW[i, j] += t4[i, j]
    np.dot(RDt, X, hU)
    for j in range(H):
        hb[j] = 0.0
    for r in range(TB):
        for j in range(H):
            hb[j] += RD[r, j]
