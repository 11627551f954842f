"""The training page in headless Chromium: what a learner sees (issue 13).

Each test reads the phenomenon from the drawn figure (``_fullData``/``_fullLayout``) or the DOM:
the ‖g‖ and validation panels span the run, the one-click BPTT/clipping pair shows the clipped
run solving the task while plain BPTT does not, ρ starts at update 0 below 1/γ and the clipped
run's ρ crosses it, an absent data set is refused with the command that fetches it, information
is not drawn as an error, a cancelled run's progress is measured against its budget, and the
sweep's success rates carry n and the Wilson interval.
"""

from __future__ import annotations

import time

import pytest

from clipviz.web.pages import training as tp

SHOTS = "/tmp"  # screenshots to look at (never in the repository)

#: the figure's traces, per panel, as the browser drew them
TRACES = """
const gd = document.querySelector('#tr-curves .js-plotly-plot');
const L = gd._fullLayout;
return {
  traces: gd._fullData.map(t => ({name: t.name, group: t.legendgroup, xaxis: t.xaxis, yaxis: t.yaxis,
                                  x: Array.from(t.x || []), y: Array.from(t.y || [])})),
  ranges: {g: L.xaxis2.range, valid: L.xaxis4.range, loss: L.xaxis.range, rho: L.xaxis3.range},
  shapes: (L.shapes || []).map(s => s.y0),
  notes: (L.annotations || []).map(a => a.text),
};
"""

ERROR_RED = "rgb(185, 28, 28)"  # .msg in style.css


def open_page(dash_duo, app, query=""):
    dash_duo.start_server(app)
    dash_duo.driver.set_window_size(1400, 1700)
    dash_duo.wait_for_page(url=dash_duo.server_url + "/training" + query)
    dash_duo.wait_for_element("#tr-pair", timeout=15)


def wait_until_all_ended(dash_duo, timeout):
    """The progress line reports every tracked run ended (no "running" or "queued" left)."""
    deadline = time.monotonic() + timeout
    while True:
        text = dash_duo.find_element("#tr-progress-text").text
        states = text.rsplit(" · ", 1)[-1] if " · " in text else ""
        if states and "running" not in states and "queued" not in states:
            return text
        assert time.monotonic() < deadline, text
        time.sleep(0.2)


def figure_when(dash_duo, ready, timeout=30):
    """The curves figure once ``ready(figure)`` holds (the next refresh draws what the store has)."""
    deadline = time.monotonic() + timeout
    while True:
        fig = dash_duo.driver.execute_script(TRACES)
        if ready(fig):
            return fig
        assert time.monotonic() < deadline, (fig["shapes"], fig["notes"][4:], [
            (t["name"], t["group"], t["xaxis"], len(t["x"]), t["x"][:3], t["y"][:3]) for t in fig["traces"]])
        time.sleep(0.2)


def lines(fig):
    """The ρ panel's reference lines (Plotly hands a log axis's shape back through log10)."""
    return sorted(round(y, 9) for y in fig["shapes"])


def panel(fig, xaxis, group):
    return [t for t in fig["traces"] if t["xaxis"] == xaxis and t["group"] == group and t["name"] == group]


def message(dash_duo, selector="#tr-msg"):
    return dash_duo.driver.execute_script(
        f"const m = document.querySelector('{selector}');"
        "return {text: m.textContent, cls: m.className, color: getComputedStyle(m).color};")


def no_browser_errors(dash_duo):
    return [e for e in dash_duo.get_logs() or [] if e.get("level") in ("SEVERE", "WARNING")]


