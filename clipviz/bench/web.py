"""Web-app latency: headless Chromium against ``gunicorn app:server``.

For each slider of each page the script presses the slider's arrow key (a real
user input on the slider thumb) and measures, inside the browser, the time from
the keydown event to the last ``plotly_afterplot`` event of the figures the
change redraws (``performance.now()`` both ends, so polling from Python adds
nothing).  Every change goes to a value not seen before, so no result comes
from the cache.  Reported: median and 95th percentile over 24 changes (with
``--quick`` 8, and 20 for the surface page's rows of :data:`CASES`) after 3
unrecorded warm-up changes, the first of which (the first redraw after the
page loaded: the cold start) is reported on its own.

The surface page draws its figures with its own browser code (not through Dash
callbacks); each of its changes counts as drawn when every figure it redraws
shows the new value (:data:`CASES`, :data:`SURFACE_MORE`):

(a) trajectory-only changes: the start w_0, the start b_0 and the threshold τ;
(b) surface changes at the default 256 x 256 resolution: the w window (surface
    only) and T (surface and both descents);

and, not in (a) or (b), the b window and the resolution.  On the other pages
(Dash server callbacks) the sliders and the figures each one redraws are found
from the pages themselves (:func:`page_sliders`, :func:`redrawn_graphs`); a
change counts as drawn once each of those figures has fired
``plotly_afterplot`` and Dash has no callback left in flight.

Every row is also given as a ratio against the reference measured in the same
run, before, between and after the pages: a small Dash line plot (one ``dcc.Slider``
driving a 200-point line through a server callback, :func:`reference_server`)
served by gunicorn with the same settings and timed the same way.

Requires chromium + chromedriver and gunicorn; run with
``python -m clipviz.bench web``.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import Any

from clipviz import config

ROOT = Path(__file__).resolve().parents[2]
WORKERS = 2
THREADS = 2
WARMUP = 3  # unrecorded changes after a page loads; the first of them is the cold start
QUIET_MS = 50  # a Dash page's change is read once no callback and no redraw happened for this long

INSTRUMENT = """
// arguments[0]: [[graph id, signature function body, part of the main figure], ...]; a change counts
// as redrawn when every listed graph has fired plotly_afterplot with its signature changed.
const specs = arguments[0];
window.__specs = specs.map(([id, body, main]) => ({
    gd: document.querySelector('#' + id + ' .js-plotly-plot'), sig: new Function('gd', body), main: main}));
