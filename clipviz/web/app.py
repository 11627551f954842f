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
import uuid
from importlib import import_module
from pathlib import Path
from typing import Any

import dash
from dash import dcc, html
from flask import jsonify

from .. import __version__
from .. import config
from ..jobs import resume_queued
from .access import init_access
from .browser import step_marker_html
from .cache import init_cache
from .components import ERROR_ID
from .limits import init_limits

log = logging.getLogger(__name__)

PAGE_MODULES = ("home", "surface", "bifurcations", "dynamics", "theory", "training")
"""Page modules under :mod:`clipviz.web.pages`, in menu order."""
READ_ONLY_HIDDEN = ("/training",)
"""Pages a read-only deployment (``CLIPVIZ_READ_ONLY``) does not serve."""

ASSETS = Path(__file__).parent / "assets"


def route_logs() -> None:
    """Send clipviz's log records where the deployer reads them, unless the host program has
    configured logging itself (``clipviz serve``, a Celery worker, a notebook, pytest).

    The package's ``NullHandler`` (the library convention) also stops Python's last-resort
    handler and Flask's default one, so under gunicorn every record, tracebacks included, was
    lost.  Under gunicorn the records go to its error log; elsewhere to standard error.
    """
    pkg = logging.getLogger("clipviz")
    if any(not isinstance(h, logging.NullHandler) for h in pkg.handlers) or logging.getLogger().handlers:
        return
    gunicorn = logging.getLogger("gunicorn.error")
    handlers = list(gunicorn.handlers)
    if not handlers:
        h = logging.StreamHandler()
        h.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handlers = [h]
    for h in handlers:
        pkg.addHandler(h)
    if pkg.level == logging.NOTSET:
        pkg.setLevel(logging.INFO)
    pkg.propagate = False  # each record once, whatever the root logger later gets


def _warm_surface() -> None:
    from .. import one_unit
    from ..figures import surface as fs

    grid = fs.compute_surface(-1.0, 1.0, -1.0, 1.0, 8, steps=3)
    fs.compute_surface(-1.0, 1.0, -1.0, 1.0, 8, steps=3, activation="tanh")
    u = one_unit.descend(1.0, 0.0, lr=0.1, n_steps=2)
    c = one_unit.descend(1.0, 0.0, lr=0.1, n_steps=2, clip="autoclip", percentile=10)
    fs.surface_figure(grid, u, c)
    fs.diagnostics_figure(u, c)


def warm_up() -> float:
    """Compile (or load from Numba's on-disk cache) every kernel the pages use and import
    Plotly's validators, so no user waits for them.  Returns the seconds it took.

    Each step is logged as it ends, so the first start on a machine (when Numba compiles
    everything and nothing else is printed for a while) shows what it is doing.
    """
    t = time.perf_counter()
    steps: list[tuple[str, Any]] = [("one-unit model: error surface and descents", _warm_surface)]
    for name in PAGE_MODULES:
        mod = import_module(f"{__package__}.pages.{name}")
        if hasattr(mod, "warm_up"):
            steps.append((f"{name} page", mod.warm_up))
    log.info("preparing the numerical kernels in %d steps: the first start on a machine compiles them "
             "(this can take a minute on a small machine); later starts load them from Numba's cache",
             len(steps))
    for i, (label, fn) in enumerate(steps, 1):
        t0 = time.perf_counter()
        fn()
        log.info("kernels %d/%d ready: %s (%.1f s)", i, len(steps), label, time.perf_counter() - t0)
    return time.perf_counter() - t


