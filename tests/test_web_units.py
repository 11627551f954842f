"""The web app's parts as plain functions: controls, figure builders, callbacks, cache, serving."""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import pytest
from dash import no_update

from clipviz import one_unit
from clipviz.figures import surface as fs
from clipviz.figures._util import typed
from clipviz.web import browser, params
from clipviz.web.pages import surface as page

ROOT = Path(__file__).resolve().parent.parent


def decode(spec: dict) -> np.ndarray:
    a = np.frombuffer(base64.b64decode(spec["bdata"]), dtype=np.dtype(spec["dtype"]).newbyteorder("<"))
    if "shape" in spec:
        a = a.reshape([int(s) for s in spec["shape"].split(",")])
    return a


def arr(v) -> np.ndarray:
    """A figure array, whether a typed-array spec or a plain sequence."""
    return decode(v) if isinstance(v, dict) else np.asarray(v, dtype=float)


# --- controls ----------------------------------------------------------------
def test_num_check_accepts_bounds_and_explains_violations():
    s = params.Num("T", "T", 1, 500, 50, integer=True)
    assert s.check("20") == 20 and s.check(1) == 1 and s.check(500.0) == 500
    for bad, words in (("abc", "not an integer"), ("2.5", "not an integer"), (0, "out of range"),
                       (501, "out of range"), ("nan", "not finite"), (None, "enter"), ("", "enter"),
                       ([1], "not an integer"), (True, "enter")):
        with pytest.raises(ValueError, match=words) as e:
            s.check(bad)
        assert "between 1 and 500" in str(e.value)


def test_parse_uses_defaults_for_bad_and_missing_values():
    values, errors = params.parse(page.ALL_SPECS, {"T": "abc", "res": "64", "clip": "bogus", "log": "0"})
    assert values["T"] == 50 and values["res"] == 64 and values["clip"] == "norm"
    assert values["log"] is False and values["lr"] == 1.5
    assert set(errors) == {"T", "clip"}


def test_query_string_round_trips_through_parse():
    values = {s.name: s.default for s in page.ALL_SPECS} | {"T": 20, "act": "tanh", "log": False, "tau": 0.25}
    q = params.query_string(page.ALL_SPECS, values)
    from urllib.parse import parse_qsl

    back, errors = params.parse(page.ALL_SPECS, dict(parse_qsl(q[1:])))
    assert errors == {} and back == values


def test_round_sig():
    assert params.round_sig(1.23456789, 4) == 1.235
    assert params.round_sig(0.1 + 0.2) == 0.3
    assert params.round_sig(0.0) == 0.0


# --- figure builders -----------------------------------------------------------
@pytest.fixture(scope="module")
def grid():
    return fs.compute_surface(-2, 12, -8, 2, 40, steps=30)


@pytest.fixture(scope="module")
def pair():
    u = one_unit.descend(4.0, -3.6, lr=1.5, n_steps=40)
    c = one_unit.descend(4.0, -3.6, lr=1.5, n_steps=40, clip="norm", threshold=1.0)
    return u, c


def test_typed_arrays_are_float32_and_exact():
    a = np.arange(12, dtype=float).reshape(3, 4) / 7
    spec = typed(a)
    assert spec["dtype"] == "f4" and spec["shape"] == "3, 4"
    np.testing.assert_array_equal(decode(spec), a.astype(np.float32))


def test_surface_figure_holds_the_log_surface_and_both_paths(grid, pair):
    u, c = pair
    fig = fs.surface_figure(grid, u, c)
    assert isinstance(fig, go.Figure) and len(fig.data) == 2 + fs.N_TRAJ_TRACES
    assert fig.layout.margin.autoexpand is False  # the page's two layers share one plot area
    heat = fig.to_plotly_json()["data"][0]
    z = decode(heat["z"]) if isinstance(heat["z"], dict) else np.asarray(heat["z"])
    np.testing.assert_allclose(z, np.log10(np.maximum(grid.E, fs.E_FLOOR)), rtol=1e-6, atol=1e-6)
    assert fig.layout.uirevision == fs.window_revision(grid)
    np.testing.assert_allclose(arr(fig.data[2].x), u.params[:, 0])
    np.testing.assert_allclose(arr(fig.data[3].y), c.params[:, 1])
    assert len(arr(fig.data[4].x)) == int(c.clipped[: c.params.shape[0]].sum()) > 0
    assert fig.data[5].x == (4.0,)
    # linear colour
    lin = fs.surface_traces(grid, log_colour=False)[0]
    np.testing.assert_allclose(decode(lin["z"]), grid.E.astype(np.float32))


