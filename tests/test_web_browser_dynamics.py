"""Browser smoke tests of the bifurcation, dynamics and theory pages (run with --headless)."""

from __future__ import annotations

import math

import pytest
from selenium.webdriver.common.actions.action_builder import ActionBuilder
from selenium.webdriver.common.keys import Keys

from .test_web_browser import gd_eval, press_slider, severe_logs, wait_until

pytestmark = pytest.mark.browser


def open_page(dash_duo, make_app, path, graph_ids, query=""):
    dash_duo.start_server(make_app())
    dash_duo.wait_for_page(url=dash_duo.server_url + path + query)
    for g in graph_ids:
        dash_duo.wait_for_element(f"#{g} .js-plotly-plot", timeout=20)
        wait_until(lambda: gd_eval(dash_duo, g, "gd._fullLayout ? gd.data.length : 0"), what=f"{g} drawn")


def title(dash_duo, g):
    return gd_eval(dash_duo, g, "gd.layout.title.text")


def test_bifurcations_page_url_slider_and_click(dash_duo, make_app):
    open_page(dash_duo, make_app, "/bifurcations", ["bf-diagram", "bf-basins", "bf-cobweb"],
              "?w=6&b_min=-7&b_max=1&b=-3&T=100&res=60")
    assert "6·σ(x)" in title(dash_duo, "bf-diagram")
    assert gd_eval(dash_duo, "bf-diagram", "gd.layout.xaxis.range") == [-7, 1]
    assert "b = -3.000" in title(dash_duo, "bf-cobweb")
    # folds at w = 6 are labelled with their b values
    notes = gd_eval(dash_duo, "bf-diagram", "gd.layout.annotations.map(a => a.text).join('|')")
    assert notes.count("fold b=") == 2
    # the w slider recomputes the diagram
    press_slider(dash_duo, "bf-w", times=2)  # 6 -> 6.1
    wait_until(lambda: "6.1·σ(x)" in title(dash_duo, "bf-diagram"), what="diagram at w = 6.1")
    # clicking the diagram sets b: the cobweb follows
    x, y = dash_duo.driver.execute_script(
        "const gd = document.querySelector('#bf-diagram .js-plotly-plot'); gd.scrollIntoView();"
        "const r = gd.getBoundingClientRect(); const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;"
        "return [r.left + xa._offset + 0.25 * xa._length, r.top + ya._offset + 0.5 * ya._length];")
    wait_until(lambda: gd_eval(dash_duo, "bf-diagram", "gd._fullData.length") > 3, what="traces")
    actions = ActionBuilder(dash_duo.driver)
    actions.pointer_action.move_to_location(int(x), int(y)).click()
    actions.perform()
    wait_until(lambda: "b = -3.000" not in title(dash_duo, "bf-cobweb"), what="cobweb at the clicked b")
    b_new = float(title(dash_duo, "bf-cobweb").split("=")[1])
    assert b_new == pytest.approx(-5.0, abs=0.5)  # a quarter across [-7, 1]
    assert gd_eval(dash_duo, "bf-diagram", "gd.layout.shapes[0].x0") == pytest.approx(b_new, abs=1e-9)
    assert severe_logs(dash_duo) == []


def test_bifurcations_malformed_url(dash_duo, make_app):
    open_page(dash_duo, make_app, "/bifurcations", ["bf-diagram"], "?w=five&res=5&b_min=3&b_max=-3")
    dash_duo.wait_for_contains_text("#bf-msg-w", "not a number", timeout=5)
    assert "out of range" in dash_duo.find_element("#bf-msg-res").text
    assert "smaller than" in dash_duo.find_element("#bf-msg-b_min").text
    assert "5·σ(x)" in title(dash_duo, "bf-diagram")  # the default is drawn
    assert severe_logs(dash_duo) == []


