"""Figures of the dynamics pages: Figure 4 (bifurcations), Figures 5-6 (input-driven maps) and
sections 2.2-2.4 (why gradients explode), from :mod:`clipviz.dynamics` results."""

from __future__ import annotations

import copy
import functools

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio

from .. import dynamics as dyn
from ._util import CLIPPED, FIRED, FONT, TEMPLATE, UNCLIPPED, csv_text, typed

STABLE = "#1f77b4"
UNSTABLE = "#d62728"
P2 = "#2ca02c"


def _log10_abs(a: np.ndarray) -> np.ndarray:
    """log10 |a| with exact zeros as NaN (a gap) and overflow (inf) kept as +inf -> NaN-free cap."""
    with np.errstate(divide="ignore"):
        out = np.log10(np.abs(a))
    out[np.isneginf(out)] = np.nan
    return out


@functools.lru_cache(maxsize=1)
def _template_layout() -> dict:
    return pio.templates[TEMPLATE].layout.to_plotly_json()


def _template() -> dict:
    """The template as an object: a figure sent as a dict (not a ``go.Figure``, whose building
    costs more than the page's computations) must carry it, Plotly.js knows no template names."""
    return {"layout": copy.deepcopy(_template_layout())}


def _num(x: float, spec: str = "g") -> str:
    """A number for a label, with a true minus sign (−, not a hyphen)."""
    return format(float(x), spec).replace("-", "−")


def _plus(x: float, spec: str = "g") -> str:
    """``+ x`` or ``− |x|``: a signed term in a formula ("+ −2.5" reads badly)."""
    return ("− " if x < 0 else "+ ") + format(abs(float(x)), spec)


_SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")


def _sci(x: float) -> str:
    """x as 5.8·10¹⁴ (two significant digits) when large or small, else plainly."""
    if not np.isfinite(x):
        return "∞"
    if x != 0 and not 1e-3 <= abs(x) < 1e4:
        m, e = f"{x:.1e}".split("e")
        return f"{_num(float(m))}·10{str(int(e)).translate(_SUPERSCRIPT)}"
    return _num(x, ".3g")


def _title(text: str, height: int, size: int = 14) -> dict:
    """A figure title 32 px below the top edge: clear of the Plotly toolbar, which sits at the
    top right and covers a title on the top line of a narrow figure."""
    return dict(text=text, x=0.01, xanchor="left", y=1.0 - 32.0 / height, yanchor="top", yref="container",
                font=dict(size=size))


def _paper_y(px_from_top: float, height: int, margin: dict) -> float:
    """The paper y of a point ``px_from_top`` pixels below the figure's top edge (annotations
    cannot be placed in container coordinates)."""
    plot = height - margin["t"] - margin["b"]
    return 1.0 + (margin["t"] - px_from_top) / plot


def sensitivity_peak(sens: dyn.Sensitivity) -> tuple[float, float]:
    """(b, |dx_T/db|) at the largest |dx_T/db| of ``sens`` (inf where float64 overflowed)."""
    db = np.abs(sens.dxT_db)
    if np.isinf(db).any():
        i = int(np.argmax(np.isinf(db)))
    else:
        i = int(np.nanargmax(np.where(np.isfinite(db), db, -1.0)))
    return float(sens.bs[i]), float(db[i])


