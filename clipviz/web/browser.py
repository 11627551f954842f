"""The surface page's layers where they rest on the browser, not on Plotly's figure model.

:mod:`clipviz.figures.surface` builds plain figures.  The surface page stacks them as layers over
one plot area, and two of its layers are drawn in ways that only a browser page gives:

* the path layer marks the descents' steps with SVG ``<marker>`` elements that the browser puts
  on every vertex of a trace's line (the CSS ``marker`` property), chosen by the trace's uid
  (:data:`STEP_MARKERS`, :func:`path_layer_traces`); the page's HTML carries their definitions
  (:func:`step_marker_html`);
* the title layers have no tick labels, so their axis titles go as far out as the tick labels of
  the layer under them reach, which was measured in Chromium (:data:`TICK_DEPTH`,
  :data:`DIAG_TICK_DEPTH`);
* the step in view (the page's step slider, play button and hover) is moved by browser code
  without a request: it gets every step of both descents (:func:`steps_dict`), a small layer of
  markers over the paths (:func:`step_layer`), the marks it places on the side figure
  (:func:`diag_now_shapes`) and a marker trace on the 3-D view (:func:`view3d_figure`).
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from ..figures import surface as fs
from ..figures._util import CLIPPED, FIRED, UNCLIPPED, typed
from ..one_unit import Trajectory

#: The path layer marks the steps with SVG ``<marker>`` elements that the browser draws at every
#: vertex of a trace's line, not with Plotly markers (one SVG element each, styled one by one on
#: every redraw).  Trace uid -> the marker: a dot (radius, colour) or a ring (radius, colour,
#: line width).  :func:`step_marker_html` puts them into the page.
STEP_MARKERS = {
    "cv-unclipped": dict(r=2.5, fill=UNCLIPPED),
    "cv-clipped": dict(r=2.5, fill=CLIPPED),
    "cv-fired": dict(r=fs.FIRED_SIZE / 2, ring=FIRED, width=fs.FIRED_RING),
    # where clipping fires at most steps (AutoClip): a thin ring just around the step's dot
    "cv-fired-dense": dict(r=3.4, ring=FIRED, width=1.2),
}

#: where clipping fired at more than :data:`clipviz.figures.surface.DENSE_FIRED` of the drawn
#: steps, full rings would bury the path under one orange band: the rings are thin
#: (``cv-fired-dense``) and at most one per cell of this fraction of the window's width and
#: height (about two rings' width on the page's plot area, so the path shows between them)
DENSE_RING_CELL = 1 / 30

#: depth (px) of the surface layer's tick labels, measured in Chromium: the title layer, which has
#: no tick labels, puts its titles this much further out so that they sit where they would on the surface
TICK_DEPTH = dict(xaxis=24, yaxis=27)
#: room (px) the side figure's tick labels take, measured in Chromium: its title layer puts the
#: titles this much further out ("10⁻¹²" on the log axes; step numbers under the x axis)
DIAG_TICK_DEPTH = dict(yaxis=42, xaxis2=22, yaxis2=42)


def _marked_line(uid: str, name: str, pts: np.ndarray, colour: str, export: dict) -> dict:
    """A line through ``pts`` whose vertices the page marks with the STEP_MARKERS entry ``uid``;
    ``meta.export``: what to draw instead when the layer is exported (Plotly markers)."""
    if pts.shape[0] == 1:  # a line needs two vertices to be drawn (and marked)
        pts = np.vstack([pts, pts])
    return dict(type="scatter", mode="lines", name=name, uid=uid, hoverinfo="skip",
                x=typed(pts[:, 0], "f8"), y=typed(pts[:, 1], "f8"),
                # simplify=False: Plotly would drop vertices on nearly straight stretches, and a step
                # with them
                line=dict(color=colour, width=2, simplify=False), meta=dict(export=export))


def path_layer_traces(unclipped: Trajectory, clipped: Trajectory,
                      window: tuple[float, float, float, float]) -> tuple[list[dict], list[dict]]:
    """The page's path layer: [unclipped, clipped, start], then the steps where clipping fired
    and the divergence markers when there are any; and the annotations.

    Where clipping fired at more than :data:`~clipviz.figures.surface.DENSE_FIRED` of the steps
    (AutoClip fires at most),
    the fired steps get thin rings, one per :data:`DENSE_RING_CELL` (:func:`dense_rings`), so the
    path stays in sight under them.

    Cheap to redraw: steps that cannot be told apart at ``window`` are left out
    (:func:`clipviz.figures.surface.thin_steps`; a kept step counts as fired when it or a step it
    stands for fired), and steps are marked by the browser at the lines' vertices
    (:data:`STEP_MARKERS`; the fired steps are the vertices of a line drawn without ink).  No hover
    text (the layer takes no mouse).
    """
    ku, kc = fs.thin_steps(unclipped.params, window), fs.thin_steps(clipped.params, window)
    pc = clipped.params[kc]
    # a kept step stands for itself and the left-out steps up to the next kept one
    fired = np.logical_or.reduceat(fs.fired_at_points(clipped), kc)
    tr_u = _marked_line("cv-unclipped", "no clipping", unclipped.params[ku], UNCLIPPED,
                        dict(mode="lines+markers", marker=dict(size=5, color=UNCLIPPED)))
    tr_c = _marked_line("cv-clipped", fs.clip_label(clipped), pc, CLIPPED,
                        dict(mode="lines+markers", marker=dict(size=5, color=CLIPPED)))
    tr_s, tr_d, notes = fs.start_and_divergence(unclipped, clipped)
    traces = [tr_u, tr_c, tr_s]
    if fired.sum() > fs.DENSE_FIRED * fired.size:
        ring = STEP_MARKERS["cv-fired-dense"]
        traces.append(_marked_line(
            "cv-fired-dense", "clipping fired", dense_rings(pc[fired], window), "rgba(0,0,0,0)",
            dict(mode="markers", marker=dict(size=2 * ring["r"] + ring["width"], color="rgba(0,0,0,0)",
                                             line=dict(color=FIRED, width=ring["width"])))))
    elif fired.any():
        traces.append(_marked_line(
            "cv-fired", "clipping fired", pc[fired], "rgba(0,0,0,0)",
            dict(mode="markers", marker=dict(size=fs.FIRED_SIZE + 2, color="rgba(0,0,0,0)",
                                             line=dict(color=FIRED, width=fs.FIRED_RING)))))
    if tr_d["x"]:
        traces.append(tr_d)
    return traces, notes


def dense_rings(points: np.ndarray, window: tuple[float, float, float, float],
                cell: float = DENSE_RING_CELL) -> np.ndarray:
    """The first of ``points`` in each cell of a grid over ``window`` (cells ``cell`` of its width
    and height), in their order: where clipping fires at most steps, one ring per cell marks
    that it fired there and leaves the path between the rings in sight."""
    pts = np.asarray(points, dtype=float)
    if pts.shape[0] == 0:
        return pts
    size = np.array([window[1] - window[0], window[3] - window[2]], dtype=float) * cell
    cells = np.floor((pts - np.array([window[0], window[2]])) / size)
    cells = np.where(np.isfinite(cells), cells, np.iinfo(np.int32).max)
    _, first = np.unique(cells, axis=0, return_index=True)
    return pts[np.sort(first)]


def paths_dict(window: tuple[float, float, float, float], unclipped: Trajectory,
               clipped: Trajectory) -> dict:
    """The path layer: both descents over ``window`` = (w_min, w_max, b_min, b_max) (plain dict)."""
    traces, notes = path_layer_traces(unclipped, clipped, window)
    return {"data": traces, "layout": fs.paths_layout(window, notes)}


def title_layer(clip: str | None = None) -> dict:
    """The surface's title layer (:func:`clipviz.figures.surface.titles_dict`, its legend naming
    the rule ``clip``) over the page's surface layer, whose tick labels take :data:`TICK_DEPTH`."""
    return fs.titles_dict(tick_depth=TICK_DEPTH, clip=clip)


