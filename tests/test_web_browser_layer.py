"""The web app's browser layer (clipviz.web.browser, clipviz.web.app): the path layer the page
marks with SVG markers, and the markers its index page defines.

The other web-app tests are by layer: test_web_params, test_web_callbacks, test_web_endpoints,
test_web_cache, test_web_server; the figures' own are in test_figures_surface."""

from __future__ import annotations

import plotly.graph_objects as go
import numpy as np

from clipviz import one_unit
from clipviz.figures import surface as fs
from clipviz.web import browser

from .web_helpers import arr, decode, view


def test_path_layer_marks_steps_at_line_vertices_and_rings_the_fired_ones():
    """The path layer's steps are the vertices of lines the page marks with SVG markers (by trace
    uid, every vertex kept); the steps where clipping fired are the vertices of an inkless line
    ringed the same way; each trace says how to draw it with Plotly markers for an export."""
    c = one_unit.descend(5.0, -1.75, lr=0.2, n_steps=120, clip="norm", threshold=0.1)
    u = one_unit.descend(5.0, -1.75, lr=0.2, n_steps=120)
    window = (-2.0, 12.0, -8.0, 2.0)
    traces, _ = browser.path_layer_traces(u, c, window)
    assert [t["name"] for t in traces] == ["no clipping", "norm clipping, τ=0.1", "start", "clipping fired"]
    assert [t.get("uid") for t in traces] == ["cv-unclipped", "cv-clipped", None, "cv-fired"]
    for t in (traces[0], traces[1], traces[3]):
        assert t["mode"] == "lines" and t["line"]["simplify"] is False and t["uid"] in browser.STEP_MARKERS
        assert "marker" in t["meta"]["export"]
    assert traces[3]["line"]["color"] == "rgba(0,0,0,0)"
    keep = fs.thin_steps(c.params, window)
    fired = np.zeros(len(c.params), bool)
    fired[: c.clipped.size] = c.clipped[: len(c.params)]
    want = np.array([fired[a:b].any() for a, b in zip(keep, list(keep[1:]) + [len(c.params)])])
    assert 0 < want.sum() < len(keep)  # some steps fired, some did not
    np.testing.assert_array_equal(arr(traces[1]["x"]), c.params[keep, 0])
    np.testing.assert_array_equal(arr(traces[3]["x"]), c.params[keep[want], 0])
    np.testing.assert_array_equal(arr(traces[3]["y"]), c.params[keep[want], 1])
    # no clipping at all: no fired trace; one fired step: a line of two equal vertices
    quiet = one_unit.descend(5.0, -1.75, lr=0.2, n_steps=20, clip="norm", threshold=1e6)
    assert [t["name"] for t in browser.path_layer_traces(u, quiet, window)[0]] == ["no clipping",
                                                                                   "norm clipping, τ=1e+06", "start"]
    go.Figure({"data": traces})


def test_the_served_page_defines_a_step_marker_for_every_uid_the_path_layer_uses(make_app):
    """The path layer's steps are drawn by SVG markers that the page's HTML defines and its CSS puts
    on the lines of the traces with that uid: every uid the layer the endpoint sends carries has its
    <marker> in the page served at /surface, in the trace's colour, and a CSS rule naming it."""
    import re

    html_ = make_app(warm=False).server.test_client().get("/surface").get_data(as_text=True)
    css = " ".join(re.findall(r"<style>(.*?)</style>", html_, re.S))
    paths = view(surface=False)["paths"]  # clipping fired: all three kinds of marked line
    marked = {t["uid"]: t for t in paths["data"] if t.get("uid")}
    assert set(marked) == {"cv-unclipped", "cv-clipped", "cv-fired"}
    for uid, t in marked.items():
        defined = re.search(rf'<marker id="{uid}-step"[^>]*>(.*?)</marker>', html_)
        assert defined, uid
        assert re.search(rf"\.trace{uid} path\.js-line \{{ marker: url\(#{uid}-step\); \}}", css), uid
        mark = t["meta"]["export"]["marker"]  # as the export draws it: a dot, or a ring (its line)
        assert mark.get("line", {}).get("color", mark["color"]) in defined.group(1), uid


