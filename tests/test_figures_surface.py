"""The error-surface figures (clipviz.figures.surface): the surface, its layers, the descent paths,
the side figure and the CSV exports, built from the library's results."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest

from clipviz import clipping, one_unit
from clipviz.figures import surface as fs
from clipviz.figures._util import typed

from .web_helpers import arr, decode


@pytest.fixture(scope="module")
def grid():
    return fs.compute_surface(-2, 12, -8, 2, 40, steps=30)


@pytest.fixture(scope="module")
def pair():
    u = one_unit.descend(4.0, -3.6, lr=1.5, n_steps=40)
    c = one_unit.descend(4.0, -3.6, lr=1.5, n_steps=40, clip="norm", threshold=1.0)
    return u, c


def test_typed_arrays_are_float32_and_exact():
    a = np.arange(12, dtype=float).reshape(3, 4) / 7
    spec = typed(a)
    assert spec["dtype"] == "f4" and spec["shape"] == "3, 4"
    np.testing.assert_array_equal(decode(spec), a.astype(np.float32))


def test_surface_figure_holds_the_log_surface_and_both_paths(grid, pair):
    u, c = pair
    fig = fs.surface_figure(grid, u, c)
    assert isinstance(fig, go.Figure) and len(fig.data) == 2 + fs.N_TRAJ_TRACES
    assert fig.layout.margin.autoexpand is False  # the page's two layers share one plot area
    heat = fig.to_plotly_json()["data"][0]
    z = decode(heat["z"]) if isinstance(heat["z"], dict) else np.asarray(heat["z"])
    np.testing.assert_allclose(z, np.log10(np.maximum(grid.E, fs.E_FLOOR)), rtol=1e-6, atol=1e-6)
    assert fig.layout.uirevision == fs.window_revision(grid)
    np.testing.assert_allclose(arr(fig.data[2].x), u.params[:, 0])
    np.testing.assert_allclose(arr(fig.data[3].y), c.params[:, 1])
    assert len(arr(fig.data[4].x)) == int(c.clipped[: c.params.shape[0]].sum()) > 0
    assert fig.data[5].x == (4.0,)
    # linear colour
    lin = fs.surface_traces(grid, log_colour=False)[0]
    np.testing.assert_allclose(decode(lin["z"]), grid.E.astype(np.float32))


def test_axis_titles_are_on_the_title_layer_and_in_the_single_figure(grid, pair):
    """The page's surface layer has no axis titles (redrawn often); the title layer, drawn once,
    has the MathJax titles over the same plot area; the single figure (export, notebooks) has them."""
    base = fs.surface_dict(grid)["layout"]
    assert "title" not in base["xaxis"] and "title" not in base["yaxis"]
    layer = fs.titles_dict()
    # the title layer's only traces are the legend key of the path layer: no points to draw
    assert [t["name"] for t in layer["data"]] == ["no clipping", "with clipping", "clipping fired", "start",
                                                  "diverged"]
    assert all(t["x"] == [None] and t["y"] == [None] for t in layer["data"]) and layer["layout"]["showlegend"]
    assert layer["layout"]["xaxis"]["title"]["text"] == "$w$" and layer["layout"]["yaxis"]["title"]["text"] == "$b$"
    assert layer["layout"]["margin"] == base["margin"] and layer["layout"]["height"] == base["height"]
    assert not layer["layout"]["xaxis"]["showticklabels"] and not layer["layout"]["yaxis"]["showticklabels"]
    fig = fs.surface_figure(grid, *pair)
    assert fig.layout.xaxis.title.text == "$w$" and fig.layout.yaxis.title.text == "$b$"
    assert fig.data[0].zsmooth == "fast"


def _box_distance_to_polyline(p: np.ndarray, line: np.ndarray, scale: np.ndarray) -> float:
    """max-norm distance (in units of ``scale``) from point p to the polyline, sampled finely."""
    s = np.linspace(0.0, 1.0, 201)[:, None]
    best = np.inf
    for a, b in zip(line[:-1], line[1:]):
        seg = a + s * (b - a)
        best = min(best, float(np.min(np.max(np.abs(seg - p) / scale, axis=1))))
    if len(line) == 1:
        best = float(np.max(np.abs(line[0] - p) / scale))
    return best


@pytest.mark.parametrize("start, lr, n, clip", [((4.0, -3.6), 1.5, 100, "none"), ((4.0, -3.6), 1.5, 100, "norm"),
                                                 ((5.0, -1.75), 0.2, 300, "none"), ((2.0, 0.0), 1.5, 60, "none")])
def test_thinned_path_draws_the_same_picture(start, lr, n, clip):
    """The path layer leaves out markers that sit on the last one drawn: first and last steps kept,
    every step within THIN of the window of a kept one, and every point of the full line within THIN
    of the thinned line (checked on the line through all steps, sampled)."""
    t = one_unit.descend(*start, lr=lr, n_steps=n, clip=clip, threshold=0.1 if clip == "norm" else None)
    window = (-2.0, 12.0, -8.0, 2.0)
    keep = fs.thin_steps(t.params, window)
    assert keep[0] == 0 and keep[-1] == len(t.params) - 1 and np.all(np.diff(keep) > 0)
    scale = np.array([14.0, 10.0]) * fs.THIN
    kept = t.params[keep]
    for k in range(len(t.params)):
        assert np.min(np.max(np.abs(kept - t.params[k]) / scale, axis=1)) <= 1 + 1e-9
    full = t.params
    for a, b in zip(full[:-1], full[1:]):
        for s in (0.0, 0.25, 0.5, 0.75, 1.0):
            assert _box_distance_to_polyline(a + s * (b - a), kept, scale) <= 1 + 1e-2
    if clip == "none" and start == (4.0, -3.6):
        assert len(keep) < len(t.params) // 2  # the run converges on the plateau: most markers overlap


def test_thinning_keeps_nonfinite_and_tiny_paths():
    pts = np.array([[0.0, 0.0], [1e-9, 0.0], [np.nan, np.inf], [np.nan, np.inf], [1e-9, 0.0]])
    np.testing.assert_array_equal(fs.thin_steps(pts, (0, 1, 0, 1)), [0, 2, 3, 4])
    np.testing.assert_array_equal(fs.thin_steps(pts[:2], (0, 1, 0, 1)), [0, 1])
    np.testing.assert_array_equal(fs.thin_steps(pts[:1], (0, 1, 0, 1)), [0])


def test_divergence_is_annotated_not_drawn_to_infinity(grid):
    u = one_unit.descend(4.0, -3.6, lr=1e8, n_steps=20)
    c = one_unit.descend(4.0, -3.6, lr=1e8, n_steps=20, clip="norm", threshold=1e-9)
    assert u.diverged_at is not None and c.diverged_at is None
    fig = fs.surface_figure(grid, u, c)
    texts = [a.text for a in fig.layout.annotations]
    assert texts == [f"unclipped: diverged at step {u.diverged_at}"]
    assert np.all(np.abs(arr(fig.data[2].x)) <= 1e6) and fig.data[6].x == (u.params[-1, 0],)
    diag = fs.diagnostics_figure(u, c)
    assert any(f"diverged at step {u.diverged_at}" in a.text for a in diag.layout.annotations)
    for tr in diag.data:
        y = arr(tr.y)
        assert not np.any(np.isinf(y))  # NaN = a gap where the gradient was not finite


def test_diagnostics_figure_has_threshold_line_and_log_axes(pair):
    u, c = pair
    fig = fs.diagnostics_figure(u, c)
    assert fig.layout.yaxis.type == "log" and fig.layout.yaxis2.type == "log"
    assert any(s.y0 == 1.0 and s.y1 == 1.0 for s in fig.layout.shapes)
    fired = [t for t in fig.data if t.name == "clipping fired"][0]
    assert list(fired.x) == list(np.flatnonzero(c.clipped))
    np.testing.assert_allclose(arr(fig.data[0].y), u.grad_norm)


def _preamble(text: str) -> tuple[dict[str, str], list[str]]:
    """A CSV export's ``# key = value`` lines as a dict, and the lines after them."""
    lines = text.splitlines()
    n = next(i for i, line in enumerate(lines) if not line.startswith("#"))
    params = dict(line[2:].split(" = ", 1) for line in lines[:n])
    assert all(line.startswith("# ") and " = " in line for line in lines[:n])
    return params, lines[n:]


