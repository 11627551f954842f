"""Figure builders: pure functions from clipviz results to ``plotly.graph_objects.Figure``."""