def bifurcation_dict(bd: dyn.BifurcationDiagram, orbit: dyn.OrbitDiagram, field: dyn.VectorField,
                     sens: dyn.Sensitivity, b_now: float) -> dict:
    """Figure 4 with the gradient blow-up under it, on one b axis (a Plotly figure as a dict).

    Top: fixed-point branches by continuation (stable solid, unstable dashed),
    the period-2 branch, folds and period-doubling points labelled with their
    b, orbit-diagram points (each settled value once per b), the arrows
    x -> F(x) - x, the bistable interval shaded and a marker at the current b.
    Bottom: |dx_T/db| on a log axis with its peak marked and labelled; on a b
    grid from :func:`clipviz.dynamics.sensitivity_bs` the peak is the true one
    and grows with T (section 2.5).
    """
    traces: list[dict] = []
    x_span = float(field.xs[-1] - field.xs[0]) or 1.0
    # the orbit points as short horizontal ticks and the arrows with their heads, each layer one
    # SVG path drawn as a layout shape (as traces, markers or gap-separated lines, they took most
    # of the figure's redraw); a line trace without points stands for each in the legend
    bo, xo = orbit.distinct_points(x_span / 800.0)
    tick = 0.0012 * float(field.bs[-1] - field.bs[0])
    orbit_path = "".join(f"M{b - tick:.6g},{x:.6g}H{b + tick:.6g}" for b, x in zip(bo.tolist(), xo.tolist()))
    B, X = np.meshgrid(field.bs, field.xs)
    span = x_span / max(field.xs.size, 2)
    d = (np.clip(field.dx, -1.0, 1.0) * 0.45 * span / max(np.max(np.abs(np.clip(field.dx, -1, 1))), 1e-12)).ravel()
    barb_b = 0.25 * float(field.bs[1] - field.bs[0]) if field.bs.size > 1 else 0.05
    barb_x = (np.sign(d) * np.minimum(np.abs(d), 0.35 * span) * 0.45).tolist()
    arrow_path = "".join(  # the shaft from x to its tip x + dx, then the head's two barbs
        f"M{b:.6g},{x:.6g}V{x + dx:.6g}"
        f"M{b - barb_b:.6g},{x + dx - bx:.6g}L{b:.6g},{x + dx:.6g}L{b + barb_b:.6g},{x + dx - bx:.6g}"
        for b, x, dx, bx in zip(B.ravel().tolist(), X.ravel().tolist(), d.tolist(), barb_x) if dx != 0.0)
    layers = [dict(type="path", xref="x", yref="y", path=orbit_path, layer="below",
                   line=dict(color="rgba(90,90,90,0.7)", width=3)),
              dict(type="path", xref="x", yref="y", path=arrow_path, layer="below",
                   line=dict(color="rgba(90,90,160,0.4)", width=1))]
    traces.append(dict(type="scatter", mode="lines", x=[None], y=[None], name="orbit diagram (iteration)",
                       line=dict(color="rgba(90,90,90,0.7)", width=3), hoverinfo="skip"))
    traces.append(dict(type="scatter", mode="lines", x=[None], y=[None], name="F(x) − x (arrows)",
                       line=dict(color="rgba(90,90,160,0.4)", width=1), hoverinfo="skip"))
    shown = set()
    for br in bd.branches:
        for bseg, xseg, stable in br.segments():
            name = ("period-2 orbit " if br.kind == "period2" else "") + ("stable" if stable else "unstable")
            colour = P2 if br.kind == "period2" else (STABLE if stable else UNSTABLE)
            traces.append(dict(type="scatter", mode="lines", x=typed(bseg, "f8"), y=typed(xseg, "f8"), name=name,
                               legendgroup=name, showlegend=name not in shown,
                               line=dict(color=colour, width=2.5, dash="solid" if stable else "dash"),
                               hovertemplate="b=%{x:.4f}, x*=%{y:.4f}<extra>" + name + "</extra>"))
            shown.add(name)
    notes, shapes = [], []
    for sp in bd.special:
        label = "fold" if sp.kind == "fold" else "period doubling"
        traces.append(dict(type="scatter", mode="markers", x=[sp.b], y=[sp.x], showlegend=False,
                           marker=dict(size=10, color="black", symbol="diamond" if sp.kind == "fold" else "square"),
                           hovertemplate=f"{label}: b=%{{x:.6f}}, x=%{{y:.4f}}<extra></extra>"))
        notes.append(dict(x=sp.b, y=sp.x, text=f"{label} b={sp.b:.4f}", showarrow=True, arrowhead=0,
                          ax=0, ay=-28 if sp.x > 0 else 28, font=dict(size=11), bgcolor="rgba(255,255,255,0.8)"))
    if bd.bistable:
        lo, hi = bd.bistable
        shapes.append(dict(type="rect", xref="x", yref="paper", x0=lo, x1=hi, y0=0, y1=1,
                           fillcolor="rgba(255,165,0,0.12)", line=dict(width=0), layer="below"))
        notes.append(dict(x=(lo + hi) / 2, y=1.0, xref="x", yref="paper", yanchor="bottom", showarrow=False,
                          text="bistable", font=dict(size=11, color="#b45309")))
    db = np.abs(sens.dxT_db)
    db = np.where(np.isfinite(db), np.maximum(db, 1e-300), np.nan)
    traces.append(dict(type="scatter", mode="lines", x=typed(sens.bs, "f8"), y=typed(db, "f8"),
                       xaxis="x2", yaxis="y2", name=f"|∂x_T/∂b|, T={sens.steps}, x₀={_num(sens.x0)}",
                       line=dict(color="black", width=1.5),
                       hovertemplate="b=%{x:.6f}: |∂x_T/∂b| = %{y:.3g}<extra></extra>"))
    pb, pv = sensitivity_peak(sens)
    if np.isfinite(pv):
        traces.append(dict(type="scatter", mode="markers", x=[pb], y=[max(pv, 1e-300)], xaxis="x2", yaxis="y2",
                           marker=dict(size=8, color=FIRED, symbol="circle"), showlegend=False,
                           hovertemplate="peak: b=%{x:.6f}, |∂x_T/∂b| = %{y:.3g}<extra></extra>"))
        peak = f"peak |∂x<sub>T</sub>/∂b| = {_sci(pv)} at b = {_num(pb, '.4f')} (T = {sens.steps})"
    else:
        peak = (f"|∂x<sub>T</sub>/∂b| overflows float64 (> 1.8·10³⁰⁸) at b = {_num(pb, '.4f')} "
                f"(T = {sens.steps})")
    notes.append(dict(x=0.995, y=0.3, xref="paper", yref="paper", xanchor="right", yanchor="top", showarrow=False,
                      text=peak, font=dict(size=12), bgcolor="rgba(255,255,255,0.85)"))
    # the current-b marker is shapes[0] (the web page moves it with a patch)
    shapes.insert(0, dict(type="line", xref="x", yref="paper", x0=b_now, x1=b_now, y0=0, y1=1,
                          line=dict(color=FIRED, width=2, dash="dot")))
    shapes += layers
    height = 660
    layout = dict(
        template=_template(), font=FONT, height=height, uirevision=f"bif{bd.w}{bd.b_min}{bd.b_max}",
        margin=dict(l=70, r=20, t=118, b=50), shapes=shapes, annotations=notes, hovermode="x",
        title=_title(f"Bifurcation diagram of x ↦ {_num(bd.w)}·σ(x) + b  (click to choose b)", height),
        xaxis=dict(domain=[0, 1], anchor="y", matches="x2", showticklabels=False,
                   range=[bd.b_min, bd.b_max]),
        yaxis=dict(domain=[0.36, 1], title=dict(text="x*")),
        xaxis2=dict(domain=[0, 1], anchor="y2", title=dict(text="b"), range=[bd.b_min, bd.b_max]),
        yaxis2=dict(domain=[0, 0.3], type="log", title=dict(text="|∂x<sub>T</sub>/∂b|"),
                    exponentformat="power"),
        # under the title, above the plot: two rows fit between them (w < 0 adds the period-2 entries)
        legend=dict(orientation="h", x=0, xanchor="left", y=1.0 - 58.0 / height, yref="container",
                    yanchor="top", font=dict(size=12)),
    )
    return dict(data=traces, layout=layout)


