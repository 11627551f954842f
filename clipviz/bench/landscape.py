"""Error-surface slice benchmark (issue 16): a 128 x 128 slice of a real RNN's objective.

The model is the paper's music network: 100 tanh units (equation (2)), 88
inputs, 88 independent sigmoid outputs, biases; one 100-step window of
JSB Chorales (the first training song long enough; random piano rolls if the
data set is not on this machine), batch 1.  Directions: two filter-normalised
random directions (Li et al. 2018); grid alpha, beta in [-1, 1]^2.

clipviz (:func:`clipviz.landscape.slice_2d`) against PyTorch evaluating the
same grid in the same process, two ways, the faster of which is the
reference:

* ``vmap``: :func:`torch.func.vmap` of a per-point loss over the per-point
  parameters theta + alpha d1 + beta d2 (batched matrix-vector products),
  in chunks of grid points (memory);
* ``stacked``: the algorithm clipviz uses, in torch: per step one batched
  product (``torch.bmm``) of each grid row's states (points sharing beta) with
  that row's [W + beta D2; D1] (and the same for the read-out), then the
  combination with alpha.

Both use two threads (``torch.set_num_threads(2)``; Numba's default on a
two-core machine), no autograd (``torch.inference_mode``), float32 and
float64; medians after warm-up, the engines timed in alternation; the
largest relative difference between the engines' losses is reported.  Cold
start (fresh process, Numba cache present: import + first slice) separately.
torch is optional: without it clipviz's own times are reported.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

import numpy as np

from clipviz import config

GRID = 128
T = 100
H = 100
KEYS = 88
VMAP_CHUNK = 256  # grid points per vmap call: per-point matrices of a chunk stay in cache


def _window(rng):
    """(X (T, 1, 88), targets (T, 1, 88), weights, source label)."""
    try:
        from clipviz import datasets

        songs = datasets.load_music(datasets.resolve("jsb", "music"))["train"]
        song = next(s for s in songs if s.shape[0] > T)
        src = "JSB Chorales (first training song with > 100 steps)"
    except (ValueError, StopIteration):
        song = (rng.random((T + 1, KEYS)) < 0.05).astype(np.uint8)
        src = "random piano roll (JSB Chorales not on this machine: `clipviz data fetch jsb`)"
    X = song[:T, None, :].astype(np.float64)
    Y = song[1:T + 1, None, :].astype(np.float64)
    return X, Y, np.ones((T, 1)), src


def setup(dtype: str):
    from clipviz import landscape as L
    from clipviz.training.model import RNN

    rng = np.random.default_rng(0)
    m = RNN(KEYS, H, KEYS, activation="tanh", parametrisation="paper", output="sigmoid",
            bias=True, dtype=dtype)
    m.initialise(rng)
    X, Y, w, src = _window(rng)
    win = L.Window(X, Y, w)
    d1 = L.filter_normalised_direction(m, None, 1)
    d2 = L.orthogonalise(L.filter_normalised_direction(m, None, 2), d1)
    ab = np.linspace(-1.0, 1.0, GRID)
    return m, win, d1, d2, ab, src


def _clipviz(dtype):
    from clipviz import landscape as L

    m, win, d1, d2, ab, _ = setup(dtype)
    return lambda: L.slice_2d(m, None, win, d1, d2, ab, ab).losses


def _torch_parts(dtype):
    import torch

    m, win, d1, d2, ab, _ = setup("float64")
    tdt = torch.float32 if dtype == "float32" else torch.float64
    views = [m.views(v) for v in (m.theta, d1.vector, d2.vector)]
    P = {k: [torch.tensor(v[k], dtype=tdt) for v in views] for k in ("W", "U", "b", "V", "c")}
    x = torch.tensor(win.X[:, 0, :], dtype=tdt)
    y = torch.tensor(win.targets[:, 0, :], dtype=tdt)
    A, B = np.meshgrid(ab, ab)
    al = torch.tensor(A.ravel(), dtype=tdt)
    be = torch.tensor(B.ravel(), dtype=tdt)
    return torch, P, x, y, al, be, tdt


def _torch_vmap(dtype):
    torch, P, x, y, al, be, tdt = _torch_parts(dtype)
    from torch.func import vmap

    bce = torch.nn.functional.binary_cross_entropy_with_logits

    def loss(W, U, b, V, c):
        a = torch.zeros(H, dtype=tdt)  # tanh(x_0) with x_0 = 0 (equation (2))
        total = torch.zeros((), dtype=tdt)
        for t in range(T):
            a = torch.tanh(W @ a + U @ x[t] + b)
            total = total + bce(V @ a + c, y[t], reduction="sum")
        return total

    f = vmap(loss)

    def point(k, a, b):
        p0, p1, p2 = P[k]
        shape = (-1,) + (1,) * p0.dim()
        return p0 + a.reshape(shape) * p1 + b.reshape(shape) * p2

    def run():
        out = []
        with torch.inference_mode():
            for s in range(0, al.shape[0], VMAP_CHUNK):
                a, b = al[s:s + VMAP_CHUNK], be[s:s + VMAP_CHUNK]
                out.append(f(*(point(k, a, b) for k in ("W", "U", "b", "V", "c"))))
        return torch.cat(out).reshape(GRID, GRID).double().numpy()

    return run


def _torch_stacked(dtype):
    torch, P, x, y, al, be, tdt = _torch_parts(dtype)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    a_row = al[:GRID]  # alpha varies along a row, beta down the rows
    b_row = be[::GRID]
    W, D1, D2 = (p.T for p in P["W"])
    V, E1, E2 = (p.T for p in P["V"])
    bb = b_row[:, None, None]
    MT = torch.cat([W + bb * D2, D1.expand(GRID, H, H)], dim=2).contiguous()  # (nb, H, 2H)
    NT = torch.cat([V + bb * E2, E1.expand(GRID, H, KEYS)], dim=2).contiguous()  # (nb, H, 2O)
    IB = [x @ P["U"][k].T + P["b"][k] for k in range(3)]  # (T, H) each
    c0 = P["c"][0] + b_row[:, None] * P["c"][2]  # (nb, O)
    c1 = P["c"][1]
    al3 = a_row[None, :, None]

    def run():
        with torch.inference_mode():
            a = torch.zeros(GRID, GRID, H, dtype=tdt)
            total = torch.zeros(GRID, GRID, dtype=tdt)
            for t in range(T):
                p = torch.bmm(a, MT)
                i0 = (IB[0][t] + b_row[:, None] * IB[2][t])[:, None, :]
                a = torch.tanh((p[..., :H] + i0) + al3 * (p[..., H:] + IB[1][t]))
                q = torch.bmm(a, NT)
                yy = (q[..., :KEYS] + c0[:, None, :]) + al3 * (q[..., KEYS:] + c1)
                total += bce(yy, y[t].expand(GRID, GRID, KEYS), reduction="none").sum(2)
            return total.double().numpy()

    return run


def _interleaved(fns: dict, repeats: int) -> tuple[dict, dict]:
    """Median seconds of each function timed in alternation after one warm-up call; the
    warm-up results."""
    results = {k: fn() for k, fn in fns.items()}
    times = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}, results


def _relerr(a, b):
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-30)))


AGREE_RTOL = {"float32": 1e-4, "float64": 1e-12}
"""Largest relative difference of the losses the engines may show before the bench refuses to
report a speed-up: a faster engine that computes something else proves nothing."""


COLD = ("import time; t0 = time.perf_counter(); import numpy as np; "
        "from clipviz.bench.landscape import setup; from clipviz import landscape as L; "
        "t1 = time.perf_counter(); m, win, d1, d2, ab, _ = setup('float32'); "
        "L.slice_2d(m, None, win, d1, d2, ab, ab); t2 = time.perf_counter(); "
        "print(t1 - t0, t2 - t1)")


def run(quick: bool = False) -> list[str]:
    import os

    repeats = 3 if quick else 7
    try:
        import torch

        torch.set_num_threads(2)
        tv = torch.__version__
    except ImportError:
        torch = None
        tv = None
    src = setup("float64")[-1]
    lines = [f"{GRID} x {GRID} slice, music model (H={H} tanh, 88 sigmoid outputs, biases), one "
             f"{T}-step window of {src}, batch 1; seconds per slice, median of {repeats} after "
             f"warm-up, engines in alternation; cpus {os.cpu_count()}, load "
             f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}"]
    if torch is None:
        lines.append("  torch not installed: reference columns skipped (`pip install torch` to "
                     "compare; it is not a clipviz dependency)")
    else:
        lines.append(f"  torch {tv}, {torch.get_num_threads()} threads, inference_mode; vmap in "
                     f"chunks of {VMAP_CHUNK} grid points")
    lines.append(f"  {'dtype':8s} {'clipviz':>9s} {'torch vmap':>11s} {'torch stacked':>14s} "
                 f"{'speed-up':>9s} {'max rel diff':>13s}")
    for dtype in ("float32", "float64"):
        fns = {"clipviz": _clipviz(dtype)}
        if torch is not None:
            fns["vmap"] = _torch_vmap(dtype)
            fns["stacked"] = _torch_stacked(dtype)
        med, res = _interleaved(fns, repeats)
        if torch is None:
            lines.append(f"  {dtype:8s} {med['clipviz']:9.3f}")
            continue
        best = min(med["vmap"], med["stacked"])
        diff = max(_relerr(res["clipviz"], res["vmap"]), _relerr(res["stacked"], res["vmap"]))
        if not diff <= AGREE_RTOL[dtype]:
            raise RuntimeError(f"landscape bench, {dtype}: the engines disagree (max relative "
                               f"difference {diff:.2e} > {AGREE_RTOL[dtype]:g}); no timing reported")
        lines.append(f"  {dtype:8s} {med['clipviz']:9.3f} {med['vmap']:11.3f} "
                     f"{med['stacked']:14.3f} {best / med['clipviz']:8.2f}x {diff:13.2e}")
    lines.append("  speed-up: the faster torch column / clipviz; max rel diff: largest relative "
                 "difference of the losses between the engines")
    cold = []
    env = config.child_env(path_first=os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))))
    for _ in range(3):
        t = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", COLD], capture_output=True, text=True,
                             env=env, check=True)
        wall = time.perf_counter() - t
        imp, first = map(float, out.stdout.split())
        cold.append((imp, first, wall))
    cold.sort(key=lambda c: c[2])
    imp, first, wall = cold[1]
    lines.append(f"cold start (fresh process, Numba cache present), median of 3: import "
                 f"{imp:.2f} s, first float32 slice {first:.2f} s, whole process {wall:.2f} s")
    return lines