window.__lat = null;
window.__t0 = null;
const check = () => {
    if (window.__t0 === null) { return; }
    const t0 = window.__t0, now = performance.now();
    window.__specs.forEach(s => { if (!s.done && s.sig(s.gd) !== s.sig0) { s.done = true; s.at = now - t0; } });
    if (window.__specs.every(s => s.done)) {
        const reqs = performance.getEntriesByType('resource').filter(
            e => (e.name.includes('_dash-update-component') || e.name.includes('api/surface/')) && e.startTime >= t0);
        const served = reqs.length ? Math.max(...reqs.map(e => e.responseEnd)) - t0 : 0;
        const sent = reqs.length ? Math.min(...reqs.map(e => e.startTime)) - t0 : 0;
        const mainAt = Math.max(...window.__specs.filter(s => s.main).map(s => s.at));
        window.__lat = [now - t0, served, mainAt, sent];
        window.__t0 = null;
    }
};
window.__specs.forEach(s => { s.gd.on('plotly_afterplot', check); });
document.addEventListener('keydown', () => {
    window.__specs.forEach(s => { s.sig0 = s.sig(s.gd); s.done = false; s.at = null; });
    window.__lat = null;
    window.__t0 = performance.now();
}, true);
"""

PATHS_SIG = "return JSON.stringify([gd.data[0].x, gd.data[1].x, gd.data[1].name]);"
DIAG_SIG = "return JSON.stringify([gd.data[0].y, gd.data[2].y, gd.layout.shapes]);"
SURF_SIG = "return JSON.stringify([gd.data[0].z, gd.layout.xaxis.range, gd.layout.yaxis.range]);"
FRAME_SIG = "return gd.layout.meta;"  # the window and the colour range it shows
RANGE_SIG = "return JSON.stringify(gd.layout.xaxis.range);"

# label, kind, slider thumb, key, graphs that must be redrawn: (id, signature, part of the main figure)
CASES = [
    ("start w0 (slider)", "a", "#es-w0 [role=slider]", "ARROW_RIGHT",
     [("es-paths", PATHS_SIG, True), ("es-diag", DIAG_SIG, False)]),
    ("start b0 (slider)", "a", "#es-b0 [role=slider]", "ARROW_RIGHT",
     [("es-paths", PATHS_SIG, True), ("es-diag", DIAG_SIG, False)]),
    ("threshold tau (log slider)", "a", "#es-tau [role=slider]", "ARROW_LEFT",
     [("es-paths", PATHS_SIG, True), ("es-diag", DIAG_SIG, False)]),
    # the window: the surface and its tick labels (frame layer) make the main figure
    ("w window (range slider)", "b", "#es-w_range [role=slider]:last-of-type", "ARROW_LEFT",
     [("es-surface", SURF_SIG, True), ("es-frame", FRAME_SIG, True), ("es-paths", RANGE_SIG, False)]),
    # T: the frame is redrawn only when the colour range moves (not waited for: it may not change)
    ("T (slider; surface + descents)", "b", "#es-T [role=slider]", "ARROW_RIGHT",
     [("es-surface", SURF_SIG, True), ("es-paths", PATHS_SIG, False), ("es-diag", DIAG_SIG, False)]),
]


#: the surface page's other sliders, measured as :data:`CASES` (kept apart: ``scripts/web_ab.py``
#: numbers CASES): label, slider thumb, key, graphs as in CASES, and the link's query that sets
#: the start (the resolution starts high enough for every change to go down to a new value)
SURFACE_MORE = [
    ("b window (range slider)", "#es-b_range [role=slider]:last-of-type", "ARROW_RIGHT",
     [("es-surface", SURF_SIG, True), ("es-frame", FRAME_SIG, True),
      ("es-paths", "return JSON.stringify(gd.layout.yaxis.range);", False)], ""),
    ("resolution (slider; surface only)", "#es-res [role=slider]", "ARROW_LEFT",
     [("es-surface", SURF_SIG, True)], "?res=448"),
    # the step slider moves the step layer's markers in the browser alone (no request)
    ("step in view (step slider; browser only)", "#es-step [role=slider]", "ARROW_RIGHT",
     [("es-now", "return JSON.stringify([gd.data[0].x, gd.data[1].x]);", True)], ""),
]

INSTRUMENT_DASH = """
// arguments[0]: ids of the graphs a change redraws.  A change counts as drawn once each of them has
// fired plotly_afterplot since the keydown, Dash has no callback in flight and no graph is being
// plotted (dcc.Graph marks it dash-graph--pending); its time is that of the last plotly_afterplot,
// read once quiet (no callback and no redraw for the poll's `quiet` ms).
const ids = arguments[0];
const store = (window.dash_stores || [])[0] || window.store;
const st = {t0: null, at: [], loading: false, idleAt: 0};
const gds = ids.map(id => document.querySelector('#' + id + ' .js-plotly-plot'));
gds.forEach((gd, i) => gd.on('plotly_afterplot', () => {
    if (st.t0 !== null) { st.at[i] = performance.now(); }
}));
store.subscribe(() => {
    const l = !!store.getState().isLoading;
    if (st.loading && !l) { st.idleAt = performance.now(); }
    st.loading = l;
});
document.addEventListener('keydown', (e) => {
    if (e.key !== 'ArrowRight' && e.key !== 'ArrowLeft') { return; }
    st.t0 = performance.now();
    st.at = ids.map(() => null);
}, true);
window.__dashPoll = (quiet) => {
    if (st.t0 === null || st.loading || st.at.some(a => a === null)
        || gds.some(gd => gd.classList.contains('dash-graph--pending'))) { return null; }
    const now = performance.now(), last = Math.max(...st.at);
    if (now - Math.max(last, st.idleAt) < quiet) { return null; }
    const t0 = st.t0;
    const reqs = performance.getEntriesByType('resource').filter(
        e => e.name.includes('_dash-update-component') && e.startTime >= t0);
    const served = reqs.length ? Math.max(...reqs.map(e => e.responseEnd)) - t0 : 0;
    const sent = reqs.length ? Math.min(...reqs.map(e => e.startTime)) - t0 : 0;
    st.t0 = null;
    return [last - t0, served, sent];
};
"""

#: a Dash page is ready once every listed graph is drawn and no callback is in flight
DASH_READY = """
const store = (window.dash_stores || [])[0] || window.store;
return !!store && !store.getState().isLoading && arguments[0].every(id => {
    const gd = document.querySelector('#' + id + ' .js-plotly-plot');
    return gd && gd._fullLayout && gd._fullData; });
