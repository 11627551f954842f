"""Benchmark scripts (run with ``python -m clipviz.bench``; never timed unit tests).

Each section module defines ``run(quick: bool) -> list[str]`` returning report
lines; :data:`SECTIONS` lists them in the order they run.  Timings are
medians over several runs after JIT warm-up, reported as ratios against a
reference measured in the same run; cold start is reported separately.
"""

from __future__ import annotations

import statistics
import time
from typing import Callable

SECTIONS: dict[str, str] = {
    "one_unit": "clipviz.bench.one_unit",
    "dynamics": "clipviz.bench.dynamics",
    "training": "clipviz.bench.training",
    "sweep": "clipviz.bench.sweep",  # issue 6: sweep throughput, 1 vs 2 workers
    "ensemble": "clipviz.bench.ensemble",  # issue 15: train_many vs separate train() runs
    "web": "clipviz.bench.web",
    "landscape": "clipviz.bench.landscape",  # issue 16: a 128 x 128 slice vs torch
}


def median_time(fn: Callable[[], object], repeats: int = 7, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` in seconds over ``repeats`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)