def test_dynamics_page_url_slider_and_bad_value(dash_duo, make_app):
    open_page(dash_duo, make_app, "/dynamics", ["dy-fig"], "?T=60&x0=-0.0005&delta=0.001&scale=0")
    assert gd_eval(dash_duo, "dy-fig", "gd._fullData[0].x.length") == 61
    notes = gd_eval(dash_duo, "dy-fig", "gd.layout.annotations.map(a => a.text).join('|')")
    assert "separated at t = 32" in notes
    before = title(dash_duo, "dy-fig")
    press_slider(dash_duo, "dy-b", times=5)  # b: -2.5 -> -2.45
    wait_until(lambda: title(dash_duo, "dy-fig") != before, what="figure at the new b")
    assert "− 2.45" in title(dash_duo, "dy-fig")  # a signed term, with a true minus sign
    link = dash_duo.find_element("#dy-link").get_attribute("value")
    assert "b=-2.45" in link and "T=60" in link
    assert severe_logs(dash_duo) == []


def test_dynamics_malformed_url(dash_duo, make_app):
    open_page(dash_duo, make_app, "/dynamics", ["dy-fig"], "?T=-4&act=relu")
    dash_duo.wait_for_contains_text("#dy-msg-T", "out of range", timeout=5)
    assert "choose one of" in dash_duo.find_element("#dy-msg-act").text
    assert severe_logs(dash_duo) == []


def test_theory_page_url_slider_and_bad_value(dash_duo, make_app):
    open_page(dash_duo, make_app, "/theory", ["th-jac", "th-curv"], "?rho=0.9&act=identity&n=20&T=100&cres=48")
    assert gd_eval(dash_duo, "th-jac", "gd._fullData[0].x.length") == 101
    assert "ρ = 0.9" in gd_eval(dash_duo, "th-jac", "gd.data[1].name")
    press_slider(dash_duo, "th-rho", times=4)  # 0.9 -> 1.1
    wait_until(lambda: "ρ = 1.1" in (gd_eval(dash_duo, "th-jac", "gd.data[1].name") or ""), what="rho = 1.1")
    assert "past the necessary condition" in gd_eval(dash_duo, "th-jac", "gd.layout.annotations[0].text")
    assert gd_eval(dash_duo, "th-curv", "gd._fullData[0].z.length") == 48
    assert severe_logs(dash_duo) == []


def test_theory_malformed_url(dash_duo, make_app):
    open_page(dash_duo, make_app, "/theory", ["th-jac"], "?rho=0&n=1e9&norm=max")
    dash_duo.wait_for_contains_text("#th-msg-rho", "out of range", timeout=5)
    assert "out of range" in dash_duo.find_element("#th-msg-n").text
    assert "choose one of" in dash_duo.find_element("#th-msg-norm").text
    assert severe_logs(dash_duo) == []


# ---------------------------------------------------------------- issue 13: what each default shows

RECT = "const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom];"


def rect(dash_duo, selector):
    """The bounding box of the first element matching ``selector`` (None if there is none)."""
    return dash_duo.driver.execute_script(
        f"const e = document.querySelector(arguments[0]); if (!e) {{ return null; }} {RECT}", selector)


def overlap(a, b):
    """Whether two boxes [left, top, right, bottom] intersect (by more than a pixel)."""
    return a[0] < b[2] - 1 and b[0] < a[2] - 1 and a[1] < b[3] - 1 and b[1] < a[3] - 1


def trace_max(dash_duo, g, name_start):
    """The largest finite y of the trace whose name starts with ``name_start``."""
    return gd_eval(dash_duo, g, "Math.max(...Array.from(gd._fullData.find(t => (t.name || '').startsWith("
                   f"{name_start!r})).y).filter(v => Number.isFinite(v)))")