def test_csv_exports(grid, pair):
    """Each CSV begins with the parameters it was computed from (``# key = value``), then the
    column header and one row per point."""
    params, lines = _preamble(fs.surface_csv(grid))
    assert {k: params[k] for k in ("T", "x0", "target", "activation", "w_min", "w_max", "b_min", "b_max",
                                   "resolution")} == {"T": "30", "x0": "0.5", "target": "0.7", "activation": "sigmoid",
                                                      "w_min": "-2", "w_max": "12", "b_min": "-8", "b_max": "2",
                                                      "resolution": "40"}
    assert "equation (14)" in params["figure"]
    assert lines[0] == "w,b,E_30" and len(lines) == 1 + grid.E.size
    w, b, e = map(float, lines[1 + 5].split(","))
    assert (w, b) == pytest.approx((grid.ws[5], grid.bs[0])) and e == pytest.approx(grid.E[0, 5], rel=1e-8)
    u, c = pair
    params, rows = _preamble(fs.trajectories_csv(u, c, {"w0": 4.0, "b0": -3.6, "lr": 1.5, "n_steps": 40}))
    assert params["w0"] == "4" and params["lr"] == "1.5" and params["n_steps"] == "40"
    assert params["clip"] == "norm" and params["threshold"] == "1"  # as the clipped run records them
    assert rows[0] == "run,step,w,b,E,grad_norm,clip_fired"
    assert len(rows) == 1 + u.params.shape[0] + c.params.shape[0]
    assert rows[1].startswith("unclipped,0,4,-3.6,")
    # the preamble is what a CSV reader skips as comments: the table reads as before
    text = fs.surface_csv(grid)
    skip = len(_preamble(text)[0])
    table = np.genfromtxt(text.splitlines(), delimiter=",", skip_header=skip, names=True)
    assert table.dtype.names == ("w", "b", "E_30") and table.size == grid.E.size