@pytest.mark.browser
@pytest.mark.slow
def test_one_click_pair_shows_clipping_solve_what_bptt_cannot(dash_duo, make_app, store_env):
    """The default (small-scale) protocol with a smaller budget: plain BPTT and rescaling from one
    click, overlaid.  The clipped run solves temporal order and its ρ crosses 1 from below; BPTT's
    does not solve it; both panels on the right span every update of the run."""
    budget = 1000
    open_page(dash_duo, make_app(), f"?updates={budget}")
    dash_duo.find_element("#tr-pair").click()
    dash_duo.wait_for_contains_text("#tr-msg", "started plain BPTT", timeout=15)
    msg = message(dash_duo)
    assert msg["cls"] == "msg info" and msg["color"] != ERROR_RED  # information, not an error
    dash_duo.wait_for_contains_text("#tr-progress-text", "running", timeout=30)
    dash_duo.driver.save_screenshot(f"{SHOTS}/clipviz-training-pair-during.png")
    wait_until_all_ended(dash_duo, timeout=120)
    bptt, clipped = sorted(tp._jobs().store.list(), key=lambda r: r.config["clip"] != "none")
    assert (bptt.config["clip"], clipped.config["clip"]) == ("none", "norm")
    assert bptt.result["solved"] is False and bptt.done == budget
    assert clipped.result["solved"] is True and clipped.done < budget
    lb, lc = tp.run_label(bptt), tp.run_label(clipped)
    fig = figure_when(dash_duo, lambda f: panel(f, "x2", lb) and len(panel(f, "x2", lb)[0]["x"]) == budget)
    dash_duo.driver.save_screenshot(f"{SHOTS}/clipviz-training-pair-after.png")
    # the ‖g‖ and validation panels (one matched x axis) cover every update of the run
    for key in ("g", "valid", "loss", "rho"):
        lo, hi = fig["ranges"][key]
        assert lo <= 1 and hi >= budget, (key, fig["ranges"][key])
    # the validation panel shows its points: the clipped run reaches 1 (solved), BPTT never does
    (vb,), (vc,) = panel(fig, "x4", lb), panel(fig, "x4", lc)
    assert len(vb["x"]) == budget // 50 and max(vb["y"]) < 1.0
    assert max(vc["y"]) == 1.0 and vc["x"][-1] == clipped.done
    # ‖g‖ of the clipped run spikes above its threshold line τ = 1
    (gc,) = panel(fig, "x2", lc)
    (tau,) = [t for t in fig["traces"] if t["name"].endswith("threshold τ=1")]
    assert max(gc["y"]) > 10 * tau["y"][0]
    # ρ from update 0, below 1/γ = 1 for tanh; the clipped run's ρ crosses it
    (rb,), (rc,) = panel(fig, "x3", lb), panel(fig, "x3", lc)
    assert rb["x"][0] == 0 and rc["x"][0] == 0
    assert rc["y"][0] < 1.0 < max(rc["y"]) and rb["y"][0] < 1.0 < max(rb["y"])
    assert lines(fig) == [1.0] and any("tanh" in (n or "") for n in fig["notes"])
    rows = dash_duo.find_element("#tr-table").text
    assert "not solved" in rows and rows.count("solved") == 2

    # a sigmoid run: the reference line moves to 4 (1/γ with γ = max σ' = 1/4)
    dash_duo.driver.execute_script(
        "Array.from(document.querySelectorAll('#tr-act label')).find(l => l.textContent.trim() == 'sigmoid')"
        ".click();")
    for name, value in (("updates", "40"), ("eval_every", "20")):
        dash_duo.find_element(f"#tr-{name}").clear()
        dash_duo.find_element(f"#tr-{name}").send_keys(value + "\t")
    time.sleep(0.5)
    dash_duo.find_element("#tr-run").click()
    dash_duo.wait_for_contains_text("#tr-msg", "started 1 run", timeout=15)
    (sig,) = [r for r in tp._jobs().store.list() if r.config["activation"] == "sigmoid"]
    tp._jobs().wait([sig.id], timeout=60)
    ls = tp.run_label(sig)
    fig = figure_when(dash_duo, lambda f: lines(f) == [4.0] and panel(f, "x3", ls) and panel(f, "x3", ls)[0]["x"])
    (rs,) = panel(fig, "x3", ls)
    assert rs["x"][0] == 0 and rs["y"][0] < 4.0 and any("sigmoid" in (n or "") for n in fig["notes"])
    # all three runs selected: both lines, each labelled
    for box in dash_duo.find_elements("#tr-table .ag-row .ag-selection-checkbox input[type=checkbox]"):
        box.click()
    fig = figure_when(dash_duo, lambda f: lines(f) == [1.0, 4.0])
    assert sum("ρ = 1/γ" in (n or "") for n in fig["notes"]) == 2
    dash_duo.driver.save_screenshot(f"{SHOTS}/clipviz-training-three-runs.png")
    assert no_browser_errors(dash_duo) == []