"""

REF_POINTS = 200  # points of the reference's line
REF_GRAPH = "ref-fig"
REF_SLIDER = "ref-k"


def reference_server():
    """The reference app: a small Dash line plot, one ``dcc.Slider`` (0..100, step 1, at 50)
    driving a :data:`REF_POINTS`-point line through a server callback; Dash's defaults but
    ``update_title=None`` (as the clipviz app).  For ``gunicorn "clipviz.bench.web:reference_server()"``."""
    import dash
    from dash import Input, Output, dcc, html
    from flask import jsonify

    from clipviz.web.app import settle_first_request

    app = dash.Dash(__name__, update_title=None)
    xs = list(range(REF_POINTS))
    app.layout = html.Div([dcc.Slider(id=REF_SLIDER, min=0, max=100, step=1, value=50),
                           dcc.Graph(id=REF_GRAPH)])

    @app.callback(Output(REF_GRAPH, "figure"), Input(REF_SLIDER, "value"))
    def draw(k):
        return {"data": [{"type": "scatter", "mode": "lines", "x": xs,
                          "y": [math.sin(x * (k + 1) / 400) for x in xs]}],
                "layout": {"margin": {"l": 40, "r": 10, "t": 10, "b": 30}}}

    @app.server.route("/health")
    def health():
        return jsonify(status="ok")

    settle_first_request(app.server)  # as the clipviz app: else a blank page now and then
    return app.server


# ---------------------------------------------------------------------------
# the pages' sliders and the figures each redraws (no browser)
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Slider:
    """A slider of a page: component id, bounds, step and value (a pair for a range slider)."""

    id: str
    lo: float
    hi: float
    step: float
    value: float | tuple[float, float]

    @property
    def is_range(self) -> bool:
        return isinstance(self.value, tuple)


@dataclass(frozen=True)
class Plan:
    """How to make ``changes`` changes of a slider, each to a value not seen before: the thumb
    (0; 1 for a range slider's upper end), the arrow key, and the value to start from (through
    the page's link), or None for the page's own."""

    thumb: int
    key: str
    start: float | None = None


def _walk(node: Any) -> Iterator[Any]:
    """Every Dash component in a layout, nested lists included."""
    if isinstance(node, (list, tuple)):
        for n in node:
            yield from _walk(n)
        return
    if hasattr(node, "_prop_names"):
        yield node
        yield from _walk(getattr(node, "children", None))


def page_sliders(layout: Any) -> list[Slider]:
    """The sliders (``dcc.Slider``, ``dcc.RangeSlider``) in a page's layout, in page order."""
    from dash import dcc

    out = []
    for c in _walk(layout):
        if isinstance(c, (dcc.Slider, dcc.RangeSlider)):
            v = c.value
            out.append(Slider(c.id, float(c.min), float(c.max), float(getattr(c, "step", None) or 1),
                              (float(v[0]), float(v[1])) if isinstance(c, dcc.RangeSlider) else float(v)))
    return out


def page_graphs(layout: Any) -> list[str]:
    """The ids of the ``dcc.Graph`` components in a page's layout."""
    from dash import dcc

    return [c.id for c in _walk(layout) if isinstance(c, dcc.Graph)]


def _outputs(spec: str) -> list[tuple[str, str]]:
    """(component id, property) of each output in Dash's ``output`` string of a callback
    (``id.prop``, or ``..id.prop...id2.prop..`` for several; ``@hash`` marks a duplicate)."""
    parts = spec[2:-2].split("...") if spec.startswith("..") else [spec]
    out = []
    for p in parts:
        cid, _, prop = p.partition("@")[0].rpartition(".")
        out.append((cid, prop))
    return out


def redrawn_graphs(dependencies: list[dict], control: str, graphs: Collection[str]) -> list[str]:
    """The graphs (of ``graphs``) whose figure a callback with ``control`` as an input writes;
    ``dependencies``: the app's callbacks as ``/_dash-dependencies`` serves them."""
    out: list[str] = []
    for d in dependencies:
        if any(i.get("id") == control for i in d.get("inputs", [])):
            out += [cid for cid, prop in _outputs(d["output"])
                    if prop == "figure" and cid in graphs and cid not in out]
    return out


def plan(s: Slider, changes: int) -> Plan:
    """Arrow-key presses that take ``s`` through ``changes`` values not seen before: up from its
    value where there is room, else down; else down from a start above it, as near its value as
    the changes allow (ValueError if the slider has fewer steps)."""
    span = changes * s.step
    eps = 1e-9 * max(1.0, abs(s.hi - s.lo))
    if s.is_range:
        lo_v, hi_v = s.value
        if hi_v + span <= s.hi + eps:
            return Plan(1, "ARROW_RIGHT")
        if lo_v - span >= s.lo - eps:
            return Plan(0, "ARROW_LEFT")
        raise ValueError(f"{s.id}: no room for {changes} changes of either end")
    if s.value + span <= s.hi + eps:
        return Plan(0, "ARROW_RIGHT")
    if s.value - span >= s.lo - eps:
        return Plan(0, "ARROW_LEFT")
    if s.hi - s.lo < span - eps:
        raise ValueError(f"{s.id}: {changes} changes need {changes} steps; it has "
                         f"{round((s.hi - s.lo) / s.step)}")
    start = s.lo + span  # the lowest start with room below; as near the value as that allows
    return Plan(0, "ARROW_LEFT", round(start, 12))


@dataclass(frozen=True)
class Case:
    """One slider of a page to measure: ``graphs`` the figures it redraws."""

    page: str  # the page module's name
    path: str
    slider: Slider
    graphs: tuple[str, ...]

    @property
    def name(self) -> str:
        """The slider's name in the page's link (its id without the page's prefix)."""
        return self.slider.id.split("-", 1)[-1]

    def url(self, base: str, changes: int) -> tuple[str, Plan]:
        p = plan(self.slider, changes)
        query = "" if p.start is None else f"?{self.name}={p.start:g}"
        return base + self.path + query, p


def case_label(c: Case, p: Plan) -> str:
    """The slider's row label: its name, and for a range slider the end that moves."""
    if c.slider.is_range:
        return f"{c.name} (range slider, {'upper' if p.thumb else 'lower'} end)"
    return f"{c.name} (slider{', from ' + format(p.start, 'g') if p.start is not None else ''})"


def dash_pages(dependencies: list[dict], skip: Collection[str] = ("surface",)
               ) -> list[tuple[str, str, list[Case]]]:
    """(page name, path, cases) for every page of the app (:data:`clipviz.web.app.PAGE_MODULES`)
    but ``skip``: each slider on the page's default layout with the figures it redraws."""
    from clipviz.web.app import PAGE_MODULES

    out = []
    for name in PAGE_MODULES:
        if name in skip:
            continue
        mod = import_module(f"clipviz.web.pages.{name}")
        layout = mod.layout()
        graphs = page_graphs(layout)
        out.append((name, mod.PATH, [Case(name, mod.PATH, s, tuple(redrawn_graphs(dependencies, s.id, graphs)))
                                     for s in page_sliders(layout)]))
    return out


def surface_slider_ids() -> list[str]:
    """The slider ids the surface page's rows (:data:`CASES`, :data:`SURFACE_MORE`) measure."""
    return [sel.split()[0].lstrip("#") for sel in [c[2] for c in CASES] + [c[1] for c in SURFACE_MORE]]


# ---------------------------------------------------------------------------
# the report (no browser)
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Row:
    """The measurement of one slider: latencies (ms) after warm-up, the first change after load,
    and the median time to the last response of the server."""

    page: str
    label: str
    figures: str
    lat: tuple[float, ...]
    first: float
    responses: float


def _p95(xs: list[float]) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(round(0.95 * (len(s) - 1))))]