def test_3d_figure(grid):
    fig = fs.surface3d_figure(grid, max_side=16)
    assert fig.data[0].type == "surface"
    assert decode(fig.to_plotly_json()["data"][0]["z"]).shape == (14, 14)


@pytest.mark.parametrize("lo, hi, log, want", [
    (-7.3, -0.4, True, (-7.5, 0.0)), (-3.0, -3.0, True, (-3.0, -2.5)), (-12.0, 0.2, True, (-12.0, 0.5)),
    (0.0, 0.43, False, (0.0, 0.5)), (0.0, 0.2, False, (0.0, 0.2)), (0.0, 0.21, False, (0.0, 0.25)),
    (0.0, 3.9, False, (0.0, 5.0)), (0.0, 0.0, False, (0.0, 1e-12)),
])
def test_colour_range_is_rounded_outwards(lo, hi, log, want):
    z = np.array([lo, (lo + hi) / 2, hi])
    got = fs.colour_range(z, log)
    assert got == pytest.approx(want) and got[0] <= lo and got[1] >= hi


def test_web_layers_split_the_surface_figure(grid, pair):
    """The page's base layer has no tick labels, colour bar or title; the frame layer has the tick
    labels and the colour bar over the same plot area and names what it shows in layout.meta; the
    single figure (export, notebooks) has everything on one figure."""
    base = fs.surface_dict(grid)
    assert base["data"][0]["showscale"] is False and "colorbar" not in base["data"][0]
    assert "title" not in base["layout"] and base["layout"]["xaxis"]["visible"] is False
    frame = fs.frame_dict(grid)
    bar = frame["data"][0]
    assert bar["showscale"] and bar["opacity"] == 0 and bar["colorbar"]["ticktext"][0].startswith("1e")
    z = fs.colour_values(grid.E, True)
    assert (bar["zmin"], bar["zmax"]) == fs.colour_range(z, True) == (base["data"][0]["zmin"], base["data"][0]["zmax"])
    assert frame["layout"]["margin"] == base["layout"]["margin"] and frame["layout"]["height"] == base["layout"]["height"]
    assert frame["layout"]["xaxis"]["range"] == base["layout"]["xaxis"]["range"]
    assert frame["layout"]["xaxis"].get("visible", True) and frame["layout"]["meta"].endswith("|log")
    # the same window and colour range give the same meta: the page then leaves the frame alone
    assert fs.frame_dict(grid)["layout"]["meta"] == frame["layout"]["meta"]
    assert fs.frame_dict(grid, log_colour=False)["layout"]["meta"] != frame["layout"]["meta"]
    assert fs.surface_title(grid) == "Error surface E₃₀(w, b)   (click to set the start)"
    single = fs.surface_figure(grid, *pair)
    assert single.data[0].showscale and single.data[0].colorbar.ticktext and single.layout.title.text