def test_axis_titles_are_on_the_title_layer_and_in_the_single_figure(grid, pair):
    """The page's surface layer has no axis titles (redrawn often); the title layer, drawn once,
    has the MathJax titles over the same plot area; the single figure (export, notebooks) has them."""
    base = fs.surface_dict(grid)["layout"]
    assert "title" not in base["xaxis"] and "title" not in base["yaxis"]
    layer = fs.titles_dict()
    # the title layer's only traces are the legend key of the path layer: no points to draw
    assert [t["name"] for t in layer["data"]] == ["no clipping", "with clipping", "clipping fired", "start",
                                                  "diverged"]
    assert all(t["x"] == [None] and t["y"] == [None] for t in layer["data"]) and layer["layout"]["showlegend"]
    assert layer["layout"]["xaxis"]["title"]["text"] == "$w$" and layer["layout"]["yaxis"]["title"]["text"] == "$b$"
    assert layer["layout"]["margin"] == base["margin"] and layer["layout"]["height"] == base["height"]
    assert not layer["layout"]["xaxis"]["showticklabels"] and not layer["layout"]["yaxis"]["showticklabels"]
    fig = fs.surface_figure(grid, *pair)
    assert fig.layout.xaxis.title.text == "$w$" and fig.layout.yaxis.title.text == "$b$"
    assert fig.data[0].zsmooth == "fast"


def _box_distance_to_polyline(p: np.ndarray, line: np.ndarray, scale: np.ndarray) -> float:
    """max-norm distance (in units of ``scale``) from point p to the polyline, sampled finely."""
    s = np.linspace(0.0, 1.0, 201)[:, None]
    best = np.inf
    for a, b in zip(line[:-1], line[1:]):
        seg = a + s * (b - a)
        best = min(best, float(np.min(np.max(np.abs(seg - p) / scale, axis=1))))
    if len(line) == 1:
        best = float(np.max(np.abs(line[0] - p) / scale))
    return best


@pytest.mark.parametrize("start, lr, n, clip", [((4.0, -3.6), 1.5, 100, "none"), ((4.0, -3.6), 1.5, 100, "norm"),
                                                 ((5.0, -1.75), 0.2, 300, "none"), ((2.0, 0.0), 1.5, 60, "none")])
def test_thinned_path_draws_the_same_picture(start, lr, n, clip):
    """The path layer leaves out markers that sit on the last one drawn: first and last steps kept,
    every step within THIN of the window of a kept one, and every point of the full line within THIN
    of the thinned line (checked on the line through all steps, sampled)."""
    t = one_unit.descend(*start, lr=lr, n_steps=n, clip=clip, threshold=0.1 if clip == "norm" else None)
    window = (-2.0, 12.0, -8.0, 2.0)
    keep = fs.thin_steps(t.params, window)
    assert keep[0] == 0 and keep[-1] == len(t.params) - 1 and np.all(np.diff(keep) > 0)
    scale = np.array([14.0, 10.0]) * fs.THIN
    kept = t.params[keep]
    for k in range(len(t.params)):
        assert np.min(np.max(np.abs(kept - t.params[k]) / scale, axis=1)) <= 1 + 1e-9
    full = t.params
    for a, b in zip(full[:-1], full[1:]):
        for s in (0.0, 0.25, 0.5, 0.75, 1.0):
            assert _box_distance_to_polyline(a + s * (b - a), kept, scale) <= 1 + 1e-2
    if clip == "none" and start == (4.0, -3.6):
        assert len(keep) < len(t.params) // 2  # the run converges on the plateau: most markers overlap


def test_thinning_keeps_nonfinite_and_tiny_paths():
    pts = np.array([[0.0, 0.0], [1e-9, 0.0], [np.nan, np.inf], [np.nan, np.inf], [1e-9, 0.0]])
    np.testing.assert_array_equal(fs.thin_steps(pts, (0, 1, 0, 1)), [0, 2, 3, 4])
    np.testing.assert_array_equal(fs.thin_steps(pts[:2], (0, 1, 0, 1)), [0, 1])
    np.testing.assert_array_equal(fs.thin_steps(pts[:1], (0, 1, 0, 1)), [0])


