"""“Why gradients explode” page: sections 2.2–2.4 of the paper.

An n-unit network x_t = W_rec·σ(x_{t−1}) + W_in·u_t + b with W_rec drawn at
spectral radius ρ: ‖∂x_T/∂x_{T−l}‖ against l with (γρ)^l for reference, and the
temporal contributions of equation (4), for two input scales side by side; then
the curvature hypothesis of section 2.4 measured over the one-unit error surface.

The defaults show that ρ past the necessary condition is not sufficient: tanh,
ρ = 1.5, n = 50, T = 200, seed 0; with inputs of scale 0.1 the units stay near
their linear regime and ‖∂x_T/∂x_0‖ grows to about 10^5 (the long-term terms
dominate), with inputs of scale 1 they saturate and it falls to about 10^−7.
"""

from __future__ import annotations

import dash
import numpy as np
from dash import Input, Output, State, dcc, html, no_update

from ... import dynamics as dyn
from ...config import SETTINGS
from ...figures import dynamics as fd
from ..cache import memoized
from ..components import graph, link_data, msg_id, page_data, page_header, register_link
from ..params import Choice, Num, check_all, parse, round_sig
from ._dynamics_controls import dyn_control

PATH = "/theory"
P = "th"
JAC_SPECS = (
    Num("rho", "Spectral radius ρ", 0.05, 10, 1.5, help="W_rec is rescaled to this spectral radius"),
    Choice("act", "σ", dyn.N_UNIT_ACTIVATIONS, "tanh",
           help="explosion needs ρ > 1 (identity, tanh) or ρ > 4 (sigmoid): section 2.3"),
    Num("n", "Units n", 2, 200, 50, integer=True, help="size of the recurrent layer"),
    Num("T", "T", 10, 1000, 200, integer=True, help="sequence length (l runs 0..T)"),
    Num("seed", "Seed", 0, 1_000_000, 0, integer=True, help="draw of W_rec, W_in, inputs and x_0"),
    Choice("norm", "Norm", ("spectral", "frobenius"), "spectral", help="matrix norm of ∂x_T/∂x_k"),
    Num("scale", "Input scale (blue)", 0, 10, 0.1,
        help="u_t ~ N(0, scale²): small inputs keep the units near their linear regime"),
    Num("scale2", "Input scale (red)", 0, 10, 1.0,
        help="the same network under inputs of this scale: large inputs saturate the units (σ′ small)"),
)
CURV_SPECS = (
    Num("cT", "T (surface)", 1, 200, SETTINGS.steps, integer=True, help="unroll of the one-unit E_T"),
    Num("cres", "Surface grid", 32, 256, 128, integer=True, help="points per axis over w ∈ [−2, 12], b ∈ [−8, 2]"),
)
SPECS = JAC_SPECS + CURV_SPECS
SPEC = {s.name: s for s in SPECS}
JAC = [s.name for s in JAC_SPECS]
CURV = [s.name for s in CURV_SPECS]
SIDEBAR = ("rho", "act", "scale", "scale2", "n", "T", "seed", "norm")  # the order the controls are shown in
KIND = {"rho": ("slider", dict(step=0.05, marks={0.05: "0", 1: "1", 4: "4", 10: "10"})),
        "act": ("radio", {}), "norm": ("radio", {}),
        "cT": ("slider", dict(step=1, marks={1: "1", 50: "50", 200: "200"}))}


@memoized
def jac(rho, act, n, T, seed, norm, scale=1.0) -> dyn.JacobianNorms:
    return dyn.jacobian_norms(n=n, rho=rho, steps=T, activation=act, seed=seed, norm=norm, input_scale=scale)


@memoized
def curvature(cT, cres) -> dyn.CurvatureAlignment:
    return dyn.curvature_alignment(np.linspace(SETTINGS.w_min, SETTINGS.w_max, cres),
                                   np.linspace(SETTINGS.b_min, SETTINGS.b_max, cres), steps=cT)


def _jac_args(v, scale_key="scale"):
    return (round_sig(v["rho"], 5), v["act"], int(v["n"]), int(v["T"]), int(v["seed"]), v["norm"],
            round_sig(v[scale_key], 5))


def _jac_values(vals) -> tuple[dict, dict]:
    """The controls' values in JAC order; trailing ones left out take their defaults."""
    raw = {s.name: s.default for s in JAC_SPECS} | dict(zip(JAC, vals))
    return check_all(JAC_SPECS, raw)


def jacobian_figure(values: dict):
    """The figure of both settings: the blue input scale and the red one."""
    return fd.jacobian_figure(jac(*_jac_args(values)), jac(*_jac_args(values, "scale2")))


def update_jac(*vals):
    values, errors = _jac_values(vals)
    msgs = [errors.get(k, "") for k in JAC]
    if any(msgs):
        return [no_update, *msgs]
    try:
        return [jacobian_figure(values), *msgs]
    except ValueError as exc:
        return [no_update, str(exc), *msgs[1:]]