def ratio(x: float, ref: float) -> str:
    """``x`` as a multiple of ``ref``: "1.50x"."""
    return f"{x / ref:.2f}x" if ref > 0 else "n/a"


TABLE_HEAD = (f"{'page':13s} {'slider':34s} {'figures':28s} {'n':>3s} {'median':>8s} {'p95':>8s} "
              f"{'first':>8s} {'med/ref':>8s} {'p95/ref':>8s} {'responses':>10s}")


def format_row(r: Row, ref: list[float]) -> str:
    """A row of the every-slider table: median, p95 and first change, the median and p95 as
    multiples of the reference's (``ref``: its latencies), and the median time to the responses."""
    med, p95 = statistics.median(r.lat), _p95(list(r.lat))
    return (f"{r.page:13s} {r.label:34s} {r.figures:28s} {len(r.lat):3d} {med:6.1f}ms {p95:6.1f}ms "
            f"{r.first:6.1f}ms {ratio(med, statistics.median(ref)):>8s} {ratio(p95, _p95(ref)):>8s} "
            f"{r.responses:8.1f}ms")


def format_reference(rounds: list[tuple[str, list[float], float]]) -> list[str]:
    """The reference's lines: median and p95 of its rounds ``(when, latencies, first change)``
    pooled, and of each round, with its first change after load."""
    ref = [x for _w, lat, _f in rounds for x in lat]
    return [f"reference: small Dash line plot (one dcc.Slider -> server callback -> {REF_POINTS}-point line), "
            f"{len(ref)} changes: median {statistics.median(ref):5.1f} ms, p95 {_p95(ref):5.1f} ms",
            *[f"  {when:22s} median {statistics.median(lat):5.1f} ms, p95 {_p95(lat):5.1f} ms, "
              f"first change after load {first:5.1f} ms" for when, lat, first in rounds]]



