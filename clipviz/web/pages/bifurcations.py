"""Bifurcations page: the paper's Figure 4 with the gradient blow-up under it.

The fixed points of x ↦ w·σ(x) + b over b by continuation (stable solid,
unstable dashed, folds and period doubling labelled), orbit-diagram points,
the arrows of F(x) − x, the bistable interval shaded; under it |∂x_T/∂b| on a
log axis, on a b grid refined about the basin boundary and the folds so that
its peak is the true one and grows with T (section 2.5); a basin map over
(b, x_0); a cobweb of the map at the chosen b (click the diagram to choose it).

Each figure is recomputed only by the controls it depends on: the diagram by
w, the b window, σ, x_0 and T; the basin map by w, the window, σ and its grid;
the current b only moves the markers and redraws the cobweb.  A w step, which changes all
three, draws them from one callback (one request, one update of the page).  While the w
slider is dragged both figures follow on coarser grids (its ``drag_value``);
on release (``value``) they are drawn in full.
"""

from __future__ import annotations

import dash
import numpy as np
from dash import Input, Output, Patch, State, ctx, dcc, html, no_update
from dash.exceptions import MissingCallbackContextException

from ... import dynamics as dyn
from ...config import ACTIVATIONS
from ...figures import dynamics as fd
from ..cache import memoized
from ..components import click_data, clientside, graph, link_data, msg_id, page_data, page_header, register_link
from ..params import Choice, Num, check_all, parse, round_sig
from ._dynamics_controls import dyn_control

PATH = "/bifurcations"
P = "bf"
SPECS = (
    Num("w", "w", -20, 20, 5.0, help="recurrent weight (Figure 4: w = 5); folds need w > 4 (sigmoid)"),
    Num("b_min", "b from", -40, 40, -6.0, help="left end of the b window"),
    Num("b_max", "b to", -40, 40, 2.0, help="right end of the b window"),
    Choice("act", "σ", ACTIVATIONS, "sigmoid", help="the unit's non-linearity"),
    Num("b", "b (current)", -40, 40, -2.5,
        help="marker on the diagram and the cobweb's b (within the b window); or click the diagram"),
    Num("x0", "x₀", -20, 20, 0.5, help="initial state for |∂x_T/∂b| and the cobweb"),
    Num("T", "T", 1, 2000, 20, integer=True,
        help="steps unrolled for |∂x_T/∂b|; larger T: a taller, narrower spike at the basin boundary"),
    Num("res", "Basin grid", 40, 400, 160, integer=True, help="points per axis of the basin map"),
)
SPEC = {s.name: s for s in SPECS}
DIAGRAM = ("w", "b_min", "b_max", "act", "x0", "T")  # the controls the diagram depends on
BASINS = ("w", "b_min", "b_max", "act", "res")  # ... and the basin map
CURRENT = ("b", "w", "act", "x0")  # ... and the cobweb
MAIN = ("w", "b_min", "b_max", "act", "x0", "T", "res")  # every control but b: downloads, drag preview
CONTROL_KIND = {"w": ("slider", dict(step=0.05, marks={-20: "-20", 0: "0", 4: "4", 20: "20"})),
                "act": ("radio", {}), "b": ("slider", dict(step=0.01))}

FULL = dict(orbit_bs=300, sens_n=2000)  # the grids drawn once a control is released
COARSE = dict(orbit_bs=100, sens_n=400, res_divisor=3)  # ... and while the w slider is dragged


def _window_error(v: dict, errors: dict) -> None:
    if "b_min" not in errors and "b_max" not in errors and not v["b_min"] < v["b_max"]:
        errors["b_min"] = f"b from must be smaller than b to; got {v['b_min']:g} and {v['b_max']:g}"
        v["b_min"], v["b_max"] = SPEC["b_min"].default, SPEC["b_max"].default


def _x_window(bd: dyn.BifurcationDiagram) -> tuple[float, float]:
    """The x range shown: every branch (fixed points and period 2) with 8 % to spare."""
    xs = np.concatenate([br.x for br in bd.branches])
    lo, hi = float(np.min(xs)), float(np.max(xs))
    pad = 0.08 * (hi - lo + 1e-9)
    return lo - pad, hi + pad


@memoized(min_seconds=0.002)
def diagram_layer(w, b_min, b_max, act, orbit_bs):
    """The diagram's w-dependent layers: branches, orbit points, arrows (rounded scalars in)."""
    bd = dyn.bifurcation_diagram(w, b_min, b_max, act)
    orbit = dyn.orbit_diagram(w, np.linspace(b_min, b_max, orbit_bs), activation=act)
    x_lo, x_hi = _x_window(bd)
    field = dyn.vector_field(w, np.linspace(b_min, b_max, 25), np.linspace(x_lo, x_hi, 15), act)
    return bd, orbit, field


