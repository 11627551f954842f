"""The dynamics figures (clipviz.figures.dynamics): the bifurcation diagram, the cobweb plot, the
input-driven map and the Jacobian norms."""

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


def test_bifurcation_dict_marks_the_true_peak_of_the_sensitivity():
    bd = dyn.bifurcation_diagram(5.0, -6.0, 2.0)
    bs = np.linspace(-6, 2, 50)
    orbit, field = dyn.orbit_diagram(5.0, bs), dyn.vector_field(5.0, bs[::5], np.linspace(-1, 5, 6))
    sens = dyn.sensitivity(5.0, dyn.sensitivity_bs(5.0, -6.0, 2.0, x0=0.5), x0=0.5, steps=200)
    d = fd.bifurcation_dict(bd, orbit, field, sens, -2.5)
    b_star, _ = dyn.fixed_point_b(5.0, 0.5)
    assert fd.sensitivity_peak(sens) == (b_star, float(np.max(np.abs(sens.dxT_db))))
    peak = [a["text"] for a in d["layout"]["annotations"] if a["text"].startswith("peak")]
    assert peak == ["peak |∂x<sub>T</sub>/∂b| = 5.8·10¹⁴ at b = −2.6123 (T = 200)"]
    # the layout carries its template as an object (Plotly.js knows no template names)
    assert isinstance(d["layout"]["template"], dict) and d["layout"]["shapes"][0]["x0"] == -2.5


def test_driven_figure_formats_signs_inputs_and_ends():
    r = dyn.input_driven(5.0, -2.5, x0=-0.001, delta=1e-3, steps=100, input_scale=0.002, seed=0)
    fig = fd.driven_figure(r)
    assert "σ(x_(t−1)) − 2.5 + u_t" in fig.layout.title.text
    assert "(×10⁻³)" in fig.layout.yaxis3.title.text
    u = fig.data[2].y
    assert np.allclose(np.frombuffer(__import__("base64").b64decode(u["bdata"]), "<f8"), r.u * 1e3)
    ends = [a.text for a in fig.layout.annotations if a.text.startswith("at t = 100")]
    assert ends and "(lower attractor)" in ends[0] and "(upper attractor)" in ends[0]
    plus = fd.driven_figure(dyn.input_driven(5.0, 2.5, steps=10, input_scale=0.0))
    assert "σ(x_(t−1)) + 2.5 + u_t" in plus.layout.title.text


def test_jacobian_figure_draws_both_settings_and_the_sigmoid_bound():
    small, large = (dyn.jacobian_norms(n=20, rho=1.5, steps=60, activation="tanh", seed=0, input_scale=s)
                    for s in (0.1, 1.0))
    fig = fd.jacobian_figure(small, large)
    assert len(fig.data) == 5 and "inputs × 1" in fig.data[3].name
    assert "necessary, not sufficient" in fig.layout.annotations[0].text
    sig = fd.jacobian_figure(dyn.jacobian_norms(n=20, rho=6.0, steps=60, activation="sigmoid", seed=0))
    assert "(γρ)^l" in sig.data[1].name
    assert np.frombuffer(__import__("base64").b64decode(sig.data[1].y["bdata"]), "<f8")[-1] == \
        pytest.approx(60 * np.log10(1.5))