@pytest.mark.browser
def test_absent_data_set_refused_and_cancelled_progress_shows_the_budget(dash_duo, make_app, store_env,
                                                                          monkeypatch, tmp_path):
    from clipviz import datasets

    monkeypatch.setattr(datasets, "data_dirs", lambda: [tmp_path / "no-data"])  # nothing downloaded
    open_page(dash_duo, make_app(), "?task=characters&dataset=text8")
    dash_duo.find_element("#tr-dataset").click()  # the dropdown lists text8 as absent, disabled
    dash_duo.wait_for_contains_text("body", "text8 (not downloaded: clipviz data fetch text8)", timeout=10)
    disabled = dash_duo.driver.execute_script(
        "return Array.from(document.querySelectorAll('.dash-dropdown-option input'))"
        ".map(i => [i.value, i.disabled]);")
    assert ["text8", True] in disabled and ["generated", False] in disabled, disabled
    dash_duo.driver.execute_script("document.activeElement.blur();")
    dash_duo.find_element("body").send_keys("\ue00c")  # Escape closes the menu
    dash_duo.find_element("#tr-run").click()
    dash_duo.wait_for_contains_text("#tr-msg", "clipviz data fetch text8", timeout=15)
    msg = message(dash_duo)
    assert msg["cls"] == "msg" and msg["color"] == ERROR_RED and "not on this machine" in msg["text"]
    assert tp._jobs().store.list() == []  # refused up front: nothing queued, nothing failed later

    # a long run, cancelled: its progress reads against the budget
    dash_duo.wait_for_page(url=dash_duo.server_url + "/training?updates=200000&eval_every=1000&hidden=8")
    dash_duo.wait_for_element("#tr-run", timeout=15).click()
    dash_duo.wait_for_contains_text("#tr-msg", "started 1 run", timeout=15)
    assert message(dash_duo)["cls"] == "msg info"
    dash_duo.wait_for_contains_text("#tr-progress-text", "running", timeout=30)
    dash_duo.find_element("#tr-cancel").click()
    dash_duo.wait_for_contains_text("#tr-msg", "cancel requested for 1 run", timeout=10)
    assert message(dash_duo)["color"] != ERROR_RED
    dash_duo.wait_for_contains_text("#tr-progress-text", "cancelled", timeout=10)
    (run,) = tp._jobs().store.list()
    dash_duo.wait_for_contains_text("#tr-progress-text", f"{run.done} / 200000 updates", timeout=5)
    assert 0 < run.done < 200_000 and " left" not in dash_duo.find_element("#tr-progress-text").text
    assert no_browser_errors(dash_duo) == []


@pytest.mark.browser
def test_sweep_points_carry_n_and_the_wilson_interval(dash_duo, make_app, store_env):
    open_page(dash_duo, make_app(), "?lengths=8&sw_seeds=2&sw_updates=30&hidden=8")
    dash_duo.find_element("#tr-sweep-run").click()
    dash_duo.wait_for_contains_text("#tr-sweep-msg", "4 runs queued", timeout=15)
    assert message(dash_duo, "#tr-sweep-msg")["cls"] == "msg info"
    dash_duo.wait_for_contains_text("#tr-sweep-status", "4 finished", timeout=120)
    deadline = time.monotonic() + 10
    while True:
        traces = dash_duo.driver.execute_script(
            "const gd = document.querySelector('#tr-sweep-fig .js-plotly-plot');"
            "return gd._fullData.map(t => ({y: Array.from(t.y), text: Array.from(t.text || []),"
            " up: Array.from((t.error_y || {}).array || []), down: Array.from((t.error_y || {}).arrayminus || []),"
            " visible: (t.error_y || {}).visible}));")
        if len(traces) == 2 and all(t["text"] == ["n=2"] for t in traces):
            break
        assert time.monotonic() < deadline, traces
        time.sleep(0.2)
    for t in traces:
        assert t["visible"] and len(t["up"]) == len(t["down"]) == 1
        # two runs per cell: the interval is wide, and never leaves [0, 100] %
        assert t["up"][0] + t["down"][0] > 30 and 0 <= t["y"][0] - t["down"][0] and t["y"][0] + t["up"][0] <= 100
    dash_duo.driver.save_screenshot(f"{SHOTS}/clipviz-training-sweep.png")
    assert no_browser_errors(dash_duo) == []


@pytest.mark.browser
def test_protocol_fills_the_form_and_names_itself(dash_duo, make_app, store_env):
    open_page(dash_duo, make_app())
    assert "small scale (clipviz's own" in dash_duo.find_element("#tr-preset-note").text
    assert dash_duo.find_element("#tr-lr").get_attribute("value") == "0.03"
    dash_duo.driver.execute_script(
        "Array.from(document.querySelectorAll('#tr-preset label')).find(l => l.textContent.includes('paper'))"
        ".click();")
    dash_duo.wait_for_contains_text("#tr-preset-note", "section 4.3", timeout=10)
    paper = tp.protocol_values("paper", "temporal_order")
    for name in ("lr", "momentum", "batch", "updates", "eval_every", "hidden"):
        assert float(dash_duo.find_element(f"#tr-{name}").get_attribute("value")) == paper[name], name
    checked = dash_duo.driver.execute_script("return document.querySelector('#tr-act input:checked').value;")
    assert checked == "sigmoid"
    # another task: the same protocol for it, with a data set that is on this machine
    dash_duo.select_dcc_dropdown("#tr-task", value="music")
    dash_duo.wait_for_contains_text("#tr-preset-note", "section 4.1", timeout=10)
    music = tp.protocol_values("paper", "music")
    assert float(dash_duo.find_element("#tr-tau").get_attribute("value")) == music["tau"] == 120.0
    assert music["dataset"] in dash_duo.find_element("#tr-dataset").text
    # the link carries the protocol and the values it filled in
    link = dash_duo.find_element("#tr-link").get_attribute("value")
    assert "preset=paper" in link and "task=music" in link and "tau=120" in link
    assert no_browser_errors(dash_duo) == []