# ---------------------------------------------------------------------------
# time and linking: the step the page's step slider (or the mouse) points at
# ---------------------------------------------------------------------------
#: the marker of the step in view on each descent ("u" unclipped, "c" clipped): the unclipped one
#: larger, so that it shows around the clipped one where the two descents are at the same point
NOW_MARKERS = {"u": dict(size=16, color=UNCLIPPED, line=dict(color="white", width=2)),
               "c": dict(size=10, color=CLIPPED, line=dict(color="white", width=1.5))}
#: the ring around the step in view on the side figure's ‖g‖ and E, in pixels
NOW_RING = 6


def steps_dict(unclipped: Trajectory, clipped: Trajectory) -> dict:
    """Every step of both descents, for the page's browser code (the step slider, the read-out
    on hover, the 3-D view's trajectories): per run (``u``, ``c``) its legend name and, as float64
    typed arrays, ``w``, ``b``, ``E`` (one per visited point) and ``g``, ‖g‖ at the point (one per
    step taken); for the clipped run ``fired``, 1 where clipping fired (uint8)."""
    def run(t: Trajectory, name: str) -> dict:
        return {"name": name, "w": typed(t.params[:, 0], "f8"), "b": typed(t.params[:, 1], "f8"),
                "E": typed(t.loss, "f8"), "g": typed(t.grad_norm, "f8")}

    return {"u": run(unclipped, "no clipping"),
            "c": {**run(clipped, fs.clip_label(clipped)), "fired": typed(clipped.clipped.astype(np.uint8), "u1")}}


