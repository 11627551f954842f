"""Training figures: live curves of one or more runs, the sweep's success rate (Figure 7), and
the error surface around a kept update with plain BPTT's and the clipped step (issue 16).

Pure functions from run-store data (:meth:`clipviz.runstore.RunStore.metrics`
columns, :func:`clipviz.jobs.sweep_summary`) to Plotly figures; arrays are
sent as float32.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .. import clipping
from .. import paper as pp
from ..kernels.activations import CODES, dmax
from ._util import TEMPLATE

COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")

PAPER_FIG7 = pp.FIGURE7

def log_ticks(values: Sequence[float | None], max_decades: float = 2.5) -> list[float]:
    """Ticks of a logarithmic panel (‖g‖, rho) holding ``values``: 1, 2 and 5 in every decade
    while they span at most ``max_decades`` decades, else the powers of 10 only (so that the
    labels of a tall panel never crowd)."""
    a = np.asarray([v for v in values if v is not None], dtype=np.float64)
    a = a[np.isfinite(a) & (a > 0)]
    if a.size == 0:
        return [10.0 ** e for e in range(-2, 5)]
    lo, hi = math.floor(np.log10(a.min())), math.ceil(np.log10(a.max()))
    steps = (1, 2, 5) if hi - lo <= max_decades else (1,)
    return [m * 10.0 ** e for e in range(lo - 1, hi + 1) for m in steps]


@dataclass(frozen=True)
class Curve:
    """One run's telemetry for the curves figure."""

    label: str
    metrics: Mapping[str, Sequence]  # RunStore.metrics columns
    threshold: float | None = None  # the clipping threshold tau (drawn on the ||g|| panel)
    clip: str = "none"
    metric_name: str = "validation"
    initial_rho: float | None = None  # rho(W_rec) before the first update (the run's result)
    activation: str | None = None  # sigma of the run: where its rho reference line sits
    run_id: str | None = None  # the run's id (carried by its kept updates' rings)
    kept: Sequence[Mapping] = ()  # kept updates: {"update", "kinds", "grad_norm"} (ringed on ||g||)


KEPT_SUFFIX = ": kept updates (click one for its error surface)"
"""The name of a run's ring trace on the ‖g‖ panel: its label, then this."""


def rho_reference(activation: str) -> float:
    """1 / gamma with gamma = max sigma' (section 2.1): rho(W_rec) above it is necessary for
    exploding gradients (1 for tanh, 4 for the sigmoid)."""
    return 1.0 / float(dmax(CODES[activation]))


def _rho_line_label(activation: str) -> str:
    y = rho_reference(activation)
    return f"ρ = 1/γ = {y:g} ({activation}, γ = max σ′ = {1 / y:g})"


def _f32(values: Sequence) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=np.float32)


