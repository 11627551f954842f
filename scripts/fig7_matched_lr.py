"""Control for ``clipviz reproduce figure7 --protocol authors``: BPTT at the authors' lr times the
mean step factor min(1, τ/‖g‖) of the clipped runs of one length (does rescaling lose only by
taking smaller steps?).

    python scripts/fig7_matched_lr.py RECORD.json LENGTH

RECORD.json: the ``record.json`` that ``reproduce figure7 --protocol authors --out DIR`` wrote.
Trains the same seeds and budget as the record's runs of that length, with train_many.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

from clipviz.training import TrainConfig, train_many


def main(path: str, length: int) -> int:
    rec = json.load(open(path, encoding="utf-8"))
    runs = [r for r in rec["runs"] if r["config"]["seq_len"] == length]
    clipped = [r for r in runs if r["config"]["clip"] != "none"]
    bptt = [r for r in runs if r["config"]["clip"] == "none"]
    if not clipped or not bptt:
        print(f"no BPTT and clipped runs of length {length} in {path}")
        return 1
    factor = float(np.mean([r["result"]["step_factor_mean"] for r in clipped
                            if r["result"].get("step_factor_mean") is not None]))
    cfgs = [TrainConfig.from_dict(dict(r["config"], lr=r["config"]["lr"] * factor)) for r in bptt]
    t = time.perf_counter()
    solved = [bool(r.result.get("solved")) for r in train_many(cfgs)]
    base = sum(bool(r["result"].get("solved")) for r in bptt)
    print(f"length {length}: mean step factor of the clipped runs {factor:.3f}; BPTT at lr "
          f"{cfgs[0].lr:.4g}: {sum(solved)}/{len(cfgs)} solved (at lr {bptt[0]['config']['lr']:g}: "
          f"{base}/{len(bptt)}; {time.perf_counter() - t:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2])))
