"""Browser tests of the web app (dash[testing], headless Chromium): run with --headless."""

from __future__ import annotations

import time

import pytest
from selenium.webdriver.common.actions.action_builder import ActionBuilder
from selenium.webdriver.common.keys import Keys

pytestmark = pytest.mark.browser

GD = "document.querySelector('#{} .js-plotly-plot')"


def gd_eval(dash_duo, graph_id: str, expr: str):
    return dash_duo.driver.execute_script(
        f"const gd = {GD.format(graph_id)}; if (!gd || !gd.data) {{ return null; }} return {expr};")


def wait_until(fn, timeout=8.0, what="condition"):
    end = time.time() + timeout
    last = None
    while time.time() < end:
        last = fn()
        if last:
            return last
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what} (last value {last!r})")


ZSUM = "gd._fullData[0].z.reduce((s, r) => s + r.reduce((a, b) => a + b, 0), 0)"


def severe_logs(dash_duo):
    return [e for e in dash_duo.get_logs() or [] if e.get("level") in ("SEVERE", "WARNING")]


def open_surface(dash_duo, make_app, query=""):
    dash_duo.start_server(make_app())
    dash_duo.wait_for_page(url=dash_duo.server_url + "/surface" + query)
    dash_duo.wait_for_element("#es-surface .js-plotly-plot", timeout=15)
    wait_until(lambda: gd_eval(dash_duo, "es-surface", "gd.data.length") == 2, what="surface traces")
    wait_until(lambda: (gd_eval(dash_duo, "es-paths", "gd.data.length") or 0) >= 3, what="path traces")


def test_home_page_loads_with_empty_console(dash_duo, make_app):
    dash_duo.start_server(make_app())
    dash_duo.wait_for_text_to_equal("h2", "The exploding-gradient problem, made visible", timeout=10)
    links = [a.get_attribute("href") for a in dash_duo.find_elements(".card a")]
    assert any(h.endswith("/surface") for h in links)
    assert severe_logs(dash_duo) == []


def test_surface_page_loads_with_empty_console(dash_duo, make_app):
    open_surface(dash_duo, make_app)
    # the heatmap holds the default 256 x 256 grid, both paths are drawn from the default start
    assert gd_eval(dash_duo, "es-surface", "gd._fullData[0].z.length") == 256
    assert gd_eval(dash_duo, "es-paths", "gd._fullData[0].x[0]") == pytest.approx(4.0)
    assert gd_eval(dash_duo, "es-diag", "gd.data.length") >= 4
    # the axis titles are typeset (MathJax) on the title layer over the surface
    wait_until(lambda: dash_duo.driver.execute_script(
        "return document.querySelectorAll('#es-titles .g-xtitle svg, #es-titles .g-ytitle svg').length") == 2,
        what="the MathJax axis titles")
    wait_until(lambda: "/surface?" in dash_duo.find_element("#es-link").get_attribute("value"),
               what="the shareable link")
    assert severe_logs(dash_duo) == []


def press_slider(dash_duo, slider_id: str, key=Keys.ARROW_RIGHT, times: int = 1):
    thumb = dash_duo.find_element(f"#{slider_id} [role=slider]")
    thumb.send_keys(*([key] * times))


def test_surface_slider_changes_the_surface(dash_duo, make_app):
    open_surface(dash_duo, make_app)
    title = dash_duo.find_element("#es-title").text
    assert "E₅₀(w, b)" in title
    z0 = gd_eval(dash_duo, "es-surface", ZSUM)
    press_slider(dash_duo, "es-T", times=3)  # T: 50 -> 53
    wait_until(lambda: "E₅₃(w, b)" in dash_duo.find_element("#es-title").text, what="the title to show T = 53")
    wait_until(lambda: gd_eval(dash_duo, "es-surface", ZSUM) != z0, what="the surface to change")
    # the tick labels and the colour bar are on the frame layer, over the same plot area
    assert dash_duo.driver.execute_script(
        "return document.querySelectorAll('#es-frame .xtick, #es-frame .ytick').length") > 4
    assert dash_duo.driver.execute_script("return document.querySelectorAll('#es-frame .colorbar').length") == 1
    assert dash_duo.driver.execute_script("return document.querySelectorAll('#es-surface .xtick').length") == 0
    wait_until(lambda: "T=53" in dash_duo.find_element("#es-link").get_attribute("value"),
               what="the link to carry T=53")
    assert severe_logs(dash_duo) == []