def test_dynamics_default_ends_its_two_runs_in_different_attractors(dash_duo, make_app):
    open_page(dash_duo, make_app, "/dynamics", ["dy-fig"])
    # the final states of the two runs, from the figure's data: one each side of the boundary x* = 0
    xa, xb = gd_eval(dash_duo, "dy-fig", "[gd._fullData[0].y[gd._fullData[0].y.length - 1], "
                                         "gd._fullData[1].y[gd._fullData[1].y.length - 1]]")
    assert xa < -1.0 and xb > 1.0, (xa, xb)
    start_gap = gd_eval(dash_duo, "dy-fig", "gd._fullData[1].y[0] - gd._fullData[0].y[0]")
    assert start_gap == pytest.approx(1e-3)  # from a δ of 0.001
    notes = gd_eval(dash_duo, "dy-fig", "gd.layout.annotations.map(a => a.text).join('|')")
    assert "lower attractor" in notes and "upper attractor" in notes
    head = title(dash_duo, "dy-fig")
    assert "− 2.5 + u_t" in head and "+ -" not in head
    assert not overlap(rect(dash_duo, "#dy-fig .gtitle"), rect(dash_duo, "#dy-fig .legend"))
    # the x0 box shows its whole value; the input axis has short tick labels (scaled units)
    box = dash_duo.find_element("#dy-x0")
    assert box.get_attribute("value") == "-0.001"
    assert dash_duo.driver.execute_script("return arguments[0].scrollWidth <= arguments[0].clientWidth;", box)
    ticks = gd_eval(dash_duo, "dy-fig", "gd._fullLayout.yaxis3._vals.map(v => v.text)")
    assert ticks and all(len(t) <= 3 for t in ticks), ticks
    assert "10⁻³" in gd_eval(dash_duo, "dy-fig", "gd.layout.yaxis3.title.text")
    # every slider shows its value
    shown = dash_duo.driver.execute_script(
        "return Array.from(document.querySelectorAll('.dash-slider-tooltip')).filter(e => e.offsetParent).length")
    assert shown == len(dash_duo.find_elements(".dash-slider-container"))
    assert severe_logs(dash_duo) == []


def set_number(dash_duo, box_id, value):
    box = dash_duo.find_element(f"#{box_id}")
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(str(value), Keys.ENTER)


def test_bifurcations_peak_grows_with_T_and_b_slider_follows_the_window(dash_duo, make_app):
    open_page(dash_duo, make_app, "/bifurcations", ["bf-diagram", "bf-basins", "bf-cobweb"], "?T=20&res=40")
    peak_20 = trace_max(dash_duo, "bf-diagram", "|∂x_T/∂b|")
    set_number(dash_duo, "bf-T", 200)
    wait_until(lambda: "T=200" in (gd_eval(dash_duo, "bf-diagram", "gd.data.map(t => t.name).join('|')") or ""),
               timeout=15, what="the diagram at T = 200")
    peak_200 = trace_max(dash_duo, "bf-diagram", "|∂x_T/∂b|")
    # the spike at the basin boundary: F'(x0)^T / (F'(x0) - 1) at T = 200, far above T = 20's
    assert 100 < peak_20 < 1000 and peak_200 > 1e12 and peak_200 > 1e9 * peak_20, (peak_20, peak_200)
    # the b slider spans the b window, and follows it
    def span():
        thumb = dash_duo.find_element("#bf-b [role=slider]")
        return [float(thumb.get_attribute(a)) for a in ("aria-valuemin", "aria-valuemax")]

    assert span() == [-6.0, 2.0]
    set_number(dash_duo, "bf-b_min", -4)
    wait_until(lambda: span() == [-4.0, 2.0], what="the b slider on the new window")
    # the toolbar does not cover the basin map's title
    assert not overlap(rect(dash_duo, "#bf-basins .gtitle"), rect(dash_duo, "#bf-basins .modebar"))
    assert severe_logs(dash_duo) == []


