"""The surface page's layers where they rest on the browser, not on Plotly's figure model.

:mod:`clipviz.figures.surface` builds plain figures.  The surface page stacks them as layers over
one plot area, and two of its layers are drawn in ways that only a browser page gives:

* the path layer marks the descents' steps with SVG ``<marker>`` elements that the browser puts
  on every vertex of a trace's line (the CSS ``marker`` property), chosen by the trace's uid
  (:data:`STEP_MARKERS`, :func:`path_layer_traces`); the page's HTML carries their definitions
  (:func:`step_marker_html`);
* the title layers have no tick labels, so their axis titles go as far out as the tick labels of
  the layer under them reach, which was measured in Chromium (:data:`TICK_DEPTH`,
  :data:`DIAG_TICK_DEPTH`).
"""

from __future__ import annotations

import numpy as np

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
}

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
    if fired.any():
        traces.append(_marked_line(
            "cv-fired", "clipping fired", pc[fired], "rgba(0,0,0,0)",
            dict(mode="markers", marker=dict(size=fs.FIRED_SIZE + 2, color="rgba(0,0,0,0)",
                                             line=dict(color=FIRED, width=fs.FIRED_RING)))))
    if tr_d["x"]:
        traces.append(tr_d)
    return traces, notes


def paths_dict(window: tuple[float, float, float, float], unclipped: Trajectory,
               clipped: Trajectory) -> dict:
    """The path layer: both descents over ``window`` = (w_min, w_max, b_min, b_max) (plain dict)."""
    traces, notes = path_layer_traces(unclipped, clipped, window)
    return {"data": traces, "layout": fs.paths_layout(window, notes)}


def title_layer() -> dict:
    """The surface's title layer (:func:`clipviz.figures.surface.titles_dict`) over the page's
    surface layer, whose tick labels take :data:`TICK_DEPTH`."""
    return fs.titles_dict(tick_depth=TICK_DEPTH)


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
