"""Bifurcations page: the paper's Figure 4 with the gradient blow-up under it.

The fixed points of x ↦ w·σ(x) + b over b by continuation (stable solid,
unstable dashed, folds and period doubling labelled), orbit-diagram points,
the arrows of F(x) − x, the bistable interval shaded; under it |∂x_T/∂b| on a
log axis; a basin map over (b, x_0); a cobweb of the map at the chosen b
(click the diagram to choose it).
"""

from __future__ import annotations

import dash
import numpy as np
from dash import Input, Output, Patch, State, dcc, html, no_update

from ... import dynamics as dyn
from ...config import ACTIVATIONS
from ...figures import dynamics as fd
from ..cache import memoized
from ..components import (build_control, click_data, clientside, graph, link_data, msg_id, page_data, page_header,
                          register_link)
from ..params import Choice, Num, check_all, parse, round_sig

PATH = "/bifurcations"
P = "bf"
SPECS = (
    Num("w", "w", -20, 20, 5.0, help="recurrent weight (Figure 4: w = 5); folds need w > 4 (sigmoid)"),
    Num("b_min", "b from", -40, 40, -6.0, help="left end of the b window"),
    Num("b_max", "b to", -40, 40, 2.0, help="right end of the b window"),
    Choice("act", "σ", ACTIVATIONS, "sigmoid", help="the unit's non-linearity"),
    Num("b", "b (current)", -40, 40, -2.5, help="marker on the diagram and the cobweb's b; or click the diagram"),
    Num("x0", "x₀", -20, 20, 0.5, help="initial state for |∂x_T/∂b| and the cobweb"),
    Num("T", "T", 1, 2000, 20, integer=True,
        help="steps unrolled for |∂x_T/∂b|; larger T: a taller, narrower spike (the b grid limits what shows)"),
    Num("res", "Basin grid", 40, 400, 160, integer=True, help="points per axis of the basin map"),
)
SPEC = {s.name: s for s in SPECS}
MAIN = ("w", "b_min", "b_max", "act", "x0", "T", "res")
CONTROL_KIND = {"w": ("slider", dict(step=0.05, marks={-20: "-20", 0: "0", 4: "4", 20: "20"})),
                "act": ("radio", {}), "b": ("slider", dict(step=0.01, marks={-40: "-40", 0: "0", 40: "40"}))}


def _window_error(v: dict, errors: dict) -> None:
    if "b_min" not in errors and "b_max" not in errors and not v["b_min"] < v["b_max"]:
        errors["b_min"] = f"b from must be smaller than b to; got {v['b_min']:g} and {v['b_max']:g}"
        v["b_min"], v["b_max"] = SPEC["b_min"].default, SPEC["b_max"].default


@memoized
def compute(w, b_min, b_max, act, x0, T, res):
    """Everything the two upper figures need (rounded scalars in, small arrays out)."""
    bd = dyn.bifurcation_diagram(w, b_min, b_max, act)
    bs = np.linspace(b_min, b_max, 300)
    orbit = dyn.orbit_diagram(w, bs, activation=act)
    xs_all = np.concatenate([br.x for br in bd.branches] + [orbit.states.ravel()])
    x_lo, x_hi = float(np.min(xs_all)), float(np.max(xs_all))
    pad = 0.08 * (x_hi - x_lo + 1e-9)
    field = dyn.vector_field(w, np.linspace(b_min, b_max, 25), np.linspace(x_lo - pad, x_hi + pad, 15), act)
    sens = dyn.sensitivity(w, np.linspace(b_min, b_max, 2000), x0=x0, steps=T, activation=act)
    bgrid = np.linspace(b_min, b_max, res)
    x0s = np.linspace(x_lo - pad, x_hi + pad, res)
    labels = dyn.basins(w, bgrid, x0s, activation=act)
    return bd, orbit, field, sens, bgrid, x0s, labels


def _args(v: dict) -> tuple:
    r = round_sig
    return (r(v["w"]), r(v["b_min"]), r(v["b_max"]), v["act"], r(v["x0"]), int(v["T"]), int(v["res"]))


def figures(v: dict):
    bd, orbit, field, sens, bgrid, x0s, labels = compute(*_args(v))
    return (fd.bifurcation_figure(bd, orbit, field, sens, v["b"]),
            fd.basin_figure(bgrid, x0s, labels, bd, v["b"]),
            fd.cobweb_figure(v["w"], v["b"], v["x0"], v["act"]))


def update_main(w, b_min, b_max, act, x0, T, res, b):
    """The diagram and the basin map (b is the marker, a State)."""
    values, errors = check_all(SPECS, dict(w=w, b_min=b_min, b_max=b_max, act=act, x0=x0, T=T, res=res, b=b))
    _window_error(values, errors)
    msgs = [errors.get(k, "") for k in MAIN]
    if any(msgs):
        return [no_update, no_update, *msgs]
    try:
        diagram, basins, _ = figures(values)
    except ValueError as exc:
        return [no_update, no_update, str(exc), *msgs[1:]]
    return [diagram, basins, *msgs]


def update_b(b, w, act, x0):
    """The current b moved: cobweb redrawn, markers moved (no recomputation of the diagram)."""
    values, errors = check_all(SPECS, dict(b=b, w=w, act=act, x0=x0, b_min=-1, b_max=1, T=1, res=40))
    if "b" in errors:
        return no_update, no_update, no_update, errors["b"]
    if errors:
        return no_update, no_update, no_update, ""
    cob = fd.cobweb_figure(values["w"], values["b"], values["x0"], values["act"])
    p1, p2 = Patch(), Patch()
    for p in (p1, p2):
        p["layout"]["shapes"][0]["x0"] = values["b"]
        p["layout"]["shapes"][0]["x1"] = values["b"]
    return p1, p2, cob, ""


