"""Training-engine benchmark (issue 5): BPTT + clipping updates per second.

One update = forward and exact BPTT over a window, Algorithm 1 on the
global gradient norm (:class:`clipviz.clipping.Clipper`), SGD step.  The
reference is PyTorch's CPU ``nn.RNN`` + ``nn.Linear`` read-out + loss +
``backward`` + ``clip_grad_norm_`` + ``SGD.step`` for the same model, timed
in the same process (skipped when torch is not installed).  tanh units for
every shape (``nn.RNN`` has no sigmoid).  Both sides run single-threaded
(OPENBLAS_NUM_THREADS=1, torch.set_num_threads(1)) in a fresh subprocess so
that other load on a small machine does not favour either; medians of
several timed batches after warm-up, the engines timed in alternation.  Cold start (fresh process, Numba
cache present: import + first update) is reported separately.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from clipviz import config

SHAPES = [  # name, inputs, hidden, outputs, batch, length, output kind, bias
    ("temporal order", 8, 50, 4, 20, 100, "softmax", True),
    ("music, batch 1", 88, 100, 88, 1, 100, "sigmoid", True),
    ("music, batch 32", 88, 100, 88, 32, 100, "sigmoid", True),
    ("characters", 50, 500, 50, 32, 180, "softmax", False),
]


def _data(I, O, B, T, out, rng, dtype):
    import numpy as np

    X = (rng.random((T, B, I)) < 0.1).astype(dtype)
    if out == "softmax":
        Y = rng.integers(0, O, (T, B))
    else:
        Y = (rng.random((T, B, O)) < 0.1).astype(dtype)
    return X, Y


def _clipviz_update(shape, dtype):
    import numpy as np

    from clipviz.clipping import Clipper
    from clipviz.training.model import RNN

    _, I, H, O, B, T, out, bias = shape
    rng = np.random.default_rng(0)
    m = RNN(I, H, O, activation="tanh", parametrisation="standard", output=out, bias=bias,
            dtype=dtype)
    m.initialise(rng)
    X, Y = _data(I, O, B, T, out, rng, dtype)
    W = np.ones((T, B))
    g = np.zeros_like(m.theta)
    clipper = Clipper("norm", 1.0)
    state = [m.zero_state(B)]

    def update():
        _, s = m.window(state[0], X, Y, W, grad=g)
        o = clipper.step(g)
        m.theta -= 1e-4 * o.g
        state[0] = s

    return update


def _once(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def _torch_update(shape, dtype):
    import numpy as np
    import torch


    _, I, H, O, B, T, out, bias = shape
    torch.manual_seed(0)
    tdt = torch.float32 if dtype == "float32" else torch.float64
    rnn = torch.nn.RNN(I, H, nonlinearity="tanh", bias=bias).to(tdt)
    lin = torch.nn.Linear(H, O, bias=bias).to(tdt)
    params = list(rnn.parameters()) + list(lin.parameters())
    opt = torch.optim.SGD(params, lr=1e-4)
    X, Y = _data(I, O, B, T, out, np.random.default_rng(0), dtype)
    x = torch.from_numpy(X)
    y = torch.from_numpy(Y)
    h = [torch.zeros(1, B, H, dtype=tdt)]
    if out == "softmax":
        lossf = torch.nn.CrossEntropyLoss(reduction="sum")
    else:
        lossf = torch.nn.BCEWithLogitsLoss(reduction="sum")

    def update():
        opt.zero_grad()
        hs, hn = rnn(x, h[0])
        logits = lin(hs)
        if out == "softmax":
            loss = lossf(logits.reshape(T * B, O), y.reshape(T * B)) / B
        else:
            loss = lossf(logits, y) / B
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        h[0] = hn.detach()

    return update


def _interleaved(fns: dict, repeats: int) -> dict:
    """Median seconds per call of each function, timed in alternation (so that
    load changes on a shared machine hit every engine alike), after warm-up."""
    import statistics

    per = {}
    for k, fn in fns.items():
        fn()  # warm-up (JIT, allocation)
        per[k] = max(1, int(0.15 / max(_once(fn), 1e-6)))
    times = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t = time.perf_counter()
            for _ in range(per[k]):
                fn()
            times[k].append((time.perf_counter() - t) / per[k])
    return {k: statistics.median(v) for k, v in times.items()}


def measure(repeats: int) -> dict:
    """Seconds per update for every shape, dtype and engine (in this process)."""
    try:
        import torch

        torch.set_num_threads(1)
        have_torch = torch.__version__
    except ImportError:
        have_torch = None
    res = {"torch": have_torch, "rows": []}
    for shape in SHAPES:
        for dtype in ("float32", "float64"):
            fns = {"clipviz": _clipviz_update(shape, dtype)}
            if have_torch:
                fns["torch"] = _torch_update(shape, dtype)
            res["rows"].append({"shape": shape[0], "dtype": dtype, **_interleaved(fns, repeats)})
    return res


COLD = ("import time; t0 = time.perf_counter(); import numpy as np; "
        "from clipviz.training.model import RNN; t1 = time.perf_counter(); "
        "m = RNN(8, 50, 4, activation='tanh'); m.initialise(np.random.default_rng(0)); "
        "g = np.zeros_like(m.theta); m.window(m.zero_state(20), np.zeros((100, 20, 8)), "
        "np.zeros((100, 20), int), np.ones((100, 20)), grad=g); t2 = time.perf_counter(); "
        "print(t1 - t0, t2 - t1)")


def _env():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return config.child_env(path_first=root, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
                            MKL_NUM_THREADS="1")


def run(quick: bool = False) -> list[str]:
    repeats = 5 if quick else 11
    code = f"import json; from clipviz.bench.training import measure; print(json.dumps(measure({repeats})))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(),
                          check=True)
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    lines = [f"BPTT + norm clipping + SGD, updates/s (higher is better), single-threaded, median of "
             f"{repeats} after warm-up; torch {res['torch'] or 'not installed (column skipped)'}",
             f"  {'shape':38s} {'dtype':8s} {'clipviz':>10s} {'torch':>10s} {'ratio':>7s}"]
    for row in res["rows"]:
        sh = next(s for s in SHAPES if s[0] == row["shape"])
        desc = f"{row['shape']} (H={sh[2]}, B={sh[4]}, T={sh[5]})"
        ups = 1.0 / row["clipviz"]
        if "torch" in row:
            tups = 1.0 / row["torch"]
            lines.append(f"  {desc:38s} {row['dtype']:8s} {ups:10.1f} {tups:10.1f} {ups / tups:6.2f}x")
        else:
            lines.append(f"  {desc:38s} {row['dtype']:8s} {ups:10.1f} {'—':>10s}")
    cold = []
    for _ in range(3):
        t = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", COLD], capture_output=True, text=True,
                             env=_env(), check=True)
        wall = time.perf_counter() - t
        imp, first = map(float, out.stdout.split())
        cold.append((imp, first, wall))
    cold.sort(key=lambda c: c[2])
    imp, first, wall = cold[1]
    lines.append(f"cold start (fresh process, Numba cache present), median of 3: import "
                 f"{imp:.2f} s, first update {first:.2f} s, whole process {wall:.2f} s")
    return lines
