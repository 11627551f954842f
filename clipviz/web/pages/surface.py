"""Error surface page: the paper's Figure 3 with clipped and unclipped gradient descent.

E_T(w, b) of equation (14) over a window (log colour by default), a 3-D view on
demand; clicking sets the start (w_0, b_0) of two descents, one plain and one
with the chosen clipping rule (Algorithm 1 for ``norm``); beside them ‖g‖ and E
per step.  Every control lives in the URL.

The figures are stacked layers (surface; descent paths; the step in view; axis
titles and legend, drawn once) so that a change redraws only what it moves.
Browser code posts each change to :func:`view_endpoint` and draws the answer;
the checking and computing is :func:`update_view`, a plain function (unit-tested
without a browser), which sends the surface only for a surface change and the
side figure only when the descents changed.

Time and linking happen in the browser alone: a step slider (with a play button)
and hovering a step on any figure move a marker along both descents on the
surface, the ‖g‖ and E panels and the 3-D view (which draws both descents, the
clipped one dashed, as the paper's Figure 3), and read out the step's w, b, E
and ‖g‖, from the steps the view sends with the descents.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Mapping
from typing import Any

import dash
from dash import Input, Output, State, dcc, html, no_update

from ... import one_unit
from ... import clipping
from ...config import ACTIVATIONS, SETTINGS
from ...figures import surface as fs
from .. import browser
from ..cache import memoized
from ..limits import RETRY_AFTER_S, Busy, heavy_work
from ..components import (ERROR_ID, GRAPH_CONFIG, click_data, clientside, control, graph, link_bar, msg_id,
                          number_input, page_data, slider, url_field, url_notes)
from ..params import Choice, Flag, Num, check_all, parse, round_sig

log = logging.getLogger(__name__)

PATH = "/surface"
P = "es"  # component id prefix

LIM = 20.0  # |w|, |b| window limit
SURFACE_SPECS = (
    Num("w_min", "w from", -LIM, LIM, SETTINGS.w_min, help="left edge of the window"),
    Num("w_max", "w to", -LIM, LIM, SETTINGS.w_max, help="right edge of the window"),
    Num("b_min", "b from", -LIM, LIM, SETTINGS.b_min, help="bottom edge of the window"),
    Num("b_max", "b to", -LIM, LIM, SETTINGS.b_max, help="top edge of the window"),
    Num("res", "Resolution", 16, 1024, SETTINGS.resolution, integer=True,
        help="grid points per axis (the surface is res × res exact evaluations)"),
    Num("T", "T (sequence length)", 1, 500, SETTINGS.steps, integer=True,
        help="number of recurrent steps; the loss is on σ(x_T) (the paper uses 50)"),
    Num("x0", "x₀ (initial state)", -10, 10, SETTINGS.x0, help="x_0 of the recurrence (the paper: 0.5)"),
    Num("target", "Target", -1, 1, SETTINGS.target, help="E_T = (σ(x_T) − target)² (the paper: 0.7)"),
    Choice("act", "σ", ACTIVATIONS, SETTINGS.activation, help="the unit's non-linearity"),
    Flag("log", "Log colour", True, help="colour by log10 E: the wall is orders of magnitude high"),
)
VIEW_SPECS = (Flag("view3d", "3-D view", False, help="also draw the surface in 3-D (below)"),)
RUN_SPECS = (
    Num("w0", "w₀ (start)", -LIM, LIM, 4.0, help="start of both descents; or click the surface"),
    Num("b0", "b₀ (start)", -LIM, LIM, -3.6, help="start of both descents; or click the surface"),
    Num("lr", "Learning rate", 1e-4, 100, 1.5, help="step size of gradient descent"),
    Num("n", "Steps", 1, 1000, 100, integer=True, help="number of gradient-descent steps"),
    Choice("clip", "Clipping rule", clipping.names(), "norm",
           help="; ".join(clipping.get(n).title for n in clipping.names())),
)
#: the parameters of the clipping rules (clipviz.clipping.params), one control each under its key
RULE_PARAMS = {p.key: p for p in clipping.params()}
RUN_SPECS += tuple(Num(k, p.label, p.form_lo, p.form_hi, p.default,
                       help=p.help + (" (log slider)" if p.log else "")) for k, p in RULE_PARAMS.items())
ALL_SPECS = SURFACE_SPECS + VIEW_SPECS + RUN_SPECS
SPEC = {s.name: s for s in ALL_SPECS}
NAMES = tuple(SPEC)

# message lines: the w and b windows each have one line for their two ends
SURFACE_MSGS = ("w_range", "b_range", "res", "T", "x0", "target", "act", "log")
RUN_MSGS = ("w0", "b0", "lr", "n", "clip", *RULE_PARAMS)

# The controls the figures depend on are named as their message lines (component ``{P}-<name>``).
#: the name a control's raw value goes by as an argument of update_view and in view_endpoint's
#: body, where it is not the control's own: the colour checklist holds flags, a log slider (τ) the
#: log10 of its parameter
ARG_NAMES = {"log": "log_flags", **{k: f"{k}_log" for k, p in RULE_PARAMS.items() if p.log}}
SURFACE_ARGS = tuple(ARG_NAMES.get(k, k) for k in SURFACE_MSGS)
RUN_ARGS = tuple(ARG_NAMES.get(k, k) for k in RUN_MSGS)
VIEW_ARGS = SURFACE_ARGS + RUN_ARGS
#: every control that the page's browser code (surfaceView) watches, in the order of its arguments
VIEW_CONTROLS = SURFACE_MSGS + ("view3d",) + RUN_MSGS
#: which figures a change of a control redraws (the browser asks view_endpoint for these only): the
#: surface after a surface control; the paths after any but the resolution, the colour scale or the
#: 3-D view; the side figure unless, besides those, only the window moved
REDRAWN_BY = {
    "surface": SURFACE_MSGS,
    "paths": tuple(k for k in VIEW_CONTROLS if k not in ("res", "log", "view3d")),
    "diag": tuple(k for k in VIEW_CONTROLS if k not in ("res", "log", "view3d", "w_range", "b_range")),
}
#: how a control's value goes into the page's link, where not under its own name: the windows'
#: ends; a parameter that a log slider holds as its log10 (τ), to 4 significant digits
URL_FIELDS = {"w_range": url_field(("w_min", "w_max")), "b_range": url_field(("b_min", "b_max")),
              **{k: url_field(k, exp10_digits=4) for k, p in RULE_PARAMS.items() if p.log}}


# ---------------------------------------------------------------------------
# cached computations (scalars only, rounded by the callers)
# ---------------------------------------------------------------------------
@memoized
def surface_layers(w_min, w_max, b_min, b_max, res, T, x0, target, act, log_colour) -> dict:
    """What the page draws of a surface, ready to send: ``surface`` (the base layer, typed
    float32 arrays), ``frame`` (tick labels and colour bar) and ``title`` (text)."""
    grid = surface_grid.uncached(w_min, w_max, b_min, b_max, res, T, x0, target, act)
    surface = fs.surface_dict(grid, log_colour)
    heat = surface["data"][0]  # its colour range, so the frame need not take log10 of the grid again
    return {"surface": surface, "frame": fs.frame_dict(grid, log_colour, (heat["zmin"], heat["zmax"])),
            "title": fs.surface_title(grid)}


@memoized
def surface_grid(w_min, w_max, b_min, b_max, res, T, x0, target, act) -> fs.SurfaceGrid:
    return fs.compute_surface(w_min, w_max, b_min, b_max, res, steps=T, x0=x0, target=target,
                              activation=act)


def heavy_surface_grid(values: dict) -> fs.SurfaceGrid | None:
    """:func:`surface_grid` of checked values in one of this process's heavy slots
    (:mod:`clipviz.web.limits`); None when every slot is taken."""
    try:
        with heavy_work():
            return surface_grid(*_surface_args(values))
    except Busy:
        return None


@memoized(min_seconds=0.005)  # a short descent costs less than a cache write: not stored
def runs(w0, b0, lr, n, clip, params, T, x0, target, act):
    """(unclipped, clipped) descents from (w0, b0); ``params``: the rule's own parameters as
    ``((name, value), ...)``."""
    common = dict(lr=lr, n_steps=n, steps=T, x0=x0, target=target, activation=act)
    u = one_unit.descend(w0, b0, **common)
    c = one_unit.descend(w0, b0, clip=clipping.make(clip, dict(params)), **common)
    return u, c


def _surface_args(v: dict) -> tuple:
    r = round_sig
    return (r(v["w_min"]), r(v["w_max"]), r(v["b_min"]), r(v["b_max"]), int(v["res"]), int(v["T"]),
            r(v["x0"]), r(v["target"]), v["act"])


def _run_args(v: dict) -> tuple:
    r = round_sig
    own = tuple((p.name, r(v[p.key], 4)) for p in clipping.get(v["clip"]).params)
    return (r(v["w0"]), r(v["b0"]), r(v["lr"]), int(v["n"]), v["clip"], own,
            int(v["T"]), r(v["x0"]), r(v["target"]), v["act"])


# ---------------------------------------------------------------------------
# validation of raw control values
# ---------------------------------------------------------------------------
def _pair(value: Any) -> tuple[Any, Any]:
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return value[0], value[1]
    return None, None


def _window_errors(values: dict, errors: dict) -> None:
    for lo, hi, key in (("w_min", "w_max", "w"), ("b_min", "b_max", "b")):
        if lo not in errors and hi not in errors and not values[lo] < values[hi]:
            errors[lo] = f"the {key} window must have {lo} < {hi}; got {values[lo]:g} and {values[hi]:g}"
            values[lo], values[hi] = SPEC[lo].default, SPEC[hi].default


def _work_errors(values: dict, errors: dict) -> None:
    """res² x T above ``SETTINGS.web_max_view_work``: a message under Resolution, and the largest
    resolution that T allows in ``values`` (what the page's first view shows instead)."""
    if "res" in errors or "T" in errors:
        return
    res, T = values["res"], values["T"]
    if res * res * T <= SETTINGS.web_max_view_work:
        return
    fit = max(int(SPEC["res"].lo), math.isqrt(SETTINGS.web_max_view_work // T))
    errors["res"] = (f"Resolution {res} at T = {T} is {res * res * T / 1e6:.0f} M point-steps; one view may "
                     f"ask for at most {SETTINGS.web_max_view_work / 1e6:.0f} M: lower the resolution "
                     f"(at most {fit} at this T) or T")
    values["res"] = fit


def _exp10(value: Any) -> Any:
    """A log slider (τ) holds the log10 of its parameter."""
    try:
        return 10.0 ** float(value)
    except (TypeError, ValueError, OverflowError):
        return value


def surface_values(w_range, b_range, res, T, x0, target, act, log_flags) -> tuple[dict, dict[str, str]]:
    w_min, w_max = _pair(w_range)
    b_min, b_max = _pair(b_range)
    raw = dict(w_min=w_min, w_max=w_max, b_min=b_min, b_max=b_max, res=res, T=T, x0=x0,
               target=target, act=act, log=log_flags if log_flags is not None else [])
    values, errors = check_all(SURFACE_SPECS, raw)
    _window_errors(values, errors)
    _work_errors(values, errors)
    msgs = {
        "w_range": " ".join(errors.get(k, "") for k in ("w_min", "w_max")).strip(),
        "b_range": " ".join(errors.get(k, "") for k in ("b_min", "b_max")).strip(),
        **{k: errors.get(k, "") for k in SURFACE_MSGS[2:]},
    }
    return values, msgs


def run_values(values: Mapping[str, Any]) -> tuple[dict, dict[str, str]]:
    """Checked descent values from the raw ones under the names of :data:`RUN_ARGS` (a log
    slider's value is its parameter's log10), and a message line per control."""
    raw = {k: values.get(a) for k, a in zip(RUN_MSGS, RUN_ARGS)}
    raw.update({k: _exp10(raw.get(k)) for k, p in RULE_PARAMS.items() if p.log})
    values, errors = check_all(RUN_SPECS, raw)
    return values, {k: errors.get(k, "") for k in RUN_MSGS}


# ---------------------------------------------------------------------------
# callbacks (plain functions)
# ---------------------------------------------------------------------------
def _window(sv: dict) -> tuple[float, float, float, float]:
    return (float(sv["w_min"]), float(sv["w_max"]), float(sv["b_min"]), float(sv["b_max"]))


def update_view(values: Mapping[str, Any], *, surface: bool = True, paths: bool = True,
                diag: bool = True) -> dict:
    """What a change of the page's controls redraws: the surface layer, the path layer, the side
    figure, and every control's message line.

    ``values``: the raw control values under the names of :data:`VIEW_ARGS`, as the controls hold
    them (each is checked here; a missing one counts as empty); other keys are ignored.

    The keywords say which figures the change needs; the browser asks for those that
    :data:`REDRAWN_BY` names for the control that changed.

    Returns ``{"surface", "frame", "title", "paths", "diag", "steps", "msgs": {control: text}}``:
    the surface's base layer, frame layer (tick labels, colour bar) and title, the path layer and
    the side figure (figures as plain dicts with typed arrays, the title as text), and with either
    of the last two every step of both descents (:func:`clipviz.web.browser.steps_dict`: the step
    slider, the read-out and the 3-D view's trajectories follow them in the browser); None leaves
    that part on screen as it is: not asked for, or the values are bad (then the messages say why).
    Served as JSON by :func:`view_endpoint`.
    """
    sv, smsgs = surface_values(*(values.get(k) for k in SURFACE_ARGS))
    rv, rmsgs = run_values(values)
    msgs = {**{k: smsgs[k] for k in SURFACE_MSGS}, **{k: rmsgs[k] for k in RUN_MSGS}}
    out: dict[str, Any] = {"surface": None, "frame": None, "title": None, "paths": None, "diag": None,
                           "steps": None, "msgs": msgs}
    if any(smsgs.values()):
        return out
    if surface:
        try:
            out.update(surface_layers(*_surface_args(sv), sv["log"]))
        except ValueError as exc:  # the library's own limits
            msgs["res"] = str(exc)
            return out
    if (paths or diag) and not any(rmsgs.values()):
        try:
            u, c = runs(*_run_args({**sv, **rv}))
        except ValueError as exc:
            msgs["w0"] = str(exc)
            return out
        if paths:
            out["paths"] = browser.paths_dict(_window(sv), u, c)
        if diag:
            out["diag"] = fs.diagnostics_dict(u, c, titles=False)
        out["steps"] = browser.steps_dict(u, c)
    return out


VIEW_ROUTE = "api/surface/view"


def view_endpoint():
    """``POST <prefix>api/surface/view``: :func:`update_view` for the page's browser code.

    Body: the raw control values under the names of :data:`VIEW_ARGS` (as the controls hold them;
    each is checked here) and the booleans ``surface``, ``paths``, ``diag``.  The page calls it
    from its browser code, not through a Dash server callback: a Dash round trip costs more
    browser time around the request than computing and drawing the paths, and one
    answer lets the browser draw the surface and the paths in the same frame.  Bad values answer
    200 with the messages; a body that is not a JSON object answers 400 with {"error"}.
    """
    from flask import Response, jsonify, request
    from plotly.io.json import to_json_plotly

    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return jsonify(error="the request body must be a JSON object of control values; reload the page"), 400
    heavy = body.get("surface") is True
    try:
        with heavy_work() if heavy else contextlib.nullcontext():
            out = update_view(body, surface=heavy, paths=body.get("paths") is True,
                              diag=body.get("diag") is True)
    except Busy as exc:
        resp = jsonify(error=str(exc), busy=True)
        resp.headers["Retry-After"] = str(RETRY_AFTER_S)
        return resp, 503
    except Exception:  # never a traceback on screen: the figures stay, the line says what happened
        log.exception("surface page request failed: %r", body)
        return jsonify(error="the server could not compute this view (the error is in its log); "
                             "the figures show the last good values"), 500
    return Response(to_json_plotly(out), mimetype="application/json")  # NaN -> null


def _view3d(grid: fs.SurfaceGrid, values: dict, run: Mapping[str, Any] | None) -> dict:
    """The page's 3-D view of ``grid`` with both descents when the raw descent values ``run`` (by
    the names of :data:`RUN_ARGS`) are good, else the surface alone."""
    rv, rmsgs = run_values(run or {})
    if run is None or any(rmsgs.values()):
        return browser.view3d_figure(grid, values["log"])
    try:
        u, c = runs(*_run_args({**values, **rv}))
    except ValueError:
        return browser.view3d_figure(grid, values["log"])
    return browser.view3d_figure(grid, values["log"], u, c)


def update_3d(view3d, w_range, b_range, res, T, x0, target, act, log_flags, run=None):
    """The 3-D view, only when asked for; ``run``: the raw descent values by the names of
    :data:`RUN_ARGS`, whose descents it draws on the surface (the browser code keeps them in step
    with later changes of the descents)."""
    try:
        on = VIEW_SPECS[0].check([] if view3d is None else view3d)
    except ValueError:  # not a checklist value: only a hand-made request sends that
        return no_update, no_update
    if not on:
        return no_update, {"display": "none"}
    values, msgs = surface_values(w_range, b_range, res, T, x0, target, act, log_flags)
    if any(msgs.values()):
        return no_update, {"display": "block"}
    grid = heavy_surface_grid(values)
    if grid is None:  # the server is busy: the 3-D view keeps its figure; the next change asks again
        return no_update, {"display": "block"}
    return _view3d(grid, values, run), {"display": "block"}


def update_3d_gated(_gate, view3d, *states):
    """:func:`update_3d`, fired by the browser-side gate; ``states``: the surface controls' values
    (:data:`SURFACE_INPUTS`), then the descent controls' (:data:`RUN_INPUTS`)."""
    n = len(SURFACE_INPUTS)
    return update_3d(view3d, *states[:n], run=dict(zip(RUN_ARGS, states[n:])))


def download_surface(n_clicks, w_range, b_range, res, T, x0, target, act, log_flags):
    if not n_clicks:
        return no_update
    values, msgs = surface_values(w_range, b_range, res, T, x0, target, act, log_flags)
    if any(msgs.values()):
        return no_update
    grid = heavy_surface_grid(values)
    if grid is None:
        dash.set_props(ERROR_ID, {"children": "The server is busy computing other surfaces: "
                                              "press the download button again in a moment."})
        return no_update
    return dict(content=fs.surface_csv(grid), filename="clipviz-error-surface.csv", type="text/csv")


def download_runs(n_clicks, *states, **named):
    """The descents as CSV; the control values as the States in the order of RUN_INPUTS +
    SURFACE_INPUTS, or by the names of :data:`RUN_ARGS` and :data:`SURFACE_ARGS`."""
    if not n_clicks:
        return no_update
    raw = {**dict(zip(RUN_ARGS + SURFACE_ARGS, states)), **named}
    rv, rmsgs = run_values(raw)
    sv, smsgs = surface_values(*(raw.get(k) for k in SURFACE_ARGS))
    if any(rmsgs.values()) or any(smsgs.values()):
        return no_update
    u, c = runs(*_run_args({**sv, **rv}))
    rule = clipping.get(rv["clip"])
    params = {"w0": rv["w0"], "b0": rv["b0"], "lr": rv["lr"], "n_steps": int(rv["n"]), "T": int(sv["T"]),
              "x0": sv["x0"], "target": sv["target"], "activation": sv["act"],
              **{p.name: rv[p.key] for p in rule.params}}
    return dict(content=fs.trajectories_csv(u, c, params), filename="clipviz-descent.csv", type="text/csv")


# ---------------------------------------------------------------------------
# layout
# ---------------------------------------------------------------------------
def initial_figures(values: dict) -> tuple[dict, dict, dict]:
    """(surface layers as :func:`surface_layers`, path layer, side figure) for checked values."""
    layers = surface_layers(*_surface_args(values), values["log"])
    u, c = runs(*_run_args(values))
    return layers, browser.paths_dict(_window(values), u, c), fs.diagnostics_dict(u, c, titles=False)


#: the tooltip of the page's sliders: their value always in sight, over the thumb (under it, it
#: would cover the marks)
TOOLTIP = {"placement": "top", "always_visible": True}
#: the tooltip of a log slider: it holds log10 of its parameter and shows the parameter
#: (``window.dccFunctions.clipvizExp10`` in ``clipviz/web/assets/surface.js``)
LOG_TOOLTIP = {**TOOLTIP, "transform": "clipvizExp10"}
#: the play button: one frame (a step, or a stride of steps) this often, in ms, and at most this
#: many frames for a whole descent (a long descent goes several steps a frame)
PLAY_FRAME_MS = 60
PLAY_MAX_FRAMES = 200


def _param_control(key: str, value: float):
    """The control of a clipping rule's parameter: a log slider (τ) or a number box."""
    p = RULE_PARAMS[key]
    if not p.log:
        return number_input(P, SPEC[key], value)
    lo, hi = math.floor(math.log10(p.form_lo)), math.ceil(math.log10(p.form_hi))
    return dcc.Slider(id=f"{P}-{key}", min=lo, max=hi, step=0.05, value=round(math.log10(value), 4),
                      marks={k: f"{10.0 ** k:g}" for k in range(lo, hi + 1)},
                      allow_direct_input=False, updatemode="mouseup", tooltip=LOG_TOOLTIP)


def _last_step(unclipped, clipped) -> int:
    """The last step of the longer descent (a diverged one stops early): the step slider's end."""
    return max(unclipped.params.shape[0], clipped.params.shape[0]) - 1


STEP_KEY = "step"  #: the step in view, in the link (left out at 0)


def step_in_view(arg, last: int, errors: dict[str, str]) -> int:
    """The step a link asks to show (its ``step``), within 0 .. ``last`` (the last step of the
    longer descent); a bad value notes why in ``errors`` and shows step 0, one past the end the
    last step."""
    if arg is None or arg == "":
        return 0
    try:
        k = int(str(arg).strip())
    except ValueError:
        errors[STEP_KEY] = f"step must be a whole number from 0 to {last}, got {str(arg)[:40]!r}"
        return 0
    if k < 0:
        errors[STEP_KEY] = f"step must be a whole number from 0 to {last}, got {k}"
        return 0
    if k > last:
        errors[STEP_KEY] = f"step {k} is past the descents' last step ({last}): showing step {last}"
        return last
    return k


def _timebar(unclipped, clipped, k: int = 0) -> html.Div:
    """The step slider with its play button and the read-out of the step in view: the step's w,
    b, E and ‖g‖ on each descent (the browser code writes it, and moves the markers)."""
    n = _last_step(unclipped, clipped)
    return html.Div(id=f"{P}-time", className="timebar", children=[
        html.Div(className="timebar-row", children=[
            html.Button("▶ play", id=f"{P}-play", className="play", title="play both descents step by step"),
            html.Label("Step", htmlFor=f"{P}-step", className="timebar-label"),
            html.Div(dcc.Slider(id=f"{P}-step", min=0, max=n, step=1, value=min(k, n), marks={0: "0", n: str(n)},
                                updatemode="drag", allow_direct_input=False, tooltip=TOOLTIP),
                     className="timebar-slider"),
        ]),
        html.Div(className="readout", children=[html.Div(id=f"{P}-step-u", className="readout-u"),
                                                html.Div(id=f"{P}-step-c", className="readout-c")]),
        html.Div("The markers show both descents after this many steps, on the surface, in the "
                 "3-D view and beside them; hover a step on a figure to see it there.", className="help"),
    ])


def layout(**kwargs) -> html.Div:
    """The page, with every control set from the URL's query parameters."""
    values, errors = parse(ALL_SPECS, kwargs)
    _window_errors(values, errors)
    _work_errors(values, errors)
    unknown = sorted(k for k in kwargs if k not in SPEC and k != STEP_KEY)
    v = values
    try:
        base, paths, diag = initial_figures(v)
    except ValueError as exc:  # cannot happen with checked values; never show a traceback
        log.warning("initial figure failed: %s", exc)
        errors["res"] = str(exc)
        v = {s.name: s.default for s in ALL_SPECS}
        base, paths, diag = initial_figures(v)
    u, c = runs(*_run_args(v))
    k = step_in_view(kwargs.get(STEP_KEY), _last_step(u, c), errors)

    def err(*names):
        return " ".join(errors[k] for k in names if k in errors) or None

    sp = SPEC
    surface_controls = [
        control(P, Num("w_range", "w window", -LIM, LIM, 0, help="w range of the surface"),
                dcc.RangeSlider(id=f"{P}-w_range", min=-LIM, max=LIM, step=0.5,
                                value=[v["w_min"], v["w_max"]], marks={i: str(i) for i in range(-20, 21, 10)},
                                allow_direct_input=True, updatemode="mouseup", tooltip=TOOLTIP),
                err("w_min", "w_max")),
        control(P, Num("b_range", "b window", -LIM, LIM, 0, help="b range of the surface"),
                dcc.RangeSlider(id=f"{P}-b_range", min=-LIM, max=LIM, step=0.5,
                                value=[v["b_min"], v["b_max"]], marks={i: str(i) for i in range(-20, 21, 10)},
                                allow_direct_input=True, updatemode="mouseup", tooltip=TOOLTIP),
                err("b_min", "b_max")),
        control(P, sp["res"], slider(P, sp["res"], v["res"], 16, {16: "16", 256: "256", 512: "512",
                                                                  1024: "1024"}, always_visible=True), err("res")),
        control(P, sp["T"], slider(P, sp["T"], v["T"], 1, {1: "1", 50: "50", 100: "100", 200: "200",
                                                           500: "500"}, always_visible=True), err("T")),
        control(P, sp["x0"], number_input(P, sp["x0"], v["x0"]), err("x0")),
        control(P, sp["target"], number_input(P, sp["target"], v["target"]), err("target")),
        control(P, sp["act"], dcc.RadioItems(id=f"{P}-act", options=list(ACTIVATIONS), value=v["act"],
                                             inline=True), err("act")),
        control(P, sp["log"], dcc.Checklist(id=f"{P}-log", options=[{"label": " log10 E", "value": "log"}],
                                            value=["log"] if v["log"] else []), err("log")),
        control(P, VIEW_SPECS[0], dcc.Checklist(id=f"{P}-view3d",
                                                options=[{"label": " show 3-D", "value": "view3d"}],
                                                value=["view3d"] if v["view3d"] else []), err("view3d")),
    ]
    run_controls = [
        control(P, sp["w0"], slider(P, sp["w0"], v["w0"], 0.01, {-20: "-20", 0: "0", 20: "20"},
                                             always_visible=True), err("w0")),
        control(P, sp["b0"], slider(P, sp["b0"], v["b0"], 0.01, {-20: "-20", 0: "0", 20: "20"},
                                             always_visible=True), err("b0")),
        control(P, sp["lr"], number_input(P, sp["lr"], v["lr"]), err("lr")),
        control(P, sp["n"], number_input(P, sp["n"], v["n"]), err("n")),
        control(P, sp["clip"], dcc.Dropdown(id=f"{P}-clip", options=list(sp["clip"].options),
                                            value=v["clip"], clearable=False), err("clip")),
        *[control(P, sp[k], _param_control(k, v[k]), err(k)) for k in RULE_PARAMS],
    ]
    return html.Div(className="page", children=[
        html.H2("Error surface and gradient descent, with and without clipping"),
        html.P(["The paper's Figure 3: the error E", html.Sub("T"), " of the one-unit network "
                "x", html.Sub("t"), " = w·σ(x", html.Sub("t−1"), ") + b (equation 14) over (w, b). "
                "Where a small change of w or b flips which attractor x", html.Sub("T"), " ends in, E jumps: "
                "a wall with an enormous gradient. Click the surface to start two gradient descents there: "
                "red without clipping (it hits the wall and is thrown far away), blue with the chosen "
                "clipping rule (the paper's Algorithm 1 rescales g to norm τ)."], className="lead"),
        url_notes(unknown, errors),
        link_bar(P),
        # the server's own trouble (no connection, an error in its log): not any one control's
        html.Div("", id=msg_id(P, "server"), className="msg", role="alert"),
        # the sidebar scrolls on its own beside the figures: a control and the figures stay in sight together
        html.Div(className="layout sticky-side", children=[
            html.Div(className="sidebar", children=[
                html.H3("Surface"), *surface_controls,
                html.H3("Descent"), *run_controls,
            ]),
            html.Div(className="main", children=[
                html.Div(className="row", children=[
                    html.Div(className="col-wide", children=[
                        html.Div(className="overlay", children=[
                            html.Div(graph(f"{P}-surface", base["surface"], modebar=False), className="overlay-base"),
                            html.Div(graph(f"{P}-paths", paths, modebar=False, static=True), className="overlay-top"),
                            # the step in view on each descent: moved by the browser code, nothing else redrawn
                            html.Div(graph(f"{P}-now", browser.step_layer(_window(v), u, c, k), modebar=False,
                                           static=True), className="overlay-top"),
                            # tick labels and colour bar: redrawn only when the window or colour range changes
                            html.Div(graph(f"{P}-frame", base["frame"], modebar=False, static=True),
                                     className="overlay-top"),
                            # the MathJax axis titles and the legend: drawn once, not on every redraw
                            html.Div(graph(f"{P}-titles", browser.title_layer(v["clip"]), modebar=False, static=True),
                                     className="overlay-top"),
                            html.Div(base["title"], id=f"{P}-title", className="overlay-title"),
                        ]),
                        html.Div(className="buttons", children=[
                            html.Button("Download surface CSV", id=f"{P}-dl-surface-btn", className="dl"),
                            html.Button("PNG", id=f"{P}-png", className="dl", title="surface with paths, 1400×900"),
                            html.Button("SVG", id=f"{P}-svg", className="dl", title="surface with paths, vector"),
                        ]),
                    ]),
                    html.Div(className="col", children=[
                        html.Div(className="overlay", children=[
                            # no toolbar camera: its image would lack the axis titles (on their own
                            # layer); the PNG / SVG buttons below export both layers as one figure
                            html.Div(graph(f"{P}-diag", diag, modebar=False), className="overlay-base"),
                            # its MathJax axis titles, drawn once
                            html.Div(graph(f"{P}-diag-titles", browser.diag_title_layer(), modebar=False,
                                           static=True), className="overlay-top"),
                        ]),
                        html.Div(className="buttons", children=[
                            html.Button("Download descent CSV", id=f"{P}-dl-runs-btn", className="dl"),
                            html.Button("PNG", id=f"{P}-diag-png", className="dl", title="‖g‖ and E per step, 1400×900"),
                            html.Button("SVG", id=f"{P}-diag-svg", className="dl", title="‖g‖ and E per step, vector"),
                        ]),
                    ]),
                ]),
                _timebar(u, c, k),
                html.Div(id=f"{P}-3d-box", style={"display": "block" if v["view3d"] else "none"},
                         children=graph(f"{P}-3d", browser.view3d_figure(
                             surface_grid(*_surface_args(v)), v["log"], u, c) if v["view3d"] else {})),
                dcc.Download(id=f"{P}-dl-surface"),
                page_data(P, **browser_data(), steps=browser.steps_dict(u, c)),
                dcc.Store(id=f"{P}-view-req"),  # surfaceView's output (it returns no_update: see there)
                dcc.Store(id=f"{P}-step-req"),  # surfaceStep's output (it returns no_update too)
                html.Div(id=f"{P}-export-dummy", hidden=True),
                dcc.Store(id=f"{P}-3d-gate"),
                dcc.Download(id=f"{P}-dl-runs"),
            ]),
        ]),
    ])


# ---------------------------------------------------------------------------
# registration
# ---------------------------------------------------------------------------
SURFACE_INPUTS = [Input(f"{P}-{k}", "value") for k in SURFACE_MSGS]
RUN_INPUTS = [Input(f"{P}-{n}", "value") for n in RUN_MSGS]

# the browser code's data (clipviz/web/assets/surface.js)
#: the image buttons: (figure, format) of each (surfaceExport)
EXPORT_BUTTONS = {f"{P}-png": ("surface", "png"), f"{P}-svg": ("surface", "svg"),
                  f"{P}-diag-png": ("diag", "png"), f"{P}-diag-svg": ("diag", "svg")}


def browser_data() -> dict:
    """What the page's browser code (``clipviz/web/assets/surface.js``) needs to know of the page
    (:func:`clipviz.web.components.page_data`): ``view``, the controls (component id, name, argument
    of :func:`update_view`, field in the link), which figures each redraws, the endpoint and the
    ids of the figures and message lines; ``export``, what each image button exports and how;
    ``click``, the controls a click on the surface sets; ``time``, what the step slider, the play
    button and hovering a step move and mark (the marks on the side figure, the legend name of
    each rule, the play speed).  The layout adds ``steps``, the descents it shows
    (:func:`clipviz.web.browser.steps_dict`)."""
    ids = {k: f"{P}-{k}" for k in ("link", "surface", "paths", "frame", "title", "diag", "titles", "now", "3d",
                                   "3d-box", "time", "step", "play", "step-u", "step-c")}
    args = dict(zip(SURFACE_MSGS + RUN_MSGS, VIEW_ARGS))  # view3d: not sent
    controls = [{"id": f"{P}-{k}", "name": k, "arg": args.get(k), "url": URL_FIELDS.get(k, url_field(k))}
                for k in VIEW_CONTROLS]
    image = GRAPH_CONFIG["toImageButtonOptions"]
    # an exported figure: its legend at the image's foot, in room added to the bottom margin
    foot = 30
    figures = {
        "surface": {"file": "clipviz-error-surface", "graph": ids["surface"],
                    "layers": {"paths": ids["paths"], "frame": ids["frame"], "title": ids["title"]},
                    "axes": {ax: {"text": text, "standoff": fs.TITLE_STANDOFF} for ax, text in fs.AXIS_TITLES.items()},
                    "legend": fs.EXPORT_LEGEND, "title": fs.TITLE_STYLE, "hint": fs.TITLE_HINT,
                    "margin": {**fs.MARGIN, "b": fs.MARGIN["b"] + foot}},
        "diag": {"file": "clipviz-gradient-norms", "graph": ids["diag"],
                 "axes": {ax: {"text": text} for ax, text in fs.DIAG_TITLES.items()},
                 "legend": fs.EXPORT_LEGEND, "margin": fs.DIAG_MARGIN},
    }
    time = {
        "ids": ids,
        # the legend of the title layer names the second run by its rule (trace 1 of its key)
        "legend": {"trace": 1, "control": "clip", "names": {name: fs.rule_label(name) for name in clipping.names()}},
        "floor": fs.E_FLOOR, "diag": browser.diag_now_shapes(), "ring_px": browser.NOW_RING,
        "play": {"frame_ms": PLAY_FRAME_MS, "max_frames": PLAY_MAX_FRAMES, "labels": ["▶ play", "❚❚ pause"]},
        "hover_px": 10,  # a step of a descent is hovered within this many pixels of the pointer
    }
    return {
        "view": {"controls": controls, "redraws": REDRAWN_BY, "route": VIEW_ROUTE, "ids": ids,
                 "msgs": {k: msg_id(P, k) for k in (*SURFACE_MSGS, *RUN_MSGS, "server")}},
        "export": {"buttons": EXPORT_BUTTONS, "figures": figures,
                   "size": {k: image[k] for k in ("width", "height", "scale")}},
        "click": click_data(("x", SPEC["w0"]), ("y", SPEC["b0"])),
        "time": time,
    }


def register(app: dash.Dash) -> None:
    """Register the page and its callbacks on ``app``."""
    dash.register_page(__name__, path=PATH, name="Error surface", order=1, layout=layout,
                       title="clipviz · error surface",
                       description="E_T(w, b) of the one-unit RNN with clipped and unclipped descent")
    # the figures: browser code asks view_endpoint and draws the answer (surfaceView), no server callback
    app.server.add_url_rule(app.config.routes_pathname_prefix + VIEW_ROUTE, "surface_view", view_endpoint,
                            methods=["POST"])
    clientside(app, "surfaceView", P, Output(f"{P}-view-req", "data"),
               *[Input(f"{P}-{k}", "value") for k in VIEW_CONTROLS])
    clientside(app, "surfaceExport", P, Output(f"{P}-export-dummy", "children"),
               *[Input(b, "n_clicks") for b in EXPORT_BUTTONS], prevent_initial_call=True)
    # the 3-D view costs a request only while it is shown: a browser-side gate passes changes on
    clientside(app, "whileTicked", P, Output(f"{P}-3d-gate", "data"), Input(f"{P}-view3d", "value"),
               *SURFACE_INPUTS, prevent_initial_call=True)
    app.callback(Output(f"{P}-3d", "figure"), Output(f"{P}-3d-box", "style"),
                 Input(f"{P}-3d-gate", "data"), State(f"{P}-view3d", "value"),
                 *[State(i.component_id, "value") for i in SURFACE_INPUTS + RUN_INPUTS],
                 prevent_initial_call=True)(update_3d_gated)
    # time and linking, all in the browser: the step slider moves the markers of the step in view
    # (and a new descent, a hover or the play button moves them too), no request
    clientside(app, "surfaceStep", P, Output(f"{P}-step-req", "data"), Input(f"{P}-step", "value"))
    clientside(app, "surfacePlay", P, Output(f"{P}-play", "children"), Input(f"{P}-play", "n_clicks"),
               prevent_initial_call=True)
    app.callback(Output(f"{P}-dl-surface", "data"), Input(f"{P}-dl-surface-btn", "n_clicks"),
                 *[State(i.component_id, "value") for i in SURFACE_INPUTS],
                 prevent_initial_call=True)(download_surface)
    app.callback(Output(f"{P}-dl-runs", "data"), Input(f"{P}-dl-runs-btn", "n_clicks"),
                 *[State(i.component_id, "value") for i in RUN_INPUTS + SURFACE_INPUTS],
                 prevent_initial_call=True)(download_runs)
    clientside(app, "clickPoint", P, Output(f"{P}-w0", "value"), Output(f"{P}-b0", "value"),
               Input(f"{P}-surface", "clickData"), prevent_initial_call=True)

