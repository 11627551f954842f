"""Bifurcation, dynamics and theory pages: callbacks as plain functions (their figure builders' own
tests are in test_figures_dynamics)."""

from __future__ import annotations

import plotly.graph_objects as go
from dash import Patch, no_update

from clipviz.web.pages import bifurcations as bf
from clipviz.web.pages import dynamics as dy
from clipviz.web.pages import theory as th


def test_bifurcation_callbacks():
    out = bf.update_main(5.0, -6.0, 2.0, "sigmoid", 0.5, 50, 40, -2.5)
    assert isinstance(out[0], go.Figure) and isinstance(out[1], go.Figure) and not any(out[2:])
    bad = bf.update_main(5.0, 2.0, -6.0, "sigmoid", 0.5, 50, 40, -2.5)
    assert bad[0] is no_update and "smaller than" in bad[2 + bf.MAIN.index("b_min")]
    p1, p2, cob, msg = bf.update_b(-2.0, 5.0, "sigmoid", 0.5)
    assert isinstance(p1, Patch) and msg == "" and "b = -2.000" in cob.layout.title.text
    assert bf.update_b("far", 5.0, "sigmoid", 0.5)[3].startswith("b (current)")
    csv = bf.download(1, 5.0, -6.0, 2.0, "sigmoid", 0.5, 50, 40)["content"]
    assert csv.startswith("what,b,x_or_value,stable,multiplier") and "fold," in csv
    rows = bf.download_basins(1, 5.0, -6.0, 2.0, "sigmoid", 0.5, 50, 40)["content"].splitlines()
    assert rows[0] == "b,x0,label" and len(rows) == 1 + 40 * 40
    assert {r.split(",")[2] for r in rows[1:]} <= {"-1", "0", "1"}
    cob = bf.download_cobweb(1, -2.5, 5.0, "sigmoid", 0.5)["content"].splitlines()
    assert cob[0] == "t,x_t" and cob[1] == "0,0.5" and len(cob) == 42


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