def test_divergence_is_annotated_not_drawn_to_infinity(grid):
    u = one_unit.descend(4.0, -3.6, lr=1e8, n_steps=20)
    c = one_unit.descend(4.0, -3.6, lr=1e8, n_steps=20, clip="norm", threshold=1e-9)
    assert u.diverged_at is not None and c.diverged_at is None
    fig = fs.surface_figure(grid, u, c)
    texts = [a.text for a in fig.layout.annotations]
    assert texts == [f"unclipped: diverged at step {u.diverged_at}"]
    assert np.all(np.abs(arr(fig.data[2].x)) <= 1e6) and fig.data[6].x == (u.params[-1, 0],)
    diag = fs.diagnostics_figure(u, c)
    assert any(f"diverged at step {u.diverged_at}" in a.text for a in diag.layout.annotations)
    for tr in diag.data:
        y = arr(tr.y)
        assert not np.any(np.isinf(y))  # NaN = a gap where the gradient was not finite


def test_diagnostics_figure_has_threshold_line_and_log_axes(pair):
    u, c = pair
    fig = fs.diagnostics_figure(u, c)
    assert fig.layout.yaxis.type == "log" and fig.layout.yaxis2.type == "log"
    assert any(s.y0 == 1.0 and s.y1 == 1.0 for s in fig.layout.shapes)
    fired = [t for t in fig.data if t.name == "clipping fired"][0]
    assert list(fired.x) == list(np.flatnonzero(c.clipped))
    np.testing.assert_allclose(arr(fig.data[0].y), u.grad_norm)


def test_csv_exports(grid, pair):
    text = fs.surface_csv(grid)
    lines = text.splitlines()
    assert lines[0] == "w,b,E_30" and len(lines) == 1 + grid.E.size
    w, b, e = map(float, lines[1 + 5].split(","))
    assert (w, b) == pytest.approx((grid.ws[5], grid.bs[0])) and e == pytest.approx(grid.E[0, 5], rel=1e-8)
    u, c = pair
    rows = fs.trajectories_csv(u, c).splitlines()
    assert rows[0] == "run,step,w,b,E,grad_norm,clip_fired"
    assert len(rows) == 1 + u.params.shape[0] + c.params.shape[0]
    assert rows[1].startswith("unclipped,0,4,-3.6,")


def test_3d_figure(grid):
    fig = fs.surface3d_figure(grid, max_side=16)
    assert fig.data[0].type == "surface"
    assert decode(fig.to_plotly_json()["data"][0]["z"]).shape == (14, 14)


# --- callbacks as plain functions --------------------------------------------------
SURF = dict(w_range=[-2, 12], b_range=[-8, 2], res=32, T=30, x0=0.5, target=0.7, act="sigmoid",
            log_flags=["log"])
RUN = dict(w0=4.0, b0=-3.6, lr=1.5, n=40, clip="norm", tau_log=0.0, p=10)


ALL_MSGS = set(page.SURFACE_MSGS) | set(page.RUN_MSGS)


def view(surface=True, paths=True, diag=True, **change):
    return page.update_view({**SURF, **RUN, **change}, surface=surface, paths=paths, diag=diag)


def test_update_view_sends_only_the_surface_for_a_surface_only_change():
    out = view(paths=False, diag=False)  # e.g. the resolution or the colour scale changed
    fig = out["surface"]
    assert out["paths"] is None and out["diag"] is None
    assert set(out["msgs"]) == ALL_MSGS and not any(out["msgs"].values())
    assert len(fig["data"]) == 2
    assert fig["data"][0]["type"] == "heatmap" and fig["data"][1]["type"] == "contour"
    z = decode(fig["data"][0]["z"])
    assert z.shape == (32, 32) and z.dtype == np.float32
    go.Figure(fig)  # a valid figure


@pytest.mark.parametrize("change, control, words", [
    (dict(T=0), "T", "out of range"), (dict(T="x"), "T", "not an integer"),
    (dict(res=5000), "res", "between 16 and 1024"), (dict(w_range=[3, 3]), "w_range", "w_min < w_max"),
    (dict(w_range="junk"), "w_range", "enter"), (dict(act="relu"), "act", "choose one of"),
    (dict(x0=None), "x0", "enter"), (dict(target=2), "target", "between -1 and 1"),
])
def test_update_view_rejects_bad_surface_values_and_keeps_every_figure(change, control, words):
    out = view(**change)
    assert out["surface"] is None and out["paths"] is None and out["diag"] is None
    msgs = out["msgs"]
    assert words in msgs[control]
    assert all(m == "" for k, m in msgs.items() if k != control)