def step_layer(window: tuple[float, float, float, float], unclipped: Trajectory, clipped: Trajectory,
               k: int = 0) -> dict:
    """The surface's step layer, over the path layer: a marker on each descent (traces ``u``, ``c``:
    :data:`NOW_MARKERS`) at step ``k`` (a descent that stopped earlier: its last step); the page's
    browser code moves them to the step in view (a restyle of this small layer, no request)."""
    def at(t):
        return min(max(int(k), 0), t.params.shape[0] - 1)

    data = [dict(type="scatter", mode="markers", name=f"step in view ({run})", uid=f"cv-now-{run}",
                 x=[float(t.params[at(t), 0])], y=[float(t.params[at(t), 1])], marker=NOW_MARKERS[run],
                 hoverinfo="skip", showlegend=False)
            for run, t in (("u", unclipped), ("c", clipped))]
    return {"data": data, "layout": fs.paths_layout(window, [])}


def view3d_figure(grid: fs.SurfaceGrid, log_colour: bool, unclipped: Trajectory | None = None,
                  clipped: Trajectory | None = None) -> go.Figure:
    """The page's 3-D view: :func:`clipviz.figures.surface.surface3d_figure` with both descents, and
    the step in view on each (one marker trace, last; the browser code moves it)."""
    fig = fs.surface3d_figure(grid, log_colour, unclipped=unclipped, clipped=clipped)
    if unclipped is not None and clipped is not None:
        ts = (unclipped, clipped)
        fig.add_trace(dict(
            type="scatter3d", mode="markers", name="step in view", uid="cv-now-3d", showlegend=False,
            x=[float(t.params[0, 0]) for t in ts], y=[float(t.params[0, 1]) for t in ts],
            z=[float(max(t.loss[0], fs.E_FLOOR)) for t in ts], hoverinfo="skip",
            marker=dict(size=7, color=[NOW_MARKERS[r]["color"] for r in "uc"], line=dict(color="white", width=1))))
    return fig


def diag_now_shapes() -> list[dict]:
    """What marks the step in view on the side figure, for the browser code to place: a dotted
    line across both panels (``series`` None), and a ring on each run's ‖g‖ (``g``) and E (``E``):
    ``{"run", "series", "shape"}``, the shape lacking its position (x, and y of a ring).

    A ring is :data:`NOW_RING` pixels wide and high: across in pixels from its x, up and down in
    the log axis's units from its y (Plotly draws a circle sized in pixels on a log axis half as
    high as wide), which the browser code works out from the axis's range and length."""
    line = dict(type="line", name="cv-now", xref="x", yref="paper", y0=0, y1=1, layer="below",
                line=dict(color="#6b7280", width=1, dash="dot"))
    out = [{"run": None, "series": None, "shape": line}]
    for run, colour in (("u", UNCLIPPED), ("c", CLIPPED)):
        for series, (xref, yref) in (("g", ("x", "y")), ("E", ("x2", "y2"))):
            out.append({"run": run, "series": series, "shape": dict(
                type="circle", name="cv-now", xref=xref, yref=yref, xsizemode="pixel",
                x0=-NOW_RING, x1=NOW_RING, line=dict(color=colour, width=2),
                fillcolor="rgba(255,255,255,0.4)")})
    return out


def diag_title_layer() -> dict:
    """The side figure's title layer (:func:`clipviz.figures.surface.diagnostics_titles_dict`)
    over the page's side figure, whose tick labels take :data:`DIAG_TICK_DEPTH`."""
    return fs.diagnostics_titles_dict(tick_depth=DIAG_TICK_DEPTH)


def step_marker_html() -> str:
    """The SVG ``<marker>`` definitions of the path layer and the CSS that puts them on the
    vertices of the lines whose trace uid names them (:data:`STEP_MARKERS`; Plotly gives a trace's
    group the class ``trace<uid>`` and its line the class ``js-line``)."""
    defs, css = [], []
    for uid, m in STEP_MARKERS.items():
        r = m["r"] + m.get("width", 0) / 2
        shape = (f'<circle r="{m["r"]}" fill="none" stroke="{m["ring"]}" stroke-width="{m["width"]}"/>'
                 if "ring" in m else f'<circle r="{m["r"]}" fill="{m["fill"]}"/>')
        defs.append(f'<marker id="{uid}-step" viewBox="{-r} {-r} {2 * r} {2 * r}" refX="0" refY="0" '
                    f'markerWidth="{2 * r}" markerHeight="{2 * r}" markerUnits="userSpaceOnUse">{shape}</marker>')
        css.append(f".js-plotly-plot .trace{uid} path.js-line {{ marker: url(#{uid}-step); }}")
    return (f'<svg width="0" height="0" style="position:absolute" aria-hidden="true"><defs>{"".join(defs)}'
            f'</defs></svg>\n        <style>{" ".join(css)}</style>')
