"""Helpers shared by the figure builders."""

from __future__ import annotations

import base64
import io
from typing import Sequence

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio

FONT = dict(family="system-ui, -apple-system, Segoe UI, sans-serif", size=13)
#: every figure's template: plotly_white with tick labels allowed to overflow.  Plotly's default
#: ("hide past div") measures every tick label against every other on each redraw (a forced
#: layout per label), a large part of redrawing a figure; the margins keep labels inside anyway.
TEMPLATE = "clipviz"
pio.templates[TEMPLATE] = go.layout.Template(pio.templates["plotly_white"]).update(
    layout=dict(xaxis=dict(ticklabeloverflow="allow"), yaxis=dict(ticklabeloverflow="allow")))
UNCLIPPED = "#d62728"  # red: plain gradient descent
CLIPPED = "#1f77b4"  # blue: with clipping
FIRED = "#ff7f0e"  # orange: steps where the clipping rule fired


def typed(a: np.ndarray, dtype: str = "f4") -> dict:
    """A Plotly.js typed-array spec (base64 of the raw little-endian bytes).

    Plotly.js >= 2.28 decodes ``{"dtype", "bdata", "shape"}`` without parsing
    text; float32 halves the payload against float64.
    """
    arr = np.ascontiguousarray(np.asarray(a, dtype=np.dtype(dtype).newbyteorder("<")))
    spec = {"dtype": dtype, "bdata": base64.b64encode(arr.tobytes()).decode("ascii")}
    if arr.ndim > 1:
        spec["shape"] = ", ".join(map(str, arr.shape))
    return spec


def csv_text(header: Sequence[str], columns: Sequence[np.ndarray]) -> str:
    """CSV with a header line; floats with 9 significant digits, inf as 'inf'."""
    cols = [np.asarray(c) for c in columns]
    n = len(cols[0]) if cols else 0
    if any(len(c) != n for c in cols):
        raise ValueError("csv_text: all columns must have the same length")
    buf = io.StringIO()
    buf.write(",".join(header) + "\n")
    if n:
        table = np.column_stack([c.astype(object) if c.dtype.kind in "bU" else c.astype(float)
                                 for c in cols])
        for row in table:
            buf.write(",".join(_cell(x) for x in row) + "\n")
    return buf.getvalue()


def _cell(x) -> str:
    if isinstance(x, (bool, np.bool_)):
        return "1" if x else "0"
    if isinstance(x, str):
        return x
    x = float(x)
    if x.is_integer() and abs(x) < 1e15:
        return str(int(x))
    return f"{x:.9g}"
