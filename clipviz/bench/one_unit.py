"""Error-surface benchmark (issue: foundation).

Times :func:`clipviz.one_unit.error_surface` with gradients on a 512 x 512
grid at T = 50 against a plain-NumPy vectorised implementation of the same
recursion, in the same run; then the cold start in a fresh process.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from .. import config
from ..config import SETTINGS
from . import median_time

N = 512
T = 50


def numpy_surface(ws: np.ndarray, bs: np.ndarray, steps: int, x0: float, target: float):
    """E_T, dE/dw, dE/db over the grid by NumPy array operations (sigmoid)."""
    W, B = np.meshgrid(ws, bs)
    x = np.full_like(W, x0)
    xw = np.zeros_like(W)
    xb = np.zeros_like(W)
    for _ in range(steps):
        s = 1.0 / (1.0 + np.exp(-x))
        wd = W * (s * (1.0 - s))
        xw = s + wd * xw
        xb = 1.0 + wd * xb
        x = W * s + B
    s = 1.0 / (1.0 + np.exp(-x))
    r = s - target
    g = 2.0 * r * s * (1.0 - s)
    return r * r, g * xw, g * xb


COLD = (
    "import time; t0 = time.perf_counter(); import numpy as np; import clipviz.one_unit as o; "
    "t1 = time.perf_counter(); o.error_surface(np.linspace(-2, 12, 64), np.linspace(-8, 2, 64)); "
    "t2 = time.perf_counter(); print(t1 - t0, t2 - t1)"
)


def cold_start(repeats: int) -> list[tuple[float, float, float]]:
    """(import, first surface, whole process) seconds, each in a fresh interpreter."""
    out = []
    env = config.child_env()
    for _ in range(repeats):
        import time

        t = time.perf_counter()
        res = subprocess.run([sys.executable, "-c", COLD], capture_output=True, text=True, env=env,
                             check=True)
        wall = time.perf_counter() - t
        imp, first = map(float, res.stdout.split())
        out.append((imp, first, wall))
    return out


def run(quick: bool = False) -> list[str]:
    from .. import one_unit

    ws = np.linspace(SETTINGS.w_min, SETTINGS.w_max, N)
    bs = np.linspace(SETTINGS.b_min, SETTINGS.b_max, N)
    repeats = 3 if quick else 9
    args = dict(steps=T, x0=SETTINGS.x0, target=SETTINGS.target)
    t_nb = median_time(lambda: one_unit.error_surface(ws, bs, **args), repeats)
    t_np = median_time(lambda: numpy_surface(ws, bs, T, SETTINGS.x0, SETTINGS.target), repeats)
    pts = N * N * T
    lines = [
        f"error_surface with gradients, {N}x{N} grid, T={T}, sigmoid, median of {repeats} after warm-up",
        f"  numba  : {t_nb * 1e3:8.2f} ms  {pts / t_nb / 1e6:8.1f} M point-steps/s",
        f"  numpy  : {t_np * 1e3:8.2f} ms  {pts / t_np / 1e6:8.1f} M point-steps/s",
        f"  ratio  : {t_np / t_nb:8.2f} x faster than NumPy",
    ]
    cs = cold_start(3 if quick else 5)
    imp, first, wall = (float(np.median([c[i] for c in cs])) for i in range(3))
    lines += [
        f"cold start (fresh process, Numba cache present), median of {len(cs)}:",
        f"  import clipviz.one_unit: {imp:.3f} s, first 64x64 surface: {first:.3f} s, "
        f"import + surface: {imp + first:.3f} s, whole process: {wall:.3f} s",
    ]
    return lines