def bifurcation_figure(bd: dyn.BifurcationDiagram, orbit: dyn.OrbitDiagram, field: dyn.VectorField,
                       sens: dyn.Sensitivity, b_now: float) -> go.Figure:
    """:func:`bifurcation_dict` as a ``go.Figure``."""
    return go.Figure(bifurcation_dict(bd, orbit, field, sens, b_now))


def basin_dict(bs: np.ndarray, x0s: np.ndarray, labels: np.ndarray, bd: dyn.BifurcationDiagram,
               b_now: float) -> dict:
    """Which attractor each (b, x_0) reaches; the unstable branch is the boundary (a figure dict)."""
    # the labels (-1, 0, 1) go as int8: a quarter of float32's bytes
    traces = [dict(type="heatmap", x=typed(bs, "f4"), y=typed(x0s, "f4"), z=typed(labels, "i1"),
                   zmin=-1, zmax=1, showscale=False,
                   colorscale=[[0, "#e5e7eb"], [0.33, "#e5e7eb"], [0.34, "#bfdbfe"], [0.66, "#bfdbfe"],
                               [0.67, "#fecaca"], [1, "#fecaca"]],
                   hovertemplate="b=%{x:.3f}, x₀=%{y:.3f}: attractor %{z}<extra></extra>")]
    for br in bd.branches:
        if br.kind != "fixed":
            continue
        for bseg, xseg, stable in br.segments():
            if not stable:
                traces.append(dict(type="scatter", mode="lines", x=typed(bseg, "f8"), y=typed(xseg, "f8"),
                                   line=dict(color=UNSTABLE, dash="dash", width=2), name="unstable fixed point",
                                   showlegend=False, hoverinfo="skip"))
    height = 380
    margin = dict(l=60, r=20, t=62, b=78)
    return dict(data=traces, layout=dict(
        template=_template(), font=FONT, height=height, margin=margin, uirevision="basins",
        title=_title("Basins of attraction over (b, x₀)", height, 13),
        annotations=[dict(x=0, y=_paper_y(height - 4, height, margin), xref="paper", yref="paper",
                          xanchor="left", yanchor="bottom",
                          showarrow=False, font=dict(size=12),
                          text="<span style='color:#3b82f6'>■</span> → lower attractor   "
                               "<span style='color:#f87171'>■</span> → upper   "
                               "<span style='color:#9ca3af'>■</span> not settled   "
                               "<span style='color:#d62728'>- -</span> boundary (unstable x*)")],
        xaxis=dict(title=dict(text="b", standoff=4), range=[float(bs[0]), float(bs[-1])]),
        yaxis=dict(title=dict(text="x₀"), range=[float(x0s[0]), float(x0s[-1])]),
        shapes=[dict(type="line", xref="x", yref="paper", x0=b_now, x1=b_now, y0=0, y1=1,
                     line=dict(color=FIRED, width=2, dash="dot"))]))