def test_update_view_sends_paths_and_side_figure_not_the_surface_for_a_descent_change():
    out = view(surface=False)
    paths, diag, msgs = out["paths"], out["diag"], out["msgs"]
    assert out["surface"] is None
    assert set(msgs) == ALL_MSGS and not any(msgs.values())
    # the steps where clipping fired, no divergence trace (nothing diverged)
    assert [t["name"] for t in paths["data"]] == ["no clipping", "norm clipping, τ=1", "start", "clipping fired"]
    assert paths["layout"]["xaxis"]["range"] == [-2.0, 12.0]
    assert paths["layout"]["showlegend"] is False  # the legend is drawn once, on the title layer
    u = one_unit.descend(4.0, -3.6, lr=1.5, n_steps=40, steps=30)
    keep = fs.thin_steps(u.params, (-2.0, 12.0, -8.0, 2.0))
    np.testing.assert_array_equal(arr(paths["data"][0]["x"]), u.params[keep, 0])
    np.testing.assert_array_equal(arr(paths["data"][0]["y"]), u.params[keep, 1])
    go.Figure(paths)
    go.Figure(diag)
    window = view(surface=True, paths=True, diag=False, w_range=[-2, 10])  # the window moved
    assert window["surface"] and window["diag"] is None
    assert window["paths"]["layout"]["xaxis"]["range"] == [-2.0, 10.0]


@pytest.mark.parametrize("change, control", [
    (dict(lr=0), "lr"), (dict(lr="fast"), "lr"), (dict(n=10**6), "n"), (dict(clip="clamp"), "clip"),
    (dict(tau_log=9), "tau"), (dict(p=0), "p"), (dict(w0=float("nan")), "w0"), (dict(b0=1e9), "b0"),
])
def test_update_view_rejects_bad_descent_values(change, control):
    out = view(**change)
    assert out["paths"] is None and out["diag"] is None
    assert out["surface"] is not None  # the surface controls are fine: it is drawn
    msgs = out["msgs"]
    assert msgs[control] and all(m == "" for k, m in msgs.items() if k != control)


def test_downloads_and_3d_callbacks():
    d = page.download_surface(1, **SURF)
    assert d["filename"].endswith(".csv") and d["content"].startswith("w,b,E_30\n")
    assert len(d["content"].splitlines()) == 1 + 32 * 32
    r = page.download_runs(1, **RUN, **SURF)
    assert r["content"].startswith("run,step,w,b,E,grad_norm,clip_fired")
    assert page.download_surface(None, **SURF) is no_update
    fig, style = page.update_3d(["view3d"], **SURF)
    assert style == {"display": "block"} and fig.data[0].type == "surface"
    assert page.update_3d([], **SURF) == (no_update, {"display": "none"})


def _find_text(component, ident):
    """children of the component with this id, searched through the tree."""
    if getattr(component, "id", None) == ident:
        return component.children
    kids = getattr(component, "children", None)
    for k in kids if isinstance(kids, list) else [kids]:
        if hasattr(k, "children"):
            found = _find_text(k, ident)
            if found is not None:
                return found
    return None


def test_layout_reads_url_and_reports_bad_parameters():
    lay = page.layout(T="abc", res="64", foo="1")
    assert "not an integer" in _find_text(lay, "es-msg-T")
    assert _find_text(lay, "es-msg-res") == ""
    notes = str(_find_text(lay, "url-notes"))
    assert "foo" in notes


# --- the app: endpoints, raw callback requests, cache ----------------------------------
def test_health_and_pages(make_app):
    app = make_app(warm=False)
    c = app.server.test_client()
    assert c.get("/health").get_json()["status"] == "ok"
    for path in ("/", "/surface", "/surface?T=abc&res=-1"):
        assert c.get(path).status_code == 200


