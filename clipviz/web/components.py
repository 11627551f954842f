"""Shared page components: labelled controls with help and message lines, graphs, link bar."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dash import ClientsideFunction, Input, Output, State, dcc, html

from .params import Choice, Flag, Num

ERROR_ID = "app-error"
"""The page-level message line every page has (the app's layout): the callback error handler
(:func:`clipviz.web.app.callback_error`) and callbacks that cannot answer write to it."""

GRAPH_CONFIG = {
    "displaylogo": False,
    # The toolbar's camera button: a figure at a size fit for a slide or paper.
    "toImageButtonOptions": {"format": "png", "width": 1400, "height": 900, "scale": 2},
}


def msg_id(prefix: str, name: str) -> str:
    return f"{prefix}-msg-{name}"


def control(prefix: str, spec: Num | Choice | Flag, component: Any, error: str | None = None) -> html.Div:
    """A control with its label, its one-line explanation and a message line for bad input."""
    return html.Div(className="control", children=[
        html.Label(spec.label, htmlFor=f"{prefix}-{spec.name}"),
        component,
        html.Div(spec.help, className="help"),
        html.Div(error or "", id=msg_id(prefix, spec.name), className="msg", role="alert"),
    ])


def number_input(prefix: str, spec: Num, value: Any) -> dcc.Input:
    """A typed number box; bounds are checked by the server, which explains violations."""
    return dcc.Input(id=f"{prefix}-{spec.name}", type="number", value=value, debounce=True,
                     step="any", className="num", inputMode="decimal")


def slider(prefix: str, spec: Num, value: Any, step: float, marks: dict | None = None,
           direct_input: bool = True, always_visible: bool = False) -> dcc.Slider:
    """A slider over the spec's bounds; ``always_visible``: its value shown over the thumb all the
    time (under it, where a value shows only while the thumb is dragged, it would cover the marks)."""
    tooltip = ({"placement": "top", "always_visible": True} if always_visible
               else {"placement": "bottom", "always_visible": False})
    return dcc.Slider(id=f"{prefix}-{spec.name}", min=spec.lo, max=spec.hi, step=step, value=value,
                      marks=marks, updatemode="mouseup", allow_direct_input=direct_input, tooltip=tooltip)


def graph(id_: str, figure: Any, height: int | None = None, modebar: bool = True,
          static: bool = False) -> dcc.Graph:
    """A dcc.Graph with MathJax and the export settings; ``static``: no interaction at all
    (no drag or hover layers: cheaper to redraw, used for the path layer)."""
    style = {"height": f"{height}px"} if height else None
    config = GRAPH_CONFIG if modebar else {**GRAPH_CONFIG, "displayModeBar": False}
    if static:
        config = {**config, "staticPlot": True}
    return dcc.Graph(id=id_, figure=figure, mathjax=True, config=config, style=style, className="graph")


def link_bar(prefix: str) -> html.Div:
    """The shareable-link row: the current URL and a copy button."""
    return html.Div(className="linkbar", children=[
        dcc.Input(id=f"{prefix}-link", type="text", readOnly=True, value="", className="link",
                  placeholder="link to this view"),
        dcc.Clipboard(id=f"{prefix}-copy", target_id=f"{prefix}-link", title="copy link",
                      className="copy"),
        html.Span("copy link", className="help"),
    ])


def url_notes(unknown: list[str], errors: dict[str, str]) -> html.Div:
    """A banner for a link that carried unknown or bad parameters."""
    items = [html.Li(m) for m in errors.values()]
    items += [html.Li(f"unknown parameter {k!r} ignored") for k in unknown]
    if not items:
        return html.Div(id="url-notes")
    return html.Div(id="url-notes", className="notes", children=[
        html.Strong("Some values in the link were not used (defaults shown instead):"), html.Ul(items)])


JS_NAMESPACE = "clipviz"
"""The pages' browser code: ``window.dash_clientside.clipviz`` in ``clipviz/web/assets/*.js``."""


def page_data_id(prefix: str) -> str:
    return f"{prefix}-page-data"


def page_data(prefix: str, **data: Any) -> dcc.Store:
    """What a page's browser code needs to know of the page (its controls' keys in the link,
    component ids, bounds), sent once with the page as data: the browser code holds no copy of
    it.  The page's clientside callbacks (:func:`clientside`) get it as their last argument."""
    return dcc.Store(id=page_data_id(prefix), data=data)


def clientside(app: Any, function_name: str, prefix: str, *dependencies: Any, **kwargs: Any) -> None:
    """Register the browser function ``dash_clientside.clipviz[function_name]`` (the assets) as a
    clientside callback: ``dependencies`` (outputs, inputs, states) as for
    ``app.clientside_callback``, then the page's data (:func:`page_data`) as the last argument."""
    app.clientside_callback(ClientsideFunction(namespace=JS_NAMESPACE, function_name=function_name),
                            *dependencies, State(page_data_id(prefix), "data"), **kwargs)


def url_field(key: str | Sequence[str], exp10_digits: int | None = None) -> dict[str, Any]:
    """How the browser code writes one control's value into the page's link (``urlQuery`` in the
    assets): under ``key``, a checklist as 1 / 0, an empty value left out; a range slider under two
    keys (``key`` a pair), one per end; a slider holding log10 of the value (``exp10_digits``) as
    10 ** value to that many significant digits."""
    field: dict[str, Any] = {"key": key if isinstance(key, str) else list(key)}
    if exp10_digits is not None:
        field["exp10"] = exp10_digits
    return field


def link_data(path: str, keys: Sequence[str]) -> dict[str, Any]:
    """The data of a link that names each of a page's controls by its own name (``urlSync`` in
    the assets writes the link; it rewrites the address bar only while it shows ``path``)."""
    return {"path": path, "fields": [url_field(k) for k in keys]}


def register_link(app: Any, prefix: str, keys: Sequence[str]) -> None:
    """The link of a page built with :func:`link_data`: the controls ``{prefix}-<key>`` written
    into the address bar and the copy-link box (:func:`link_bar`) on every change."""
    clientside(app, "urlSync", prefix, Output(f"{prefix}-link", "value"),
               *[Input(f"{prefix}-{k}", "value") for k in keys])


def click_data(*axes: tuple[str, Num], digits: int = 2) -> list[dict[str, Any]]:
    """The data of ``clickPoint`` in the assets: a click on a graph sets controls to the clicked
    point's coordinates, one per ``(axis, spec)`` ("x" or "y"), rounded to ``digits`` decimals (the
    sliders' step: 0.01) and clamped to the spec's bounds."""
    return [{"axis": axis, "lo": spec.lo, "hi": spec.hi, "digits": digits} for axis, spec in axes]


def build_control(prefix: str, spec, value, error: str | None, kind: str = "number", **kw) -> html.Div:
    """A control of a given kind ("number", "slider", "radio", "dropdown") for a spec."""
    if kind == "slider":
        comp = slider(prefix, spec, value, kw.get("step", 0.01), kw.get("marks"))
    elif kind == "radio":
        comp = dcc.RadioItems(id=f"{prefix}-{spec.name}", options=list(spec.options), value=value, inline=True)
    elif kind == "dropdown":
        comp = dcc.Dropdown(id=f"{prefix}-{spec.name}", options=list(spec.options), value=value, clearable=False)
    else:
        comp = number_input(prefix, spec, value)
    return control(prefix, spec, comp, error)


def page_header(title: str, lead: list | str, prefix: str, unknown: list[str], errors: dict) -> list:
    return [html.H2(title), html.P(lead, className="lead"), url_notes(unknown, errors), link_bar(prefix)]
