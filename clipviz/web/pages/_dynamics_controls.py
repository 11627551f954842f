"""Controls of the dynamics pages (bifurcations, dynamics, theory): sliders that always show their
value, and number boxes wide enough for small values such as −0.0005."""

from __future__ import annotations

from typing import Any

from dash import dcc, html

from ..components import build_control, control
from ..params import Choice, Num

NUMBER_STYLE = {"width": "11em"}
"""The number boxes: Dash's − / + buttons take room, and 8em shows "−0.0005" as "−0.000"."""


SLIDER_STYLE = {"paddingTop": "44px"}
"""Room above a slider's track for its value, shown over the thumb."""


def value_slider(prefix: str, spec: Num, value: Any, step: float, marks: dict | None = None,
                 lo: float | None = None, hi: float | None = None) -> dcc.Slider:
    """A slider whose value is always shown (a tooltip over the thumb); its range is the spec's
    bounds unless ``lo`` / ``hi`` narrow it."""
    return dcc.Slider(id=f"{prefix}-{spec.name}", min=spec.lo if lo is None else lo,
                      max=spec.hi if hi is None else hi, step=step, value=value, marks=marks,
                      updatemode="mouseup", allow_direct_input=True,
                      tooltip={"placement": "top", "always_visible": True})


def dyn_control(prefix: str, spec: Num | Choice, value: Any, error: str | None, kind: str = "number",
                **kw: Any) -> html.Div:
    """A control of ``kind`` ("number", "slider", "radio") for one of these pages; a slider takes
    ``step``, ``marks`` and optionally ``lo`` / ``hi`` in ``kw``."""
    if kind == "slider":
        comp = value_slider(prefix, spec, value, kw.get("step", 0.01), kw.get("marks"), kw.get("lo"), kw.get("hi"))
        # room above the track for the value over the thumb
        return control(prefix, spec, html.Div(comp, style=SLIDER_STYLE), error)
    if kind == "number":
        box = dcc.Input(id=f"{prefix}-{spec.name}", type="number", value=value, debounce=True, step="any",
                        className="num", inputMode="decimal", style=NUMBER_STYLE)
        return control(prefix, spec, box, error)
    return build_control(prefix, spec, value, error, kind, **kw)