def test_garbage_sent_straight_to_the_view_endpoint_gets_a_message_not_a_500(make_app):
    app = make_app(warm=False)
    client = app.server.test_client()
    good = {**SURF, **RUN, "surface": True, "paths": True, "diag": True}
    r = client.post("/api/surface/view", json=good)
    assert r.status_code == 200, r.data[:500]
    assert r.get_json()["surface"] and r.get_json()["paths"]
    for bad, control in ((dict(T={"$gt": 1}), "T"), (dict(res="1e400"), "res"), (dict(w_range=[None, "x"]), "w_range"),
                         (dict(act=[1, 2]), "act"), (dict(x0="inf"), "x0"), (dict(log_flags=7), "log"),
                         (dict(n="many"), "n"), (dict(w0={"$gt": 1}), "w0"), (dict(clip=[1]), "clip"),
                         (dict(tau_log="1e999"), "tau")):
        r = client.post("/api/surface/view", json={**good, **bad})
        assert r.status_code == 200, (bad, r.data[:500])
        out = r.get_json()
        assert out["paths"] is None and out["diag"] is None  # the figures are left as they were
        assert out["msgs"][control], bad
    assert client.post("/api/surface/view", json={}).get_json()["msgs"]["T"]  # nothing given: explained
    assert "JSON object" in client.post("/api/surface/view", json=[1, 2]).get_json()["error"]
    r = client.post("/api/surface/view", data="not json", content_type="application/json")
    assert r.status_code == 400 and "reload" in r.get_json()["error"]


def test_memoized_computation_runs_once_per_key(make_app, monkeypatch):
    app = make_app(warm=False)
    calls = []
    real = fs.compute_surface

    def counting(*a, **k):
        calls.append(a)
        return real(*a, **k)

    monkeypatch.setattr(fs, "compute_surface", counting)
    with app.server.app_context():
        a = page.surface_grid(-2.0, 12.0, -8.0, 2.0, 24, 10, 0.5, 0.7, "sigmoid")
        b = page.surface_grid(-2.0, 12.0, -8.0, 2.0, 24, 10, 0.5, 0.7, "sigmoid")
        page.surface_grid(-2.0, 12.0, -8.0, 2.0, 24, 11, 0.5, 0.7, "sigmoid")
    assert len(calls) == 2
    np.testing.assert_array_equal(a.E, b.E)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")
def test_redis_cache_when_url_is_set(monkeypatch, tmp_path):
    port = _free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--dir", str(tmp_path)], stdout=subprocess.DEVNULL)
    try:
        import redis

        r = redis.Redis(port=port)
        for _ in range(100):
            try:
                r.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        monkeypatch.setenv("CLIPVIZ_REDIS_URL", f"redis://127.0.0.1:{port}/0")
        from clipviz.web.app import create_app
        from clipviz.web.cache import cache_config

        assert cache_config()["CACHE_TYPE"] == "RedisCache"
        app = create_app(warm=False)
        with app.server.app_context():
            page.surface_grid(-2.0, 12.0, -8.0, 2.0, 20, 10, 0.5, 0.7, "sigmoid")
        assert any(k.startswith(b"clipviz:") for k in r.keys())
    finally:
        proc.terminate()
        proc.wait(5)


def test_filesystem_cache_by_default_in_data_dir(monkeypatch, tmp_path):
    from clipviz.web.cache import cache_config

    monkeypatch.delenv("CLIPVIZ_REDIS_URL", raising=False)
    monkeypatch.setenv("CLIPVIZ_DATA_DIR", str(tmp_path / "d"))
    cfg = cache_config()
    assert cfg["CACHE_TYPE"] == "clipviz.web.cache.DiskCache" and cfg["CACHE_DIR"] == str(tmp_path / "d" / "web-cache")
    assert cfg["CACHE_OPTIONS"]["size_limit"] == __import__("clipviz.config").config.SETTINGS.cache_max_bytes


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("gunicorn") is None, reason="gunicorn is not installed")
def test_gunicorn_serves_app_server_with_threaded_workers(tmp_path):
    """``gunicorn app:server`` with 2 threaded workers answers concurrent first requests.

    Dash's lazy first-request set-up is not thread-safe (seen once as a 500 on a script under the
    latency bench; create_app now makes the first request itself).  The race is timing-dependent:
    this test does not reproduce it reliably, it checks the threaded deployment serves every page."""
    from concurrent.futures import ThreadPoolExecutor

    port = _free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT), CLIPVIZ_DATA_DIR=str(tmp_path))
    env.pop("CLIPVIZ_REDIS_URL", None)
    proc = subprocess.Popen(["gunicorn", "-w", "2", "--threads", "4", "-b", f"127.0.0.1:{port}", "app:server"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):  # the master listens before the workers boot: requests queue up
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        import dash

        deps = [f"/_dash-component-suites/dash/deps/polyfill@7.v{dash.__version__.replace('.', '_')}m1.12.1.min.js",
                "/_dash-layout", "/_dash-dependencies", "/surface?T=20", "/", "/health", "/theory", "/dynamics"]

        def get(path):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=120) as r:
                    return path, r.status, r.read()
            except urllib.error.HTTPError as e:
                return path, e.code, b""

        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(get, deps))
        for path, status, _ in results:
            assert status == 200, f"{path}: HTTP {status}"
        assert json.loads(dict((p, b) for p, _, b in results)["/health"])["status"] == "ok"
    finally:
        proc.terminate()
        proc.wait(10)


