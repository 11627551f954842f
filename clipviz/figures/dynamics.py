"""Figures of the dynamics pages: Figure 4 (bifurcations), Figures 5-6 (input-driven maps) and
sections 2.2-2.4 (why gradients explode), from :mod:`clipviz.dynamics` results."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

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


def bifurcation_figure(bd: dyn.BifurcationDiagram, orbit: dyn.OrbitDiagram, field: dyn.VectorField,
                       sens: dyn.Sensitivity, b_now: float) -> go.Figure:
    """Figure 4 with the gradient blow-up under it, on one b axis.

    Top: fixed-point branches by continuation (stable solid, unstable dashed),
    the period-2 branch, folds and period-doubling points labelled with their
    b, orbit-diagram points, the arrows x -> F(x) - x, the bistable interval
    shaded and a marker at the current b.  Bottom: |dx_T/db| on a log axis.
    """
    traces: list[dict] = []
    bo, xo = orbit.points()
    traces.append(dict(type="scattergl" if bo.size > 20000 else "scatter", mode="markers",
                       x=typed(bo, "f4"), y=typed(xo, "f4"), name="orbit diagram (iteration)",
                       marker=dict(size=3, color="rgba(120,120,120,0.45)"), hoverinfo="skip"))
    # vector field as short vertical arrows: segments from x to x + c * dx, capped
    B, X = np.meshgrid(field.bs, field.xs)
    span = float(field.xs[-1] - field.xs[0]) / max(field.xs.size, 2)
    d = np.clip(field.dx, -1.0, 1.0) * 0.45 * span / max(np.max(np.abs(np.clip(field.dx, -1, 1))), 1e-12)
    seg_b = np.stack([B.ravel(), B.ravel(), np.full(B.size, np.nan)], 1).ravel()
    seg_x = np.stack([X.ravel(), (X + d).ravel(), np.full(B.size, np.nan)], 1).ravel()
    traces.append(dict(type="scatter", mode="lines", x=typed(seg_b, "f4"), y=typed(seg_x, "f4"),
                       line=dict(color="rgba(90,90,160,0.35)", width=1), name="F(x) − x (arrows)",
                       hoverinfo="skip"))
    tip_up = d.ravel() > 0
    traces.append(dict(type="scatter", mode="markers", x=typed(B.ravel(), "f4"), y=typed((X + d).ravel(), "f4"),
                       marker=dict(symbol=np.where(tip_up, "triangle-up", "triangle-down").tolist(), size=5,
                                   color="rgba(90,90,160,0.5)"), showlegend=False, hoverinfo="skip"))
    shown = set()
    for br in bd.branches:
        for bseg, xseg, stable in br.segments():
            name = ("period-2 orbit " if br.kind == "period2" else "") + ("stable" if stable else "unstable")
            colour = P2 if br.kind == "period2" else (STABLE if stable else UNSTABLE)
            traces.append(dict(type="scatter", mode="lines", x=bseg.tolist(), y=xseg.tolist(), name=name,
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
                       xaxis="x2", yaxis="y2", name=f"|∂x_T/∂b|, T={sens.steps}, x₀={sens.x0:g}",
                       line=dict(color="black", width=1.5)))
    # the current-b marker is shapes[0] (the web page moves it with a patch)
    shapes.insert(0, dict(type="line", xref="x", yref="paper", x0=b_now, x1=b_now, y0=0, y1=1,
                          line=dict(color=FIRED, width=2, dash="dot")))
    layout = dict(
        template=TEMPLATE, font=FONT, height=640, uirevision=f"bif{bd.w}{bd.b_min}{bd.b_max}",
        margin=dict(l=70, r=20, t=95, b=50), shapes=shapes, annotations=notes, hovermode="x",
        title=dict(text=f"Bifurcation diagram of x ↦ {bd.w:g}·σ(x) + b  (click to choose b)", x=0.01,
                   font=dict(size=14)),
        xaxis=dict(domain=[0, 1], anchor="y", matches="x2", showticklabels=False,
                   range=[bd.b_min, bd.b_max]),
        yaxis=dict(domain=[0.36, 1], title=dict(text=r"$x^*$")),
        xaxis2=dict(domain=[0, 1], anchor="y2", title=dict(text=r"$b$"), range=[bd.b_min, bd.b_max]),
        yaxis2=dict(domain=[0, 0.3], type="log", title=dict(text=r"$|\partial x_T/\partial b|$"),
                    exponentformat="power"),
        legend=dict(orientation="h", x=0, y=1.03, yanchor="bottom"),
    )
    return go.Figure(data=traces, layout=layout)


def basin_figure(bs: np.ndarray, x0s: np.ndarray, labels: np.ndarray, bd: dyn.BifurcationDiagram,
                 b_now: float) -> go.Figure:
    """Which attractor each (b, x_0) reaches; the unstable branch is the boundary."""
    traces = [dict(type="heatmap", x=typed(bs, "f4"), y=typed(x0s, "f4"), z=typed(labels.astype(np.float32)),
                   zmin=-1, zmax=1, showscale=False,
                   colorscale=[[0, "#e5e7eb"], [0.33, "#e5e7eb"], [0.34, "#bfdbfe"], [0.66, "#bfdbfe"],
                               [0.67, "#fecaca"], [1, "#fecaca"]],
                   hovertemplate="b=%{x:.3f}, x₀=%{y:.3f}: attractor %{z}<extra></extra>")]
    for br in bd.branches:
        if br.kind != "fixed":
            continue
        for bseg, xseg, stable in br.segments():
            if not stable:
                traces.append(dict(type="scatter", mode="lines", x=bseg.tolist(), y=xseg.tolist(),
                                   line=dict(color=UNSTABLE, dash="dash", width=2), name="unstable fixed point",
                                   showlegend=False, hoverinfo="skip"))
    return go.Figure(data=traces, layout=dict(
        template=TEMPLATE, font=FONT, height=360, margin=dict(l=70, r=20, t=40, b=50), uirevision="basins",
        title=dict(text="Basins of attraction over (b, x₀): blue → lower, red → upper, grey → not settled",
                   x=0.01, font=dict(size=13)),
        xaxis=dict(title=dict(text=r"$b$"), range=[float(bs[0]), float(bs[-1])]),
        yaxis=dict(title=dict(text=r"$x_0$"), range=[float(x0s[0]), float(x0s[-1])]),
        shapes=[dict(type="line", xref="x", yref="paper", x0=b_now, x1=b_now, y0=0, y1=1,
                     line=dict(color=FIRED, width=2, dash="dot"))]))


def cobweb_figure(w: float, b: float, x0: float, activation: str, steps: int = 40) -> go.Figure:
    """The map x -> w σ(x) + b at one b with the cobweb of the iteration from x_0."""
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
        dict(type="scatter", mode="lines", x=grid.tolist(), y=grid.tolist(), name="x = y",
             line=dict(color="grey", dash="dot", width=1)),
        dict(type="scatter", mode="lines", x=grid.tolist(), y=dyn.map_values(w, b, grid, activation).tolist(),
             name="F(x)", line=dict(color="black", width=2)),
        dict(type="scatter", mode="lines", x=cx, y=cy, name=f"cobweb from x₀={x0:g}",
             line=dict(color=FIRED, width=1.2)),
        dict(type="scatter", mode="markers", x=xs_fp, y=xs_fp, name="fixed points",
             marker=dict(size=11, color=[STABLE if p.stable else "white" for p in pts],
                         line=dict(color=[STABLE if p.stable else UNSTABLE for p in pts], width=2)),
             text=[f"x*={p.x:.4f}, F'={p.slope:.3f}, {'stable' if p.stable else 'unstable'}" for p in pts],
             hoverinfo="text"),
    ]
    return go.Figure(data=traces, layout=dict(
        template=TEMPLATE, font=FONT, height=360, margin=dict(l=60, r=20, t=40, b=50), uirevision="cobweb",
        title=dict(text=f"Cobweb at b = {b:.3f}", x=0.01, font=dict(size=13)),
        xaxis=dict(title=dict(text=r"$x_{t-1}$"), range=[lo, hi]),
        yaxis=dict(title=dict(text=r"$x_t$"), range=[lo, hi], scaleanchor="x"),
        legend=dict(orientation="h", x=0, y=-0.2, yanchor="top")))


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


def driven_figure(r: dyn.InputDriven) -> go.Figure:
    """Figures 5-6: two nearby states under the same inputs, and their gap |Δx_t| (log axis)."""
    t = np.arange(r.xa.size, dtype=float)
    gap = r.separation
    gap = np.where(gap > 0, gap, np.nan)
    traces = [
        dict(type="scatter", mode="lines", x=typed(t, "f8"), y=typed(r.xa, "f8"), name="x_t from x₀",
             line=dict(color=CLIPPED, width=2)),
        dict(type="scatter", mode="lines", x=typed(t, "f8"), y=typed(r.xb, "f8"), name="x_t from x₀ + δ",
             line=dict(color=UNCLIPPED, width=2, dash="dash")),
        dict(type="bar", x=typed(t[1:], "f8"), y=typed(r.u, "f8"), name="input u_t", xaxis="x", yaxis="y3",
             marker=dict(color="rgba(120,120,120,0.35)")),
        dict(type="scatter", mode="lines", x=typed(t, "f8"), y=typed(gap, "f8"), name="|Δx_t|",
             line=dict(color="black", width=1.5), xaxis="x2", yaxis="y2"),
    ]
    shapes = [dict(type="line", xref="x2 domain", yref="y2", x0=0, x1=1, y0=r.threshold, y1=r.threshold,
                   line=dict(color=FIRED, dash="dash"))]
    notes = []
    if r.separation_time is not None:
        k = r.separation_time
        for xr in ("x", "x2"):
            shapes.append(dict(type="line", xref=xr, yref=f"{'y' if xr == 'x' else 'y2'} domain", x0=k, x1=k,
                               y0=0, y1=1, line=dict(color=FIRED, width=1.5, dash="dot")))
        notes.append(dict(x=k, y=1, xref="x", yref="y domain", yanchor="bottom", showarrow=False,
                          text=f"separated at t = {k}", font=dict(color=FIRED)))
    else:
        notes.append(dict(x=0.5, y=1, xref="x domain", yref="y domain", yanchor="bottom", showarrow=False,
                          text=f"never {r.threshold:g} apart within T = {r.u.size}", font=dict(color="#555")))
    return go.Figure(data=traces, layout=dict(
        template=TEMPLATE, font=FONT, height=600, margin=dict(l=70, r=60, t=50, b=50), uirevision="driven",
        shapes=shapes, annotations=notes, barmode="overlay",
        title=dict(text=f"x_t = {r.w:g}·σ(x_(t−1)) + {r.b:g} + u_t from two nearby initial states",
                   x=0.01, font=dict(size=14)),
        xaxis=dict(domain=[0, 1], anchor="y", matches="x2", showticklabels=False),
        yaxis=dict(domain=[0.45, 1], title=dict(text=r"$x_t$")),
        yaxis3=dict(domain=[0.45, 1], overlaying="y", side="right", showgrid=False,
                    title=dict(text=r"$u_t$")),
        xaxis2=dict(domain=[0, 1], anchor="y2", title=dict(text=r"$t$")),
        yaxis2=dict(domain=[0, 0.38], type="log", title=dict(text=r"$|\Delta x_t|$"), exponentformat="power"),
        legend=dict(orientation="h", x=0, y=1.04, yanchor="bottom")))


def driven_csv(r: dyn.InputDriven) -> str:
    u = np.concatenate([[np.nan], r.u])
    return csv_text(["t", "u_t", "x_a", "x_b", "abs_dx", "dx_dx0"],
                    [np.arange(r.xa.size), u, r.xa, r.xb, r.separation, r.dx_dx0])


def jacobian_figure(j: dyn.JacobianNorms) -> go.Figure:
    """‖∂x_T/∂x_(T−l)‖ against l with ρ^l, and the temporal contributions of equation (4),
    both as log10 (so nothing overflows)."""
    ln10 = np.log(10.0)
    l = j.l.astype(float)
    traces = [
        dict(type="scatter", mode="lines", x=typed(l, "f8"), y=typed(j.log_norm / ln10, "f8"),
             name=f"log10 ‖∂x_T/∂x_(T−l)‖ ({j.norm_kind})", line=dict(color=CLIPPED, width=2)),
        dict(type="scatter", mode="lines", x=typed(l, "f8"), y=typed(j.log_rho_l / ln10, "f8"),
             name=f"log10 ρ^l, ρ = {j.rho:g}", line=dict(color="grey", dash="dash")),
        dict(type="scatter", mode="lines", x=typed(l, "f8"), y=typed(j.log_contrib / ln10, "f8"),
             name="log10 ‖∂E_T/∂x_T · ∂x_T/∂x_k‖, k = T − l", line=dict(color=UNCLIPPED, width=2),
             xaxis="x2", yaxis="y2"),
    ]
    cond = j.necessary_condition
    verdict = ("past the necessary condition for explosion" if j.rho > cond
               else "below the necessary condition: long-term terms shrink")
    note = dict(x=0, y=1, xref="x domain", yref="y domain", xanchor="left", yanchor="bottom", showarrow=False,
                text=f"σ = {j.activation}: ρ = {j.rho:g} vs {cond:g} — {verdict}", font=dict(size=12))
    return go.Figure(data=traces, layout=dict(
        template=TEMPLATE, font=FONT, height=600, margin=dict(l=70, r=20, t=60, b=50), uirevision="jac",
        annotations=[note],
        title=dict(text="How ∂x_t/∂x_k scales with l = t − k (equations 5–7) and the terms of equation (4)",
                   x=0.01, font=dict(size=14)),
        xaxis=dict(domain=[0, 1], anchor="y", matches="x2", showticklabels=False),
        yaxis=dict(domain=[0.55, 1], title=dict(text=r"$\log_{10}\|\partial x_T/\partial x_{T-l}\|$")),
        xaxis2=dict(domain=[0, 1], anchor="y2", title=dict(text=r"$l = T - k$")),
        yaxis2=dict(domain=[0, 0.43], title=dict(text=r"$\log_{10}\|\partial E_T/\partial x_T\,\partial x_T/\partial x_k\|$")),
        legend=dict(orientation="h", x=0, y=-0.12, yanchor="top")))


def jacobian_csv(j: dyn.JacobianNorms) -> str:
    return csv_text(["l", "log_norm", "log_rho_l", "log_contrib"], [j.l, j.log_norm, j.log_rho_l, j.log_contrib])


def curvature_figure(c: dyn.CurvatureAlignment) -> go.Figure:
    """Section 2.4 measured: angle between g and the Hessian's leading eigenvector over (w, b),
    and curvature along g against ‖g‖ by decile."""
    traces = [
        dict(type="heatmap", x=typed(c.ws, "f4"), y=typed(c.bs, "f4"), z=typed(c.angle_deg.astype(np.float32)),
             colorscale="Magma", zmin=0, zmax=90, colorbar=dict(title=dict(text="angle °"), x=0.46, len=0.9),
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
    return go.Figure(data=traces, layout=dict(
        template=TEMPLATE, font=FONT, height=440, margin=dict(l=60, r=60, t=50, b=80), uirevision="curv",
        title=dict(text="Curvature and gradient (section 2.4)", x=0.01, font=dict(size=14)),
        annotations=[dict(x=0, y=-0.2, xref="paper", yref="paper", showarrow=False, xanchor="left",
                          text=txt, font=dict(size=12))],
        xaxis=dict(domain=[0, 0.44], title=dict(text=r"$w$")), yaxis=dict(title=dict(text=r"$b$")),
        xaxis2=dict(domain=[0.56, 1], type="log", anchor="y2", title=dict(text=r"$\|g\|$"), exponentformat="power"),
        yaxis2=dict(anchor="x2", type="log", title=dict(text=r"$|g^\top H g|/\|g\|^2$"), exponentformat="power"),
        yaxis3=dict(anchor="x2", overlaying="y2", side="right", range=[0, 90], showgrid=False,
                    title=dict(text="angle °")),
        legend=dict(orientation="h", x=0.56, y=1.02, yanchor="bottom")))


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