def curves_figure(curves: Sequence[Curve], uirevision: str = "training") -> go.Figure:
    """Loss, ||g|| (log axis, threshold line, clipped updates marked), rho(W_rec), validation.

    Overlaying several runs (e.g. plain BPTT against norm clipping, Algorithm 1)
    gives each its colour on all four panels.  The rho panel starts at update 0
    (:attr:`Curve.initial_rho`) and carries the line rho = 1/gamma of each
    activation shown (section 2.1: necessary for gradients to explode).
    """
    fig = make_subplots(rows=2, cols=2, shared_xaxes=True, vertical_spacing=0.12,
                        horizontal_spacing=0.09,
                        subplot_titles=("training loss", "gradient norm ‖g‖ (before clipping)",
                                        "spectral radius ρ(W_rec)", "validation metric"))
    for i, c in enumerate(curves):
        col = COLORS[i % len(COLORS)]
        m = c.metrics
        x = np.asarray(m.get("update", []), dtype=np.float32)
        show = dict(legendgroup=c.label, line=dict(color=col, width=1.2))
        fig.add_trace(go.Scattergl(x=x, y=_f32(m.get("loss", [])), mode="lines", name=c.label,
                                   **show), row=1, col=1)
        fig.add_trace(go.Scattergl(x=x, y=_f32(m.get("grad_norm", [])), mode="lines",
                                   name=c.label, showlegend=False, **show), row=1, col=2)
        clipped = np.asarray([bool(v) for v in m.get("clipped", [])], dtype=bool)
        if clipped.any():
            fig.add_trace(go.Scattergl(
                x=x[clipped], y=_f32(m["grad_norm"])[clipped], mode="markers",
                name=f"{c.label}: clipped", legendgroup=c.label,
                marker=dict(color=col, symbol="x", size=5)), row=1, col=2)
        kept = [k for k in c.kept if isinstance(k.get("grad_norm"), (int, float))
                and math.isfinite(k["grad_norm"])]
        if kept and c.run_id:
            fig.add_trace(go.Scatter(
                x=[k["update"] for k in kept], y=[k["grad_norm"] for k in kept], mode="markers",
                name=c.label + KEPT_SUFFIX, legendgroup=c.label,
                customdata=[[c.run_id, int(k["update"])] for k in kept],
                text=[", ".join(k.get("kinds") or ()) for k in kept],
                hovertemplate="update %{x}: ‖g‖ = %{y:.3g} (%{text})<br>click: the error surface "
                              "here<extra></extra>",
                marker=dict(color=col, symbol="circle-open", size=13, line=dict(width=2))),
                row=1, col=2)
        rule = clipping.lookup(c.clip)
        if rule is not None and rule.line is not None and c.threshold is not None and x.size:
            fig.add_trace(go.Scatter(
                x=[float(x[0]), float(x[-1])], y=[c.threshold, c.threshold], mode="lines",
                name=f"{c.label}: threshold τ={c.threshold:g}", legendgroup=c.label,
                line=dict(color=col, dash="dash", width=1)), row=1, col=2)
        for key, row, colnum in (("rho", 2, 1), ("valid", 2, 2)):
            y = _f32(m.get(key, []))
            keep = ~np.isnan(y)
            xs, ys = x[keep], y[keep]
            if key == "rho" and c.initial_rho is not None and np.isfinite(c.initial_rho):
                xs = np.concatenate([np.zeros(1, np.float32), xs])
                ys = np.concatenate([np.asarray([c.initial_rho], np.float32), ys])
            fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers", name=c.label,
                                     showlegend=False, marker=dict(size=4), **show),
                          row=row, col=colnum)
    for act in sorted({c.activation for c in curves if c.activation in CODES}):
        y = rho_reference(act)
        fig.add_hline(y=y, line=dict(color="grey", dash="dot", width=1), row=2, col=1)
        # an annotation on a log axis is placed in log10 units (the line itself in data units)
        fig.add_annotation(text=_rho_line_label(act), xref="x3 domain", yref="y3", x=0.99,
                           y=float(np.log10(y)), xanchor="right", yanchor="bottom", showarrow=False,
                           font=dict(size=10, color="grey"))
    if not curves:
        fig.add_annotation(text="no run to show yet: start one, or select runs in the table",
                           xref="paper", yref="paper", x=0.5, y=0.5, showarrow=False,
                           font=dict(size=13, color="grey"))
    # ‖g‖ and rho span decades (rho: a sigmoid start near 0.1, exploded runs at 10 and more);
    # ticks written out in full (Plotly's own minor labels read "5" for 0.5)
    on_panel = {(1, 2): [v for c in curves for v in (*c.metrics.get("grad_norm", []), c.threshold)],
                (2, 1): [v for c in curves for v in (*c.metrics.get("rho", []), c.initial_rho)]
                + [rho_reference(c.activation) for c in curves if c.activation in CODES]}
    for (row, col), values in on_panel.items():
        ticks = log_ticks(values)
        fig.update_yaxes(type="log", tickvals=ticks, ticktext=[f"{t:g}" for t in ticks], row=row, col=col)
    fig.update_xaxes(title_text="update", row=2, col=1)
    fig.update_xaxes(title_text="update", row=2, col=2)
    # Every x axis autoranges explicitly.  Left unset, an axis that the previous figure did not
    # draw (the empty figure has no trace on the right-hand panels) came up in the next figure
    # with the same uirevision as held UI state: autorange off at the empty axis's [-1, 6], so
    # the ‖g‖ and validation panels showed the first six updates of every run.
    fig.update_xaxes(autorange=True)
    fig.update_layout(height=560, margin=dict(l=50, r=20, t=40, b=40), uirevision=uirevision,
                      legend=dict(orientation="h", y=-0.12), template=TEMPLATE)
    return fig