@memoized(min_seconds=0.002)
def sensitivity_layer(w, b_min, b_max, act, x0, T, n):
    """|∂x_T/∂b| on a b grid refined about its spikes (:func:`clipviz.dynamics.sensitivity_bs`)."""
    bs = dyn.sensitivity_bs(w, b_min, b_max, x0=x0, n=n, activation=act)
    return dyn.sensitivity(w, bs, x0=x0, steps=T, activation=act)


@memoized(min_seconds=0.002)
def basin_layer(w, b_min, b_max, act, res):
    """The basin map's grid and labels, and the diagram whose unstable branch bounds the basins."""
    bd = dyn.bifurcation_diagram(w, b_min, b_max, act)
    x_lo, x_hi = _x_window(bd)
    bgrid = np.linspace(b_min, b_max, res)
    x0s = np.linspace(x_lo, x_hi, res)
    return bgrid, x0s, dyn.basins(w, bgrid, x0s, activation=act), bd


def _r(v: dict, *keys) -> tuple:
    return tuple(round_sig(v[k]) if isinstance(v[k], float) else v[k] for k in keys)


def diagram_dict(v: dict, coarse: bool = False) -> dict:
    grid = COARSE if coarse else FULL
    w, b_min, b_max, act, x0, T = _r(v, *DIAGRAM)
    bd, orbit, field = diagram_layer(w, b_min, b_max, act, grid["orbit_bs"])
    sens = sensitivity_layer(w, b_min, b_max, act, x0, int(T), grid["sens_n"])
    return fd.bifurcation_dict(bd, orbit, field, sens, v["b"])


