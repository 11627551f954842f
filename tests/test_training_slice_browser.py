"""The error surface at a kept update, on the training page in headless Chromium (issue 16):
a short run that clips keeps its updates, ringed on the ‖g‖ curve; a click on a ring computes
the slice in the background and draws it with plain BPTT's and the clipped step and the
curvature numbers; the slice's state is in the link, and the link opens it again."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import pytest
from selenium.webdriver.common.actions.action_builder import ActionBuilder

from clipviz.web.pages import training as tp

SHOT = "/tmp/slice.png"

# clipping fires on every update (tau far below |g|), no momentum: the clipped step lies on
# plain BPTT's, tau / |g| as long
QUERY = "?updates=60&eval_every=30&hidden=8&seq_len=10&batch=10&tau=0.05&momentum=0&lr=0.05&seed=3"

#: where the rings of the ‖g‖ panel are drawn, in pixels of the viewport (the plot scrolled
#: into view first)
RINGS = """
const gd = document.querySelector('#tr-curves .js-plotly-plot');
gd.scrollIntoView({block: 'center'});
const L = gd._fullLayout, xa = L.xaxis2, ya = L.yaxis2, r = gd.getBoundingClientRect();
const t = gd._fullData.find(t => (t.name || '').endsWith('(click one for its error surface)'));
if (!t) { return null; }
return Array.from(t.x).map((x, i) => ({
  update: t.customdata[i][1], run: t.customdata[i][0],
  x: r.left + xa._offset + xa.c2p(x), y: r.top + ya._offset + ya.c2p(t.y[i])}));
"""

SLICE = """
const gd = document.querySelector('#tr-slice-fig .js-plotly-plot');
return gd && gd._fullData ? gd._fullData.map(t => ({name: t.name, type: t.type,
  x: Array.from(t.x || []), y: Array.from(t.y || [])})) : [];
"""


def _until(fn, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def _query(dash_duo):
    return {k: v[0] for k, v in parse_qs(urlsplit(dash_duo.driver.current_url).query).items()}


@pytest.mark.browser
def test_click_a_kept_update_and_see_its_error_surface(dash_duo, make_app, store_env):
    dash_duo.start_server(make_app())
    dash_duo.driver.set_window_size(1400, 2200)
    dash_duo.wait_for_page(url=dash_duo.server_url + "/training" + QUERY)
    dash_duo.wait_for_element("#tr-run", timeout=15).click()
    dash_duo.wait_for_contains_text("#tr-msg", "started 1 run", timeout=15)
    (run,) = tp._jobs().store.list()
    tp._jobs().wait([run.id], timeout=120)
    run = tp._jobs().store.get(run.id)
    assert run.status == "finished" and run.result["clipped_fraction"] > 0.5
    kept = tp._jobs().store.snapshot_index(run.id)
    assert run.result["snapshots_kept"] == len(kept) > 0
    rings = _until(lambda: dash_duo.driver.execute_script(RINGS), 30, "no rings on the ‖g‖ curve")
    assert [r["update"] for r in rings] == [k["update"] for k in kept]
    assert {r["run"] for r in rings} == {run.id}
    ring = max(rings, key=lambda r: next(k["grad_norm"] for k in kept if k["update"] == r["update"]))
    # a real click, a little off the ring's centre (where a ring is nearer than the curve under it)
    ring = next(r for r in dash_duo.driver.execute_script(RINGS) if r["update"] == ring["update"])
    mouse = ActionBuilder(dash_duo.driver)
    mouse.pointer_action.move_to_location(round(ring["x"]) + 2, round(ring["y"]) + 1)
    mouse.pointer_action.click()
    mouse.perform()
    try:
        dash_duo.wait_for_contains_text("#tr-slice-numbers", "gᵀHg/‖g‖²", timeout=60)
    except Exception:  # what the page showed instead, to look at
        dash_duo.driver.save_screenshot("/tmp/slice-failed.png")
        raise
    numbers = dash_duo.find_element("#tr-slice-numbers").text
    assert "top Hessian eigenvalue" in numbers and "angle between g and the top eigenvector" in numbers
    assert "τ = 0.05" in numbers
    traces = _until(lambda: dash_duo.driver.execute_script(SLICE), 20, "no slice drawn")
    assert traces[0]["type"] == "heatmap"
    bptt = next(t for t in traces if t["name"] == "plain BPTT step")
    clipped = next(t for t in traces if t["name"].startswith("clipped step (τ = 0.05)"))
    assert bptt["x"] == [0, 1] and bptt["y"] == [0, 0]
    # the clipped step: the same direction, tau / |g| of plain BPTT's
    job = tp._jobs().store.find_slice(run.id, ring["update"])
    assert job.status == "finished"
    assert clipped["x"][1] == pytest.approx(job.result["tau"] / job.result["grad_norm"], rel=1e-5)
    assert 0 < clipped["x"][1] < 1 and abs(clipped["y"][1]) < 1e-6
    assert "done" in dash_duo.find_element("#tr-slice-text").text
    assert dash_duo.find_element("#tr-slice-progress").get_attribute("value") == "1"
    # the link holds the slice
    q = _until(lambda: (lambda q: q if q.get("slice") else None)(_query(dash_duo)), 10, "no slice in the URL")
    assert q["slice_run"] == run.id and q["slice"] == str(ring["update"]) and q["slice3d"] == "0"
    dash_duo.driver.save_screenshot(SHOT)
    # 3-D on demand, in the link too
    dash_duo.find_element("#tr-slice3d input").click()
    _until(lambda: any(t["type"] == "surface" for t in dash_duo.driver.execute_script(SLICE)), 20,
           "no surface")
    _until(lambda: _query(dash_duo).get("slice3d") == "1", 10, "slice3d not in the URL")
    link = dash_duo.driver.current_url

    # the link opens the same slice again (stored: not computed twice), in 3-D
    dash_duo.wait_for_page(url=dash_duo.server_url + "/training")
    dash_duo.wait_for_page(url=link)
    dash_duo.wait_for_contains_text("#tr-slice-numbers", "gᵀHg/‖g‖²", timeout=30)
    traces = _until(lambda: dash_duo.driver.execute_script(SLICE), 20, "no slice drawn")
    assert traces[0]["type"] == "surface"
    assert any(t["name"] == "plain BPTT step" for t in traces)
    assert dash_duo.find_element("#tr-slice3d input").is_selected()
    assert _until(lambda: dash_duo.driver.execute_script(RINGS), 30, "no rings after the link")
    store = tp._jobs().store
    assert store.find_slice(run.id, ring["update"]).id == job.id

    # bad links: a clear message, never an error page
    dash_duo.wait_for_page(url=dash_duo.server_url + "/training?slice_run=zz9&slice=5")
    dash_duo.wait_for_contains_text("#tr-slice-msg", "no run 'zz9' in the run store", timeout=15)
    missing = next(u for u in range(1, 1000) if u not in {k["update"] for k in kept})
    dash_duo.wait_for_page(url=dash_duo.server_url + f"/training?slice_run={run.id}&slice={missing}")
    dash_duo.wait_for_contains_text("#tr-slice-msg", f"kept no snapshot at update {missing}", timeout=15)
    dash_duo.wait_for_page(url=dash_duo.server_url + "/training?slice_run=a-b&slice=x&slice3d=maybe")
    dash_duo.wait_for_contains_text("#url-notes", "is not an update number", timeout=15)
    notes = dash_duo.find_element("#url-notes").text
    assert "is not a run id" in notes and "neither 1 nor 0" in notes
    assert [e for e in dash_duo.get_logs() or [] if e.get("level") == "SEVERE"] == []