def success_rate_figure(summary: Mapping, paper: bool = True) -> go.Figure:
    """Success rate against sequence length per method (:func:`clipviz.jobs.sweep_summary`), with
    the 95 % Wilson score interval as error bars and the number of finished runs at each point."""
    fig = go.Figure()
    methods = list(summary["methods"])
    lengths = list(summary["lengths"])
    for i, m in enumerate(methods):
        rate = [None if r is None else 100.0 * r for r in summary["rate"][m]]
        ns = list(summary.get("n", {}).get(m, [None] * len(rate)))
        ks = list(summary.get("solved", {}).get(m, [None] * len(rate)))
        ci = list(summary.get("interval", {}).get(m, [None] * len(rate)))
        up = [None if r is None or b is None else 100.0 * b[1] - r for r, b in zip(rate, ci)]
        down = [None if r is None or b is None else r - 100.0 * b[0] for r, b in zip(rate, ci)]
        text = ["" if r is None or n is None else f"n={n}" for r, n in zip(rate, ns)]
        hover = ["no finished run" if r is None else
                 f"T = {L}: {k}/{n} solved ({r:.0f} %)<br>95 % Wilson interval "
                 f"{100 * b[0]:.0f}–{100 * b[1]:.0f} %" if b is not None and n else f"T = {L}: {r:.0f} %"
                 for L, r, k, n, b in zip(summary["lengths"], rate, ks, ns, ci)]
        rule = clipping.lookup(m)
        fig.add_trace(go.Scatter(
            x=lengths, y=rate, mode="lines+markers+text", text=text,
            textposition="top right" if i % 2 == 0 else "bottom right", textfont=dict(size=10),
            name=rule.method if rule else m, line=dict(color=COLORS[i % len(COLORS)]),
            # caps of different widths: the bars of methods at one length stay told apart
            error_y=dict(type="data", symmetric=False, array=up, arrayminus=down, thickness=1.2,
                         width=9 - 3 * (i % 3)),
            hovertext=hover, hoverinfo="text+name"))
    fig.update_layout(
        title=f"success rate ({summary.get('finished', 0)}/{summary.get('total', 0)} runs finished)",
        xaxis_title="sequence length T", yaxis_title="success rate (%)",
        yaxis=dict(range=[-5, 112]), template=TEMPLATE, height=380,
        margin=dict(l=50, r=20, t=50, b=40), uirevision="sweep")
    if paper:
        fig.add_annotation(text=PAPER_FIG7 + " (Pascanu et al.)", xref="paper", yref="paper",
                           x=0, y=-0.25, showarrow=False, font=dict(size=10, color="grey"))
    fig.add_annotation(text="bars: 95 % Wilson interval; n: finished runs", xref="paper", yref="paper",
                       x=0, y=1.0, xanchor="left", yanchor="bottom", showarrow=False,
                       font=dict(size=10, color="grey"))
    return fig


def progress_text(done: int, total: int | None, started: float | None, now: float,
                  running: bool = True) -> str:
    """"done / total updates · rate/s · ETA" for the progress bar (no ETA once nothing runs)."""
    if not total:
        return f"{done} updates"
    if not started or done <= 0:
        return f"0 / {total} updates"
    elapsed = max(now - started, 1e-9)
    rate = done / elapsed
    text = f"{done} / {total} updates · {rate:,.0f} updates/s"
    if not running:
        return text
    left = (total - done) / rate if rate > 0 else float("inf")
    eta = "—" if not np.isfinite(left) else (f"{left:.0f} s" if left < 120 else f"{left / 60:.1f} min")
    return f"{text} · {eta} left"


# The paper's test-set means (Tables 1 and 2): data set -> (task, metric, BPTT, rescaling).
PAPER_TABLES: dict[str, tuple[str, str, float, float]] = {
    ds: (task, f"{metric} ({name})", cell["test"][0][0], cell["test"][1][0])
    for task, metric, name, table in (("music", pp.TABLE1_METRIC, "Table 1", pp.TABLE1),
                                      ("characters", pp.TABLE2_METRIC, "Table 2", pp.TABLE2))
    for ds, cell in table.items()
}


