"""One BPTT window for K independent RNNs of the same shape in one call (an ensemble).

Figure 7 of the paper trains many seeds of one small model (50 units, batch
20).  :func:`ensemble_window` runs the forward pass and exact BPTT
(equations (2)-(5)) of one window for every model listed in ``models``: each
model k has its own flat parameters ``theta[k]`` (the layout of
:class:`clipviz.training.model.RNN`: W_rec | W_in | b | W_out | c, b and c
absent without biases), its own carried-in state, inputs, targets and step
weights, and receives its own gradient ``grad[k]``, carried state
``s_out[k]`` and (loss sum, weight sum, correct count) ``out[k]``.  Both
activations (:mod:`clipviz.kernels.activations` codes), both
parametrisations (paper equation (2) / standard), softmax and independent
sigmoid outputs, float64 and float32: whatever :func:`clipviz.kernels.rnn.rnn_window`
covers, since each model's window *is* that kernel.

Loop order, chosen by measurement
---------------------------------
Two layouts were timed for the recurrent product, the only sequential work
of a window (H = 50, B = 20, K from 1 to 50, one thread):

* models innermost, arrays (B, H, K), one vectorised loop over K inside the
  (b, j, i) loops (also with an (H, K) accumulator per row);
* one BLAS product per model, (B, H) x (H, H), as :func:`rnn_window` does.

BLAS per model was several times faster at every K: at H = 50 a model's
product is large enough for OpenBLAS's register-blocked micro-kernels,
whereas the models-innermost loop does two loads per multiply-add (nothing
is reused across K) and is bound by memory traffic, not arithmetic.  So the
ensemble axis is the *outer* loop and each model runs the single-model
kernel, which also makes every model's arithmetic identical, bit for bit,
to a separate run's.  What the ensemble saves is the Python work around the
kernel (one call for K windows instead of K wrapper calls, views and
conversions).

All arrays are C-contiguous; the work arrays are shared by the models (they
run one after another) and sized for one window as in :func:`rnn_window`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .rnn import rnn_window


@njit(cache=True, fastmath={"contract"}, error_model="numpy")
def ensemble_window(theta, H, I, O, bias, act, out_kind, paper, s0, X, tgt_idx, tgt_bin, wts,
                    norm, Z, Hs, Y, dY, dH, DZ, want_grad, grad, s_out, out, models):
    """Forward pass and, if ``want_grad``, exact BPTT of one window for each model in ``models``.

    Parameters
    ----------
    theta : (K, P) flat parameters, one row per model (P = H*H + H*I + H + O*H + O with
        biases, H*H + H*I + O*H without).
    H, I, O : hidden units, inputs, outputs (the same for every model).
    bias : whether the layout holds b and c.
    act : 0 sigmoid, 1 tanh.   out_kind : 0 softmax, 1 independent sigmoids.
    paper : True for equation (2) (state x), False for h_t = sigma(...).
    s0 : (K, B, H) carried-in states.
    X : (K, T*B, I) inputs, row t*B + b of model k.
    tgt_idx : (K, T*B) int64 class targets (softmax; (K, 0) otherwise).
    tgt_bin : (K, T*B, O) binary targets (sigmoid outputs; (K, 0, 0) otherwise).
    wts : (K, T*B) float64 step weights.   norm : divisor of every model's objective.
    Z, Hs, Y, dY, dH, DZ : one window's work arrays, as for :func:`rnn_window`.
    want_grad : compute gradients.
    grad : (K, P) receives d(objective)/d(theta) of the listed models (rows of the others
        are left as they were).
    s_out : (K, B, H) receives each listed model's state to carry into the next window.
    out : (K, 3) float64 receives (weighted loss sum, weight sum, weighted correct count).
    models : (n,) int64 rows of the models to run (the others are skipped).
    """
    dt = theta.dtype
    nW, nU = H * H, H * I
    zb = np.zeros(H, dtype=dt)
    zc = np.zeros(O, dtype=dt)
    gb0 = np.zeros(H, dtype=dt)
    gc0 = np.zeros(O, dtype=dt)
    e2 = np.zeros((0, 0), dtype=dt)
    e1 = np.zeros(0, dtype=dt)
    for a in range(models.shape[0]):
        k = models[a]
        th = theta[k]
        W = th[:nW].reshape((H, H))
        U = th[nW:nW + nU].reshape((H, I))
        pos = nW + nU
        if bias:
            b = th[pos:pos + H]
            pos += H
        else:
            b = zb
        V = th[pos:pos + O * H].reshape((O, H))
        pos += O * H
        c = th[pos:pos + O] if bias else zc
        if want_grad:
            g = grad[k]
            gW = g[:nW].reshape((H, H))
            gU = g[nW:nW + nU].reshape((H, I))
            pos = nW + nU
            if bias:
                gb = g[pos:pos + H]
                pos += H
            else:
                gb = gb0
            gV = g[pos:pos + O * H].reshape((O, H))
            pos += O * H
            gc = g[pos:pos + O] if bias else gc0
        else:
            gW = gU = gV = e2
            gb = gc = e1
        total, wsum, correct = rnn_window(W, U, b, V, c, act, out_kind, paper, s0[k], X[k],
                                          tgt_idx[k], tgt_bin[k], wts[k], norm, Z, Hs, Y, dY,
                                          dH, DZ, want_grad, gW, gU, gb, gV, gc, s_out[k])
        out[k, 0] = total
        out[k, 1] = wsum
        out[k, 2] = correct
