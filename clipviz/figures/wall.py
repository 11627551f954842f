"""Figures of ``clipviz reproduce wall`` (section 2.4 measured at spikes of ‖g‖).

Pure functions from plain numbers (what :mod:`clipviz.wall` measures) to Plotly figures:
the angle between g and the Hessian's top eigenvector, the curvature along g against ‖g‖,
the loss after plain gradient descent's step against the loss after Algorithm 1's step, and
the loss along the plain step at a run's largest spike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ._util import CLIPPED, FONT, TEMPLATE, UNCLIPPED
from .training import COLORS

__all__ = ["Profile", "angle_figure", "curvature_figure", "losses_figure", "profile_figure"]


def _layout(fig: go.Figure, title: str, height: int = 520) -> go.Figure:
    fig.update_layout(template=TEMPLATE, font=FONT, title=dict(text=title, font=dict(size=15)),
                      width=900, height=height, legend=dict(orientation="h", y=-0.18 * 520 / height))
    return fig


def _finite(*cols):
    arrs = [np.asarray(c, dtype=np.float64) for c in cols]
    ok = np.ones(arrs[0].shape, dtype=bool)
    for a in arrs:
        ok &= np.isfinite(a)
    return [a[ok] for a in arrs]


def angle_figure(groups: Mapping[str, Sequence[float]], title: str, aligned_deg: float) -> go.Figure:
    """Histograms (share of each group's points) of the angle in degrees between g and the
    Hessian's top eigenvector; 0 is the paper's picture (g along the wall's normal)."""
    fig = go.Figure()
    for i, (label, angles) in enumerate(groups.items()):
        (a,) = _finite(angles)
        fig.add_histogram(x=a, name=f"{label} (n = {a.size})", histnorm="probability",
                          xbins=dict(start=0, end=90, size=5), opacity=0.6,
                          marker_color=COLORS[i % len(COLORS)])
    fig.add_vline(x=aligned_deg, line_dash="dot", line_color="#555",
                  annotation_text=f"{aligned_deg:g}°", annotation_position="top")
    fig.update_layout(barmode="overlay")
    fig.update_xaxes(title="angle between g and the top Hessian eigenvector (degrees)",
                     range=[0, 90])
    fig.update_yaxes(title="share of points")
    return _layout(fig, title)


def curvature_figure(groups: Mapping[str, tuple[Sequence[float], Sequence[float]]],
                     title: str) -> go.Figure:
    """|gᵀHg| / ‖g‖² against ‖g‖ on log axes, one colour per group of (‖g‖, curvature)."""
    fig = go.Figure()
    for i, (label, (g, c)) in enumerate(groups.items()):
        g, c = _finite(g, c)
        c = np.abs(c)
        keep = (g > 0) & (c > 0)
        fig.add_scattergl(x=g[keep], y=c[keep], mode="markers", name=f"{label} (n = {keep.sum()})",
                          marker=dict(size=6, color=COLORS[i % len(COLORS)], opacity=0.7))
    fig.update_xaxes(type="log", title="‖g‖")
    fig.update_yaxes(type="log", title="|gᵀHg| / ‖g‖²  (curvature along g)")
    return _layout(fig, title)


def losses_figure(groups: Mapping[str, tuple[Sequence[float], Sequence[float]]],
                  title: str) -> go.Figure:
    """The objective after Algorithm 1's step (x) against after plain gradient descent's step
    (y), log axes, with y = x: a point above the line is a spike where the plain step landed
    higher.  Groups are (loss after plain step, loss after clipped step); a plain step that
    left the finite numbers is counted in the legend, not drawn."""
    fig = go.Figure()
    lo, hi = math.inf, 0.0
    for i, (label, (lu, lc)) in enumerate(groups.items()):
        lu = np.asarray(lu, dtype=np.float64)
        lc = np.asarray(lc, dtype=np.float64)
        inf = int(np.sum(np.isposinf(lu) & np.isfinite(lc)))
        u, c = _finite(lu, lc)
        keep = (u > 0) & (c > 0)
        u, c = u[keep], c[keep]
        if u.size:
            lo, hi = min(lo, u.min(), c.min()), max(hi, u.max(), c.max())
        above = int(np.sum(u > c)) + inf
        extra = f", {inf} plain steps to a non-finite loss" if inf else ""
        fig.add_scattergl(x=c, y=u, mode="markers",
                          name=f"{label}: plain higher in {above} of {u.size + inf}{extra}",
                          marker=dict(size=6, color=COLORS[i % len(COLORS)], opacity=0.7))
    if hi > 0:
        fig.add_scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="equal",
                        line=dict(color="#555", dash="dot"))
    fig.update_xaxes(type="log", title="loss after the clipped step (Algorithm 1)")
    fig.update_yaxes(type="log", title="loss after the plain step")
    return _layout(fig, title)


@dataclass(frozen=True)
class Profile:
    """The objective along a run's plain step at one spike."""

    label: str  #: the run and update
    alphas: Sequence[float]  #: position along the plain step (0: theta, 1: theta + plain step)
    losses: Sequence[float]  #: the objective there
    alpha_clipped: float  #: where the clipped step ends on this line


def profile_figure(profiles: Sequence[Profile], title: str) -> go.Figure:
    """One panel per profile: the loss along the plain step (log y), with theta, the clipped
    step's end and the plain step's end marked."""
    if not profiles:
        raise ValueError("profile_figure needs at least one profile")
    n = len(profiles)
    fig = make_subplots(rows=n, cols=1, subplot_titles=[p.label for p in profiles],
                        vertical_spacing=0.3 / n)
    for k, p in enumerate(profiles, start=1):
        a = np.asarray(p.alphas, dtype=np.float64)
        y = np.asarray(p.losses, dtype=np.float64)
        fig.add_scatter(x=a, y=y, mode="lines", line=dict(color="#444"), name="loss along the "
                        "plain step", showlegend=k == 1, row=k, col=1)
        for x, name, colour in ((0.0, "θ", "#444"), (p.alpha_clipped, "after the clipped step",
                                                     CLIPPED), (1.0, "after the plain step",
                                                                UNCLIPPED)):
            yi = float(np.interp(x, a, y))
            fig.add_scatter(x=[x], y=[yi], mode="markers", name=name, showlegend=k == 1,
                            marker=dict(size=11, color=colour), row=k, col=1)
        fig.update_yaxes(type="log", title="loss of the window", row=k, col=1)
    fig.update_xaxes(title="fraction of the plain step", row=n, col=1)
    fig.update_annotations(font_size=13)
    return _layout(fig, title, height=120 + 340 * n)