def update_curv(cT, cres):
    values, errors = check_all(CURV_SPECS, dict(cT=cT, cres=cres))
    msgs = [errors.get(k, "") for k in CURV]
    if any(msgs):
        return [no_update, *msgs]
    try:
        return [fd.curvature_figure(curvature(int(values["cT"]), int(values["cres"]))), *msgs]
    except ValueError as exc:
        return [no_update, str(exc), *msgs[1:]]


def download(n, *vals):
    if not n:
        return no_update
    values, errors = _jac_values(vals)
    if errors:
        return no_update
    return dict(content=fd.jacobian_csv(jac(*_jac_args(values)), jac(*_jac_args(values, "scale2"))),
                filename="clipviz-jacobian-norms.csv",
                type="text/csv")


def download_curv(n, cT, cres):
    if not n:
        return no_update
    values, errors = check_all(CURV_SPECS, dict(cT=cT, cres=cres))
    if errors:
        return no_update
    c = curvature(int(values["cT"]), int(values["cres"]))
    return dict(content=fd.curvature_csv(c), filename="clipviz-curvature.csv", type="text/csv")


def layout(**kwargs) -> html.Div:
    values, errors = parse(SPECS, kwargs)
    unknown = sorted(k for k in kwargs if k not in SPEC)
    jfig = jacobian_figure(values)
    cfig = fd.curvature_figure(curvature(int(values["cT"]), int(values["cres"])))

    def ctl(s):
        kind, kw = KIND.get(s.name, ("number", {}))
        return dyn_control(P, s, values[s.name], errors.get(s.name), kind, **kw)

    return html.Div(className="page", children=[
        *page_header("Why gradients explode (sections 2.2–2.4)", [
            "Backpropagation through time multiplies Jacobians: ∂x_t/∂x_k = Π W_recᵀ diag(σ'(x_(i−1))) "
            "(equation 5). For a linear network this is W_rec^l and its norm grows like ρ^l (equation 6–7); "
            "with a squashing σ each factor is at most ‖W_rec‖·γ, γ = max σ′ (1 for tanh, ¼ for sigmoid), "
            "so ρ > 1 (tanh) or ρ > 4 (sigmoid) is necessary for explosion — necessary, not sufficient. "
            "The gradient of equation (4) is a sum of temporal contributions ∂E_T/∂x_T · ∂x_T/∂x_k. The same "
            "network is drawn under two input scales: small inputs (blue) keep the units near their linear "
            "regime, the long-term terms (large l) grow and dominate; large inputs (red) saturate the units, "
            "σ′ is small and the same terms vanish although ρ is past the condition. Below: the curvature "
            "hypothesis of section 2.4 measured on the one-unit error surface."], P, unknown, errors),
        html.Div(className="layout", children=[
            html.Div(className="sidebar", children=[html.H3("n-unit network"), *[ctl(SPEC[k]) for k in SIDEBAR],
                                                    html.H3("Curvature (section 2.4)"),
                                                    *[ctl(s) for s in CURV_SPECS]]),
            html.Div(className="main", children=[
                graph(f"{P}-jac", jfig),
                html.Button("Download norms CSV", id=f"{P}-dl-btn", className="dl"),
                graph(f"{P}-curv", cfig),
                html.Button("Download curvature CSV", id=f"{P}-dl-curv-btn", className="dl"),
                dcc.Download(id=f"{P}-dl"), dcc.Download(id=f"{P}-dl-curv"),
                page_data(P, link=link_data(PATH, [s.name for s in SPECS])),
            ]),
        ]),
    ])


def warm_up() -> None:
    for act in dyn.N_UNIT_ACTIVATIONS:
        dyn.jacobian_norms(n=4, steps=10, activation=act)
    dyn.curvature_alignment(np.linspace(-2, 12, 16), np.linspace(-8, 2, 16), steps=5)


def register(app: dash.Dash) -> None:
    dash.register_page(__name__, path=PATH, name="Why gradients explode", order=4, layout=layout,
                       title="clipviz · why gradients explode",
                       description="Sections 2.2-2.4: Jacobian products, temporal contributions, curvature")
    app.callback(Output(f"{P}-jac", "figure"), *[Output(msg_id(P, k), "children") for k in JAC],
                 *[Input(f"{P}-{k}", "value") for k in JAC], prevent_initial_call=True)(update_jac)
    app.callback(Output(f"{P}-curv", "figure"), *[Output(msg_id(P, k), "children") for k in CURV],
                 *[Input(f"{P}-{k}", "value") for k in CURV], prevent_initial_call=True)(update_curv)
    app.callback(Output(f"{P}-dl", "data"), Input(f"{P}-dl-btn", "n_clicks"),
                 *[State(f"{P}-{k}", "value") for k in JAC], prevent_initial_call=True)(download)
    app.callback(Output(f"{P}-dl-curv", "data"), Input(f"{P}-dl-curv-btn", "n_clicks"),
                 *[State(f"{P}-{k}", "value") for k in CURV], prevent_initial_call=True)(download_curv)
    register_link(app, P, [s.name for s in SPECS])
