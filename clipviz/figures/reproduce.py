"""Figures of ``clipviz reproduce``: Figure 7's success rate with binomial intervals, and the
per-run traces of ‖g‖ and ρ(W_rec) behind Tables 1 and 2 and Figure 7.

Pure functions from plain results (the rows and run traces
:mod:`clipviz.training.reproduce` builds) to Plotly figures; writing them to files is the
caller's business (``fig.write_image`` for PNG/SVG).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..jobs import wilson_interval
from ._util import TEMPLATE
from .training import COLORS, log_ticks, rho_reference

__all__ = ["SuccessPoint", "Trace", "success_figure", "traces_figure"]


@dataclass(frozen=True)
class SuccessPoint:
    """Solved runs of one method at one sequence length."""

    method: str  #: legend label of the method
    length: int  #: temporal-order sequence length T
    solved: int  #: runs that met the success test
    runs: int  #: runs made


@dataclass(frozen=True)
class Trace:
    """One run's telemetry, thinned: the largest ‖g‖ of each block of updates and ρ at the
    evaluations."""

    method: str  #: legend label of the method (runs of one method share a colour)
    label: str  #: the run (hover text)
    updates: Sequence[int]  #: last update of each block
    grad_norm_max: Sequence[float | None]  #: largest ‖g‖ before clipping in the block (None: none finite)
    eval_updates: Sequence[int]  #: updates of the evaluations (0: before the first update)
    rho: Sequence[float | None]  #: ρ(W_rec) at those updates
    threshold: float | None = None  #: τ of the method (a line on the ‖g‖ panel)


def _colours(methods: Sequence[str]) -> dict[str, str]:
    return {m: COLORS[i % len(COLORS)] for i, m in enumerate(dict.fromkeys(methods))}


def success_figure(points: Sequence[SuccessPoint], title: str) -> go.Figure:
    """Figure 7: the success rate against the sequence length, one line per method, with 95 %
    Wilson score intervals (:func:`clipviz.jobs.wilson_interval`) as error bars."""
    if not points:
        raise ValueError("success_figure needs at least one point")
    colours = _colours([p.method for p in points])
    fig = go.Figure()
    for k, (method, colour) in enumerate(colours.items()):
        pts = sorted((p for p in points if p.method == method), key=lambda p: p.length)
        rate = [p.solved / p.runs for p in pts]
        ci = [wilson_interval(p.solved, p.runs) for p in pts]
        # a small horizontal offset keeps the intervals of the methods apart at equal lengths
        x = [p.length + (k - (len(colours) - 1) / 2) * 0.25 for p in pts]
        fig.add_trace(go.Scatter(
            x=x, y=rate, mode="lines+markers", name=method, line=dict(color=colour),
            error_y=dict(type="data", symmetric=False, array=[hi - r for (lo, hi), r in zip(ci, rate)],
                         arrayminus=[r - lo for (lo, hi), r in zip(ci, rate)], thickness=1.2),
            customdata=[[p.length, p.solved, p.runs, lo, hi] for p, (lo, hi) in zip(pts, ci)],
            hovertemplate="T = %{customdata[0]}: %{customdata[1]} of %{customdata[2]} solved<br>"
                          "95% interval %{customdata[3]:.2f}–%{customdata[4]:.2f}<extra>%{fullData.name}</extra>"))
    lengths = sorted({p.length for p in points})
    pad = max(1.0, 0.08 * (lengths[-1] - lengths[0]))
    fig.update_layout(title=title, template=TEMPLATE, width=760, height=460,
                      legend=dict(orientation="h", y=-0.2),
                      xaxis=dict(title="sequence length T", tickvals=lengths,
                                 range=[lengths[0] - pad, lengths[-1] + pad]),
                      yaxis=dict(title="rate of success (95% Wilson interval)", range=[-0.03, 1.03]))
    return fig


def _finite(values: Sequence[float | None]) -> np.ndarray:
    a = np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
    a[~np.isfinite(a) | (a <= 0)] = np.nan
    return a


def traces_figure(traces: Sequence[Trace], title: str, activation: str | None = None) -> go.Figure:
    """Per-run traces: the largest ‖g‖ per block of updates (log axis, each method's τ as a dashed
    line) above ρ(W_rec) at the evaluations (log axis where ρ spans more than a decade, else
    linear; with ρ = 1/γ of ``activation``: section
    2.1's necessary condition for exploding gradients).  Runs of one method share a colour and a
    legend entry."""
    if not traces:
        raise ValueError("traces_figure needs at least one run")
    colours = _colours([t.method for t in traces])
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        subplot_titles=("largest ‖g‖ per block of updates (before clipping)",
                                        "spectral radius ρ(W_rec)"))
    shown: set[str] = set()
    gvals: list[float] = []
    rvals: list[float] = []
    for t in traces:
        colour, first = colours[t.method], t.method not in shown
        shown.add(t.method)
        g, r = _finite(t.grad_norm_max), _finite(t.rho)
        gvals += [float(x) for x in g[np.isfinite(g)]]
        rvals += [float(x) for x in r[np.isfinite(r)]]
        common = dict(mode="lines", legendgroup=t.method, line=dict(color=colour, width=1),
                      opacity=0.75, hovertemplate=f"{t.label}<br>update %{{x}}: %{{y:.3g}}<extra></extra>")
        fig.add_trace(go.Scatter(x=list(t.updates), y=g, name=t.method, showlegend=first, **common),
                      row=1, col=1)
        fig.add_trace(go.Scatter(x=list(t.eval_updates), y=r, name=t.method, showlegend=False,
                                 **common), row=2, col=1)
    # reference lines as traces (a shape or annotation on a log axis takes log10 coordinates)
    xs = [u for t in traces for u in (*t.updates, *t.eval_updates)]
    span = [min(xs, default=0), max(xs, default=1)]
    for method in colours:
        taus = sorted({t.threshold for t in traces if t.method == method and t.threshold is not None
                       and math.isfinite(t.threshold)})
        for tau in taus:
            fig.add_trace(go.Scatter(x=span, y=[tau, tau], mode="lines", name=f"τ = {tau:g}",
                                     legendgroup=method, showlegend=False,
                                     line=dict(color=colours[method], dash="dash", width=1.5),
                                     hovertemplate=f"{method}: τ = {tau:g}<extra></extra>"), row=1, col=1)
            gvals.append(tau)
    if activation is not None:
        ref = rho_reference(activation)
        fig.add_trace(go.Scatter(x=span, y=[ref, ref], mode="lines", showlegend=False,
                                 name=f"ρ = 1/γ = {ref:g}", line=dict(color="#555", dash="dot", width=1),
                                 hovertemplate=f"ρ = 1/γ = {ref:g} ({activation})<extra></extra>"),
                      row=2, col=1)
        rvals.append(ref)
    fig.update_yaxes(type="log", tickvals=log_ticks(gvals), row=1, col=1)
    if rvals and max(rvals) > 10 * min(rvals):  # ρ spans decades where a run explodes
        fig.update_yaxes(type="log", tickvals=log_ticks(rvals), row=2, col=1)
    fig.update_xaxes(title="update", row=2, col=1)
    fig.update_yaxes(title="‖g‖", row=1, col=1)
    fig.update_yaxes(title="ρ(W_rec)", row=2, col=1)
    fig.update_layout(title=title, template=TEMPLATE, width=900, height=640,
                      legend=dict(orientation="h", y=-0.12))
    return fig