def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_gunicorn(port: int, data_dir: str, root: Path = ROOT, app: str = "app:server") -> subprocess.Popen:
    """``gunicorn app`` (the clipviz app by default) of the checkout at ``root`` (its clipviz first
    on the path)."""
    env = config.child_env(path_first=root, unset=("CLIPVIZ_REDIS_URL",), CLIPVIZ_DATA_DIR=data_dir)
    cmd = ["gunicorn", "-w", str(WORKERS), "--threads", str(THREADS), "-b", f"127.0.0.1:{port}", app]
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    end = time.time() + 120
    while time.time() < end:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"{root}: gunicorn {app} did not answer /health within 120 s")


def _cpu_seconds(pid: int) -> float:
    """CPU time (s) of the processes whose parent is ``pid`` (Linux ``/proc``; 0 elsewhere)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:  # after the name: state, ppid, ..., utime and stime at 11, 12
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _wait_idle(proc: subprocess.Popen, timeout: float = 120.0) -> None:
    """Wait until gunicorn's workers rest (each prepares its kernels on start, the second may still
    be at it when the first answers /health): under 0.05 s of CPU in each of two 0.5 s spans."""
    end, quiet, last = time.time() + timeout, 0, _cpu_seconds(proc.pid)
    while quiet < 2 and time.time() < end:
        time.sleep(0.5)
        now = _cpu_seconds(proc.pid)
        quiet = quiet + 1 if now - last < 0.05 else 0
        last = now


def _driver():
    from selenium import webdriver

    opts = webdriver.ChromeOptions()
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1600,1000"):
        opts.add_argument(a)
    return webdriver.Chrome(options=opts)


def _wait(driver, js: str, timeout: float, *args: Any) -> object:
    end = time.time() + timeout
    while time.time() < end:
        v = driver.execute_script(js, *args)
        if v is not None and v is not False:
            return v
        time.sleep(0.005)
    raise RuntimeError(f"timed out: {js}")


def _measure(driver, url: str, selector: str, key: str, signatures: list, n: int,
             warmup: int) -> tuple[list[float], list[float], list[float], list[float], float]:
    """The surface page: (all, responses, main, sent) per change after ``warmup`` changes, and the
    first change's all (ms)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver.get(url)
    _wait(driver, "const g = document.querySelector('#es-surface .js-plotly-plot');"
                  "const p = document.querySelector('#es-paths .js-plotly-plot');"
                  "return g && g._fullLayout && p && p._fullLayout && p.data.length >= 3;", 60)
    time.sleep(0.5)
    driver.execute_script(INSTRUMENT, [list(s) for s in signatures])
    thumb = driver.find_element(By.CSS_SELECTOR, selector)
    out, served, main, sent = [], [], [], []
    first = math.nan
    for i in range(warmup + n):
        thumb.send_keys(getattr(Keys, key))
        lat = _wait(driver, "return window.__lat;", 30)
        if i == 0:
            first = float(lat[0])
        if i >= warmup:
            out.append(float(lat[0]))
            served.append(float(lat[1]))
            main.append(float(lat[2]))
            sent.append(float(lat[3]))
        time.sleep(0.15)  # let the URL update and any second callback finish
        driver.execute_script("performance.clearResourceTimings();")
    return out, served, main, sent, first


