"""The dynamics figures (clipviz.figures.dynamics): the bifurcation diagram and the cobweb plot."""

from __future__ import annotations

import numpy as np
import pytest

from clipviz import dynamics as dyn
from clipviz.figures import dynamics as fd


def test_bifurcation_figure_labels_folds_and_shades_the_bistable_interval():
    bd = dyn.bifurcation_diagram(5.0, -6.0, 2.0)
    bs = np.linspace(-6, 2, 50)
    fig = fd.bifurcation_figure(bd, dyn.orbit_diagram(5.0, bs), dyn.vector_field(5.0, bs[::5], np.linspace(-1, 5, 6)),
                                dyn.sensitivity(5.0, bs, x0=0.5, steps=50), -2.5)
    folds = [p for p in bd.special if p.kind == "fold"]
    texts = [a.text for a in fig.layout.annotations]
    for p in folds:
        assert f"fold b={p.b:.4f}" in texts
    lo, hi = bd.bistable
    rect = [s for s in fig.layout.shapes if s.type == "rect"][0]
    assert (rect.x0, rect.x1) == (lo, hi)
    assert fig.layout.shapes[0].x0 == -2.5  # the current-b marker comes first
    dashes = {t.line.dash for t in fig.data if t.name and "unstable" in t.name}
    assert dashes == {"dash"}
    assert fig.layout.yaxis2.type == "log"


def test_cobweb_marks_fixed_points_by_stability():
    fig = fd.cobweb_figure(5.0, -2.5, 0.5, "sigmoid")
    fp = fig.data[3]
    assert len(fp.x) == 3 and sorted(fp.x)[1] == pytest.approx(0.0, abs=1e-9)
    assert sum("unstable" in t for t in fp.text) == 1
