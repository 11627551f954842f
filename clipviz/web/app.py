"""Dash app factory: pages, cache, warm-up and the ``/health`` endpoint.

``create_app()`` builds a fresh app each call (tests make several); pages are
registered explicitly (``use_pages`` with no pages folder) so that every app
gets every page's callbacks.  Nothing per-user is kept in the process: state
lives in the URL and in the browser, computed results in the shared cache,
so any gunicorn worker can serve any request.
"""

from __future__ import annotations

import logging
import time
from importlib import import_module
from pathlib import Path
from typing import Any

import dash
from dash import dcc, html
from flask import jsonify

from .. import __version__
from .cache import init_cache

log = logging.getLogger(__name__)

PAGE_MODULES = ("home", "surface", "bifurcations", "dynamics", "theory", "training")
"""Page modules under :mod:`clipviz.web.pages`, in menu order."""

ASSETS = Path(__file__).parent / "assets"


def warm_up() -> float:
    """Compile (or load from Numba's on-disk cache) every kernel the pages use and import
    Plotly's validators, so no user waits for them.  Returns the seconds it took."""
    t = time.perf_counter()
    from .. import one_unit
    from ..figures import surface as fs

    grid = fs.compute_surface(-1.0, 1.0, -1.0, 1.0, 8, steps=3)
    fs.compute_surface(-1.0, 1.0, -1.0, 1.0, 8, steps=3, activation="tanh")
    u = one_unit.descend(1.0, 0.0, lr=0.1, n_steps=2)
    c = one_unit.descend(1.0, 0.0, lr=0.1, n_steps=2, clip="autoclip", percentile=10)
    fs.surface_figure(grid, u, c)
    fs.diagnostics_figure(u, c)
    for name in PAGE_MODULES:
        mod = import_module(f"{__package__}.pages.{name}")
        if hasattr(mod, "warm_up"):
            mod.warm_up()
    return time.perf_counter() - t


def _nav() -> html.Nav:
    return html.Nav(className="nav", children=[
        dcc.Link("clipviz", href="/", className="brand"),
        *[dcc.Link(p["name"], href=p["relative_path"], className="navlink")
          for p in dash.page_registry.values() if p["path"] != "/"],
    ])


#: Dash loads @babel/polyfill (core-js 2) before the app.  In every current browser it replaces
#: String.prototype.trim, parseInt and parseFloat with JavaScript versions (its feature test counts
#: U+180E as white space, which Unicode 6.3 stopped doing), and Plotly's d3 calls trim for every
#: class attribute it touches: about a quarter of a redraw's script time.  The page keeps the
#: browser's own functions: saved before the polyfill runs, put back after it.
NATIVE_METHODS = (("String.prototype", ("trim", "trimStart", "trimEnd", "trimLeft", "trimRight")),
                  ("window", ("parseInt", "parseFloat")), ("Number", ("parseInt", "parseFloat")))
_SAVE_JS = "window.__clipvizNative = [%s];" % ", ".join(
    f"[{owner}, '{name}', {owner}.{name}]" for owner, names in NATIVE_METHODS for name in names)
_RESTORE_JS = ("(window.__clipvizNative || []).forEach(function (e) {"
               " if (typeof e[2] === 'function' && e[0][e[1]] !== e[2]) { e[0][e[1]] = e[2]; } });")
def step_marker_html() -> str:
    """The SVG ``<marker>`` definitions of the surface page's path layer and the CSS that puts them
    on the vertices of the lines whose trace uid names them (``clipviz.figures.surface.STEP_MARKERS``;
    Plotly gives a trace's group the class ``trace<uid>`` and its line the class ``js-line``)."""
    from ..figures.surface import STEP_MARKERS

    defs, css = [], []
    for uid, m in STEP_MARKERS.items():
        r = m["r"] + m.get("width", 0) / 2
        shape = (f'<circle r="{m["r"]}" fill="none" stroke="{m["ring"]}" stroke-width="{m["width"]}"/>'
                 if "ring" in m else f'<circle r="{m["r"]}" fill="{m["fill"]}"/>')
        defs.append(f'<marker id="{uid}-step" viewBox="{-r} {-r} {2 * r} {2 * r}" refX="0" refY="0" '
                    f'markerWidth="{2 * r}" markerHeight="{2 * r}" markerUnits="userSpaceOnUse">{shape}</marker>')
        css.append(f".js-plotly-plot .trace{uid} path.js-line {{ marker: url(#{uid}-step); }}")
    return (f'<svg width="0" height="0" style="position:absolute" aria-hidden="true"><defs>{"".join(defs)}'
            f'</defs></svg>\n        <style>{" ".join(css)}</style>')


INDEX_STRING = """<!DOCTYPE html>
<html lang="en">
    <head>
        {%metas%}
        <title>{%title%}</title>
        {%favicon%}
        {%css%}
    </head>
    <body>
        """ + step_marker_html() + """
        {%app_entry%}
        <footer>
            {%config%}
            <script>""" + _SAVE_JS + """</script>
            {%scripts%}
            <script>""" + _RESTORE_JS + """</script>
            {%renderer%}
        </footer>
    </body>
</html>"""


def create_app(cache_config: dict[str, Any] | None = None, warm: bool = True) -> dash.Dash:
    """Build the clipviz Dash app.

    Parameters
    ----------
    cache_config : dict, optional
        flask-caching configuration; default from the environment
        (:func:`clipviz.web.cache.cache_config`).
    warm : bool
        Compile the kernels before serving (:func:`warm_up`).
    """
    app = dash.Dash(__name__, use_pages=True, pages_folder="", assets_folder=str(ASSETS),
                    title="clipviz", suppress_callback_exceptions=True, index_string=INDEX_STRING,
                    update_title=None,  # no "Updating..." in the tab title on every slider move
                    meta_tags=[{"name": "viewport", "content": "width=device-width, initial-scale=1"}])
    init_cache(app.server, cache_config)
    for name in PAGE_MODULES:
        import_module(f"{__package__}.pages.{name}").register(app)
    app.layout = lambda: html.Div([_nav(), html.Main(dash.page_container)])

    from .api import register_api

    register_api(app.server)  # /api/runs, /api/sweeps: the training jobs (clipviz.jobs)

    @app.server.route("/health")
    def health():
        return jsonify(status="ok", version=__version__)

    # Dash finishes its set-up (callback map, pages router) on the first request, without a
    # lock: under a threaded worker two first requests race and one gets a 500.  Make that first
    # request here, before the worker accepts connections.
    with app.server.test_client() as client:
        client.get("/health")
    if warm:
        log.info("warm-up took %.2f s", warm_up())
    return app