def basins_dict(v: dict, coarse: bool = False) -> dict:
    res = int(v["res"])
    if coarse:
        res = max(SPEC["res"].lo, res // COARSE["res_divisor"])
    w, b_min, b_max, act = _r(v, "w", "b_min", "b_max", "act")
    bgrid, x0s, labels, bd = basin_layer(w, b_min, b_max, act, res)
    return fd.basin_dict(bgrid, x0s, labels, bd, v["b"])


def _checked(names, vals, b=None) -> tuple[dict, dict]:
    """Check the named controls (the others at their defaults, b as given if it is good)."""
    raw = {s.name: s.default for s in SPECS} | dict(zip(names, vals))
    values, errors = check_all(SPECS, raw)
    _window_error(values, errors)
    if b is not None:
        try:
            values["b"] = SPEC["b"].check(b)
        except ValueError:
            pass
    return values, {k: m for k, m in errors.items() if k in names}


def update_diagram(w, b_min, b_max, act, x0, T, b):
    """The diagram (b is the marker, a State) and the messages of its controls."""
    values, errors = _checked(DIAGRAM, (w, b_min, b_max, act, x0, T), b)
    msgs = [errors.get(k, "") for k in DIAGRAM]
    if any(msgs):
        return [no_update, *msgs]
    try:
        return [diagram_dict(values), *msgs]
    except ValueError as exc:
        return [no_update, str(exc), *msgs[1:]]


def update_basins(w, b_min, b_max, act, res, b):
    """The basin map and the message of its grid (the other controls' messages come with the diagram)."""
    values, errors = _checked(BASINS, (w, b_min, b_max, act, res), b)
    if errors:
        return [no_update, errors.get("res", "")]
    try:
        return [basins_dict(values), ""]
    except ValueError:
        return [no_update, ""]


def update_w(w, b_min, b_max, act, x0, T, res, b):
    """w moved: the diagram, the basin map and the cobweb, all three in one response (each depends
    on w), and the message of w."""
    values, errors = _checked(MAIN, (w, b_min, b_max, act, x0, T, res), b)
    if errors:  # a bad w says so; another control's bad value has its message already
        return no_update, no_update, no_update, errors.get("w", "")
    cob = fd.cobweb_dict(values["w"], values["b"], values["x0"], values["act"])
    try:
        return diagram_dict(values), basins_dict(values), cob, ""
    except ValueError as exc:
        return no_update, no_update, cob, str(exc)


def drag_w(drag, w, b_min, b_max, act, x0, T, res, b):
    """While the w slider is dragged (its ``drag_value`` ahead of its ``value``): both figures on
    coarse grids, at w = ``drag``."""
    if drag is None or drag == w:
        return no_update, no_update
    values, errors = _checked(MAIN, (drag, b_min, b_max, act, x0, T, res), b)
    if errors:
        return no_update, no_update
    try:
        return diagram_dict(values, coarse=True), basins_dict(values, coarse=True)
    except ValueError:
        return no_update, no_update


def _trigger() -> str | None:
    """The id of the control that fired the running callback; None outside a callback."""
    try:
        return ctx.triggered_id
    except MissingCallbackContextException:
        return None


def update_b(b, w, act, x0):
    """The current b or the cobweb's map changed: the cobweb redrawn; when b moved, the markers too
    (patched: nothing else is recomputed)."""
    values, errors = check_all(SPECS, dict(b=b, w=w, act=act, x0=x0, b_min=-1, b_max=1, T=1, res=40))
    if "b" in errors:
        return no_update, no_update, no_update, errors["b"]
    if errors:
        return no_update, no_update, no_update, ""
    cob = fd.cobweb_dict(values["w"], values["b"], values["x0"], values["act"])
    if _trigger() not in (None, f"{P}-b"):  # σ or x0: their figures come with their own callbacks
        return no_update, no_update, cob, ""
    p1, p2 = Patch(), Patch()
    for p in (p1, p2):
        p["layout"]["shapes"][0]["x0"] = values["b"]
        p["layout"]["shapes"][0]["x1"] = values["b"]
    return p1, p2, cob, ""


def b_marks(b_min: float, b_max: float) -> dict:
    marks = {b_min: f"{b_min:g}", b_max: f"{b_max:g}"}
    if b_min < 0 < b_max:
        marks[0] = "0"
    return marks


def b_slider_range(b_min, b_max, b):
    """The b slider spans the b window; a b outside it moves to the nearer end."""
    values, errors = check_all(SPECS, dict(b_min=b_min, b_max=b_max, b=b, w=0, act="sigmoid", x0=0, T=1, res=40))
    _window_error(values, errors)
    if "b_min" in errors or "b_max" in errors:
        return no_update, no_update, no_update, no_update
    lo, hi = values["b_min"], values["b_max"]
    inside = values["b"] if "b" not in errors else (lo + hi) / 2
    clamped = min(max(inside, lo), hi)
    return lo, hi, b_marks(lo, hi), (no_update if clamped == b else round(clamped, 2))


def _computed_for_download(w, b_min, b_max, act, x0, T, res):
    """The page's values for a CSV download, or None if a control is out of range."""
    values, errors = check_all(SPECS, dict(w=w, b_min=b_min, b_max=b_max, act=act, x0=x0, T=T, res=res, b=0))
    _window_error(values, errors)
    return None if errors else values


def download(n, *controls):
    if not n or (v := _computed_for_download(*controls)) is None:
        return no_update
    w, b_min, b_max, act, x0, T = _r(v, *DIAGRAM)
    bd, _o, _f = diagram_layer(w, b_min, b_max, act, FULL["orbit_bs"])
    sens = sensitivity_layer(w, b_min, b_max, act, x0, int(T), FULL["sens_n"])
    return dict(content=fd.bifurcation_csv(bd, sens), filename="clipviz-bifurcation.csv", type="text/csv")


def download_basins(n, *controls):
    if not n or (v := _computed_for_download(*controls)) is None:
        return no_update
    w, b_min, b_max, act = _r(v, "w", "b_min", "b_max", "act")
    bgrid, x0s, labels, _bd = basin_layer(w, b_min, b_max, act, int(v["res"]))
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
    lo, hi = values["b_min"], values["b_max"]
    values["b"] = min(max(values["b"], lo), hi)  # the marker and the b slider stay in the window
    diagram, basins = diagram_dict(values), basins_dict(values)
    cob = fd.cobweb_dict(values["w"], values["b"], values["x0"], values["act"])
    controls = []
    for s in SPECS:
        kind, kw = CONTROL_KIND.get(s.name, ("number", {}))
        if s.name == "b":  # the b slider spans the b window (b_slider_range keeps it so)
            kw = dict(kw, lo=lo, hi=hi, marks=b_marks(lo, hi))
        controls.append(dyn_control(P, s, values[s.name], errors.get(s.name), kind, **kw))
    return html.Div(className="page", children=[
        *page_header("Bifurcations: where the gradient explodes (Figure 4)", [
            "The fixed points of the one-unit map x ↦ w·σ(x) + b (section 2.5) as b varies, computed by "
            "pseudo-arclength continuation: stable branches solid, unstable dashed, folds and period-doubling "
            "points labelled. Between the two folds (shaded) the map is bistable and the unstable branch "
            "separates the two basins. Underneath, on the same b axis, the exact |∂x_T/∂b|: it blows up at the "
            "basin boundary — the b at which x₀ is the unstable fixed point — and near the folds: the "
            "exploding gradient. Its peak (marked) grows without bound with T, like F′(x₀)^T, while the spike "
            "narrows; the b grid is refined about the boundary and the folds so the true peak is drawn. Click "
            "the diagram to choose b for the cobweb."], P, unknown, errors),
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
                dcc.Store(id=f"{P}-w-drag"),  # the w slider's position while it is dragged
                # the browser code's data: the link's keys; a click on the diagram sets b
                page_data(P, link=link_data(PATH, [s.name for s in SPECS]), click=click_data(("x", SPEC["b"]))),
            ]),
        ]),
    ])