def test_cli_serve_is_registered():
    from clipviz.cli import build_parser

    args = build_parser().parse_args(["serve", "--port", "8123"])
    assert args.port == 8123 and args._module == "clipviz.web.serve"


def test_view_endpoint_sends_only_what_the_change_needs(make_app):
    """The page's browser code posts the raw control values and what it needs to api/surface/view
    (not a Dash callback)."""
    app = make_app(warm=False)
    client = app.server.test_client()

    def post(**want):
        r = client.post("/api/surface/view", json={**SURF, **RUN, "w_range": [-2, 10], **want})
        assert r.status_code == 200, r.data[:300]
        return r.get_json()

    window = post(surface=True, paths=True, diag=False)
    assert window["surface"] and window["diag"] is None
    assert window["paths"]["layout"]["xaxis"]["range"] == [-2.0, 10.0]
    start = post(paths=True, diag=True)
    assert start["surface"] is None and start["paths"] and start["diag"]
    u = one_unit.descend(4.0, -3.6, lr=1.5, n_steps=40, steps=30)
    keep = fs.thin_steps(u.params, (-2.0, 10.0, -8.0, 2.0))
    np.testing.assert_array_equal(arr(start["paths"]["data"][0]["x"]), u.params[keep, 0])
    go.Figure(start["diag"])
    nothing = post()
    assert nothing["surface"] is None and nothing["paths"] is None and nothing["diag"] is None


def test_view_endpoint_sends_a_diverged_run_as_strict_json(make_app, monkeypatch):
    """(No start within the page's bounds diverges, so the runs are swapped for ones that do.)
    The answer is strict JSON: a browser's JSON.parse refuses a bare NaN or Infinity."""
    app = make_app(warm=False)
    u = one_unit.descend(4.0, -3.6, lr=1e8, n_steps=20)
    c = one_unit.descend(4.0, -3.6, lr=1e8, n_steps=20, clip="norm", threshold=1e-9)
    assert u.diverged_at is not None
    u.grad_norm[-1] = np.inf  # the side figure's arrays carry non-finite values as NaN
    monkeypatch.setattr(page, "runs", lambda *a: (u, c))
    vals = {**SURF, **RUN, "paths": True, "diag": True}
    r = app.server.test_client().post("/api/surface/view", json=vals)
    assert r.status_code == 200
    out = json.loads(r.data, parse_constant=lambda c: pytest.fail(f"bare {c} in the JSON"))
    assert [a["text"] for a in out["paths"]["layout"]["annotations"]] == [
        f"unclipped: diverged at step {u.diverged_at}"]
    div = [t for t in out["paths"]["data"] if t["name"] == "diverged"]
    assert len(div) == 1 and div[0]["x"] == [u.params[-1, 0]]
    assert any("diverged" in a["text"] for a in out["diag"]["layout"]["annotations"])


def test_memoized_stores_only_results_slower_than_min_seconds(make_app):
    """Small computations are not written to the cache (a write costs more than they do); slow ones
    are, and a stored result is served without computing again."""
    from clipviz.web.cache import memoized

    calls = []

    @memoized(min_seconds=0.05)
    def work(x, slow):
        calls.append(x)
        if slow:
            time.sleep(0.06)
        return x * 2

    app = make_app(warm=False)
    with app.server.app_context():
        assert work(1, False) == 2 and work(1, False) == 2
        assert calls == [1, 1]  # fast: computed each time, never stored
        assert work(2, True) == 4 and work(2, True) == 4
        assert calls == [1, 1, 2]  # slow: stored once, then read
    assert work(2, True) == 4 and calls == [1, 1, 2, 2]  # outside an app: a plain call


