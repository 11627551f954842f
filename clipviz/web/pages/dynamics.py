"""Dynamics page: the paper's Figures 5 and 6.

Two nearby initial states x_0 and x_0 + δ under the input-driven map
x_t = w·σ(x_{t−1}) + b + u_t with the same inputs; their trajectories and the
gap |Δx_t| on a log axis, with the time at which they separate.

The defaults show the phenomenon: with the inputs of seed 0 at scale 0.002 the
two runs' basins meet at x_0 ≈ −0.00052 (the inputs move the boundary away
from the input-free map's x* = 0), between x_0 = −0.001 and x_0 + δ = 0, so the
run from x_0 ends in the lower attractor (x_T ≈ −1.77) and the run from
x_0 + δ in the upper one (x_T ≈ 1.78).
"""

from __future__ import annotations

import dash
from dash import Input, Output, State, dcc, html, no_update

from ... import dynamics as dyn
from ...config import ACTIVATIONS
from ...figures import dynamics as fd
from ..cache import memoized
from ..components import graph, link_data, msg_id, page_data, page_header, register_link
from ..params import Choice, Num, check_all, parse, round_sig
from ._dynamics_controls import dyn_control

PATH = "/dynamics"
P = "dy"
SPECS = (
    Num("w", "w", -20, 20, 5.0, help="recurrent weight"),
    Num("b", "b", -40, 40, -2.5, help="bias; at w = 5, b = −2.5 the map is bistable with x* = 0 unstable"),
    Num("x0", "x₀", -20, 20, -0.001,
        help="first initial state (here just below the basin boundary, which these inputs move to about −0.00052)"),
    Num("delta", "δ", -1, 1, 1e-3, help="the second run starts at x₀ + δ"),
    Num("T", "T", 1, 5000, 100, integer=True, help="number of steps"),
    Num("scale", "Input scale", 0, 5, 0.002, help="u_t ~ N(0, scale²), the same for both runs"),
    Num("seed", "Seed", 0, 1_000_000, 0, integer=True, help="random seed of the inputs"),
    Num("thr", "Separation threshold", 1e-9, 100, 1.0, help="the runs count as separated once |Δx_t| ≥ this"),
    Choice("act", "σ", ACTIVATIONS, "sigmoid", help="the unit's non-linearity"),
)
SPEC = {s.name: s for s in SPECS}
NAMES = [s.name for s in SPECS]
KIND = {"w": ("slider", dict(step=0.05, marks={-20: "-20", 0: "0", 20: "20"})),
        "b": ("slider", dict(step=0.01, marks={-40: "-40", 0: "0", 40: "40"})),
        "scale": ("slider", dict(step=0.001, marks={0: "0", 1: "1", 5: "5"})),
        "act": ("radio", {})}


@memoized
def compute(w, b, x0, delta, T, scale, seed, thr, act) -> dyn.InputDriven:
    return dyn.input_driven(w, b, x0=x0, delta=delta, steps=T, input_scale=scale, seed=seed,
                            threshold=thr, activation=act)


def _args(v: dict) -> tuple:
    r = round_sig
    return (r(v["w"]), r(v["b"]), r(v["x0"]), r(v["delta"]), int(v["T"]), r(v["scale"]), int(v["seed"]),
            r(v["thr"]), v["act"])


def update(*vals):
    values, errors = check_all(SPECS, dict(zip(NAMES, vals)))
    msgs = [errors.get(k, "") for k in NAMES]
    if any(msgs):
        return [no_update, *msgs]
    try:
        return [fd.driven_figure(compute(*_args(values)), values["act"]), *msgs]
    except ValueError as exc:
        return [no_update, str(exc), *msgs[1:]]


def download(n, *vals):
    if not n:
        return no_update
    values, errors = check_all(SPECS, dict(zip(NAMES, vals)))
    if errors:
        return no_update
    return dict(content=fd.driven_csv(compute(*_args(values))), filename="clipviz-dynamics.csv", type="text/csv")


def layout(**kwargs) -> html.Div:
    values, errors = parse(SPECS, kwargs)
    unknown = sorted(k for k in kwargs if k not in SPEC)
    fig = fd.driven_figure(compute(*_args(values)), values["act"])
    controls = [dyn_control(P, s, values[s.name], errors.get(s.name), KIND.get(s.name, ("number", {}))[0],
                            **KIND.get(s.name, ("number", {}))[1]) for s in SPECS]
    return html.Div(className="page", children=[
        *page_header("Dynamics: two nearby states, one input sequence (Figures 5–6)", [
            "The input-driven map x_t = w·σ(x_(t−1)) + b + u_t from x₀ and x₀ + δ with the same inputs. "
            "Near a basin boundary a tiny δ ends in different attractors: by default the run from x₀ ends in "
            "the lower attractor and the run from x₀ + δ in the upper one; |Δx_t| grows from δ to order one, "
            "which is exactly a huge ∂x_t/∂x₀ — the gradient explodes where the dynamics bifurcate. Change the "
            "seed and both runs may fall on one side: the inputs move the boundary."],
            P, unknown, errors),
        html.Div(className="layout", children=[
            html.Div(className="sidebar", children=controls),
            html.Div(className="main", children=[
                graph(f"{P}-fig", fig),
                html.Button("Download trajectories CSV", id=f"{P}-dl-btn", className="dl"),
                dcc.Download(id=f"{P}-dl"),
                page_data(P, link=link_data(PATH, NAMES)),
            ]),
        ]),
    ])


def warm_up() -> None:
    fd.driven_figure(compute(*_args({s.name: s.default for s in SPECS})), SPEC["act"].default)


def register(app: dash.Dash) -> None:
    dash.register_page(__name__, path=PATH, name="Dynamics", order=3, layout=layout,
                       title="clipviz · dynamics", description="Figures 5-6: nearby states under the same inputs")
    inputs = [Input(f"{P}-{k}", "value") for k in NAMES]
    app.callback(Output(f"{P}-fig", "figure"), *[Output(msg_id(P, k), "children") for k in NAMES],
                 *inputs, prevent_initial_call=True)(update)
    app.callback(Output(f"{P}-dl", "data"), Input(f"{P}-dl-btn", "n_clicks"),
                 *[State(f"{P}-{k}", "value") for k in NAMES], prevent_initial_call=True)(download)
    register_link(app, P, NAMES)