def test_where_clipping_fires_at_nearly_every_step_the_rings_are_thin_and_spaced():
    """AutoClip at its default percentile fires at most steps: ringing each would bury the path.
    The path layer rings one fired step per cell of DENSE_RING_CELL (a fired step in every ringed
    cell, none ringed twice), with the thin ring, and still marks every kept step of the path."""
    window = (-2.0, 12.0, -8.0, 2.0)
    u = one_unit.descend(4.0, -3.6, lr=1.5, n_steps=100)
    c = one_unit.descend(4.0, -3.6, lr=1.5, n_steps=100, clip="autoclip", percentile=10)
    traces, _ = browser.path_layer_traces(u, c, window)
    assert [t.get("uid") for t in traces] == ["cv-unclipped", "cv-clipped", None, "cv-fired-dense"]
    keep = fs.thin_steps(c.params, window)
    assert len(arr(traces[1]["x"])) == len(keep)  # the path itself: every kept step
    rings = np.column_stack([arr(traces[3]["x"]), arr(traces[3]["y"])])
    fired = c.params[keep][np.logical_or.reduceat(fs.fired_at_points(c), keep)]
    assert len(fired) > fs.DENSE_FIRED * len(keep) and 0 < len(rings) <= len(fired) / 3
    size = np.array([14.0, 10.0]) * browser.DENSE_RING_CELL
    cells = np.floor((rings - [-2.0, -8.0]) / size)
    assert len({tuple(x) for x in cells}) == len(rings)  # one ring a cell
    all_cells = {tuple(x) for x in np.floor((fired - [-2.0, -8.0]) / size)}
    assert {tuple(x) for x in cells} == all_cells  # every cell where clipping fired has its ring
    dense, full = browser.STEP_MARKERS["cv-fired-dense"], browser.STEP_MARKERS["cv-fired"]
    assert dense["r"] + dense["width"] / 2 < full["r"] and dense["width"] < full["width"]
    assert traces[3]["meta"]["export"]["marker"]["line"]["width"] == dense["width"]


def test_the_step_data_and_the_step_layer_hold_every_step_of_both_descents():
    """What the browser code moves the markers along: every visited point's w, b, E and every step's
    ‖g‖ of both runs, and where clipping fired; the step layer starts at the start."""
    window = (-2.0, 12.0, -8.0, 2.0)
    u = one_unit.descend(4.0, -3.6, lr=1.5, n_steps=40)
    c = one_unit.descend(4.0, -3.6, lr=1.5, n_steps=40, clip="norm", threshold=1.0)
    steps = browser.steps_dict(u, c)
    for run, t in (("u", u), ("c", c)):
        np.testing.assert_array_equal(arr(steps[run]["w"]), t.params[:, 0])
        np.testing.assert_array_equal(arr(steps[run]["b"]), t.params[:, 1])
        np.testing.assert_array_equal(arr(steps[run]["E"]), t.loss)
        np.testing.assert_array_equal(arr(steps[run]["g"]), t.grad_norm)
    assert steps["c"]["name"] == "norm clipping, τ=1" and steps["u"]["name"] == "no clipping"
    np.testing.assert_array_equal(decode(steps["c"]["fired"]), c.clipped.astype(np.uint8))
    layer = browser.step_layer(window, u, c)
    assert [t["uid"] for t in layer["data"]] == ["cv-now-u", "cv-now-c"]
    assert layer["data"][1]["x"] == [4.0] and layer["layout"]["xaxis"]["range"] == [-2.0, 12.0]
    assert layer["layout"]["margin"] == fs.paths_layout(window, [])["margin"]
    marks = browser.diag_now_shapes()
    assert [(m["run"], m["series"]) for m in marks] == [(None, None), ("u", "g"), ("u", "E"), ("c", "g"), ("c", "E")]
    assert all(m["shape"]["name"] == "cv-now" for m in marks)
    assert {m["shape"]["yref"] for m in marks if m["series"] == "E"} == {"y2"}
    go.Figure({"data": [], "layout": {"shapes": [dict(m["shape"], xanchor=1, y0=0.5, y1=2) for m in marks[1:]]}})
