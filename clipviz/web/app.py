"""Dash app factory."""

from __future__ import annotations

import dash
from dash import html
from flask import jsonify

from .. import __version__


def create_app() -> dash.Dash:
    """Build the clipviz Dash app (placeholder home page until the web-app issue)."""
    app = dash.Dash(__name__, title="clipviz")
    app.layout = html.Main([
        html.H1("clipviz"),
        html.P("The exploding-gradient problem of recurrent networks, made visible."),
    ])

    from .api import register_api

    register_api(app.server)  # /api/runs, /api/sweeps: the training jobs (clipviz.jobs)

    @app.server.route("/health")
    def health():
        return jsonify(status="ok", version=__version__)

    return app
