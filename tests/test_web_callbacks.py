"""The error-surface page's callbacks (clipviz.web.pages.surface) as plain functions."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest
from dash import no_update

from clipviz import one_unit
from clipviz.figures import surface as fs
from clipviz.web.pages import surface as page

from .web_helpers import RUN, SURF, arr, decode, view


ALL_MSGS = set(page.SURFACE_MSGS) | set(page.RUN_MSGS)


def test_update_view_sends_only_the_surface_for_a_surface_only_change():
    out = view(paths=False, diag=False)  # e.g. the resolution or the colour scale changed
    fig = out["surface"]
    assert out["paths"] is None and out["diag"] is None
    assert set(out["msgs"]) == ALL_MSGS and not any(out["msgs"].values())
    assert len(fig["data"]) == 2
    assert fig["data"][0]["type"] == "heatmap" and fig["data"][1]["type"] == "contour"
    z = decode(fig["data"][0]["z"])
    assert z.shape == (32, 32) and z.dtype == np.float32
    go.Figure(fig)  # a valid figure


@pytest.mark.parametrize("change, control, words", [
    (dict(T=0), "T", "out of range"), (dict(T="x"), "T", "not an integer"),
    (dict(res=5000), "res", "between 16 and 1024"), (dict(w_range=[3, 3]), "w_range", "w_min < w_max"),
    (dict(w_range="junk"), "w_range", "enter"), (dict(act="relu"), "act", "choose one of"),
    (dict(x0=None), "x0", "enter"), (dict(target=2), "target", "between -1 and 1"),
])
def test_update_view_rejects_bad_surface_values_and_keeps_every_figure(change, control, words):
    out = view(**change)
    assert out["surface"] is None and out["paths"] is None and out["diag"] is None
    msgs = out["msgs"]
    assert words in msgs[control]
    assert all(m == "" for k, m in msgs.items() if k != control)


def test_update_view_sends_paths_and_side_figure_not_the_surface_for_a_descent_change():
    out = view(surface=False)
    paths, diag, msgs = out["paths"], out["diag"], out["msgs"]
    assert out["surface"] is None
    assert set(msgs) == ALL_MSGS and not any(msgs.values())
    # the steps where clipping fired, no divergence trace (nothing diverged)
    assert [t["name"] for t in paths["data"]] == ["no clipping", "norm clipping, τ=1", "start", "clipping fired"]
    assert paths["layout"]["xaxis"]["range"] == [-2.0, 12.0]
    assert paths["layout"]["showlegend"] is False  # the legend is drawn once, on the title layer
    u = one_unit.descend(4.0, -3.6, lr=1.5, n_steps=40, steps=30)
    keep = fs.thin_steps(u.params, (-2.0, 12.0, -8.0, 2.0))
    np.testing.assert_array_equal(arr(paths["data"][0]["x"]), u.params[keep, 0])
    np.testing.assert_array_equal(arr(paths["data"][0]["y"]), u.params[keep, 1])
    go.Figure(paths)
    go.Figure(diag)
    window = view(surface=True, paths=True, diag=False, w_range=[-2, 10])  # the window moved
    assert window["surface"] and window["diag"] is None
    assert window["paths"]["layout"]["xaxis"]["range"] == [-2.0, 10.0]


@pytest.mark.parametrize("change, control", [
    (dict(lr=0), "lr"), (dict(lr="fast"), "lr"), (dict(n=10**6), "n"), (dict(clip="clamp"), "clip"),
    (dict(tau_log=9), "tau"), (dict(p=0), "p"), (dict(w0=float("nan")), "w0"), (dict(b0=1e9), "b0"),
])
def test_update_view_rejects_bad_descent_values(change, control):
    out = view(**change)
    assert out["paths"] is None and out["diag"] is None
    assert out["surface"] is not None  # the surface controls are fine: it is drawn
    msgs = out["msgs"]
    assert msgs[control] and all(m == "" for k, m in msgs.items() if k != control)


def test_downloads_and_3d_callbacks():
    d = page.download_surface(1, **SURF)
    lines = d["content"].splitlines()
    head = [line for line in lines if line.startswith("# ")]
    assert d["filename"].endswith(".csv") and lines[len(head)] == "w,b,E_30"
    assert {"# T = 30", "# resolution = 32", "# activation = sigmoid", "# w_min = -2", "# b_max = 2"} <= set(head)
    assert len(lines) == len(head) + 1 + 32 * 32
    r = page.download_runs(1, **RUN, **SURF)
    lines = r["content"].splitlines()
    head = [line for line in lines if line.startswith("# ")]
    assert lines[len(head)] == "run,step,w,b,E,grad_norm,clip_fired"
    # the descents' parameters, the rule's own among them (τ from its log slider: 10 ** 0)
    assert {"# w0 = 4", "# b0 = -3.6", "# lr = 1.5", "# n_steps = 40", "# T = 30", "# clip = norm",
            "# threshold = 1"} <= set(head)
    assert page.download_surface(None, **SURF) is no_update
    fig, style = page.update_3d(["view3d"], **SURF)
    assert style == {"display": "block"} and fig.data[0].type == "surface"
    assert page.update_3d([], **SURF) == (no_update, {"display": "none"})


def _find_text(component, ident):
    """children of the component with this id, searched through the tree."""
    if getattr(component, "id", None) == ident:
        return component.children
    kids = getattr(component, "children", None)
    for k in kids if isinstance(kids, list) else [kids]:
        if hasattr(k, "children"):
            found = _find_text(k, ident)
            if found is not None:
                return found
    return None


def test_layout_reads_url_and_reports_bad_parameters():
    lay = page.layout(T="abc", res="64", foo="1")
    assert "not an integer" in _find_text(lay, "es-msg-T")
    assert _find_text(lay, "es-msg-res") == ""
    notes = str(_find_text(lay, "url-notes"))
    assert "foo" in notes


def test_update_view_sends_the_frame_and_title_with_the_surface():
    out = view(paths=False, diag=False)
    assert out["frame"]["layout"]["meta"] and out["title"] == "Error surface E₃₀(w, b)   (click to set the start)"
    assert view(surface=False)["frame"] is None and view(surface=False)["title"] is None


def test_update_view_sends_every_step_with_the_descents_and_only_then():
    """The browser code moves the step slider's markers along the steps the view sends with the
    paths or the side figure; a surface-only change sends none (the descents did not change)."""
    out = view(surface=False)
    u, c = page.runs(*page._run_args({**page.surface_values(*(SURF[k] for k in page.SURFACE_ARGS))[0],
                                      **page.run_values(RUN)[0]}))
    np.testing.assert_array_equal(arr(out["steps"]["c"]["b"]), c.params[:, 1])
    np.testing.assert_array_equal(arr(out["steps"]["u"]["E"]), u.loss)
    assert view(paths=False, diag=False)["steps"] is None
    assert view(surface=False, lr=0)["steps"] is None  # bad values: nothing moves


def test_the_3d_view_draws_both_descents_and_a_marker_of_the_step_in_view():
    fig, style = page.update_3d(["view3d"], **SURF, run=RUN)
    assert style == {"display": "block"}
    kinds = [(t.type, t.name, t.line.dash if t.type == "scatter3d" and t.mode != "markers" else None)
             for t in fig.data]
    assert kinds == [("surface", "E", None), ("scatter3d", "no clipping", "solid"),
                     ("scatter3d", "norm clipping, τ=1", "dash"), ("scatter3d", "step in view", None)]
    assert fig.data[3].uid == "cv-now-3d" and list(fig.data[3].x) == [4.0, 4.0]
    # fired by the gate, with the surface's and the descents' States in the order registered
    gated, _ = page.update_3d_gated(1, ["view3d"], *(SURF[k] for k in page.SURFACE_ARGS),
                                    *(RUN.get(k) for k in page.RUN_ARGS))
    assert len(gated.data) == 4
    bad, _ = page.update_3d(["view3d"], **SURF, run=dict(RUN, lr="x"))  # bad descent values: the surface
    assert [t.type for t in bad.data] == ["surface"]


def test_the_layout_names_the_rule_in_the_legend_and_carries_the_step_controls():
    lay = page.layout(clip="value", n="30", res="32")
    data = _find_component(lay, "es-page-data").data
    assert data["time"]["legend"]["names"]["value"] == fs.rule_label("value")
    titles = _find_component(lay, "es-titles").figure
    assert titles["data"][1]["name"] == "value clipping"
    step = _find_component(lay, "es-step")
    assert (step.min, step.max, step.value) == (0, 30, 0) and step.tooltip["always_visible"]
    assert len(arr(data["steps"]["u"]["w"])) == 31
    assert _find_component(lay, "es-tau").tooltip["transform"] == "clipvizExp10"


def _find_component(component, ident):
    if getattr(component, "id", None) == ident:
        return component
    kids = getattr(component, "children", None)
    for k in kids if isinstance(kids, list) else [kids]:
        if hasattr(k, "children") or getattr(k, "id", None) == ident:
            found = _find_component(k, ident)
            if found is not None:
                return found
    return None
