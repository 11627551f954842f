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
    assert d["filename"].endswith(".csv") and d["content"].startswith("w,b,E_30\n")
    assert len(d["content"].splitlines()) == 1 + 32 * 32
    r = page.download_runs(1, **RUN, **SURF)
    assert r["content"].startswith("run,step,w,b,E,grad_norm,clip_fired")
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
