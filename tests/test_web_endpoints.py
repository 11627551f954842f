"""The web app's HTTP endpoints through Flask's test client: health, pages and api/surface/view."""

from __future__ import annotations

import json

import numpy as np
import plotly.graph_objects as go
import pytest

from clipviz import one_unit
from clipviz.figures import surface as fs
from clipviz.web.pages import surface as page

from .web_helpers import RUN, SURF, arr


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


def test_view_endpoint_answers_a_server_fault_with_a_message_not_a_traceback(make_app, monkeypatch):
    app = make_app(warm=False)

    def broken(*a):
        raise RuntimeError("kernel exploded")

    monkeypatch.setattr(page, "runs", broken)
    r = app.server.test_client().post("/api/surface/view", json={**SURF, **RUN, "paths": True})
    assert r.status_code == 500
    assert "could not compute" in r.get_json()["error"] and b"kernel exploded" not in r.data
    assert b"Traceback" not in r.data