def basin_figure(bs: np.ndarray, x0s: np.ndarray, labels: np.ndarray, bd: dyn.BifurcationDiagram,
                 b_now: float) -> go.Figure:
    """:func:`basin_dict` as a ``go.Figure``."""
    return go.Figure(basin_dict(bs, x0s, labels, bd, b_now))


def cobweb_dict(w: float, b: float, x0: float, activation: str, steps: int = 40) -> dict:
    """The map x -> w σ(x) + b at one b with the cobweb of the iteration from x_0 (a figure dict)."""
    pts = dyn.fixed_points(w, b, activation)
    xs_fp = [p.x for p in pts]
    x = [x0]
    for _ in range(steps):
        x.append(float(dyn.map_values(w, b, [x[-1]], activation)[0]))
    lo = min(min(x), *xs_fp, x0) - 1.0
    hi = max(max(x), *xs_fp, x0) + 1.0
    grid = np.linspace(lo, hi, 300)
    cx, cy = [x[0]], [x[0]]
    for i in range(steps):
        cx += [x[i], x[i + 1]]
        cy += [x[i + 1], x[i + 1]]
    traces = [
        dict(type="scatter", mode="lines", x=[lo, hi], y=[lo, hi], name="x = y",
             line=dict(color="grey", dash="dot", width=1)),
        dict(type="scatter", mode="lines", x=typed(grid, "f4"), y=typed(dyn.map_values(w, b, grid, activation), "f4"),
             name="F(x)", line=dict(color="black", width=2)),
        dict(type="scatter", mode="lines", x=cx, y=cy, name=f"cobweb from x₀={_num(x0)}",
             line=dict(color=FIRED, width=1.2)),
        dict(type="scatter", mode="markers", x=xs_fp, y=xs_fp, name="fixed points",
             marker=dict(size=11, color=[STABLE if p.stable else "white" for p in pts],
                         line=dict(color=[STABLE if p.stable else UNSTABLE for p in pts], width=2)),
             text=[f"x*={p.x:.4f}, F'={p.slope:.3f}, {'stable' if p.stable else 'unstable'}" for p in pts],
             hoverinfo="text"),
    ]
    height = 380
    return dict(data=traces, layout=dict(
        template=_template(), font=FONT, height=height, margin=dict(l=55, r=20, t=62, b=90), uirevision="cobweb",
        title=_title(f"Cobweb at b = {b:.3f}", height, 13),
        xaxis=dict(title=dict(text="x<sub>t−1</sub>", standoff=4), range=[lo, hi]),
        yaxis=dict(title=dict(text="x<sub>t</sub>"), range=[lo, hi], scaleanchor="x"),
        legend=dict(orientation="h", x=0, y=0, yref="container", yanchor="bottom", font=dict(size=12))))


def cobweb_figure(w: float, b: float, x0: float, activation: str, steps: int = 40) -> go.Figure:
    """:func:`cobweb_dict` as a ``go.Figure``."""
    return go.Figure(cobweb_dict(w, b, x0, activation, steps))


