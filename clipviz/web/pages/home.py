"""Home page: what each page shows and which part of the paper it is."""

from __future__ import annotations

import dash
from dash import dcc, html

from ... import config

PATH = "/"

PAGES = [
    ("/surface", "Error surface",
     "The paper's Figure 3 (section 2.4, equation 14): the error E_T(w, b) of a one-unit recurrent "
     "network as a landscape with a steep wall. Click to start gradient descent with and without the "
     "clipping of Algorithm 1 and watch the unclipped run get thrown off the wall while the clipped one "
     "keeps its course; the gradient norm per step shows the spike."),
    ("/bifurcations", "Bifurcations",
     "Figure 4 (section 2.5): the fixed points of x ↦ w·σ(x) + b as b varies, by continuation, with "
     "the folds that bound the bistable regime, basins of attraction, and |∂x_T/∂b| on the same axis, "
     "so the gradient blow-up lines up with the bifurcation."),
    ("/dynamics", "Dynamics",
     "Figures 5 and 6: two nearby initial states under the input-driven map x_t = w·σ(x_{t−1}) + b + u_t; "
     "their trajectories and the gap |Δx_t| over time show when a small difference becomes a large one."),
    ("/training", "Training",
     "Section 4 (Figure 7, Tables 1 and 2): train RNNs on the temporal order task, polyphonic music or "
     "next-character prediction in the background, with plain BPTT or with clipping, and watch the loss, "
     "‖g‖ against the threshold and ρ(W_rec) live; a sweep draws the success rate against sequence length."),
    ("/theory", "Why gradients explode",
     "Sections 2.2–2.4, equations (4)–(7): for an n-unit network with recurrent weights at spectral "
     "radius ρ, ‖∂x_t/∂x_k‖ grows or shrinks like ρ^l; the temporal contributions of equation (4) "
     "show long-term terms dominating past ρ > 1 (ρ > 4 for the sigmoid)."),
]


def layout(**kwargs) -> html.Div:
    return html.Div(className="page home", children=[
        html.H2("The exploding-gradient problem, made visible"),
        html.P("clipviz follows Pascanu, Mikolov & Bengio, “On the difficulty of training recurrent "
               "neural networks” (2012/2013). Every view is computed exactly (forward-mode derivatives, "
               "no finite differences), and every view's state lives in its URL: copy the link to share "
               "exactly what you see.", className="lead"),
        html.Div(className="cards", children=[
            html.Div(className="card", children=[
                html.H3(dcc.Link(name, href=path)), html.P(text)])
            for path, name, text in PAGES if not (path == "/training" and config.read_only())
        ]),
    ])


def register(app: dash.Dash) -> None:
    dash.register_page(__name__, path=PATH, name="Home", order=0, layout=layout, title="clipviz",
                       description="The exploding-gradient problem of recurrent networks, made visible")