def _mean_sd(xs: list[float]) -> str:
    if not xs:
        return "—"
    a = np.asarray(xs, dtype=np.float64)
    sd = f" ± {a.std(ddof=1):.2f}" if a.size > 1 else ""
    return f"{a.mean():.2f}{sd} (n={a.size})"


def paper_comparison(runs: Sequence) -> list[dict]:
    """Rows of Tables 1 and 2 beside this store's finished runs on the same data sets.

    ``runs`` are :class:`clipviz.runstore.Run` objects; a run counts for "BPTT"
    when its clipping rule is ``none`` and for "rescaling" when it is ``norm``
    (Algorithm 1).  Values are test-set means ± standard deviation over runs.
    """
    mine: dict[tuple[str, str], list[float]] = {}
    for r in runs:
        c, res = r.config, r.result or {}
        ds = c.get("dataset")
        if r.status != "finished" or ds not in PAPER_TABLES:
            continue
        key = "test_nll" if c.get("task") == "music" else "test_bpc"
        v = res.get(key)
        if isinstance(v, (int, float)) and np.isfinite(v) and c.get("clip") in ("none", "norm"):
            mine.setdefault((ds, c["clip"]), []).append(float(v))
    return [{"dataset": ds, "metric": metric, "paper_bptt": f"{bptt:.2f}", "paper_rescaling": f"{resc:.2f}",
             "yours_bptt": _mean_sd(mine.get((ds, "none"), [])),
             "yours_rescaling": _mean_sd(mine.get((ds, "norm"), []))}
            for ds, (_task, metric, bptt, resc) in PAPER_TABLES.items()]


# ---------------------------------------------------------------------------
# the error surface around a kept update (clipviz.landscape.snapshot_slice)
# ---------------------------------------------------------------------------
STEP_NAMES = ("plain BPTT step", "clipped step")
"""The names of the two step traces of :func:`slice_figure`."""


