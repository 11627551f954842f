"""Every server callback of every page, sent garbage as a hostile client would: never a 5xx.

A browser never sends these values, but anyone can POST to ``/_dash-update-component``.  Each
callback must answer a value it cannot use with a message or ``no_update`` (HTTP 200, or 204 for
PreventUpdate), never a traceback and a 500.  It must do so by checking its input: the
app-wide error handler (``clipviz.web.app.callback_error``), which turns an unexpected exception
into a logged ERROR and a message, is the net, and this test fails if the net is used.
"""

from __future__ import annotations

import json
import logging

import pytest
from dash._utils import split_callback_id

# Values a hostile or broken client could put in any property.
GARBAGE = [1e308, -1e308, "1e308", -1, 0, 2**70, True, "", "abc", "NaN", None, [], {}, [1e308],
           ["x", None], {"a": [1, 2]}, "<script>alert(1)</script>", "9" * 400]
# JSON has no NaN or Infinity, but Python's parser (Flask's) reads the bare words.
RAW_NUMBERS = ["NaN", "Infinity", "-Infinity"]


def _server_callbacks(app):
    for key, cb in app.callback_map.items():
        if callable(cb.get("callback")):
            yield key, cb


def _dash_own(key: str) -> bool:
    """Dash's own pages router (``_pages_location`` -> ``_pages_content``): not clipviz code, so
    its failure on a garbage URL may fall into the net, which must still answer it."""
    return "_pages_" in key


def _body(key: str, cb: dict, value_json: str) -> str:
    """The request body the renderer would send, with every input and state set to one value."""
    outs = split_callback_id(key)
    outs = outs if isinstance(outs, list) else [outs]
    ins = [{"id": i["id"], "property": i["property"], "value": "@V@"} for i in cb["inputs"]]
    st = [{"id": s["id"], "property": s["property"], "value": "@V@"} for s in cb["state"]]
    body = json.dumps({"output": key, "outputs": outs if len(outs) > 1 else outs[0], "inputs": ins,
                       "state": st, "changedPropIds": [f"{i['id']}.{i['property']}" for i in ins]})
    return body.replace('"@V@"', value_json)


@pytest.fixture
def client(make_app, tmp_path, monkeypatch):
    monkeypatch.setenv("CLIPVIZ_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("CLIPVIZ_REDIS_URL", raising=False)
    monkeypatch.setenv("CLIPVIZ_LOCAL_WORKERS", "1")
    app = make_app(warm=False)
    return app, app.server.test_client()


def test_every_server_callback_is_reached(client):
    app, _ = client
    keys = [k for k, _ in _server_callbacks(app)]
    # the pages' own callbacks: the surface page's 3-D view and downloads, the training page's
    # refresh and forms, the bifurcation and dynamics pages' figures
    assert any("es-3d" in k for k in keys) and any("tr-progress" in k for k in keys), keys
    assert len(keys) >= 15, keys


def test_garbage_never_answers_5xx_nor_falls_into_the_error_net(client, caplog):
    app, http = client
    failures = []
    values = [json.dumps(v) for v in GARBAGE] + RAW_NUMBERS
    for key, cb in _server_callbacks(app):
        for v in values:
            caplog.clear()
            with caplog.at_level(logging.ERROR):
                r = http.post("/_dash-update-component", data=_body(key, cb, v),
                              content_type="application/json")
            errors = [rec for rec in caplog.records if rec.levelno >= logging.ERROR]
            if _dash_own(key):
                errors = [rec for rec in errors if not rec.exc_info]  # the net's own records
            if r.status_code >= 500 or errors:
                what = errors[0].getMessage()[:200] if errors else r.get_data(as_text=True)[:200]
                failures.append(f"{key} <- {v[:40]}: HTTP {r.status_code}: {what}")
            elif r.status_code == 200:
                text = r.get_data(as_text=True)
                assert "Traceback" not in text, (key, v, text[:500])
    assert not failures, f"{len(failures)} garbage requests failed:\n" + "\n".join(failures[:40])


def test_the_error_net_logs_the_traceback_and_answers_with_a_message(client, caplog):
    """An exception no check foresaw: logged with its traceback, a message on the page, HTTP 200."""
    from dash import Input, Output

    app, http = client

    @app.callback(Output("app-error", "children", allow_duplicate=True), Input("boom", "n_clicks"),
                  prevent_initial_call=True)
    def boom(n):
        raise RuntimeError("kaboom")

    key = next(k for k, cb in _server_callbacks(app) if cb["callback"].__name__ == "boom"
               or "boom" in json.dumps(cb["inputs"]))
    with caplog.at_level(logging.ERROR):
        r = http.post("/_dash-update-component", data=_body(key, app.callback_map[key], "1"),
                      content_type="application/json")
    assert r.status_code < 500
    recs = [rec for rec in caplog.records if rec.levelno >= logging.ERROR]
    assert recs and recs[0].exc_info and "kaboom" in str(recs[0].exc_info[1])
    text = r.get_data(as_text=True)
    assert "Traceback" not in text and "kaboom" not in text  # no internals shown to the user
    assert "app-error" in text and "went wrong" in text