def test_trajectory_slider_moves_the_paths(dash_duo, make_app):
    open_surface(dash_duo, make_app)
    heat_uid = gd_eval(dash_duo, "es-surface", "gd._fullData[0].z[10][10]")
    press_slider(dash_duo, "es-w0", times=50)  # w0: 4.00 -> 4.50 in steps of 0.01
    wait_until(lambda: abs((gd_eval(dash_duo, "es-paths", "gd._fullData[0].x[0]") or 0) - 4.5) < 1e-9,
               what="the paths to start at w0 = 4.5")
    assert gd_eval(dash_duo, "es-paths", "gd._fullData[2].x[0]") == pytest.approx(4.5)
    assert gd_eval(dash_duo, "es-surface", "gd._fullData[0].z[10][10]") == heat_uid
    # every step is marked by the page's SVG markers, drawn by the browser at the lines' vertices
    marks = dash_duo.driver.execute_script(
        "return ['cv-unclipped', 'cv-clipped', 'cv-fired'].map(u => {"
        " const p = document.querySelector('#es-paths .trace' + u + ' path.js-line');"
        " const id = p && getComputedStyle(p).markerMid.replace(/^url\\(\"?#|\"?\\)$/g, '');"
        " return [id, !!document.getElementById(id), p ? p.getAttribute('d').split(/[ML]/).length - 1 : 0]; });")
    for (mark, defined, vertices), uid in zip(marks, ("cv-unclipped", "cv-clipped", "cv-fired")):
        assert mark == f"{uid}-step" and defined and vertices >= 1, (uid, mark, defined, vertices)
    n_kept = gd_eval(dash_duo, "es-paths", "gd._fullData[1].x.length")
    assert marks[1][2] == n_kept  # one vertex (one marker) per kept step: nothing simplified away
    assert severe_logs(dash_duo) == []


def test_click_on_surface_moves_the_start(dash_duo, make_app):
    open_surface(dash_duo, make_app)
    # click at 60 % across and 40 % up the plot area: w = -2 + 0.6 * 14 = 6.4, b = -8 + 0.4 * 10 = -4
    x, y = dash_duo.driver.execute_script(
        f"const gd = {GD.format('es-surface')}; gd.scrollIntoView(); const r = gd.getBoundingClientRect();"
        "const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;"
        "return [r.left + xa._offset + 0.6 * xa._length, r.top + ya._offset + 0.6 * ya._length];")
    actions = ActionBuilder(dash_duo.driver)
    actions.pointer_action.move_to_location(int(x), int(y)).click()
    actions.perform()
    wait_until(lambda: abs((gd_eval(dash_duo, "es-paths", "gd._fullData[2].x[0]") or 0) - 4.0) > 0.2,
               what="the start to move")
    w0 = gd_eval(dash_duo, "es-paths", "gd._fullData[2].x[0]")
    b0 = gd_eval(dash_duo, "es-paths", "gd._fullData[2].y[0]")
    assert w0 == pytest.approx(6.4, abs=0.1) and b0 == pytest.approx(-4.0, abs=0.1)
    assert gd_eval(dash_duo, "es-paths", "gd._fullData[0].x[0]") == pytest.approx(w0)
    assert severe_logs(dash_duo) == []


def test_url_restores_the_view(dash_duo, make_app):
    q = "?w_min=0&w_max=10&b_min=-6&b_max=1&res=64&T=20&act=tanh&log=0&w0=2.5&b0=-1.25&lr=0.5&n=30" \
        "&clip=value&tau=0.1"
    open_surface(dash_duo, make_app, q)
    assert gd_eval(dash_duo, "es-surface", "gd._fullData[0].z.length") == 64
    assert gd_eval(dash_duo, "es-surface", "gd.layout.xaxis.range") == [0, 10]
    assert gd_eval(dash_duo, "es-surface", "gd.layout.yaxis.range") == [-6, 1]
    assert gd_eval(dash_duo, "es-paths", "gd._fullData[2].x[0]") == 2.5
    assert gd_eval(dash_duo, "es-paths", "gd._fullData[2].y[0]") == -1.25
    assert gd_eval(dash_duo, "es-paths", "gd._fullData[0].x.length") <= 31
    assert "E₂₀(w, b)" in dash_duo.find_element("#es-title").text
    assert gd_eval(dash_duo, "es-frame", "gd.layout.xaxis.range") == [0, 10]
    assert "value clipping" in gd_eval(dash_duo, "es-paths", "gd._fullData[1].name")
    assert dash_duo.find_element("#es-act input[value=tanh]").is_selected()
    link = wait_until(lambda: "act=tanh" in dash_duo.find_element("#es-link").get_attribute("value")
                      and dash_duo.find_element("#es-link").get_attribute("value"), what="link")
    for part in ("T=20", "res=64", "w0=2.5", "clip=value", "tau=0.1", "log=0"):
        assert part in link
    assert severe_logs(dash_duo) == []


def test_malformed_url_shows_message_without_console_error(dash_duo, make_app):
    open_surface(dash_duo, make_app, "?T=abc&res=99999&clip=bogus&w_min=5&w_max=1&zzz=1")
    dash_duo.wait_for_contains_text("#es-msg-T", "not an integer", timeout=5)
    assert "out of range" in dash_duo.find_element("#es-msg-res").text
    assert "choose one of" in dash_duo.find_element("#es-msg-clip").text
    assert "w_min < w_max" in dash_duo.find_element("#es-msg-w_range").text
    assert "zzz" in dash_duo.find_element("#url-notes").text
    # the defaults are drawn instead
    assert gd_eval(dash_duo, "es-surface", "gd._fullData[0].z.length") == 256
    assert severe_logs(dash_duo) == []


