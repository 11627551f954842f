"""A/B latency of the surface page: this checkout against an earlier revision, in one run.

    PYTHONPATH=$PWD python scripts/web_ab.py REV [--cases 0,1,2,4] [--rounds 2] [--n 10]

The machine's speed drifts by tens of percent within minutes (two shared cores), so
two benchmark runs minutes apart do not compare two versions.  This script serves
REV (from a temporary git worktree) and the checkout side by side with
``gunicorn app:server``, drives one headless Chromium through the benchmark's
changes (``clipviz.bench.web.CASES``; numbers index that list), alternating the
order of the two versions each round, and prints medians, p95s and the ratio.
Case 3 (the window, which waits for the frame layer) needs both versions to
have that layer.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from clipviz.bench import web as W  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("rev", help="the earlier revision (anything git worktree accepts)")
    ap.add_argument("--cases", default="0,1,2,4", help="indices into clipviz.bench.web.CASES")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--n", type=int, default=10, help="changes per case, version and round")
    args = ap.parse_args()
    cases = [int(c) for c in args.cases.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="clipviz-ab-"))
    old = tmp / "old"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "-f", "--detach", str(old), args.rev],
                   check=True, capture_output=True)
    procs, driver = [], None
    try:
        ports = {}
        for name, root in (("old", old), ("new", ROOT)):
            ports[name] = W._free_port()
            procs.append(W._start_gunicorn(ports[name], str(tmp / f"data-{name}"), root))
        driver = W._driver()
        res: dict[tuple[str, int], list[float]] = {(v, c): [] for v in ports for c in cases}
        for r in range(args.rounds):
            for v in (("old", "new") if r % 2 == 0 else ("new", "old")):
                for c in cases:
                    _label, _kind, sel, key, sigs = W.CASES[c]
                    main_ = W._measure(driver, f"http://127.0.0.1:{ports[v]}/surface", sel, key, sigs, args.n, 2)[2]
                    res[(v, c)] += main_
        print(f"{args.rev} (old) against the checkout (new), {args.rounds} rounds x {args.n} changes, "
              "keydown -> main figure redrawn:")
        for c in cases:
            o, n = res[("old", c)], res[("new", c)]
            print(f"  {W.CASES[c][0]:32s} old median {statistics.median(o):6.1f} p95 {W._p95(o):6.1f} ms | "
                  f"new median {statistics.median(n):6.1f} p95 {W._p95(n):6.1f} ms | "
                  f"old/new {statistics.median(o) / statistics.median(n):4.2f}x")
    finally:
        if driver is not None:
            driver.quit()
        for p in procs:
            p.terminate()
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
