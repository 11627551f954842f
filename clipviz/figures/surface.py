"""Figures of the error-surface page: the paper's Figure 3 with descent paths on it.

The surface is E_T(w, b) of equation (14) over a window, drawn as a heatmap of
log10 E (the wall is orders of magnitude above the valley floor) with contour
lines; on it the unclipped and the clipped gradient-descent paths from one
start, each step marked, the steps where clipping fired marked differently,
and a divergence annotated instead of a line to infinity (and a note when
clipping never fired, so that the two descents are one).  Beside it: the
gradient norm per step on a log axis with the threshold, and E per step.  In
3-D (:func:`surface3d_figure`): the surface z = E with both descents on it, the
clipped one dashed.  The CSV exports begin with their parameters as
``# key = value`` lines.

Trace layout of :func:`surface_figure` (for export and notebooks): 0 heatmap,
1 contour lines, 2 unclipped path, 3 clipped path, 4 clip fired, 5 start,
6 divergence points.  The web page draws the same picture as stacked layers
with one plot area, each redrawn only when what it shows changes: the surface
(:func:`surface_dict`), the paths (``clipviz.web.browser.paths_dict``, which
marks the steps in ways only a browser page can), the frame with tick labels
and colour bar (:func:`frame_dict`), and the MathJax axis titles with the
legend (:func:`titles_dict`, drawn once).
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go

from .. import clipping

from ..config import SETTINGS
from ..one_unit import Trajectory, error_surface
from ._util import CLIPPED, FIRED, FONT, TEMPLATE, UNCLIPPED, csv_text, typed

E_FLOOR = 1e-12  #: E below this is drawn as this on the log colour scale
N_TRAJ_TRACES = 5  #: traces 2..6
CONTOUR_MAX = 64  #: the contour-line trace uses at most this many points per axis (cheap to redraw)


@dataclass
class SurfaceGrid:
    """E_T over a (w, b) grid; E has shape (len(bs), len(ws))."""

    ws: np.ndarray
    bs: np.ndarray
    E: np.ndarray
    steps: int
    x0: float
    target: float
    activation: str

    @property
    def window(self) -> tuple[float, float, float, float]:
        """(w_min, w_max, b_min, b_max)."""
        return float(self.ws[0]), float(self.ws[-1]), float(self.bs[0]), float(self.bs[-1])


def compute_surface(w_min: float, w_max: float, b_min: float, b_max: float, resolution: int, *,
                    steps: int = SETTINGS.steps, x0: float = SETTINGS.x0,
                    target: float = SETTINGS.target,
                    activation: str = SETTINGS.activation) -> SurfaceGrid:
    """E_T of equation (14) on a ``resolution`` x ``resolution`` grid over the window."""
    if not (w_min < w_max and b_min < b_max):
        raise ValueError(f"the window needs w_min < w_max and b_min < b_max; got "
                         f"w in [{w_min:g}, {w_max:g}], b in [{b_min:g}, {b_max:g}]")
    ws = np.linspace(w_min, w_max, int(resolution))
    bs = np.linspace(b_min, b_max, int(resolution))
    s = error_surface(ws, bs, steps=steps, x0=x0, target=target, activation=activation)
    return SurfaceGrid(ws, bs, s.E, int(steps), float(x0), float(target), activation)


def colour_values(E: np.ndarray, log_colour: bool) -> np.ndarray:
    """What the colour scale shows: log10 E (floored at E_FLOOR) or E, as float32."""
    if log_colour:
        return np.log10(np.maximum(E, E_FLOOR)).astype(np.float32)
    return E.astype(np.float32)


def _nice_ceil(x: float) -> float:
    """The smallest of 1, 2, 2.5, 5 × 10^k that is >= x (x > 0)."""
    k = math.floor(math.log10(x))
    for m in (1.0, 2.0, 2.5, 5.0, 10.0):
        if m * 10.0 ** k >= x * (1 - 1e-12):
            return m * 10.0 ** k
    return 10.0 ** (k + 1)  # pragma: no cover (10 × 10^k always qualifies)


def colour_range(z: np.ndarray, log_colour: bool) -> tuple[float, float]:
    """The ends of the colour scale for the values ``z`` (:func:`colour_values`), rounded outwards:
    log10 E to half decades, E from 0 up to 1, 2, 2.5 or 5 × 10^k.  The scale and its colour bar
    then stay put while the surface changes a little (a step of T, x0 or the window), so a colour
    means the same error across such changes and the colour bar need not be redrawn."""
    lo, hi = float(np.nanmin(z)), float(np.nanmax(z))
    if log_colour:
        lo, hi = math.floor(2.0 * lo) / 2.0, math.ceil(2.0 * hi) / 2.0
        return lo, max(hi, lo + 0.5)
    return 0.0, _nice_ceil(max(hi, E_FLOOR))


def colorbar(zrange: tuple[float, float], log_colour: bool) -> dict:
    """The colour bar of the surface for a colour range: decades as 1e-k on the log scale."""
    cb = dict(title=dict(text="E<sub>T</sub>", side="right"), thickness=14, len=0.9)
    if log_colour:
        lo, hi = math.ceil(zrange[0]), math.floor(zrange[1])
        step = max(1, (hi - lo) // 6)
        ticks = list(range(lo, hi + 1, step))
        cb.update(tickvals=ticks, ticktext=[f"1e{t}" for t in ticks])
    return cb


def _downsample(n: int) -> slice:
    return slice(None, None, max(1, int(np.ceil(n / CONTOUR_MAX))))


def surface_traces(grid: SurfaceGrid, log_colour: bool = True, with_colorbar: bool = True) -> tuple[dict, dict]:
    """The heatmap and contour-line traces (as plain dicts with typed arrays), coloured over
    :func:`colour_range`.  ``with_colorbar=False``: the web page, which draws the colour bar on
    its own layer (:func:`frame_dict`)."""
    z = colour_values(grid.E, log_colour)
    zmin, zmax = colour_range(z, log_colour)
    name = "log10 E" if log_colour else "E"
    heat = dict(
        type="heatmap", x=typed(grid.ws), y=typed(grid.bs), z=typed(z), zmin=zmin, zmax=zmax,
        colorscale="Viridis", name=name, showscale=with_colorbar,
        # "fast": one pixel per grid point, scaled up unsmoothed: looks as zsmooth=False (one flat
        # brick per point) on this uniform grid, and draws faster than a rectangle per brick
        zsmooth="fast",
        hovertemplate="w=%{x:.3f}<br>b=%{y:.3f}<br>" + name + "=%{z:.3g}<extra></extra>",
    )
    if with_colorbar:
        heat["colorbar"] = colorbar((zmin, zmax), log_colour)
    sr, sc = _downsample(grid.bs.size), _downsample(grid.ws.size)
    lines = dict(
        type="contour", x=typed(grid.ws[sc]), y=typed(grid.bs[sr]), z=typed(z[sr, sc]),
        contours=dict(coloring="none", showlines=True, start=zmin, end=zmax,
                      size=max((zmax - zmin) / 10, 1e-9)),
        line=dict(color="rgba(255,255,255,0.55)", width=0.8), showscale=False,
        hoverinfo="skip", name="contours", showlegend=False,
    )
    return heat, lines


def _hover(t: Trajectory, label: str) -> list[str]:
    out = []
    for i in range(t.params.shape[0]):
        g = f"{t.grad_norm[i]:.3g}" if i < t.grad_norm.size else "–"
        out.append(f"{label} step {i}<br>w={t.params[i, 0]:.4g}, b={t.params[i, 1]:.4g}"
                   f"<br>E={t.loss[i]:.3g}, ‖g‖={g}")
    return out


#: the web page's path layer leaves out a step's marker when it lies within this fraction of the
#: window (per axis) of the last marker drawn: 0.5 px at 1000 px, so the picture is the same
THIN = 1 / 2000


def thin_steps(points: np.ndarray, window: tuple[float, float, float, float],
               tol: float = THIN) -> np.ndarray:
    """Indices of the steps of a path that can be seen apart at ``window`` = (w_min, w_max, b_min, b_max).

    Step k is left out when it lies within ``tol`` of the window's width (in w) and height (in b)
    of the last step kept; the first and last steps are always kept.  Every left-out step is
    then within ``tol`` of a kept one, and every point of the line through all the steps lies
    within ``tol`` of the line through the kept ones (the steps skipped after a kept step lie in a
    box of that size around it).  A converging descent piles up dozens of markers on one pixel,
    and the browser redraws every SVG marker, seen or not.
    """
    pts = np.asarray(points, dtype=float)
    n = pts.shape[0]
    if n <= 2:
        return np.arange(n)
    scale = np.array([window[1] - window[0], window[3] - window[2]], dtype=float) * tol
    keep = [0]
    last = pts[0]
    for k in range(1, n - 1):
        p = pts[k]
        # NaN / inf (a diverged run's last steps) are always kept: never hidden behind a marker
        if not (abs(p[0] - last[0]) <= scale[0] and abs(p[1] - last[1]) <= scale[1]):
            keep.append(k)
            last = p
    keep.append(n - 1)
    return np.asarray(keep)


def start_and_divergence(unclipped: Trajectory, clipped: Trajectory) -> tuple[dict, dict, list[dict]]:
    """The start marker, the divergence markers (maybe none) and the annotations: where a run
    diverged, and :data:`COINCIDE_NOTE` when the two descents are one (:func:`coincide`)."""
    tr_s = dict(type="scatter", mode="markers", name="start",
                x=[float(unclipped.params[0, 0])], y=[float(unclipped.params[0, 1])],
                marker=dict(size=15, symbol="star", color="white", line=dict(color="black", width=1.5)),
                hovertemplate="start w=%{x:.4g}, b=%{y:.4g}<extra></extra>")
    dx, dy, notes = [], [], []
    for t, colour, who in ((unclipped, UNCLIPPED, "unclipped"), (clipped, CLIPPED, "clipped")):
        if t.diverged_at is not None:
            w, b = (float(v) for v in t.params[-1])
            dx.append(w)
            dy.append(b)
            notes.append(dict(x=w, y=b, text=f"{who}: diverged at step {t.diverged_at}",
                              showarrow=True, arrowhead=2, ax=40, ay=-30 if who == "unclipped" else 30,
                              font=dict(color=colour, size=12), bgcolor="rgba(255,255,255,0.85)"))
    tr_d = dict(type="scatter", mode="markers", name="diverged", x=dx, y=dy,
                marker=dict(size=14, symbol="x", color="black"), hoverinfo="skip",
                showlegend=bool(dx))
    if coincide(unclipped, clipped):
        notes.append(dict(name="coincide", text=COINCIDE_NOTE, xref="paper", yref="paper", x=0.01, y=0.99,
                          xanchor="left", yanchor="top", showarrow=False, font=dict(size=12, color="#333"),
                          bgcolor="rgba(255,255,255,0.85)", borderpad=3))
    return tr_s, tr_d, notes


def fired_at_points(t: Trajectory) -> np.ndarray:
    """fired[k]: the gradient taken at t.params[k] was clipped (False at the last point)."""
    n = t.params.shape[0]
    fired = np.zeros(n, dtype=bool)
    m = min(n, t.clipped.size)
    fired[:m] = t.clipped[:m]
    return fired


def trajectory_traces(unclipped: Trajectory, clipped: Trajectory,
                      hover: bool = True) -> tuple[list[dict], list[dict]]:
    """Traces 2..6 and the divergence annotations of :func:`surface_figure`: every step drawn,
    with its hover text (``hover=False``: none), clipping marked by a ring trace of its own.

    Coordinates go as float64 typed arrays.  (The web page draws
    ``clipviz.web.browser.path_layer_traces``.)
    """
    tr_u = dict(type="scatter", mode="lines+markers", name="no clipping",
                x=typed(unclipped.params[:, 0], "f8"), y=typed(unclipped.params[:, 1], "f8"),
                line=dict(color=UNCLIPPED, width=2), marker=dict(size=5, color=UNCLIPPED))
    tr_c = dict(type="scatter", mode="lines+markers", name=clip_label(clipped),
                x=typed(clipped.params[:, 0], "f8"), y=typed(clipped.params[:, 1], "f8"),
                line=dict(color=CLIPPED, width=2), marker=dict(size=5, color=CLIPPED))
    if hover:
        tr_u.update(text=_hover(unclipped, "unclipped"), hoverinfo="text")
        tr_c.update(text=_hover(clipped, "clipped"), hoverinfo="text")
    else:
        tr_u["hoverinfo"] = tr_c["hoverinfo"] = "skip"
    fired = clipped.params[fired_at_points(clipped)]
    tr_f = dict(type="scatter", mode="markers", name="clipping fired",
                x=typed(fired[:, 0], "f8"), y=typed(fired[:, 1], "f8"),
                marker=dict(size=11, color="rgba(0,0,0,0)", line=dict(color=FIRED, width=2.5)),
                hoverinfo="skip")
    tr_s, tr_d, notes = start_and_divergence(unclipped, clipped)
    return [tr_u, tr_c, tr_f, tr_s, tr_d], notes


#: a step where clipping fired: a ring of this size (diameter, px) and line width around its marker
FIRED_SIZE, FIRED_RING = 9, 2.5
#: clipping fired at more than this fraction of the steps, nearly every one (AutoClip at a low
#: percentile): a full ring on each would bury the run under one orange band, so the rings are
#: thin (on the side figure: :data:`DENSE_FIRED_MARKER`)
DENSE_FIRED = 0.75
DENSE_FIRED_MARKER = dict(size=6, color="rgba(0,0,0,0)", line=dict(color=FIRED, width=1.2))


def rule_label(clip: str) -> str:
    """The legend name of the second descent, made with the clipping rule ``clip``, without its
    parameters (:attr:`clipviz.clipping.Rule.legend`; a rule without parameters, which never
    clips, names a second plain run)."""
    rule = clipping.lookup(clip)
    if rule is None:
        return f"{clip} clipping"
    if not rule.params:
        return f"second run ({rule.legend})"
    return rule.legend


def clip_label(t: Trajectory) -> str:
    """The legend name of a descent with its clipping rule (and threshold), from the rule
    (:mod:`clipviz.clipping`)."""
    rule = clipping.lookup(t.clip)
    if rule is not None and rule.line is not None and t.threshold is not None:
        sym = next(p.symbol for p in rule.params if p.name == rule.line)
        return f"{rule.legend}, {sym}={t.threshold:g}"
    return rule_label(t.clip)


#: the note on the figures when the two descents are one: the clipped run, drawn over the
#: unclipped one, hides it
COINCIDE_NOTE = "clipping never fired: the two descents coincide"


def coincide(unclipped: Trajectory, clipped: Trajectory) -> bool:
    """The clipping rule never fired and the two descents visited the same points."""
    return (not clipped.clipped.any() and unclipped.params.shape == clipped.params.shape
            and bool(np.array_equal(unclipped.params, clipped.params)))


HEIGHT = 560
#: fixed margins (autoexpand off) so that the path overlay lines up with the surface under it
MARGIN = dict(l=62, r=96, t=40, b=96, autoexpand=False)


#: the axis titles, typeset by MathJax
AXIS_TITLES = dict(xaxis=r"$w$", yaxis=r"$b$")
#: room (px) between an axis's tick labels and its title
TITLE_STANDOFF = 4
#: where a figure's title sits and its size
TITLE_STYLE = dict(x=0.01, font=dict(size=14))


def _axes(window: tuple[float, float, float, float], visible: bool, titles: bool = False) -> dict:
    common = dict(showgrid=False, zeroline=False, fixedrange=True)
    x = dict(range=[window[0], window[1]], **common)
    y = dict(range=[window[2], window[3]], **common)
    if titles:
        x["title"] = dict(text=AXIS_TITLES["xaxis"], standoff=TITLE_STANDOFF)
        y["title"] = dict(text=AXIS_TITLES["yaxis"], standoff=TITLE_STANDOFF)
    if not visible:
        for a in (x, y):
            a.update(showticklabels=False, ticks="", showline=False, visible=False)
    return dict(xaxis=x, yaxis=y)


#: what the page's title adds for the page (a click sets the start); an exported figure leaves it out
TITLE_HINT = "(click to set the start)"


def _subscript(n: int) -> str:
    return str(n).translate(str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉"))


def surface_title(grid: SurfaceGrid, hint: bool = True) -> str:
    """The surface's title, as plain text (E_T with T as Unicode subscript digits); ``hint``: with
    :data:`TITLE_HINT` (the web page), else for a figure on its own (an export, a notebook)."""
    title = f"Error surface E{_subscript(grid.steps)}(w, b)"
    return f"{title}   {TITLE_HINT}" if hint else title


def surface_layout(grid: SurfaceGrid, uirevision: str, titles: bool = False, chrome: bool = True) -> dict:
    """Layout of the surface.

    ``chrome=False`` (the web page's base layer): no tick labels, colour bar or title; the page
    draws those on the frame layer (:func:`frame_dict`), which is redrawn only when the window
    or the colour range changes, and the title as text.  ``titles=False``: the MathJax axis
    titles are left to the title layer (:func:`titles_dict`), drawn once: typesetting them again
    on every redraw is slow.
    """
    layout = dict(
        template=TEMPLATE, font=FONT, uirevision=uirevision, height=HEIGHT, margin=MARGIN,
        clickmode="event", dragmode=False, showlegend=False,
        **_axes(grid.window, chrome, titles),
    )
    if chrome:
        layout["title"] = dict(text=surface_title(grid, hint=False), **TITLE_STYLE)
    return layout


def frame_dict(grid: SurfaceGrid, log_colour: bool = True,
               zrange: tuple[float, float] | None = None) -> dict:
    """The frame layer of the web page: the axes' tick labels and the colour bar over the surface
    layer (same plot area), and nothing else.  Its ``layout.meta`` names what it shows (window and
    colour range): the page redraws it only when that changes.  ``zrange``: the colour range when
    the caller has it (the surface layer's zmin, zmax), else computed from the grid."""
    if zrange is None:
        zrange = colour_range(colour_values(grid.E, log_colour), log_colour)
    w0, w1, b0, b1 = grid.window
    # the colour bar needs a trace: one transparent brick in a corner of the window
    bar = dict(type="heatmap", x=[w0, w1], y=[b0, b1], z=[[zrange[0], zrange[1]], [zrange[0], zrange[1]]],
               zmin=zrange[0], zmax=zrange[1], colorscale="Viridis", opacity=0.0, hoverinfo="skip",
               showscale=True, colorbar=colorbar(zrange, log_colour), name="colour scale")
    return {"data": [bar], "layout": dict(
        template=TEMPLATE, font=FONT, height=HEIGHT, margin=MARGIN, showlegend=False, dragmode=False,
        hovermode=False, paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(0,0,0,0)",
        meta=f"{w0:g},{w1:g},{b0:g},{b1:g}|{zrange[0]:g},{zrange[1]:g}|{'log' if log_colour else 'lin'}",
        **_axes(grid.window, True))}


#: the legend of the page's path layer, drawn once on the title layer (the browser would draw a
#: legend again on every redraw): the key of the symbols, the second run named by its clipping rule
#: (:func:`legend_key`); τ is in the controls and in the side figure's legend
LEGEND = dict(orientation="h", x=0, y=-0.1, yanchor="top", bgcolor="rgba(0,0,0,0)")
#: an exported figure's legend: at the foot of the image, whatever its size (a legend placed
#: relative to the plot area is cut off by a fixed margin)
EXPORT_LEGEND = dict(orientation="h", x=0, xanchor="left", y=0, yref="container", yanchor="bottom",
                     bgcolor="rgba(0,0,0,0)")
LEGEND_KEY = (
    dict(name="no clipping", mode="lines+markers", line=dict(color=UNCLIPPED, width=2),
         marker=dict(size=5, color=UNCLIPPED)),
    dict(name="with clipping", mode="lines+markers", line=dict(color=CLIPPED, width=2),
         marker=dict(size=5, color=CLIPPED)),
    dict(name="clipping fired", mode="markers",
         marker=dict(size=FIRED_SIZE + 2, color="rgba(0,0,0,0)", line=dict(color=FIRED, width=FIRED_RING))),
    dict(name="start", mode="markers",
         marker=dict(size=15, symbol="star", color="white", line=dict(color="black", width=1.5))),
    dict(name="diverged", mode="markers", marker=dict(size=14, symbol="x", color="black")),
)


def legend_key(clip: str | None = None) -> list[dict]:
    """:data:`LEGEND_KEY` with the second run named by the clipping rule ``clip``
    (:func:`rule_label`; None: "with clipping")."""
    key = [dict(k) for k in LEGEND_KEY]
    if clip is not None:
        key[1]["name"] = rule_label(clip)
    return key


def titles_dict(tick_depth: Mapping[str, float] | None = None, clip: str | None = None) -> dict:
    """The title layer: the MathJax axis titles of the surface, placed as on a surface layout with
    ``titles=True``, and the legend of the path layer (traces without points,
    :func:`legend_key` of ``clip``); the web page draws it once, over the surface.

    ``tick_depth``: room (px, per axis name) that the tick labels of the layer under this one take;
    this layer has none, so its titles go that much further out (none: no room).
    """
    depth = tick_depth or {}
    axes = _axes((0.0, 1.0, 0.0, 1.0), False)
    for name, ax in axes.items():
        ax.update(visible=True, title=dict(text=AXIS_TITLES[name], standoff=TITLE_STANDOFF + depth.get(name, 0)))
    key = [dict(type="scatter", x=[None], y=[None], hoverinfo="skip", **k) for k in legend_key(clip)]
    return {"data": key, "layout": dict(
        template=TEMPLATE, font=FONT, height=HEIGHT, margin=MARGIN, showlegend=True, legend=LEGEND,
        paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(0,0,0,0)", dragmode=False, hovermode=False,
        **axes)}


def paths_layout(window: tuple[float, float, float, float], notes: list[dict]) -> dict:
    """Layout of the transparent path layer drawn over the surface (same plot area, no legend:
    that is on the title layer)."""
    return dict(
        template=TEMPLATE, font=FONT, height=HEIGHT, margin=MARGIN, uirevision="paths",
        paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(0,0,0,0)", dragmode=False,
        hovermode=False, annotations=notes, showlegend=False, **_axes(window, False),
    )


def window_revision(grid: SurfaceGrid) -> str:
    """uirevision of the surface: UI state survives updates until the window itself changes."""
    return f"{grid.ws[0]:g},{grid.ws[-1]:g},{grid.bs[0]:g},{grid.bs[-1]:g}"


def surface_dict(grid: SurfaceGrid, log_colour: bool = True) -> dict:
    """The web page's base layer: heatmap and contour lines, no tick labels, colour bar or title
    (those are on :func:`frame_dict`); a plain dict with typed float32 arrays."""
    heat, lines = surface_traces(grid, log_colour, with_colorbar=False)
    return {"data": [heat, lines], "layout": surface_layout(grid, window_revision(grid), chrome=False)}


def surface_figure(grid: SurfaceGrid, unclipped: Trajectory, clipped: Trajectory, *,
                   log_colour: bool = True) -> go.Figure:
    """Figure 3 of the paper with both descent paths, as one figure (for export and notebooks).

    Traces as in the module docstring.  The web page draws the same picture as
    stacked layers (see the module docstring) so that a change redraws only what
    it moves.
    """
    traces, notes = trajectory_traces(unclipped, clipped, hover=True)
    layout = dict(surface_layout(grid, window_revision(grid), titles=True), showlegend=True, annotations=notes,
                  legend=LEGEND)
    return go.Figure(data=[*surface_traces(grid, log_colour), *traces], layout=layout)


def trajectory3d_traces(unclipped: Trajectory, clipped: Trajectory) -> list[dict]:
    """Both descents on the 3-D surface (z = E, floored at :data:`E_FLOOR` as the surface is), the
    clipped one dashed as in the paper's Figure 3: [unclipped, clipped]."""
    out = []
    for t, colour, name, dash in ((unclipped, UNCLIPPED, "no clipping", "solid"),
                                  (clipped, CLIPPED, clip_label(clipped), "dash")):
        out.append(dict(type="scatter3d", mode="lines+markers", name=name,
                        x=typed(t.params[:, 0], "f8"), y=typed(t.params[:, 1], "f8"),
                        z=typed(np.maximum(t.loss, E_FLOOR), "f8"),
                        line=dict(color=colour, width=5, dash=dash), marker=dict(size=2, color=colour),
                        hovertemplate="step %{pointNumber}<br>w=%{x:.4g}, b=%{y:.4g}<br>E=%{z:.3g}<extra>"
                                      + name + "</extra>"))
    return out


def surface3d_figure(grid: SurfaceGrid, log_colour: bool = True, max_side: int = 128,
                     unclipped: Trajectory | None = None, clipped: Trajectory | None = None) -> go.Figure:
    """The paper's Figure 3 in 3-D: the surface z = E_T(w, b) (downsampled to at most ``max_side``
    per axis; a log z axis with log colour), and both descents on it when given
    (:func:`trajectory3d_traces`, the clipped one dashed)."""
    sr = slice(None, None, max(1, int(np.ceil(grid.bs.size / max_side))))
    sc = slice(None, None, max(1, int(np.ceil(grid.ws.size / max_side))))
    E = grid.E[sr, sc]
    colour = colour_values(E, log_colour)
    cmin, cmax = colour_range(colour, log_colour)
    data = [dict(type="surface", name="E", x=typed(grid.ws[sc]), y=typed(grid.bs[sr]),
                 z=typed(np.maximum(E, E_FLOOR)), surfacecolor=typed(colour), cmin=cmin, cmax=cmax,
                 colorscale="Viridis", showscale=False, opacity=0.9,
                 hovertemplate="w=%{x:.3f}<br>b=%{y:.3f}<br>E=%{z:.3g}<extra></extra>")]
    if unclipped is not None and clipped is not None:
        data += trajectory3d_traces(unclipped, clipped)
    return go.Figure(
        data=data,
        layout=dict(template=TEMPLATE, font=FONT, height=520, uirevision="3d",
                    margin=dict(l=0, r=0, t=30, b=0), showlegend=unclipped is not None,
                    legend=dict(x=0, y=0.95, bgcolor="rgba(255,255,255,0.7)"),
                    title=dict(text=f"E{_subscript(grid.steps)}(w, b) in 3-D", **TITLE_STYLE),
                    scene=dict(xaxis_title="w", yaxis_title="b", zaxis=dict(
                        title="E", type="log" if log_colour else "linear", exponentformat="power"))),
    )


def diagnostics_figure(unclipped: Trajectory, clipped: Trajectory) -> go.Figure:
    """‖g‖ per step (log axis, threshold line) above E per step (log axis), both runs."""
    return go.Figure(diagnostics_dict(unclipped, clipped))


#: the side figure's MathJax axis titles
DIAG_TITLES = dict(yaxis=r"$\|g\|$", xaxis2=r"$\text{step}$", yaxis2=r"$E_T$")
#: fixed margins (autoexpand off) so that the title layer lines up; the legend sits in the bottom one
DIAG_MARGIN = dict(l=70, r=20, t=40, b=110, autoexpand=False)
#: the side figure's legend: at the foot of the figure (placed from the plot area's foot, a second
#: row of entries fell off the fixed margin)
DIAG_LEGEND = dict(orientation="h", x=0, y=0, yref="container", yanchor="bottom")


def _diag_axes() -> dict:
    return dict(
        xaxis=dict(domain=[0, 1], anchor="y", matches="x2", showticklabels=False),
        yaxis=dict(domain=[0.55, 1], anchor="x", type="log", exponentformat="power"),
        xaxis2=dict(domain=[0, 1], anchor="y2"),
        yaxis2=dict(domain=[0, 0.45], anchor="x2", type="log", exponentformat="power"),
    )


def diagnostics_titles_dict(tick_depth: Mapping[str, float] | None = None) -> dict:
    """The side figure's title layer: its MathJax axis titles over the same plot areas, no data;
    the web page draws it once (instead of typesetting them on every redraw of the side figure).

    ``tick_depth``: as for :func:`titles_dict`, the room the side figure's tick labels take.
    """
    depth = tick_depth or {}
    axes = _diag_axes()
    for name, ax in axes.items():
        ax.update(showticklabels=False, ticks="", showline=False, showgrid=False, zeroline=False)
        if name in DIAG_TITLES:
            ax["title"] = dict(text=DIAG_TITLES[name], standoff=TITLE_STANDOFF + depth.get(name, 0))
    # Plotly makes a subplot only for axes that some trace uses: one empty trace on each
    empty = [dict(type="scatter", x=[], y=[], xaxis=x, yaxis=y, hoverinfo="skip", showlegend=False)
             for x, y in (("x", "y"), ("x2", "y2"))]
    return {"data": empty, "layout": dict(
        template=TEMPLATE, font=FONT, height=DIAG_HEIGHT, margin=DIAG_MARGIN, showlegend=False,
        paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(0,0,0,0)", dragmode=False, hovermode=False,
        **axes)}


DIAG_HEIGHT = 560


def diagnostics_dict(unclipped: Trajectory, clipped: Trajectory, titles: bool = True) -> dict:
    """:func:`diagnostics_figure` as a plain figure dict (no validation cost, for callbacks).
    ``titles=False`` (the web page): no axis titles, which are on :func:`diagnostics_titles_dict`."""
    traces = []
    shapes = []
    notes = []
    for t, colour, name in ((unclipped, UNCLIPPED, "no clipping"), (clipped, CLIPPED, clip_label(clipped))):
        g = np.where(np.isfinite(t.grad_norm), np.maximum(t.grad_norm, E_FLOOR), np.nan)
        steps = np.arange(g.size, dtype=float)
        traces.append(dict(type="scatter", mode="lines+markers", name=name, x=typed(steps, "f8"),
                           y=typed(g, "f8"),
                           line=dict(color=colour, width=1.5), marker=dict(size=4, color=colour),
                           legendgroup=name, xaxis="x", yaxis="y",
                           hovertemplate="step %{x}: ‖g‖=%{y:.3g}<extra>" + name + "</extra>"))
        e = np.maximum(t.loss, E_FLOOR)
        traces.append(dict(type="scatter", mode="lines", name=name, x=typed(np.arange(e.size, dtype=float), "f8"),
                           y=typed(e, "f8"), line=dict(color=colour, width=1.5), legendgroup=name,
                           showlegend=False, xaxis="x2", yaxis="y2",
                           hovertemplate="after %{x} steps: E=%{y:.3g}<extra>" + name + "</extra>"))
        if t.diverged_at is not None:
            k = t.diverged_at
            for yref in ("y domain", "y2 domain"):
                shapes.append(dict(type="line", xref="x" if yref[1] == " " else "x2", yref=yref,
                                   x0=k, x1=k, y0=0, y1=1, line=dict(color=colour, dash="dot", width=1.5)))
            notes.append(dict(x=k, y=1, xref="x", yref="y domain", yanchor="bottom", showarrow=False,
                              text=f"diverged at step {k}", font=dict(color=colour, size=11)))
    idx = np.flatnonzero(clipped.clipped)
    traces.append(dict(type="scatter", mode="markers", name="clipping fired", x=idx.tolist(),
                       y=[float(clipped.grad_norm[i]) if np.isfinite(clipped.grad_norm[i]) else None
                          for i in idx],
                       marker=(DENSE_FIRED_MARKER if idx.size > DENSE_FIRED * max(clipped.clipped.size, 1)
                               else dict(size=9, color="rgba(0,0,0,0)", line=dict(color=FIRED, width=2))),
                       xaxis="x", yaxis="y", hoverinfo="skip"))
    if clipped.threshold is not None:
        shapes.append(dict(type="line", xref="x domain", yref="y", x0=0, x1=1,
                           y0=clipped.threshold, y1=clipped.threshold,
                           line=dict(color=FIRED, dash="dash", width=1.5)))
        notes.append(dict(x=1, y=float(np.log10(clipped.threshold)), xref="x domain", yref="y",
                          xanchor="right", yanchor="bottom", showarrow=False,
                          text=f"threshold τ = {clipped.threshold:g}", font=dict(color=FIRED, size=11)))
    if coincide(unclipped, clipped):
        notes.append(dict(name="coincide", text=COINCIDE_NOTE, x=0.5, y=1, xref="x2 domain", yref="y2 domain",
                          xanchor="center", yanchor="bottom", showarrow=False, font=dict(size=12, color="#333")))
    n = max(unclipped.grad_norm.size, clipped.grad_norm.size, 1)
    axes = _diag_axes()
    axes["xaxis"]["range"] = [-0.5, n + 0.5]
    g_all = [t.grad_norm for t in (unclipped, clipped)] + ([[clipped.threshold]] if clipped.threshold else [])
    for name, values in (("yaxis", g_all), ("yaxis2", [unclipped.loss, clipped.loss])):
        span = log_axis_range(np.concatenate([np.maximum(np.asarray(v, float), E_FLOOR) for v in values]))
        if span is not None:
            axes[name]["range"] = span
    if titles:
        for name, text in DIAG_TITLES.items():
            axes[name]["title"] = dict(text=text)
    layout = dict(
        template=TEMPLATE, font=FONT, height=DIAG_HEIGHT, uirevision="diag",
        margin=DIAG_MARGIN, shapes=shapes, annotations=notes,
        title=dict(text="Gradient norm and error per step", **TITLE_STYLE),
        legend=DIAG_LEGEND, **axes,
    )
    return {"data": traces, "layout": layout}


#: a log axis spans at least this many decades: over less, Plotly labels its ticks with every
#: digit that tells them apart (E of a descent that barely moves: "2.899982965")
MIN_LOG_DECADES = 1.0


def log_axis_range(values: np.ndarray) -> list[float] | None:
    """The range (log10 of its ends) of a log axis over ``values`` when their finite positive
    ones span less than :data:`MIN_LOG_DECADES` (then widened to that, around their middle, so the
    ticks read 1, 2, 5, ...); None where Plotly's own range does (the axis autoranges)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    if v.size == 0:
        return None
    lo, hi = float(np.log10(v.min())), float(np.log10(v.max()))
    if hi - lo >= MIN_LOG_DECADES:
        return None
    mid = (lo + hi) / 2
    return [mid - MIN_LOG_DECADES / 2, mid + MIN_LOG_DECADES / 2]


def csv_preamble(params: Mapping[str, object]) -> str:
    """The lines a CSV export begins with: one ``# key = value`` per parameter, before the
    column header (``pandas.read_csv(path, comment="#")`` skips them)."""
    out = []
    for k, v in params.items():
        text = f"{v:g}" if isinstance(v, float) else str(v)
        out.append(f"# {k} = {' '.join(text.split())}\n")
    return "".join(out)


def surface_params(grid: SurfaceGrid) -> dict[str, object]:
    """What a surface was computed from, for a CSV's preamble (:func:`csv_preamble`)."""
    w0, w1, b0, b1 = grid.window
    return {"figure": "error surface E_T(w, b) of the one-unit RNN, equation (14)", "T": grid.steps,
            "x0": grid.x0, "target": grid.target, "activation": grid.activation, "w_min": w0, "w_max": w1,
            "b_min": b0, "b_max": b1, "resolution": int(grid.ws.size)}


def surface_csv(grid: SurfaceGrid) -> str:
    """The grid behind the heatmap: its parameters (:func:`surface_params`) as ``# key = value``
    lines, then one row per (w, b) point."""
    W, B = np.meshgrid(grid.ws, grid.bs)
    buf = io.StringIO()
    buf.write(csv_preamble(surface_params(grid)))
    np.savetxt(buf, np.column_stack([W.ravel(), B.ravel(), grid.E.ravel()]), fmt="%.9g", delimiter=",",
               header=f"w,b,E_{grid.steps}", comments="")
    return buf.getvalue()


def trajectories_csv(unclipped: Trajectory, clipped: Trajectory,
                     params: Mapping[str, object] | None = None) -> str:
    """Both runs, one row per visited point: run, step, w, b, E, ‖g‖ of the step taken, fired.

    The rows follow ``# key = value`` lines (:func:`csv_preamble`): ``params`` (what the caller
    ran the descents with: start, learning rate, the unit's parameters), then the clipping rule
    and τ of the clipped run as the trajectories record them."""
    own: dict[str, object] = {"figure": "gradient descent on E_T, without and with clipping"}
    own.update(params or {})
    own["clip"] = clipped.clip
    if clipped.threshold is not None:
        own["threshold"] = clipped.threshold
    runs, steps, w, b, e, g, f = [], [], [], [], [], [], []
    for name, t in (("unclipped", unclipped), ("clipped", clipped)):
        n = t.params.shape[0]
        gn = np.full(n, np.nan)
        m = min(n, t.grad_norm.size)
        gn[:m] = t.grad_norm[:m]
        fired = fired_at_points(t)
        runs += [name] * n
        steps.append(np.arange(n))
        w.append(t.params[:, 0])
        b.append(t.params[:, 1])
        e.append(t.loss)
        g.append(gn)
        f.append(fired)
    return csv_preamble(own) + csv_text(["run", "step", "w", "b", "E", "grad_norm", "clip_fired"],
                    [np.array(runs), np.concatenate(steps), np.concatenate(w), np.concatenate(b),
                     np.concatenate(e), np.concatenate(g), np.concatenate(f)])