def test_typed_bad_value_keeps_figure_and_explains(dash_duo, make_app):
    open_surface(dash_duo, make_app)
    before = gd_eval(dash_duo, "es-surface", ZSUM)
    box = dash_duo.find_element("#es-x0")
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys("1e9", Keys.ENTER)
    dash_duo.wait_for_contains_text("#es-msg-x0", "out of range", timeout=5)
    assert gd_eval(dash_duo, "es-surface", ZSUM) == before
    # a good value clears the message and redraws
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys("0.25", Keys.ENTER)
    wait_until(lambda: dash_duo.find_element("#es-msg-x0").text == "", what="message cleared")
    wait_until(lambda: gd_eval(dash_duo, "es-surface", ZSUM) != before,
               what="surface redrawn")
    assert severe_logs(dash_duo) == []


def test_3d_view_on_demand(dash_duo, make_app):
    open_surface(dash_duo, make_app, "?res=64")
    assert not dash_duo.find_element("#es-3d-box").is_displayed()
    dash_duo.find_element("#es-view3d input").click()
    wait_until(lambda: gd_eval(dash_duo, "es-3d", "gd._fullData.length ? gd._fullData[0].type : null") == "surface",
               timeout=15, what="the 3-D surface")
    assert dash_duo.find_element("#es-3d-box").is_displayed()
    wait_until(lambda: "view3d=1" in dash_duo.find_element("#es-link").get_attribute("value"), what="link")
    assert severe_logs(dash_duo) == []


def test_png_and_svg_buttons_export_each_figure_with_all_its_layers(dash_duo, make_app):
    """The page draws each figure as stacked layers; its PNG / SVG buttons export one figure with
    the surface, the paths, tick labels, colour bar, title, axis titles and legend (the side
    figure: its traces and its MathJax axis titles)."""
    open_surface(dash_duo, make_app)
    wait_until(lambda: dash_duo.driver.execute_script(
        "return document.querySelectorAll('#es-diag-titles .g-ytitle svg, #es-diag-titles .g-y2title svg,"
        " #es-diag-titles .g-x2title svg').length") == 3, what="the side figure's MathJax axis titles")
    # keep the file the page would download
    dash_duo.driver.execute_script(
        "window.__exported = []; HTMLAnchorElement.prototype.click = function () {"
        " window.__exported.push([this.download, this.href]); };")
    dash_duo.find_element("#es-svg").click()
    wait_until(lambda: dash_duo.driver.execute_script("return window.__exported.length") == 1, what="surface SVG")
    dash_duo.find_element("#es-diag-svg").click()
    wait_until(lambda: dash_duo.driver.execute_script("return window.__exported.length") == 2, what="side SVG")
    dash_duo.find_element("#es-png").click()
    wait_until(lambda: dash_duo.driver.execute_script("return window.__exported.length") == 3, what="surface PNG")
    files = dash_duo.driver.execute_script(
        "return window.__exported.map(([n, h]) => [n, h.startsWith('data:image/svg') ? "
        "decodeURIComponent(h.slice(h.indexOf(',') + 1)) : h.slice(0, 30)]);")
    (n1, surf), (n2, side), (n3, png) = files
    assert n1 == "clipviz-error-surface.svg" and n2 == "clipviz-gradient-norms.svg"
    assert n3 == "clipviz-error-surface.png" and png.startswith("data:image/png;base64,")
    for part in ("Error surface E₅₀(w, b)", "no clipping", "norm clipping, τ=1", "clipping fired", "start",
                 "class=\"heatmaplayer", "colorbar", "xtick"):
        assert part in surf, part
    assert surf.count("<image") >= 1  # the heatmap
    for part in ("Gradient norm and error per step", "threshold τ = 1", "g-ytitle", "g-y2title", "g-x2title"):
        assert part in side, part
    assert severe_logs(dash_duo) == []


def test_copy_link_box_keeps_the_link_after_focus_and_blur(dash_duo, make_app):
    """The surface page writes the link into the box from browser code: clicking into the box
    (to select it) and away again must not empty it."""
    open_surface(dash_duo, make_app)
    box = dash_duo.find_element("#es-link")
    link = wait_until(lambda: box.get_attribute("value"), what="the link")
    assert "/surface?" in link and "w0=4" in link
    box.click()
    dash_duo.find_element("h2").click()
    time.sleep(0.4)
    assert dash_duo.find_element("#es-link").get_attribute("value") == link
    press_slider(dash_duo, "es-w0")
    wait_until(lambda: "w0=4.01" in dash_duo.find_element("#es-link").get_attribute("value"), what="the new link")
    assert severe_logs(dash_duo) == []