def _measure_dash(driver, url: str, control: str, p: Plan, graphs: list[str], n: int,
                  warmup: int = WARMUP) -> tuple[list[float], list[float], float]:
    """A page drawn by Dash callbacks: keydown -> the last ``graphs`` redrawn and keydown -> the
    last callback response (ms) per change after ``warmup`` changes, and the first change's
    latency."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver.get(url)
    _wait(driver, DASH_READY, 60, graphs)
    time.sleep(0.5)
    driver.execute_script(INSTRUMENT_DASH, graphs)
    thumb = driver.find_elements(By.CSS_SELECTOR, f"#{control} [role=slider]")[p.thumb]
    out, served, first = [], [], math.nan
    for i in range(warmup + n):
        thumb.send_keys(getattr(Keys, p.key))
        lat = _wait(driver, f"return window.__dashPoll({QUIET_MS});", 30)
        if i == 0:
            first = float(lat[0])
        if i >= warmup:
            out.append(float(lat[0]))
            served.append(float(lat[1]))
        time.sleep(0.1)  # let the URL update
        driver.execute_script("performance.clearResourceTimings();")
    return out, served, first


def _reference(driver, port: int, n: int) -> tuple[list[float], float]:
    s = Slider(REF_SLIDER, 0, 100, 1, 50.0)
    lat, _served, first = _measure_dash(driver, f"http://127.0.0.1:{port}/", REF_SLIDER, plan(s, n + WARMUP),
                                        [REF_GRAPH], n)
    return lat, first


def _dependencies(port: int) -> list[dict]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_dash-dependencies", timeout=30) as r:
        return json.loads(r.read())


def _fig_names(graphs: list[str]) -> str:
    return ", ".join(g.split("-", 1)[-1] for g in graphs)


def run(quick: bool = False) -> list[str]:
    if not (shutil.which("gunicorn") and (shutil.which("chromedriver") or shutil.which("chromium"))):
        return ["skipped: needs gunicorn, chromium and chromedriver"]
    n = 20 if quick else 24  # the surface page's rows of CASES (as before)
    n_more = 8 if quick else 24  # every other row and each of the reference's three rounds
    port, ref_port = _free_port(), _free_port()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines = [f"machine: {os.cpu_count()} CPUs, load average {load:.2f} at start",
             f"server: gunicorn -w {WORKERS} --threads {THREADS} app:server; client: headless Chromium; "
             f"{n} changes per row after {WARMUP} warm-up changes",
             "the surface page's changes (more below, with every other slider):",
             "main: keydown -> plotly_afterplot of the main figure showing the new value (paths layer for",
             "      (a); surface layer, and for a window change its tick labels, for (b)); all: -> the last",
             "      figure the change redraws (the side figure too);",
             "      sent / responses: keydown -> first callback request sent / last response received",
             "      (medians; before 'sent' the browser handles the input, after 'responses' it draws)",
             f"{'change':32s} {'kind':>4s} {'main med':>9s} {'main p95':>9s} {'all med':>9s} {'all p95':>9s} "
             f"{'sent':>7s} {'responses':>10s}"]
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as data_dir:
        ref_server = _start_gunicorn(ref_port, data_dir, app="clipviz.bench.web:reference_server()")
        server = None
        try:
            server = _start_gunicorn(port, data_dir)
            pages = dash_pages(_dependencies(port))
            for proc in (ref_server, server):
                _wait_idle(proc)
            driver = _driver()
            try:
                _reference(driver, ref_port, 1)  # unrecorded: the browser's first pages are slower
                rounds = [("before the pages", *_reference(driver, ref_port, n_more))]
                main_kind: dict[str, list[float]] = {"a": [], "b": []}
                all_kind: dict[str, list[float]] = {"a": [], "b": []}
                for label, kind, selector, key, sigs in CASES:
                    lat, served, main, sent, first = _measure(driver, f"http://127.0.0.1:{port}/surface",
                                                              selector, key, sigs, n, WARMUP)
                    main_kind[kind] += main
                    all_kind[kind] += lat
                    rows.append(Row("surface", label, _fig_names([s[0] for s in sigs]), tuple(lat), first,
                                    statistics.median(served)))
                    lines.append(f"{label:32s} {kind:>4s} {statistics.median(main):7.1f}ms {_p95(main):7.1f}ms "
                                 f"{statistics.median(lat):7.1f}ms {_p95(lat):7.1f}ms "
                                 f"{statistics.median(sent):5.1f}ms {statistics.median(served):8.1f}ms")
                for kind, target, what in (("a", 60, "trajectory-only"), ("b", 150, "surface 256x256")):
                    for name, data in (("main figure", main_kind[kind]), ("all figures", all_kind[kind])):
                        p95 = _p95(data)
                        lines.append(f"({kind}) {what:16s} {name}, {len(data)} changes: median "
                                     f"{statistics.median(data):6.1f} ms, p95 {p95:6.1f} ms "
                                     f"(target p95 <= {target} ms: {'met' if p95 <= target else 'NOT met'})")
                rounds.append(("after the surface page", *_reference(driver, ref_port, n_more)))
                for label, selector, key, sigs, query in SURFACE_MORE:
                    lat, served, _m, _t, first = _measure(driver, f"http://127.0.0.1:{port}/surface{query}",
                                                          selector, key, sigs, n_more, WARMUP)
                    rows.append(Row("surface", label, _fig_names([s[0] for s in sigs]), tuple(lat), first,
                                    statistics.median(served)))
                empty = []
                for name, _path, cases in pages:
                    if not cases:
                        empty.append(name)
                    for c in cases:
                        if not c.graphs:
                            empty.append(f"{name} ({c.slider.id}: redraws no figure)")
                            continue
                        url, p = c.url(f"http://127.0.0.1:{port}", n_more + WARMUP)
                        lat, served, first = _measure_dash(driver, url, c.slider.id, p, list(c.graphs), n_more)
                        rows.append(Row(name, case_label(c, p), _fig_names(list(c.graphs)), tuple(lat), first,
                                        statistics.median(served)))
                rounds.append(("after the pages", *_reference(driver, ref_port, n_more)))
            finally:
                driver.quit()
        finally:
            for proc in (server, ref_server):
                if proc is not None:
                    proc.terminate()
                    proc.wait(15)
    ref = [x for _w, lat, _f in rounds for x in lat]
    lines += ["", *format_reference(rounds),
              "every slider of every page: keydown -> plotly_afterplot of the last figure the change redraws",
              "  (the surface page: 'all' above); n changes after warm-up; first: the first change after the",
              "  page loaded (cold start, not in the median); med/ref, p95/ref: as multiples of the reference's;",
              "  responses: keydown -> the last response of the server (median; after it the browser draws)",
              TABLE_HEAD, *[format_row(r, ref) for r in rows]]
    if empty:
        lines.append(f"no slider to measure: {', '.join(empty)}")
    return lines


if __name__ == "__main__":  # pragma: no cover
    sys.stdout.write("\n".join(run("--quick" in sys.argv)) + "\n")
