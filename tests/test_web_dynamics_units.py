"""Bifurcation, dynamics and theory pages: callbacks as plain functions (their figure builders' own
tests are in test_figures_dynamics)."""

from __future__ import annotations

import base64

import numpy as np
import plotly.graph_objects as go
from dash import Patch, dcc, html, no_update

from clipviz.web.pages import bifurcations as bf
from clipviz.web.pages import dynamics as dy
from clipviz.web.pages import theory as th


def test_bifurcation_callbacks():
    # the diagram and the basin map come from their own callbacks, as figure dicts
    out = bf.update_diagram(5.0, -6.0, 2.0, "sigmoid", 0.5, 50, -2.5)
    assert "5·σ(x)" in go.Figure(out[0]).layout.title.text and not any(out[1:])
    basins = bf.update_basins(5.0, -6.0, 2.0, "sigmoid", 40, -2.5)
    assert go.Figure(basins[0]).data[0].type == "heatmap" and basins[1] == ""
    bad = bf.update_diagram(5.0, 2.0, -6.0, "sigmoid", 0.5, 50, -2.5)
    assert bad[0] is no_update and "smaller than" in bad[1 + bf.DIAGRAM.index("b_min")]
    assert bf.update_basins(5.0, 2.0, -6.0, "sigmoid", 40, -2.5)[0] is no_update
    bad_res = bf.update_basins(5.0, -6.0, 2.0, "sigmoid", 5, -2.5)
    assert bad_res[0] is no_update and "out of range" in bad_res[1]
    p1, p2, cob, msg = bf.update_b(-2.0, 5.0, "sigmoid", 0.5)
    assert isinstance(p1, Patch) and msg == "" and "b = -2.000" in go.Figure(cob).layout.title.text
    assert bf.update_b("far", 5.0, "sigmoid", 0.5)[3].startswith("b (current)")
    csv = bf.download(1, 5.0, -6.0, 2.0, "sigmoid", 0.5, 50, 40)["content"]
    assert csv.startswith("what,b,x_or_value,stable,multiplier") and "fold," in csv
    rows = bf.download_basins(1, 5.0, -6.0, 2.0, "sigmoid", 0.5, 50, 40)["content"].splitlines()
    assert rows[0] == "b,x0,label" and len(rows) == 1 + 40 * 40
    assert {r.split(",")[2] for r in rows[1:]} <= {"-1", "0", "1"}
    cob = bf.download_cobweb(1, -2.5, 5.0, "sigmoid", 0.5)["content"].splitlines()
    assert cob[0] == "t,x_t" and cob[1] == "0,0.5" and len(cob) == 42


def test_a_w_step_redraws_all_three_figures_from_one_callback_as_the_separate_ones_would():
    diagram, basins, cob, msg = bf.update_w(5.5, -6.0, 2.0, "sigmoid", 0.5, 50, 40, -2.5)
    assert msg == ""
    assert diagram == bf.update_diagram(5.5, -6.0, 2.0, "sigmoid", 0.5, 50, -2.5)[0]
    assert basins == bf.update_basins(5.5, -6.0, 2.0, "sigmoid", 40, -2.5)[0]
    assert cob == bf.update_b(-2.5, 5.5, "sigmoid", 0.5)[2]  # the cobweb of the map at w = 5.5
    labels = np.frombuffer(base64.b64decode(basins["data"][0]["z"]["bdata"]), np.int8)
    assert labels.size == 40 * 40 and set(np.unique(labels)) <= {-1, 0, 1}
    # a bad w says so; a bad other control (whose message its own callback shows) draws nothing
    assert bf.update_w(99.0, -6.0, 2.0, "sigmoid", 0.5, 50, 40, -2.5)[3].startswith("w")
    assert bf.update_w(5.5, 2.0, -6.0, "sigmoid", 0.5, 50, 40, -2.5) == (no_update, no_update, no_update, "")


def test_figures_let_tick_labels_overflow_so_a_redraw_does_not_measure_each_label():
    # Plotly's default ("hide past div") measures every tick label on each redraw
    tpl = go.Figure(bf.diagram_dict({s.name: s.default for s in bf.SPECS})).layout.template.layout
    assert tpl.xaxis.ticklabeloverflow == tpl.yaxis.ticklabeloverflow == "allow"
    assert tpl.xaxis.gridcolor  # still plotly_white underneath