def warm_up() -> None:
    v = {s.name: s.default for s in SPECS} | {"res": 40, "T": 20}
    diagram_dict(v), basins_dict(v), diagram_dict(v, coarse=True)
    fd.cobweb_dict(v["w"], v["b"], v["x0"], v["act"])
    dyn.bifurcation_diagram(-5.0, -2.0, 6.0, "tanh")


def register(app: dash.Dash) -> None:
    dash.register_page(__name__, path=PATH, name="Bifurcations", order=2, layout=layout,
                       title="clipviz · bifurcations", description="Figure 4 with the gradient blow-up")
    # w changes every figure: one callback draws all three (one request, one update of the page);
    # the other controls' callbacks take w as a State (Dash passes arguments in the order declared)
    app.callback(Output(f"{P}-diagram", "figure", allow_duplicate=True),
                 Output(f"{P}-basins", "figure", allow_duplicate=True),
                 Output(f"{P}-cobweb", "figure", allow_duplicate=True),
                 Output(msg_id(P, "w"), "children", allow_duplicate=True),
                 Input(f"{P}-w", "value"), *[State(f"{P}-{k}", "value") for k in MAIN[1:] + ("b",)],
                 prevent_initial_call=True)(update_w)
    app.callback(Output(f"{P}-diagram", "figure"), *[Output(msg_id(P, k), "children") for k in DIAGRAM],
                 State(f"{P}-w", "value"), *[Input(f"{P}-{k}", "value") for k in DIAGRAM[1:]],
                 State(f"{P}-b", "value"), prevent_initial_call=True)(update_diagram)
    app.callback(Output(f"{P}-basins", "figure"), Output(msg_id(P, "res"), "children"),
                 State(f"{P}-w", "value"), *[Input(f"{P}-{k}", "value") for k in BASINS[1:]],
                 State(f"{P}-b", "value"), prevent_initial_call=True)(update_basins)
    # a drag ahead of the slider's value (never a key press: dragAhead in the assets) draws coarse
    clientside(app, "dragAhead", P, Output(f"{P}-w-drag", "data"), Input(f"{P}-w", "drag_value"),
               State(f"{P}-w", "value"), prevent_initial_call=True)
    app.callback(Output(f"{P}-diagram", "figure", allow_duplicate=True),
                 Output(f"{P}-basins", "figure", allow_duplicate=True),
                 Input(f"{P}-w-drag", "data"),
                 *[State(f"{P}-{k}", "value") for k in ("w", "b_min", "b_max", "act", "x0", "T", "res", "b")],
                 prevent_initial_call=True)(drag_w)
    app.callback(Output(f"{P}-diagram", "figure", allow_duplicate=True),
                 Output(f"{P}-basins", "figure", allow_duplicate=True), Output(f"{P}-cobweb", "figure"),
                 Output(msg_id(P, "b"), "children"), Input(f"{P}-b", "value"), State(f"{P}-w", "value"),
                 *[Input(f"{P}-{k}", "value") for k in CURRENT[2:]], prevent_initial_call=True)(update_b)
    app.callback(Output(f"{P}-b", "min"), Output(f"{P}-b", "max"), Output(f"{P}-b", "marks"),
                 Output(f"{P}-b", "value", allow_duplicate=True),
                 Input(f"{P}-b_min", "value"), Input(f"{P}-b_max", "value"), State(f"{P}-b", "value"),
                 prevent_initial_call=True)(b_slider_range)
    app.callback(Output(f"{P}-dl", "data"), Input(f"{P}-dl-btn", "n_clicks"),
                 *[State(f"{P}-{k}", "value") for k in MAIN], prevent_initial_call=True)(download)
    app.callback(Output(f"{P}-dl-basins", "data"), Input(f"{P}-dl-basins-btn", "n_clicks"),
                 *[State(f"{P}-{k}", "value") for k in MAIN], prevent_initial_call=True)(download_basins)
    app.callback(Output(f"{P}-dl-cobweb", "data"), Input(f"{P}-dl-cobweb-btn", "n_clicks"),
                 *[State(f"{P}-{k}", "value") for k in CURRENT], prevent_initial_call=True)(download_cobweb)
    clientside(app, "clickPoint", P, [Output(f"{P}-b", "value")], Input(f"{P}-diagram", "clickData"),
               prevent_initial_call=True)
    register_link(app, P, [s.name for s in SPECS])