def _log10_grid(losses: Sequence[Sequence[float | None]]) -> np.ndarray:
    a = np.array([[np.nan if v is None else v for v in row] for row in losses], dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.log10(a)
    z[~np.isfinite(z)] = np.nan
    return z


def _log10(v: float | None) -> float | None:
    if v is None or not np.isfinite(v) or v <= 0:
        return None
    return float(np.log10(v))


def slice_figure(result: Mapping | None, three_d: bool = False, note: str | None = None
                 ) -> go.Figure:
    """The window's objective (log10) on the plane through a kept update's plain BPTT step and
    its clipped step (:meth:`clipviz.landscape.SnapshotSlice.to_dict`), as a heatmap with both
    steps as arrows from theta, or as a surface (``three_d``) with both steps drawn on it.

    Section 2.4 of the paper: where ‖g‖ explodes, the surface has a steep wall; plain BPTT's
    step (equation (1) with the exploded g) jumps along g, the clipped step (Algorithm 1) is
    τ/‖g‖ as long.
    """
    fig = go.Figure()
    if not result:
        fig.add_annotation(text=note or "click a ring on the ‖g‖ curve: the error surface at that "
                           "update", xref="paper", yref="paper", x=0.5, y=0.5, showarrow=False,
                           font=dict(size=13, color="grey"))
        fig.update_xaxes(visible=False)
        fig.update_yaxes(visible=False)
        fig.update_layout(height=420, template=TEMPLATE, margin=dict(l=40, r=20, t=30, b=30))
        return fig
    al = np.asarray(result["alphas"], dtype=np.float32)
    be = np.asarray(result["betas"], dtype=np.float32)
    z = _log10_grid(result["losses"]).astype(np.float32)
    steps = [(STEP_NAMES[0], result["unclipped_at"], result["step_losses"].get("unclipped"),
              "#d62728"),
             (STEP_NAMES[1] + f" (τ = {result['tau']:g})", result["clipped_at"],
              result["step_losses"].get("clipped"), "#2ca02c")]
    z0 = _log10(result["step_losses"].get("at_theta"))
    upd = result.get("update")
    title = (f"update {upd} ({', '.join(result.get('kinds') or ())}): log10 of the window's loss; "
             f"‖g‖ = {result['grad_norm']:.3g}")
    x_title = f"α: along plain BPTT's step (α = 1: the step, {result['unclipped_norm']:.3g} long)"
    y_title = f"β: ⟂, same length ({result.get('d2_kind', '').replace('orthogonalised ', '')})"
    if three_d:
        fig.add_trace(go.Surface(x=al, y=be, z=z, colorscale="Viridis", name="log10 loss",
                                 colorbar=dict(title="log10 loss"), showscale=True))
        for name, (a, b), loss, col in steps:
            zt = _log10(loss)
            fig.add_trace(go.Scatter3d(
                x=[0.0, a], y=[0.0, b], z=[z0, zt], mode="lines+markers", name=name,
                line=dict(color=col, width=7), marker=dict(size=[3, 6], color=col)))
        fig.update_layout(scene=dict(xaxis_title="α", yaxis_title="β", zaxis_title="log10 loss"),
                          scene_camera=dict(eye=dict(x=1.5, y=-1.5, z=1.0)))
    else:
        fig.add_trace(go.Heatmap(x=al, y=be, z=z, colorscale="Viridis", name="log10 loss",
                                 colorbar=dict(title="log10 loss"),
                                 hovertemplate="α %{x:.3g}, β %{y:.3g}: log10 loss %{z:.3f}"
                                               "<extra></extra>"))
        for name, (a, b), loss, col in steps:
            fig.add_trace(go.Scatter(
                x=[0.0, a], y=[0.0, b], mode="lines+markers", name=name,
                line=dict(color=col, width=2.5), marker=dict(size=[4, 9], color=col),
                hovertemplate=f"{name}<br>ends at α %{{x:.3g}}, β %{{y:.3g}}: loss "
                              f"{'—' if loss is None else f'{loss:.4g}'}<extra></extra>"))
            fig.add_annotation(x=a, y=b, ax=0.0, ay=0.0, xref="x", yref="y", axref="x", ayref="y",
                               showarrow=True, arrowhead=3, arrowsize=1.4, arrowwidth=2,
                               arrowcolor=col, text="")
        fig.add_trace(go.Scatter(x=[0.0], y=[0.0], mode="markers", name="θ (the update's start)",
                                 marker=dict(color="white", size=9, line=dict(color="black",
                                                                              width=1.5))))
        fig.update_xaxes(title_text=x_title, constrain="domain")
        fig.update_yaxes(title_text=y_title, scaleanchor="x", scaleratio=1, constrain="domain")
    fig.update_layout(title=dict(text=title, font=dict(size=13)), height=520,
                      template=TEMPLATE, margin=dict(l=60, r=20, t=50, b=50),
                      legend=dict(orientation="h", y=-0.18), uirevision=f"slice:{upd}:{three_d}")
    return fig


def slice_numbers(result: Mapping) -> list[str]:
    """The curvature numbers of a slice, one line each (section 2.4: a wall where ‖g‖ explodes
    has a large curvature along g and a top eigenvector close to g)."""
    def f(v, fmt=".4g"):
        return "—" if v is None else format(v, fmt)

    c, sl = result["curvature"], result["step_losses"]
    tau_note = "" if result.get("tau_source") == "run" else " (the task's default: this run did not clip)"
    return [
        f"curvature along g: gᵀHg/‖g‖² = {f(c['curvature_along_g'])}",
        f"top Hessian eigenvalue (largest |λ|): λ = {f(c['lambda_max_abs'])}; largest λ = "
        f"{f(c['lambda_max'])}",
        f"angle between g and the top eigenvector: {f(c['angle_deg'], '.1f')}°",
        f"‖g‖ = {f(result['grad_norm'])}, τ = {result['tau']:g}{tau_note}: plain BPTT's step "
        f"{f(result['unclipped_norm'])} long, the clipped step {f(result['clipped_norm'])}",
        f"loss at θ {f(sl.get('at_theta'))}; after plain BPTT's step {f(sl.get('unclipped'))}; "
        f"after the clipped step {f(sl.get('clipped'))}",
    ]
