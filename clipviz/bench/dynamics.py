"""Dynamics benchmark (issue 3).

1. The full bifurcation diagram at the paper's w = 5 over b in [-6, 2]
   (continuation, special points, refinement), warm; target < 50 ms.
2. A 1000 x 1000 basin grid at T = 200 with :func:`clipviz.dynamics.basins`
   (end to end: attractors, iteration, labelling) against a plain-NumPy
   reference of the same iteration and labelling timed in the same run
   (the reference is given the attractors for free), run alternately so
   load drift on the shared machine cancels in the per-pair ratios; also
   with one Numba thread (code quality per core); target >= 3x.  The
   kernel retires points whose orbit became exactly periodic (period 1 or 2,
   bitwise), so the period-2 regime (w = -8) and the raw loop with
   retirement switched off are timed as well.
3. The n-unit Jacobian norms (section 2.2-2.3) at two sizes.
4. Cold start of the first bifurcation diagram in a fresh process.
"""

from __future__ import annotations

import subprocess
import sys
import time

import numba
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


def _raw_basins(w, bs, x0s, att):
    from ..kernels import dynamics as k

    out = np.empty((x0s.size, bs.size), dtype=np.int8)
    k.basins_grid(w, bs, x0s, T, 0, att.x, att.label, 1e-3, out, False, np.empty((1, 0)))
    return out


def _interleaved(ours, ref, reps: int) -> tuple[float, float, float]:
    """Median times of ours() and ref() run alternately, and the median per-pair ratio.

    Alternating keeps slow drifts of the machine's load (it is shared) out of the ratio.
    """
    ours()
    t_a, t_b, ratios = [], [], []
    for _ in range(reps):
        t = time.perf_counter()
        ours()
        a = time.perf_counter() - t
        t = time.perf_counter()
        ref()
        b = time.perf_counter() - t
        t_a.append(a)
        t_b.append(b)
        ratios.append(b / a)
    return float(np.median(t_a)), float(np.median(t_b)), float(np.median(ratios))


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
    reps = 3 if quick else 5
    cases = (
        (f"basins {N}x{N} grid, T={T}, sigmoid, w={W}, b in [-6, 2], x0 in [-6, 8]", W, bs, False),
        (f"basins {N}x{N}, T={T}, w=-8, b in [0, 8] (period-2 attractor)", -8.0,
         np.linspace(0.0, 8.0, N), False),
        # the raw loop: no retirement of exactly periodic points, every cell runs T steps
        (f"basins raw kernel (retirement off) {N}x{N}, T={T}, w={W}, b in [-6, 2]", W, bs, True),
    )
    for title, w, grid, raw in cases:
        att = dyn.attractors(w, grid)
        if raw:
            ours = lambda w=w, grid=grid, att=att: _raw_basins(w, grid, x0s, att)  # noqa: E731
        else:
            ours = lambda w=w, grid=grid: dyn.basins(w, grid, x0s, steps=T)  # noqa: E731
        ref = lambda w=w, grid=grid, att=att: numpy_basins(  # noqa: E731
            w, grid, x0s, T, "sigmoid", att.x, att.label, 1e-3)
        same = np.array_equal(ours(), ref())
        t_nb, t_np, ratio = _interleaved(ours, ref, reps)
        numba.set_num_threads(1)
        try:
            t_nb1, t_np1, ratio1 = _interleaved(ours, ref, 3 if quick else 3)
        finally:
            numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        lines += [
            title + f"; interleaved runs, medians of {reps}:",
            f"  numba ({numba.config.NUMBA_NUM_THREADS} threads): {t_nb * 1e3:9.1f} ms "
            f"({N * N * T / t_nb / 1e6:7.1f} M nominal point-steps/s)",
            f"  numpy            : {t_np * 1e3:9.1f} ms ({N * N * T / t_np / 1e6:7.1f} M point-steps/s)",
            f"  ratio            : {ratio:9.2f} x faster than NumPy (median of per-pair ratios; "
            f"target >= 3x: {'PASS' if ratio >= 3 else 'FAIL'}); labels identical: {same}",
            f"  one thread       : numba {t_nb1 * 1e3:.1f} ms vs numpy {t_np1 * 1e3:.1f} ms, "
            f"ratio {ratio1:.2f} x",
        ]

    dyn.jacobian_norms(n=5, steps=5)
    for n_, T_ in ((50, 200), (200, 1000)):
        t_j = median_time(lambda: dyn.jacobian_norms(n=n_, rho=1.2, steps=T_, activation="tanh"),
                          3 if quick else 5)
        lines.append(f"jacobian_norms(n={n_}, steps={T_}, tanh, spectral) warm: {t_j * 1e3:.1f} ms")

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