def bifurcation_csv(bd: dyn.BifurcationDiagram, sens: dyn.Sensitivity) -> str:
    """Branch points (kind, b, x, stable, multiplier) then special points, then the sensitivity."""
    rows_kind, rows_b, rows_x, rows_s, rows_m = [], [], [], [], []
    for i, br in enumerate(bd.branches):
        rows_kind += [f"{br.kind}_branch_{i}"] * br.b.size
        rows_b.append(br.b)
        rows_x.append(br.x)
        rows_s.append(br.stable.astype(float))
        rows_m.append(br.multiplier)
    for sp in bd.special:
        rows_kind.append(sp.kind)
        rows_b.append(np.array([sp.b]))
        rows_x.append(np.array([sp.x]))
        rows_s.append(np.array([np.nan]))
        rows_m.append(np.array([np.nan]))
    rows_kind += ["dxT_db"] * sens.bs.size
    rows_b.append(sens.bs)
    rows_x.append(sens.dxT_db)
    rows_s.append(np.full(sens.bs.size, np.nan))
    rows_m.append(np.full(sens.bs.size, np.nan))
    return csv_text(["what", "b", "x_or_value", "stable", "multiplier"],
                    [np.array(rows_kind), np.concatenate(rows_b), np.concatenate(rows_x),
                     np.concatenate(rows_s), np.concatenate(rows_m)])


def _attractor_name(x: float, pts: list) -> str:
    """Which fixed point of the input-free map x is nearest: "upper", "lower" or "only"."""
    stable = [p.x for p in pts if p.stable]
    if len(stable) < 2:
        return "the only attractor"
    return "upper attractor" if abs(x - max(stable)) < abs(x - min(stable)) else "lower attractor"


def driven_figure(r: dyn.InputDriven, activation: str = "sigmoid") -> go.Figure:
    """Figures 5-6: two nearby states under the same inputs, and their gap |Δx_t| (log axis).

    The input-free map's unstable fixed point (the basin boundary, when there is one) is drawn
    as a dotted line; where each run ends is written under the title.  The inputs are drawn in
    units of a power of ten (the axis title says which), so their ticks stay short.
    """
    t = np.arange(r.xa.size, dtype=float)
    gap = r.separation
    gap = np.where(gap > 0, gap, np.nan)
    u_max = float(np.max(np.abs(r.u))) if r.u.size else 0.0
    k = int(np.floor(np.log10(u_max))) if u_max > 0 else 0
    k = 0 if -1 <= k <= 1 else k  # plain numbers between 0.1 and 99
    u_unit = "" if k == 0 else f" (×10{str(k).translate(_SUPERSCRIPT)})"
    traces = [
        dict(type="scatter", mode="lines", x=typed(t, "f8"), y=typed(r.xa, "f8"), name="x_t from x₀",
             line=dict(color=CLIPPED, width=2)),
        dict(type="scatter", mode="lines", x=typed(t, "f8"), y=typed(r.xb, "f8"), name="x_t from x₀ + δ",
             line=dict(color=UNCLIPPED, width=2, dash="dash")),
        dict(type="bar", x=typed(t[1:], "f8"), y=typed(r.u / 10.0 ** k, "f8"), name="input u_t" + u_unit,
             xaxis="x", yaxis="y3", marker=dict(color="rgba(120,120,120,0.35)"),
             hovertemplate="t=%{x}: u_t = %{y:.3g}" + u_unit + "<extra></extra>"),
        dict(type="scatter", mode="lines", x=typed(t, "f8"), y=typed(gap, "f8"), name="|Δx_t|",
             line=dict(color="black", width=1.5), xaxis="x2", yaxis="y2"),
    ]
    shapes = [dict(type="line", xref="x2 domain", yref="y2", x0=0, x1=1, y0=r.threshold, y1=r.threshold,
                   line=dict(color=FIRED, dash="dash"))]
    notes = []
    if r.separation_time is not None:
        ks = r.separation_time
        for xr in ("x", "x2"):
            shapes.append(dict(type="line", xref=xr, yref=f"{'y' if xr == 'x' else 'y2'} domain", x0=ks, x1=ks,
                               y0=0, y1=1, line=dict(color=FIRED, width=1.5, dash="dot")))
        notes.append(dict(x=ks, y=1, xref="x", yref="y domain", yanchor="bottom", showarrow=False,
                          text=f"separated at t = {ks}", font=dict(color=FIRED)))
    else:
        notes.append(dict(x=0.5, y=1, xref="x domain", yref="y domain", yanchor="bottom", showarrow=False,
                          text=f"never {r.threshold:g} apart within T = {r.u.size}", font=dict(color="#555")))
    pts = dyn.fixed_points(r.w, r.b, activation)
    if len(pts) == 3:
        x_mid = pts[1].x if abs(pts[1].x) > 1e-12 else 0.0
        shapes.append(dict(type="line", xref="x domain", yref="y", x0=0, x1=1, y0=pts[1].x, y1=pts[1].x,
                           line=dict(color="#6b7280", width=1, dash="dot")))
        notes.append(dict(x=0.01, y=pts[1].x, xref="x domain", yref="y", xanchor="left", yanchor="bottom",
                          showarrow=False, font=dict(size=11, color="#4b5563"), bgcolor="rgba(255,255,255,0.75)",
                          text=f"basin boundary of the input-free map, x* = {_num(x_mid, '.3g')}"))
    xa_T, xb_T = float(r.xa[-1]), float(r.xb[-1])
    ends = (f"at t = {r.u.size}: from x₀ → {_num(xa_T, '.3f')} ({_attractor_name(xa_T, pts)}), "
            f"from x₀ + δ → {_num(xb_T, '.3f')} ({_attractor_name(xb_T, pts)})")
    height = 640
    margin = dict(l=70, r=70, t=125, b=50)
    notes.append(dict(x=0, y=_paper_y(56, height, margin), xref="paper", yref="paper", xanchor="left",
                      yanchor="top", showarrow=False, text=ends, font=dict(size=12)))
    return go.Figure(data=traces, layout=dict(
        template=TEMPLATE, font=FONT, height=height, margin=margin, uirevision="driven",
        shapes=shapes, annotations=notes, barmode="overlay",
        title=_title(f"x_t = {_num(r.w)}·σ(x_(t−1)) {_plus(r.b)} + u_t from two nearby initial states", height),
        xaxis=dict(domain=[0, 1], anchor="y", matches="x2", showticklabels=False),
        yaxis=dict(domain=[0.45, 1], title=dict(text="x<sub>t</sub>")),
        yaxis3=dict(domain=[0.45, 1], overlaying="y", side="right", showgrid=False, tickmode="auto", nticks=5,
                    zeroline=False, title=dict(text="u<sub>t</sub>" + u_unit)),
        xaxis2=dict(domain=[0, 1], anchor="y2", title=dict(text="t")),
        yaxis2=dict(domain=[0, 0.38], type="log", title=dict(text="|Δx<sub>t</sub>|"), exponentformat="power"),
        legend=dict(orientation="h", x=0, y=1.0 - 80.0 / height, yref="container", yanchor="top")))


