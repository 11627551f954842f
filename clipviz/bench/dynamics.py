"""Dynamics benchmark (issue 3).

1. The full bifurcation diagram at the paper's w = 5 over b in [-6, 2]
   (continuation, special points, refinement), warm; target < 50 ms.
2. A 1000 x 1000 basin grid at T = 200 with :func:`clipviz.dynamics.basins`
   (end to end: attractors, iteration, labelling) against a plain-NumPy
   reference of the same iteration and labelling timed in the same run
   (the reference is given the attractors for free); target >= 3x.  The
   kernel retires points that reached an exact (bitwise) fixed point, so a
   second grid where nothing converges to a fixed point (period-2 regime,
   w = -8) shows the raw per-step throughput as well.
3. Cold start of the first bifurcation diagram in a fresh process.
"""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np

from . import median_time

W = 5.0
N = 1000
T = 200


def numpy_basins(w: float, bs: np.ndarray, x0s: np.ndarray, steps: int, activation: str,
                 att_x: np.ndarray, att_lab: np.ndarray, tol: float) -> np.ndarray:
    """Basin labels by NumPy array operations (the reference for tests and the bench)."""
    X = np.repeat(np.asarray(x0s, dtype=np.float64)[:, None], len(bs), axis=1)
    B = np.asarray(bs, dtype=np.float64)[None, :]
    if activation == "sigmoid":
        for _ in range(steps):
            X = w / (1.0 + np.exp(-X)) + B
    else:
        for _ in range(steps):
            X = w * np.tanh(X) + B
    d = np.abs(X[:, :, None] - att_x[None, :, :])  # (nx, nb, 2), NaN where no attractor
    d = np.where(np.isnan(d), np.inf, d)
    k = np.argmin(d, axis=2)
    best = np.take_along_axis(d, k[:, :, None], axis=2)[:, :, 0]
    lab = np.take_along_axis(np.broadcast_to(att_lab[None], d.shape), k[:, :, None], axis=2)[:, :, 0]
    return np.where(best <= tol, lab, -1).astype(np.int8)


COLD = (
    "import time; t0 = time.perf_counter(); import clipviz.dynamics as d; "
    "t1 = time.perf_counter(); d.bifurcation_diagram(5.0, -6.0, 2.0); "
    "t2 = time.perf_counter(); print(t1 - t0, t2 - t1)"
)


def run(quick: bool = False) -> list[str]:
    from .. import dynamics as dyn

    repeats = 3 if quick else 9
    dyn.bifurcation_diagram(W, -6.0, 2.0)
    t_bd = median_time(lambda: dyn.bifurcation_diagram(W, -6.0, 2.0), max(repeats, 20))
    bd = dyn.bifurcation_diagram(W, -6.0, 2.0)
    npts = sum(br.b.size for br in bd.branches)
    lines = [
        f"bifurcation_diagram(w={W}, b in [-6, 2]) warm, median of {max(repeats, 20)}: "
        f"{t_bd * 1e3:.2f} ms ({npts} branch points, {len(bd.special)} special points; "
        f"target < 50 ms: {'PASS' if t_bd < 0.05 else 'FAIL'})",
    ]

    bs = np.linspace(-6.0, 2.0, N)
    x0s = np.linspace(-6.0, 8.0, N)
    att = dyn.attractors(W, bs)
    br = 2 if quick else 3
    t_nb = median_time(lambda: dyn.basins(W, bs, x0s, steps=T), br)
    t_np = median_time(lambda: numpy_basins(W, bs, x0s, T, "sigmoid", att.x, att.label, 1e-3),
                       br, warmup=0)
    same = np.array_equal(dyn.basins(W, bs, x0s, steps=T),
                          numpy_basins(W, bs, x0s, T, "sigmoid", att.x, att.label, 1e-3))
    ratio = t_np / t_nb
    lines += [
        f"basins {N}x{N} grid, T={T}, sigmoid, w={W}, median of {br} after warm-up:",
        f"  numba  : {t_nb * 1e3:9.1f} ms  {N * N * T / t_nb / 1e6:8.1f} M point-steps/s",
        f"  numpy  : {t_np * 1e3:9.1f} ms  {N * N * T / t_np / 1e6:8.1f} M point-steps/s",
        f"  ratio  : {ratio:9.2f} x faster than NumPy (target >= 3x: {'PASS' if ratio >= 3 else 'FAIL'});"
        f" labels identical: {same}",
    ]

    # worst case for the retirement of converged points: inside the period-2 bubble at
    # w = -8 no point is ever a fixed point, so every cell runs all T steps
    bs2 = np.linspace(0.0, 8.0, N)
    att2 = dyn.attractors(-8.0, bs2)
    t_nb2 = median_time(lambda: dyn.basins(-8.0, bs2, x0s, steps=T), br)
    t_np2 = median_time(lambda: numpy_basins(-8.0, bs2, x0s, T, "sigmoid", att2.x, att2.label, 1e-3),
                        br, warmup=0)
    same2 = np.array_equal(dyn.basins(-8.0, bs2, x0s, steps=T),
                           numpy_basins(-8.0, bs2, x0s, T, "sigmoid", att2.x, att2.label, 1e-3))
    lines += [
        f"basins worst case (w=-8, b in [0, 8]: period-2 attractor, no point retires early), {N}x{N}, T={T}:",
        f"  numba  : {t_nb2 * 1e3:9.1f} ms  {N * N * T / t_nb2 / 1e6:8.1f} M point-steps/s",
        f"  numpy  : {t_np2 * 1e3:9.1f} ms  {N * N * T / t_np2 / 1e6:8.1f} M point-steps/s",
        f"  ratio  : {t_np2 / t_nb2:9.2f} x; labels identical: {same2}",
    ]

    cold = []
    for _ in range(2 if quick else 3):
        t = time.perf_counter()
        res = subprocess.run([sys.executable, "-c", COLD], capture_output=True, text=True, check=True)
        wall = time.perf_counter() - t
        imp, first = map(float, res.stdout.split())
        cold.append((imp, first, wall))
    imp, first, wall = (float(np.median([c[i] for c in cold])) for i in range(3))
    lines.append(f"cold start (fresh process, Numba cache present), median of {len(cold)}: import "
                 f"clipviz.dynamics {imp:.3f} s, first diagram {first:.3f} s, whole process {wall:.3f} s")
    return lines