def callback_error(err: Exception) -> None:
    """The app-wide callback error handler (``Dash(on_error=...)``).

    Callbacks check their inputs and answer bad values with messages; this is the net for what no
    check foresaw.  The exception is logged with its traceback under a short reference, the user
    sees a plain message with that reference on the page-level line, the callback's outputs keep
    their values (``None`` is ``no_update``), and the response is a 200, never a 500.
    """
    ref = uuid.uuid4().hex[:8]
    try:
        where = dash.callback_context.triggered_id
    except Exception:  # noqa: BLE001 - outside a request context
        where = None
    log.error("callback failed (ref %s, triggered by %r)", ref, where, exc_info=err)
    try:
        dash.set_props(ERROR_ID, {"children": (
            f"Something went wrong updating this view (reference {ref}; the details are in the "
            "server log). The figures keep their last state: change the value back, or reload the page.")})
    except Exception:  # noqa: BLE001 - never let the handler itself fail the request
        log.exception("could not show the error message for ref %s", ref)
    return None


def _nav() -> html.Nav:
    return html.Nav(className="nav", children=[
        dcc.Link("clipviz", href="/", className="brand"),
        *[dcc.Link(p["name"], href=p["relative_path"], className="navlink")
          for p in dash.page_registry.values()
          if p["path"] != "/" and not (p["path"] in READ_ONLY_HIDDEN and config.read_only())],
    ])


#: Dash loads @babel/polyfill (core-js 2) before the app.  In every current browser it replaces
#: String.prototype.trim, parseInt and parseFloat with JavaScript versions (its feature test counts
#: U+180E as white space, which Unicode 6.3 stopped doing), and Plotly's d3 calls trim for every
#: class attribute it touches: about a quarter of a redraw's script time.  The page keeps the
#: browser's own functions: saved before the polyfill runs, put back after it.  Both scripts stay
#: inline: an asset's script would run after the polyfill, too late to save the originals.
NATIVE_METHODS = (("String.prototype", ("trim", "trimStart", "trimEnd", "trimLeft", "trimRight")),
                  ("window", ("parseInt", "parseFloat")), ("Number", ("parseInt", "parseFloat")))
_SAVE_JS = "window.__clipvizNative = [%s];" % ", ".join(
    f"[{owner}, '{name}', {owner}.{name}]" for owner, names in NATIVE_METHODS for name in names)
_RESTORE_JS = ("(window.__clipvizNative || []).forEach(function (e) {"
               " if (typeof e[2] === 'function' && e[0][e[1]] !== e[2]) { e[0][e[1]] = e[2]; } });")


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


def settle_first_request(server: Any, path: str = "/health") -> None:
    """Make a Dash app's first request (to ``path``) before its worker accepts connections.

    Dash finishes its set-up (callback map, pages router, the scripts it may serve) on the first
    request, without a lock: under a threaded worker two first requests race and one gets a 500
    (seen: the renderer's script answered with "no registered library", a blank page).
    """
    with server.test_client() as client:
        client.get(path)


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
    route_logs()
    app = dash.Dash(__name__, use_pages=True, pages_folder="", assets_folder=str(ASSETS),
                    title="clipviz", suppress_callback_exceptions=True, index_string=INDEX_STRING,
                    update_title=None,  # no "Updating..." in the tab title on every slider move
                    on_error=callback_error,
                    meta_tags=[{"name": "viewport", "content": "width=device-width, initial-scale=1"}])
    init_access(app.server)  # owners, admin token, read-only, same-origin, headers (first check)
    init_cache(app.server, cache_config)
    init_limits(app.server)  # heavy computations at once per process (clipviz.web.limits)
    for name in PAGE_MODULES:
        if name == "training" and config.read_only():
            continue
        import_module(f"{__package__}.pages.{name}").register(app)
    app.layout = lambda: html.Div([_nav(), html.Div(id=ERROR_ID, className="msg app-error", role="alert"),
                                   html.Main(dash.page_container)])

    if not config.read_only():  # runs an earlier app process left queued get runners again
        n = resume_queued()
        if n:
            log.info("started %d runner(s) for runs queued before this app started", n)

    from .api import register_api

    register_api(app.server)  # /api/runs, /api/sweeps: the training jobs (clipviz.jobs)

    @app.server.route("/health")
    def health():
        return jsonify(status="ok", version=__version__)

    settle_first_request(app.server)
    if warm:
        log.info("all kernels ready in %.1f s; serving", warm_up())
    return app