def _computed_for_download(w, b_min, b_max, act, x0, T, res):
    """The page's computation for a CSV download, or None if a control is out of range."""
    values, errors = check_all(SPECS, dict(w=w, b_min=b_min, b_max=b_max, act=act, x0=x0, T=T, res=res, b=0))
    _window_error(values, errors)
    if errors:
        return None
    return compute(*_args(values))


def download(n, *controls):
    if not n or (res := _computed_for_download(*controls)) is None:
        return no_update
    bd, _o, _f, sens, *_ = res
    return dict(content=fd.bifurcation_csv(bd, sens), filename="clipviz-bifurcation.csv", type="text/csv")


def download_basins(n, *controls):
    if not n or (res := _computed_for_download(*controls)) is None:
        return no_update
    *_, bgrid, x0s, labels = res
    return dict(content=fd.basins_csv(bgrid, x0s, labels), filename="clipviz-basins.csv", type="text/csv")


def download_cobweb(n, b, w, act, x0):
    if not n:
        return no_update
    values, errors = check_all(SPECS, dict(b=b, w=w, act=act, x0=x0, b_min=-1, b_max=1, T=1, res=40))
    if errors:
        return no_update
    return dict(content=fd.cobweb_csv(values["w"], values["b"], values["x0"], values["act"]),
                filename="clipviz-cobweb.csv", type="text/csv")


def layout(**kwargs) -> html.Div:
    values, errors = parse(SPECS, kwargs)
    _window_error(values, errors)
    unknown = sorted(k for k in kwargs if k not in SPEC)
    diagram, basins, cob = figures(values)
    controls = []
    for s in SPECS:
        kind, kw = CONTROL_KIND.get(s.name, ("number", {}))
        controls.append(build_control(P, s, values[s.name], errors.get(s.name), kind, **kw))
    return html.Div(className="page", children=[
        *page_header("Bifurcations: where the gradient explodes (Figure 4)", [
            "The fixed points of the one-unit map x ↦ w·σ(x) + b (section 2.5) as b varies, computed by "
            "pseudo-arclength continuation: stable branches solid, unstable dashed, folds and period-doubling "
            "points labelled. Between the two folds (shaded) the map is bistable and the unstable branch "
            "separates the two basins. Underneath, on the same b axis, the exact |∂x_T/∂b|: it blows up at the "
            "basin boundary and the folds — the exploding gradient. Click the diagram to choose b for the "
            "cobweb."], P, unknown, errors),
        html.Div(className="layout", children=[
            html.Div(className="sidebar", children=controls),
            html.Div(className="main", children=[
                graph(f"{P}-diagram", diagram),
                html.Button("Download diagram CSV", id=f"{P}-dl-btn", className="dl"),
                html.Div(className="row", children=[
                    html.Div([graph(f"{P}-basins", basins),
                              html.Button("Download basins CSV", id=f"{P}-dl-basins-btn", className="dl")],
                             className="col"),
                    html.Div([graph(f"{P}-cobweb", cob),
                              html.Button("Download cobweb CSV", id=f"{P}-dl-cobweb-btn", className="dl")],
                             className="col"),
                ]),
                dcc.Download(id=f"{P}-dl"), dcc.Download(id=f"{P}-dl-basins"), dcc.Download(id=f"{P}-dl-cobweb"),
                # the browser code's data: the link's keys; a click on the diagram sets b
                page_data(P, link=link_data(PATH, [s.name for s in SPECS]), click=click_data(("x", SPEC["b"]))),
            ]),
        ]),
    ])


def warm_up() -> None:
    figures({s.name: s.default for s in SPECS} | {"res": 40, "T": 20})
    dyn.bifurcation_diagram(-5.0, -2.0, 6.0, "tanh")


def register(app: dash.Dash) -> None:
    dash.register_page(__name__, path=PATH, name="Bifurcations", order=2, layout=layout,
                       title="clipviz · bifurcations", description="Figure 4 with the gradient blow-up")
    main_inputs = [Input(f"{P}-{k}", "value") for k in MAIN]
    app.callback(Output(f"{P}-diagram", "figure"), Output(f"{P}-basins", "figure"),
                 *[Output(msg_id(P, k), "children") for k in MAIN],
                 *main_inputs, State(f"{P}-b", "value"), prevent_initial_call=True)(update_main)
    app.callback(Output(f"{P}-diagram", "figure", allow_duplicate=True),
                 Output(f"{P}-basins", "figure", allow_duplicate=True), Output(f"{P}-cobweb", "figure"),
                 Output(msg_id(P, "b"), "children"),
                 Input(f"{P}-b", "value"), Input(f"{P}-w", "value"), Input(f"{P}-act", "value"),
                 Input(f"{P}-x0", "value"), prevent_initial_call=True)(update_b)
    app.callback(Output(f"{P}-dl", "data"), Input(f"{P}-dl-btn", "n_clicks"),
                 *[State(f"{P}-{k}", "value") for k in MAIN], prevent_initial_call=True)(download)
    app.callback(Output(f"{P}-dl-basins", "data"), Input(f"{P}-dl-basins-btn", "n_clicks"),
                 *[State(f"{P}-{k}", "value") for k in MAIN], prevent_initial_call=True)(download_basins)
    app.callback(Output(f"{P}-dl-cobweb", "data"), Input(f"{P}-dl-cobweb-btn", "n_clicks"),
                 *[State(f"{P}-{k}", "value") for k in ("b", "w", "act", "x0")],
                 prevent_initial_call=True)(download_cobweb)
    clientside(app, "clickPoint", P, [Output(f"{P}-b", "value")], Input(f"{P}-diagram", "clickData"),
               prevent_initial_call=True)
    register_link(app, P, [s.name for s in SPECS])
