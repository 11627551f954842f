"""Browser smoke tests of the bifurcation, dynamics and theory pages (run with --headless)."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.actions.action_builder import ActionBuilder

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
    assert "-2.45" in title(dash_duo, "dy-fig")
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