def driven_csv(r: dyn.InputDriven) -> str:
    u = np.concatenate([[np.nan], r.u])
    return csv_text(["t", "u_t", "x_a", "x_b", "abs_dx", "dx_dx0"],
                    [np.arange(r.xa.size), u, r.xa, r.xb, r.separation, r.dx_dx0])


def _reference_name(j: dyn.JacobianNorms) -> str:
    if j.gamma == 1.0:
        return f"log10 ρ^l, ρ = {j.rho:g}"
    return f"log10 (γρ)^l, γ = 1/{1 / j.gamma:g}, ρ = {j.rho:g} (the bound of section 2.1)"


def _setting_verdict(j: dyn.JacobianNorms) -> str:
    g = j.log_norm[-1] / np.log(10.0)
    T = int(j.l[-1])
    size = f"‖∂x_T/∂x_0‖ = 10<sup>{_num(g, '.1f')}</sup>" if np.isfinite(g) else "‖∂x_T/∂x_0‖ overflows"
    what = "grows: the long-term terms dominate" if j.grows() else "vanishes: the long-term terms shrink"
    return f"inputs of scale {j.input_scale:g}: {size} at l = {T}, {what}"


def jacobian_figure(j: dyn.JacobianNorms, other: dyn.JacobianNorms | None = None) -> go.Figure:
    """‖∂x_T/∂x_(T−l)‖ against l with the reference (γρ)^l (γ = max σ′: ρ^l for identity and tanh,
    (ρ/4)^l for sigmoid), and the temporal contributions of equation (4), both as log10 (so
    nothing overflows).

    ``other``: a second setting drawn next to the first (the web page's: the same network under
    larger inputs), so that the page shows, past the necessary condition, one setting whose
    long-term terms grow and one whose terms vanish.  Traces: 0 the first norm, 1 the
    reference, 2 the first contributions, then the second setting's norm and contributions.
    """
    ln10 = np.log(10.0)
    l = j.l.astype(float)
    traces = [
        dict(type="scatter", mode="lines", x=typed(l, "f8"), y=typed(j.log_norm / ln10, "f8"),
             name=f"log10 ‖∂x_T/∂x_(T−l)‖ ({j.norm_kind}), inputs × {j.input_scale:g}",
             line=dict(color=CLIPPED, width=2)),
        dict(type="scatter", mode="lines", x=typed(l, "f8"), y=typed(j.log_bound / ln10, "f8"),
             name=_reference_name(j), line=dict(color="grey", dash="dash")),
        dict(type="scatter", mode="lines", x=typed(l, "f8"), y=typed(j.log_contrib / ln10, "f8"),
             name=f"log10 ‖∂E_T/∂x_T · ∂x_T/∂x_k‖, k = T − l, inputs × {j.input_scale:g}",
             line=dict(color=CLIPPED, width=2, dash="dot"), xaxis="x2", yaxis="y2"),
    ]
    cond = j.necessary_condition
    if j.rho > cond:
        verdict = f"ρ = {j.rho:g} > {cond:g}: past the necessary condition for explosion (necessary, not sufficient)"
    else:
        verdict = f"ρ = {j.rho:g} ≤ {cond:g}: below the necessary condition: long-term terms shrink"
    lines = [f"σ = {j.activation}, {verdict}",
             f"<span style='color:{CLIPPED}'>■</span> " + _setting_verdict(j)]
    if other is not None:
        lo = other.l.astype(float)
        traces += [
            dict(type="scatter", mode="lines", x=typed(lo, "f8"), y=typed(other.log_norm / ln10, "f8"),
                 name=f"log10 ‖∂x_T/∂x_(T−l)‖ ({other.norm_kind}), inputs × {other.input_scale:g}",
                 line=dict(color=UNCLIPPED, width=2)),
            dict(type="scatter", mode="lines", x=typed(lo, "f8"), y=typed(other.log_contrib / ln10, "f8"),
                 name=f"log10 ‖∂E_T/∂x_T · ∂x_T/∂x_k‖, inputs × {other.input_scale:g}",
                 line=dict(color=UNCLIPPED, width=2, dash="dot"), xaxis="x2", yaxis="y2"),
        ]
        lines.append(f"<span style='color:{UNCLIPPED}'>■</span> " + _setting_verdict(other))
    height = 660
    margin = dict(l=70, r=20, t=125, b=50)
    note = dict(x=0, y=_paper_y(52, height, margin), xref="paper", yref="paper", xanchor="left", yanchor="top",
                showarrow=False, align="left", text="<br>".join(lines), font=dict(size=12))
    return go.Figure(data=traces, layout=dict(
        template=TEMPLATE, font=FONT, height=height, margin=margin, uirevision="jac",
        annotations=[note],
        title=_title("How ∂x_t/∂x_k scales with l = t − k (equations 5–7) and the terms of equation (4)",
                     height),
        xaxis=dict(domain=[0, 1], anchor="y", matches="x2", showticklabels=False),
        yaxis=dict(domain=[0.55, 1], title=dict(text="log<sub>10</sub> ‖∂x<sub>T</sub>/∂x<sub>T−l</sub>‖")),
        xaxis2=dict(domain=[0, 1], anchor="y2", title=dict(text="l = T − k")),
        yaxis2=dict(domain=[0, 0.43], title=dict(
            text="log<sub>10</sub> ‖∂E<sub>T</sub>/∂x<sub>T</sub> · ∂x<sub>T</sub>/∂x<sub>k</sub>‖")),
        legend=dict(orientation="h", x=0, y=-0.12, yanchor="top")))