def test_view_endpoint_answers_a_server_fault_with_a_message_not_a_traceback(make_app, monkeypatch):
    app = make_app(warm=False)

    def broken(*a):
        raise RuntimeError("kernel exploded")

    monkeypatch.setattr(page, "runs", broken)
    r = app.server.test_client().post("/api/surface/view", json={**SURF, **RUN, "paths": True})
    assert r.status_code == 500
    assert "could not compute" in r.get_json()["error"] and b"kernel exploded" not in r.data
    assert b"Traceback" not in r.data


@pytest.mark.parametrize("lo, hi, log, want", [
    (-7.3, -0.4, True, (-7.5, 0.0)), (-3.0, -3.0, True, (-3.0, -2.5)), (-12.0, 0.2, True, (-12.0, 0.5)),
    (0.0, 0.43, False, (0.0, 0.5)), (0.0, 0.2, False, (0.0, 0.2)), (0.0, 0.21, False, (0.0, 0.25)),
    (0.0, 3.9, False, (0.0, 5.0)), (0.0, 0.0, False, (0.0, 1e-12)),
])
def test_colour_range_is_rounded_outwards(lo, hi, log, want):
    z = np.array([lo, (lo + hi) / 2, hi])
    got = fs.colour_range(z, log)
    assert got == pytest.approx(want) and got[0] <= lo and got[1] >= hi


def test_web_layers_split_the_surface_figure(grid, pair):
    """The page's base layer has no tick labels, colour bar or title; the frame layer has the tick
    labels and the colour bar over the same plot area and names what it shows in layout.meta; the
    single figure (export, notebooks) has everything on one figure."""
    base = fs.surface_dict(grid)
    assert base["data"][0]["showscale"] is False and "colorbar" not in base["data"][0]
    assert "title" not in base["layout"] and base["layout"]["xaxis"]["visible"] is False
    frame = fs.frame_dict(grid)
    bar = frame["data"][0]
    assert bar["showscale"] and bar["opacity"] == 0 and bar["colorbar"]["ticktext"][0].startswith("1e")
    z = fs.colour_values(grid.E, True)
    assert (bar["zmin"], bar["zmax"]) == fs.colour_range(z, True) == (base["data"][0]["zmin"], base["data"][0]["zmax"])
    assert frame["layout"]["margin"] == base["layout"]["margin"] and frame["layout"]["height"] == base["layout"]["height"]
    assert frame["layout"]["xaxis"]["range"] == base["layout"]["xaxis"]["range"]
    assert frame["layout"]["xaxis"].get("visible", True) and frame["layout"]["meta"].endswith("|log")
    # the same window and colour range give the same meta: the page then leaves the frame alone
    assert fs.frame_dict(grid)["layout"]["meta"] == frame["layout"]["meta"]
    assert fs.frame_dict(grid, log_colour=False)["layout"]["meta"] != frame["layout"]["meta"]
    assert fs.surface_title(grid) == "Error surface E₃₀(w, b)   (click to set the start)"
    single = fs.surface_figure(grid, *pair)
    assert single.data[0].showscale and single.data[0].colorbar.ticktext and single.layout.title.text


def test_update_view_sends_the_frame_and_title_with_the_surface():
    out = view(paths=False, diag=False)
    assert out["frame"]["layout"]["meta"] and out["title"] == "Error surface E₃₀(w, b)   (click to set the start)"
    assert view(surface=False)["frame"] is None and view(surface=False)["title"] is None