def test_bifurcation_w_drag_draws_coarse_grids_and_release_draws_full_ones():
    coarse = bf.drag_w(5.5, 5.0, -6.0, 2.0, "sigmoid", 0.5, 20, 160, -2.5)
    full = bf.update_basins(5.5, -6.0, 2.0, "sigmoid", 160, -2.5)[0]
    assert "5.5·σ(x)" in coarse[0]["layout"]["title"]["text"]
    side = lambda d: np.frombuffer(base64.b64decode(d["data"][0]["x"]["bdata"]), "<f4").size  # noqa: E731
    assert side(coarse[1]) < side(full) == 160
    # keys: drag_value arrives with value; nothing to draw twice
    assert bf.drag_w(5.0, 5.0, -6.0, 2.0, "sigmoid", 0.5, 20, 160, -2.5) == (no_update, no_update)
    assert bf.drag_w("x", 5.0, -6.0, 2.0, "sigmoid", 0.5, 20, 160, -2.5) == (no_update, no_update)


def test_bifurcation_b_slider_follows_the_window():
    lo, hi, marks, value = bf.b_slider_range(-6.0, 2.0, -2.5)
    assert (lo, hi) == (-6.0, 2.0) and set(marks) == {-6.0, 0, 2.0} and value is no_update
    lo, hi, marks, value = bf.b_slider_range(-1.0, 3.0, -2.5)  # b left behind: moved to the window
    assert (lo, hi, value) == (-1.0, 3.0, -1.0)
    assert bf.b_slider_range(3.0, -1.0, -2.5) == (no_update,) * 4  # a bad window changes nothing
    slider = next(_slider(c) for c in _controls(bf.layout(b_min="-7", b_max="1"))
                  if c.children[0].children == "b (current)")
    assert (slider.min, slider.max) == (-7.0, 1.0)


def _controls(page):
    """The control blocks (label, component, help, message) of a page layout."""
    found = []

    def walk(node):
        if getattr(node, "className", None) == "control":
            found.append(node)
            return
        kids = getattr(node, "children", None)
        for k in kids if isinstance(kids, list) else [kids] if kids is not None else []:
            walk(k)
    walk(page)
    return found


def _slider(control):
    """The dcc.Slider of a control block (it may sit in a wrapper), or None."""
    comp = control.children[1]
    comp = comp.children if isinstance(comp, html.Div) else comp
    return comp if isinstance(comp, dcc.Slider) else None


def test_dynamics_page_sliders_always_show_their_value():
    for page in (bf.layout(), dy.layout(), th.layout()):
        sliders = [s for c in _controls(page) if (s := _slider(c)) is not None]
        assert len(sliders) >= 2 and all(s.tooltip["always_visible"] for s in sliders)


def test_dynamics_callback_and_figure():
    out = dy.update(5.0, -2.5, -0.0005, 1e-3, 60, 0.0, 0, 1.0, "sigmoid")
    fig = out[0]
    assert any("separated at t = 32" in a.text for a in fig.layout.annotations)
    assert fig.layout.yaxis2.type == "log"
    bad = dy.update(5.0, -2.5, -0.0005, 1e-3, 10**7, 0.0, 0, 1.0, "sigmoid")
    assert bad[0] is no_update and "out of range" in bad[1 + dy.NAMES.index("T")]
    csv = dy.download(1, 5.0, -2.5, -0.0005, 1e-3, 60, 0.0, 0, 1.0, "sigmoid")["content"]
    assert csv.splitlines()[0] == "t,u_t,x_a,x_b,abs_dx,dx_dx0" and len(csv.splitlines()) == 62


def test_theory_callbacks_and_figures():
    out = th.update_jac(1.5, "identity", 10, 80, 0, "spectral")
    fig = out[0]
    assert "past the necessary condition" in fig.layout.annotations[0].text
    below = th.update_jac(3.0, "sigmoid", 10, 80, 0, "spectral")[0]
    assert "below the necessary condition" in below.layout.annotations[0].text
    bad = th.update_jac(0.0, "relu", 1, 80, 0, "spectral")
    assert bad[0] is no_update
    msgs = dict(zip(th.JAC, bad[1:]))
    assert msgs["rho"] and msgs["act"] and msgs["n"] and not msgs["T"]
    cfig = th.update_curv(20, 32)[0]
    assert cfig.data[0].type == "heatmap" and "Spearman" in cfig.layout.annotations[0].text
    assert th.update_curv(20, 1000)[0] is no_update
    rows = th.download_curv(1, 20, 32)["content"].splitlines()
    assert rows[0] == "w,b,grad_norm,angle_deg,curv_along_grad,lead_eig" and len(rows) == 1 + 32 * 32
