"""Ensemble benchmark (issue 15 item 3): :func:`clipviz.training.train_many` against separate
:func:`clipviz.training.train` runs of the same configs.

Figure 7's small model: temporal order, 50 tanh units, batch 20, lengths 20 and 50, the default
settings otherwise (norm clipping, momentum, validation on 1000 fresh sequences every 100
updates), K seeds per ensemble.  The figure of merit is model-updates per second: every update of
every model counted once, divided by the wall time of training all K models (so an ensemble that
takes as long for K models as one run takes for one model is K times faster).  Both sides train
the same configs in the same single-threaded subprocess (OPENBLAS_NUM_THREADS=1, as the job
runners use), timed in alternation, median of several repeats after a warm-up.  Cold start (a
fresh process with the Numba cache present: import and the first call, one update) is reported
separately for each side.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

from .training import _env

KS = (1, 5, 10, 25, 50)
LENGTHS = (20, 50)


def _configs(K: int, T: int, updates: int):
    from clipviz.training import TrainConfig

    return [TrainConfig(task="temporal_order", hidden=50, batch_size=20, seq_len=T,
                        max_updates=updates, seed=1000 + s) for s in range(K)]


def measure(ks, lengths, updates: int, repeats: int) -> dict:
    """Seconds and model-updates for each (length, K), both engines (in this process)."""
    import statistics

    from clipviz.training import train, train_many

    warm = _configs(2, lengths[0], 3)
    train_many(warm)
    [train(c) for c in warm]
    rows = []
    for T in lengths:
        for K in ks:
            cfgs = _configs(K, T, updates)
            times = {"separate": [], "ensemble": []}
            n = {}
            for _ in range(repeats):
                t = time.perf_counter()
                recs = [train(c) for c in cfgs]
                times["separate"].append(time.perf_counter() - t)
                n["separate"] = sum(r.result["updates"] for r in recs)
                t = time.perf_counter()
                recs = train_many(cfgs)
                times["ensemble"].append(time.perf_counter() - t)
                n["ensemble"] = sum(r.result["updates"] for r in recs)
            rows.append({"T": T, "K": K, "updates": n,
                         "seconds": {k: statistics.median(v) for k, v in times.items()}})
    return {"rows": rows}


COLD = ("import time; t0 = time.perf_counter(); from clipviz.training import TrainConfig, train, "
        "train_many; t1 = time.perf_counter(); cfgs = [TrainConfig(seq_len=20, max_updates=1, "
        "seed=s) for s in range({K})]; t2 = time.perf_counter(); {call}; "
        "t3 = time.perf_counter(); print(t1 - t0, t3 - t2)")


def _cold(call: str, K: int) -> tuple[float, float, float]:
    runs = []
    for _ in range(3):
        t = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", COLD.format(K=K, call=call)],
                             capture_output=True, text=True, env=_env(), check=True)
        wall = time.perf_counter() - t
        imp, first = map(float, out.stdout.split())
        runs.append((imp, first, wall))
    runs.sort(key=lambda r: r[2])
    return runs[1]


def run(quick: bool = False) -> list[str]:
    ks = (1, 5) if quick else KS
    lengths = (20,) if quick else LENGTHS
    updates, repeats = (30, 1) if quick else (300, 3)
    code = ("import json; from clipviz.bench.ensemble import measure; "
            f"print(json.dumps(measure({ks!r}, {lengths!r}, {updates}, {repeats})))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=_env(), check=True)
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    lines = [f"temporal order, 50 tanh units, batch 20, {updates} updates per model (validation "
             f"every 100 and at the end), model-updates/s (higher is better), single-threaded, "
             f"median of {repeats}; separate = K train() calls, ensemble = one train_many call",
             f"  {'length':>6s} {'K':>3s} {'separate':>10s} {'ensemble':>10s} {'ratio':>7s}"]
    for row in res["rows"]:
        ups = {k: row["updates"][k] / row["seconds"][k] for k in ("separate", "ensemble")}
        lines.append(f"  {row['T']:6d} {row['K']:3d} {ups['separate']:10.1f} "
                     f"{ups['ensemble']:10.1f} {ups['ensemble'] / ups['separate']:6.2f}x")
    K = 5
    for name, call in (("train(), one config", "train(cfgs[0])"),
                       (f"train_many, {K} configs", "train_many(cfgs)")):
        imp, first, wall = _cold(call, K)
        lines.append(f"cold start, {name} (fresh process, Numba cache present, one update each), "
                     f"median of 3: import {imp:.2f} s, first call {first:.2f} s, whole process "
                     f"{wall:.2f} s")
    return lines