def test_side_figure_axis_titles_are_on_their_own_layer(pair):
    """On the page the side figure has no axis titles; its title layer (drawn once) has them over
    the same plot areas; the single figure (notebooks) has them itself."""
    web = fs.diagnostics_dict(*pair, titles=False)
    layer = fs.diagnostics_titles_dict()
    for ax in ("yaxis", "xaxis2", "yaxis2"):
        assert "title" not in web["layout"][ax]
        assert layer["layout"][ax]["title"]["text"] == fs.DIAG_TITLES[ax]
        assert layer["layout"][ax]["domain"] == web["layout"][ax]["domain"]
        assert layer["layout"][ax]["anchor"] == web["layout"][ax]["anchor"]
    assert layer["layout"]["margin"] == web["layout"]["margin"] and layer["layout"]["margin"]["autoexpand"] is False
    assert layer["layout"]["height"] == web["layout"]["height"]
    # a subplot exists only where a trace uses its axes: one empty trace on each
    assert {(t["xaxis"], t["yaxis"]) for t in layer["data"]} == {("x", "y"), ("x2", "y2")}
    assert all(len(t["x"]) == 0 for t in layer["data"])
    single = fs.diagnostics_figure(*pair)
    assert single.layout.yaxis.title.text == r"$\|g\|$" and single.layout.yaxis2.title.text == "$E_T$"


def test_the_figures_say_when_the_two_descents_coincide(grid, pair):
    """Clipping that never fires leaves one descent drawn over the other: the surface (its path
    annotations) and the side figure say so, and only then."""
    u = one_unit.descend(4.0, -3.6, lr=1.5, n_steps=5)
    quiet = one_unit.descend(4.0, -3.6, lr=1.5, n_steps=5, clip="norm", threshold=1.0)
    assert not quiet.clipped.any() and fs.coincide(u, quiet)
    for traces_notes in (fs.trajectory_traces(u, quiet)[1], fs.diagnostics_dict(u, quiet)["layout"]["annotations"],
                         fs.surface_figure(grid, u, quiet).to_plotly_json()["layout"]["annotations"]):
        assert [a["text"] for a in traces_notes if a.get("name") == "coincide"] == [fs.COINCIDE_NOTE]
    assert not fs.coincide(*pair)  # clipping fired: two descents
    assert all(a.get("name") != "coincide" for a in fs.diagnostics_dict(*pair)["layout"]["annotations"])
    assert all(a.get("name") != "coincide" for a in fs.trajectory_traces(*pair)[1])


@pytest.mark.parametrize("name", clipping.names())
def test_every_legend_names_the_rule_of_the_second_run(name, grid):
    """The title layer's legend, the path traces and the side figure name the second run by its rule
    (its ``legend``; a rule that never clips, a second plain run), never "with clipping"."""
    rule = clipping.get(name)
    c = one_unit.descend(4.0, -3.6, lr=1.5, n_steps=20, clip=clipping.make(name, {"threshold": 1.0,
                                                                                  "percentile": 10}))
    u = one_unit.descend(4.0, -3.6, lr=1.5, n_steps=20)
    label = fs.rule_label(name)
    key = [t["name"] for t in fs.titles_dict(clip=name)["data"]]
    assert key[1] == label and rule.legend in label and "with clipping" not in key
    assert ("second run" in label) == (not rule.params)
    diag_names = [t["name"] for t in fs.diagnostics_dict(u, c)["data"]]
    assert diag_names[2].startswith(label) and fs.clip_label(c).startswith(label)
    assert fs.trajectory_traces(u, c)[0][1]["name"] == fs.clip_label(c)