def test_side_figure_axis_titles_are_on_their_own_layer(pair):
    """On the page the side figure has no axis titles; its title layer (drawn once) has them over
    the same plot areas; the single figure (notebooks) has them itself."""
    web = fs.diagnostics_dict(*pair, titles=False)
    layer = fs.diagnostics_titles_dict()
    for ax in ("yaxis", "xaxis2", "yaxis2"):
        assert "title" not in web["layout"][ax]
        assert layer["layout"][ax]["title"]["text"] == fs.DIAG_TITLES[ax]
        assert layer["layout"][ax]["domain"] == web["layout"][ax]["domain"]
        assert layer["layout"][ax]["anchor"] == web["layout"][ax]["anchor"]
    assert layer["layout"]["margin"] == web["layout"]["margin"] and layer["layout"]["margin"]["autoexpand"] is False
    assert layer["layout"]["height"] == web["layout"]["height"]
    # a subplot exists only where a trace uses its axes: one empty trace on each
    assert {(t["xaxis"], t["yaxis"]) for t in layer["data"]} == {("x", "y"), ("x2", "y2")}
    assert all(len(t["x"]) == 0 for t in layer["data"])
    single = fs.diagnostics_figure(*pair)
    assert single.layout.yaxis.title.text == r"$\|g\|$" and single.layout.yaxis2.title.text == "$E_T$"


def test_path_layer_marks_steps_at_line_vertices_and_rings_the_fired_ones():
    """The path layer's steps are the vertices of lines the page marks with SVG markers (by trace
    uid, every vertex kept); the steps where clipping fired are the vertices of an inkless line
    ringed the same way; each trace says how to draw it with Plotly markers for an export."""
    c = one_unit.descend(5.0, -1.75, lr=0.2, n_steps=120, clip="norm", threshold=0.1)
    u = one_unit.descend(5.0, -1.75, lr=0.2, n_steps=120)
    window = (-2.0, 12.0, -8.0, 2.0)
    traces, _ = browser.path_layer_traces(u, c, window)
    assert [t["name"] for t in traces] == ["no clipping", "norm clipping, τ=0.1", "start", "clipping fired"]
    assert [t.get("uid") for t in traces] == ["cv-unclipped", "cv-clipped", None, "cv-fired"]
    for t in (traces[0], traces[1], traces[3]):
        assert t["mode"] == "lines" and t["line"]["simplify"] is False and t["uid"] in browser.STEP_MARKERS
        assert "marker" in t["meta"]["export"]
    assert traces[3]["line"]["color"] == "rgba(0,0,0,0)"
    keep = fs.thin_steps(c.params, window)
    fired = np.zeros(len(c.params), bool)
    fired[: c.clipped.size] = c.clipped[: len(c.params)]
    want = np.array([fired[a:b].any() for a, b in zip(keep, list(keep[1:]) + [len(c.params)])])
    assert 0 < want.sum() < len(keep)  # some steps fired, some did not
    np.testing.assert_array_equal(arr(traces[1]["x"]), c.params[keep, 0])
    np.testing.assert_array_equal(arr(traces[3]["x"]), c.params[keep[want], 0])
    np.testing.assert_array_equal(arr(traces[3]["y"]), c.params[keep[want], 1])
    # no clipping at all: no fired trace; one fired step: a line of two equal vertices
    quiet = one_unit.descend(5.0, -1.75, lr=0.2, n_steps=20, clip="norm", threshold=1e6)
    assert [t["name"] for t in browser.path_layer_traces(u, quiet, window)[0]] == ["no clipping",
                                                                                   "norm clipping, τ=1e+06", "start"]
    go.Figure({"data": traces})


def test_the_served_page_defines_a_step_marker_for_every_uid_the_path_layer_uses(make_app):
    """The path layer's steps are drawn by SVG markers that the page's HTML defines and its CSS puts
    on the lines of the traces with that uid: every uid the layer the endpoint sends carries has its
    <marker> in the page served at /surface, in the trace's colour, and a CSS rule naming it."""
    import re

    html_ = make_app(warm=False).server.test_client().get("/surface").get_data(as_text=True)
    css = " ".join(re.findall(r"<style>(.*?)</style>", html_, re.S))
    paths = view(surface=False)["paths"]  # clipping fired: all three kinds of marked line
    marked = {t["uid"]: t for t in paths["data"] if t.get("uid")}
    assert set(marked) == {"cv-unclipped", "cv-clipped", "cv-fired"}
    for uid, t in marked.items():
        defined = re.search(rf'<marker id="{uid}-step"[^>]*>(.*?)</marker>', html_)
        assert defined, uid
        assert re.search(rf"\.trace{uid} path\.js-line \{{ marker: url\(#{uid}-step\); \}}", css), uid
        mark = t["meta"]["export"]["marker"]  # as the export draws it: a dot, or a ring (its line)
        assert mark.get("line", {}).get("color", mark["color"]) in defined.group(1), uid
