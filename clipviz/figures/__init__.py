"""Figure builders: pure functions from clipviz results to ``plotly.graph_objects.Figure``.

No Dash here; every builder is testable without a browser.  Large arrays are
sent as float32 typed arrays (:func:`typed`), which Plotly.js decodes directly.
"""

from ._util import typed, csv_text

__all__ = ["typed", "csv_text"]