def test_bifurcations_b_step_moves_both_markers_and_redraws_the_cobweb(dash_duo, make_app):
    open_page(dash_duo, make_app, "/bifurcations", ["bf-diagram", "bf-basins", "bf-cobweb"], "?res=40")
    marker = "gd.layout.shapes[0].x0"
    assert gd_eval(dash_duo, "bf-diagram", marker) == gd_eval(dash_duo, "bf-basins", marker) == -2.5
    dash_duo.find_element("#bf-b [role=slider]").send_keys(Keys.ARROW_RIGHT)  # one step: 0.01
    wait_until(lambda: "b = -2.490" in (gd_eval(dash_duo, "bf-cobweb", "gd.layout.title.text") or ""),
               what="the cobweb at b = -2.49")
    # the markers drawn where the figures show them (the relayout), on both figures
    for g in ("bf-diagram", "bf-basins"):
        assert abs(gd_eval(dash_duo, g, "gd._fullLayout.shapes[0].x0") + 2.49) < 1e-9
    # a w step then rebuilds both figures with their marker still at the current b
    dash_duo.find_element("#bf-w [role=slider]").send_keys(Keys.ARROW_RIGHT)
    wait_until(lambda: "5.05" in (gd_eval(dash_duo, "bf-diagram", "gd.layout.title.text") or ""),
               what="the diagram at w = 5.05")
    for g in ("bf-diagram", "bf-basins"):
        assert abs(gd_eval(dash_duo, g, "gd._fullLayout.shapes[0].x0") + 2.49) < 1e-9
    assert severe_logs(dash_duo) == []


def test_bifurcations_legend_clear_of_the_title_at_negative_w(dash_duo, make_app):
    open_page(dash_duo, make_app, "/bifurcations", ["bf-diagram"], "?w=-8&res=40")
    names = gd_eval(dash_duo, "bf-diagram", "gd.data.map(t => t.name).join('|')")
    assert "period-2 orbit stable" in names  # the legend has its longest list of entries
    assert not overlap(rect(dash_duo, "#bf-diagram .gtitle"), rect(dash_duo, "#bf-diagram .legend"))
    assert severe_logs(dash_duo) == []


def test_theory_default_shows_growth_next_to_decay(dash_duo, make_app):
    open_page(dash_duo, make_app, "/theory", ["th-jac", "th-curv"], "?cres=48")
    last = "gd._fullData[{}].y[gd._fullData[{}].y.length - 1]"
    grows, vanishes = (gd_eval(dash_duo, "th-jac", last.format(i, i)) for i in (0, 3))
    # log10 ||dx_T/dx_0|| at l = T: past the necessary condition (tanh, rho = 1.5) in both settings,
    # the long-term terms grow under small inputs and vanish under large ones
    assert grows > 3 and vanishes < -3, (grows, vanishes)
    note = gd_eval(dash_duo, "th-jac", "gd.layout.annotations[0].text")
    assert "necessary, not sufficient" in note and "grows" in note and "vanishes" in note
    # the colour bar keeps clear of the right plot's y title, the summary line of the x title
    assert not overlap(rect(dash_duo, "#th-curv .colorbar"), rect(dash_duo, "#th-curv .g-y2title"))
    assert not overlap(rect(dash_duo, "#th-curv .annotation"), rect(dash_duo, "#th-curv .g-xtitle"))
    assert severe_logs(dash_duo) == []


def test_theory_sigmoid_draws_the_bound_gamma_rho_to_the_l(dash_duo, make_app):
    open_page(dash_duo, make_app, "/theory", ["th-jac"], "?act=sigmoid&rho=6&T=100&n=20&cres=32")
    name = gd_eval(dash_duo, "th-jac", "gd.data[1].name")
    assert "(γρ)^l" in name and "γ = 1/4" in name
    end = gd_eval(dash_duo, "th-jac", "gd._fullData[1].y[100]")
    assert end == pytest.approx(100 * math.log10(6 / 4))  # (rho / 4)^l, not rho^l
    assert severe_logs(dash_duo) == []