def jacobian_csv(j: dyn.JacobianNorms, other: dyn.JacobianNorms | None = None) -> str:
    """One row per l: natural logs of the norm, ρ^l, the contribution and the bound (γρ)^l; with
    ``other`` (the second input scale, same l), its norm and contribution too."""
    header = ["l", "log_norm", "log_rho_l", "log_contrib", "log_bound"]
    cols = [j.l, j.log_norm, j.log_rho_l, j.log_contrib, j.log_bound]
    if other is not None:
        header += ["log_norm_2", "log_contrib_2"]
        cols += [other.log_norm, other.log_contrib]
    return csv_text(header, cols)


def curvature_figure(c: dyn.CurvatureAlignment) -> go.Figure:
    """Section 2.4 measured: angle between g and the Hessian's leading eigenvector over (w, b),
    and curvature along g against ‖g‖ by decile."""
    traces = [
        dict(type="heatmap", x=typed(c.ws, "f4"), y=typed(c.bs, "f4"), z=typed(c.angle_deg.astype(np.float32)),
             colorscale="Magma", zmin=0, zmax=90,
             colorbar=dict(title=dict(text="angle °"), x=0.405, xanchor="left", thickness=14, len=0.9),
             hovertemplate="w=%{x:.3f}, b=%{y:.3f}: %{z:.2f}°<extra></extra>"),
        dict(type="scatter", mode="lines+markers", x=typed(c.decile_grad_norm, "f8"),
             y=typed(c.decile_curv, "f8"), name="median |gᵀHg|/‖g‖² per decile of ‖g‖",
             xaxis="x2", yaxis="y2", line=dict(color=CLIPPED)),
        dict(type="scatter", mode="lines+markers", x=typed(c.decile_grad_norm, "f8"),
             y=typed(c.decile_angle, "f8"), name="median angle (°) per decile", xaxis="x2", yaxis="y3",
             line=dict(color=FIRED, dash="dash")),
    ]
    s = c.summary
    txt = (f"Spearman(‖g‖, curvature) = {c.spearman:.2f}; log-log slope {c.loglog_slope:.2f}; "
           f"median angle {s.get('median_angle_all_deg', float('nan')):.2f}° overall, "
           f"{s.get('median_angle_top1pct_deg', float('nan')):.1f}° in the top 1 % of ‖g‖")
    height = 480
    margin = dict(l=60, r=60, t=90, b=90)
    return go.Figure(data=traces, layout=dict(
        template=TEMPLATE, font=FONT, height=height, margin=margin, uirevision="curv",
        title=_title("Curvature and gradient (section 2.4)", height),
        # the summary on the figure's bottom line, under the axis titles
        annotations=[dict(x=0, y=_paper_y(height - 6, height, margin), xref="paper", yref="paper", showarrow=False,
                          xanchor="left", yanchor="bottom", text=txt, font=dict(size=12))],
        # the colour bar sits between the two plots, the right plot's y title clear of it
        xaxis=dict(domain=[0, 0.40], title=dict(text="w")), yaxis=dict(title=dict(text="b")),
        xaxis2=dict(domain=[0.60, 1], type="log", anchor="y2", title=dict(text="‖g‖"), exponentformat="power"),
        yaxis2=dict(anchor="x2", type="log", title=dict(text="|gᵀHg| / ‖g‖²"), exponentformat="power"),
        yaxis3=dict(anchor="x2", overlaying="y2", side="right", range=[0, 90], showgrid=False,
                    tickmode="linear", tick0=0, dtick=15, title=dict(text="angle °")),
        # under the title: the Plotly toolbar takes the top right corner
        legend=dict(orientation="h", x=0.60, y=1.0 - 58.0 / height, yref="container", yanchor="top")))


def basins_csv(bs: np.ndarray, x0s: np.ndarray, labels: np.ndarray) -> str:
    """One row per (b, x_0) cell: the attractor label (-1: not settled)."""
    B, X = np.meshgrid(bs, x0s)
    return csv_text(["b", "x0", "label"], [B.ravel(), X.ravel(), labels.ravel().astype(float)])


def cobweb_csv(w: float, b: float, x0: float, activation: str, steps: int = 40) -> str:
    """The iteration behind the cobweb: t, x_t."""
    x = [x0]
    for _ in range(steps):
        x.append(float(dyn.map_values(w, b, [x[-1]], activation)[0]))
    return csv_text(["t", "x_t"], [np.arange(len(x)), np.array(x)])


def curvature_csv(c: dyn.CurvatureAlignment) -> str:
    """One row per (w, b) grid point: ‖g‖, angle to the leading eigenvector, curvature along g."""
    W, B = np.meshgrid(c.ws, c.bs)
    return csv_text(["w", "b", "grad_norm", "angle_deg", "curv_along_grad", "lead_eig"],
                    [W.ravel(), B.ravel(), c.grad_norm.ravel(), c.angle_deg.ravel(),
                     c.curv_along_grad.ravel(), c.lead_eig.ravel()])