def test_titles_of_figures_on_their_own_drop_the_page_hint(grid, pair):
    assert fs.surface_title(grid) == f"Error surface E₃₀(w, b)   {fs.TITLE_HINT}"
    assert fs.surface_title(grid, hint=False) == "Error surface E₃₀(w, b)"
    assert fs.surface_figure(grid, *pair).layout.title.text == "Error surface E₃₀(w, b)"


@pytest.mark.parametrize("values, want", [
    ([2.899982965, 2.899982935], pytest.approx([np.log10(2.89998295) - 0.5, np.log10(2.89998295) + 0.5])),
    ([1e-3, 1.0], None), ([0.0, np.inf, np.nan], None), ([5.0], pytest.approx([np.log10(5) - 0.5, np.log10(5) + 0.5])),
])
def test_a_log_axis_spans_at_least_a_decade(values, want):
    """E of a descent that barely moves (tanh) spans a hair of a decade: Plotly then labels the
    ticks with every digit ("2.899982965"); the side figure's axis spans a decade instead."""
    assert fs.log_axis_range(np.array(values)) == want


def test_the_side_figure_of_a_still_descent_has_readable_e_ticks():
    u = one_unit.descend(4.0, -3.6, lr=1.5, n_steps=30, activation="tanh")
    c = one_unit.descend(4.0, -3.6, lr=1.5, n_steps=30, activation="tanh", clip="norm", threshold=1.0)
    assert np.ptp(np.log10(u.loss)) < 1e-3  # E barely moves
    lay = fs.diagnostics_dict(u, c)["layout"]
    lo, hi = lay["yaxis2"]["range"]
    assert hi - lo == pytest.approx(fs.MIN_LOG_DECADES) and lo < np.log10(u.loss.min()) < np.log10(u.loss.max()) < hi
    assert "range" not in lay["yaxis"]  # ‖g‖ and τ span decades: Plotly's own range


def test_autoclip_firing_at_nearly_every_step_gets_thin_rings_on_the_side_figure():
    u = one_unit.descend(4.0, -3.6, lr=1.5, n_steps=100)
    c = one_unit.descend(4.0, -3.6, lr=1.5, n_steps=100, clip="autoclip", percentile=10)
    assert c.clipped.mean() > fs.DENSE_FIRED
    fired = [t for t in fs.diagnostics_dict(u, c)["data"] if t["name"] == "clipping fired"][0]
    assert fired["marker"] == fs.DENSE_FIRED_MARKER and fired["marker"]["size"] < 9
    norm = one_unit.descend(4.0, -3.6, lr=1.5, n_steps=100, clip="norm", threshold=1.0)
    assert [t for t in fs.diagnostics_dict(u, norm)["data"] if t["name"] == "clipping fired"][0]["marker"]["size"] == 9


def test_3d_figure_draws_both_descents_on_the_surface_the_clipped_one_dashed(grid, pair):
    """The paper's Figure 3 in 3-D: z = E on a log axis (log colour), coloured by log10 E, and both
    descents at z = E, the clipped one dashed."""
    u, c = pair
    fig = fs.surface3d_figure(grid, unclipped=u, clipped=c).to_plotly_json()
    surf, tu, tc = fig["data"]
    assert fig["layout"]["scene"]["zaxis"]["type"] == "log"
    np.testing.assert_allclose(decode(surf["z"]), np.maximum(grid.E, fs.E_FLOOR).astype(np.float32))
    np.testing.assert_allclose(decode(surf["surfacecolor"]), fs.colour_values(grid.E, True))
    assert (tu["type"], tu["line"]["dash"], tc["line"]["dash"]) == ("scatter3d", "solid", "dash")
    assert tc["name"] == fs.clip_label(c)
    np.testing.assert_allclose(arr(tc["x"]), c.params[:, 0])
    np.testing.assert_allclose(arr(tc["z"]), np.maximum(c.loss, fs.E_FLOOR))
    assert fs.surface3d_figure(grid, log_colour=False).to_plotly_json()["layout"]["scene"]["zaxis"]["type"] == "linear"
    assert len(fs.surface3d_figure(grid).data) == 1  # no descents given: the surface alone
