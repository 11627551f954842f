"""Numba's threading layer under clipviz: thread-safe and fork-safe (TBB).

With the ``workqueue`` layer, two threads of a gunicorn ``--threads`` worker computing surfaces at
once aborted the worker ("Concurrent access"): 8 concurrent uncached surface requests gave 28
aborts.  With GNU OpenMP, a child forked after a parallel kernel ran breaks.  Each case runs in a
fresh interpreter, since a threading layer is chosen once per process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PRELUDE = textwrap.dedent("""
    import os, sys, threading
    import numpy as np
    import clipviz, numba
    from clipviz import one_unit
    w, b = np.linspace(-2, 12, 96), np.linspace(-8, 2, 96)
    ref = one_unit.error_surface(w, b, steps=60).E
    print("layer", numba.threading_layer(), flush=True)
""")

THREADS = PRELUDE + textwrap.dedent("""
    bad = []
    def work():
        for _ in range(25):
            if not np.array_equal(one_unit.error_surface(w, b, steps=60).E, ref):
                bad.append(1)
    ts = [threading.Thread(target=work) for _ in range(8)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    print("threads ok", len(bad) == 0, flush=True)
""")

FORK = PRELUDE + textwrap.dedent("""
    pid = os.fork()
    if pid == 0:
        same = np.array_equal(one_unit.error_surface(w, b, steps=60).E, ref)
        os._exit(0 if same else 3)
    _, status = os.waitpid(pid, 0)
    print("child exit", os.waitstatus_to_exitcode(status), flush=True)
""")


def _run(script: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_THREADING_LAYER"}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          env=env, cwd=ROOT)


def test_the_default_layer_is_tbb():
    res = _run(PRELUDE)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "layer tbb" in res.stdout, res.stdout + res.stderr[-2000:]


def test_many_threads_run_parallel_kernels_at_once():
    res = _run(THREADS)
    assert res.returncode == 0, f"the process died ({res.returncode}): {res.stderr[-3000:]}"
    assert "threads ok True" in res.stdout, res.stdout


def test_a_child_forked_after_a_parallel_kernel_runs_them_too():
    res = _run(FORK)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "child exit 0" in res.stdout, res.stdout + res.stderr[-3000:]


def test_the_users_choice_wins():
    env_script = "import os; os.environ['NUMBA_THREADING_LAYER'] = 'workqueue'\n" + PRELUDE
    res = _run(env_script)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "layer workqueue" in res.stdout
