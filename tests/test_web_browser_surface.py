"""Browser tests of the error-surface page as a learner sees it (issue 13): what the figures say
for each clipping rule, readable ticks, the step slider and hovering linking every view, the 3-D
view's descents, the layout at 1400×1000, the sliders' values, and exports fit for a slide.

Each test reads the phenomenon from the figures' data or the page's DOM (dash[testing], headless
Chromium); run with --headless.  Small grids and short descents keep them quick."""

from __future__ import annotations

import re
import time

import numpy as np
import pytest
from selenium.webdriver.common.actions.action_builder import ActionBuilder
from selenium.webdriver.common.keys import Keys

from clipviz import clipping, one_unit
from clipviz.figures import surface as fs
from clipviz.web.pages import surface as page

from .test_web_browser import GD, gd_eval, open_surface, press_slider, severe_logs, wait_until

pytestmark = pytest.mark.browser


def text_of(dash_duo, selector: str) -> list[str]:
    """The text of the elements ``selector`` finds, less the zero-width spaces Plotly puts around
    an exponent."""
    return [t.replace("\u200b", "") for t in dash_duo.driver.execute_script(
        f"return Array.from(document.querySelectorAll({selector!r})).map(e => e.textContent);")]


def set_value(dash_duo, ident: str, value) -> None:
    """A control set as the user's change would set it (through the Dash renderer)."""
    dash_duo.driver.execute_script("window.dash_clientside.set_props(arguments[0], {value: arguments[1]});",
                                   ident, value)


def type_number(dash_duo, ident: str, text: str) -> None:
    box = dash_duo.find_element(f"#{ident}")
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(text, Keys.ENTER)


def descents(n: int, clip: str = "norm", **params):
    """The page's two descents from its default start (w0 = 4, b0 = -3.6, lr = 1.5, T = 50)."""
    common = dict(lr=1.5, n_steps=n, steps=50, x0=0.5, target=0.7, activation="sigmoid")
    return (one_unit.descend(4.0, -3.6, **common),
            one_unit.descend(4.0, -3.6, clip=clipping.make(clip, {"threshold": 1.0, "percentile": 10, **params}),
                             **common))


def point_at(dash_duo, x: float, y: float) -> None:
    """The mouse to (x, y) in the viewport."""
    actions = ActionBuilder(dash_duo.driver)
    actions.pointer_action.move_to_location(int(round(x)), int(round(y)))
    actions.perform()


def now_markers(dash_duo):
    """(w, b) of the step layer's markers: [unclipped, clipped]."""
    return gd_eval(dash_duo, "es-now", "gd.data.slice(0, 2).map(t => [t.x[0], t.y[0]])")


def diag_marks(dash_duo):
    """The side figure's marks of the step in view: the line's x and each ring's (x, y) (its centre
    on the log axis), and whether it shows."""
    return gd_eval(dash_duo, "es-diag",
                   "gd.layout.shapes.filter(s => s.name === 'cv-now').map(s => s.type === 'line' ? [s.x0] "
                   ": [s.xanchor, Math.sqrt(s.y0 * s.y1), s.visible])")


def test_the_figures_say_when_clipping_never_fired_and_name_each_rule(dash_duo, make_app):
    """When clipping never fires, the clipped descent hides the unclipped one: both figures say so,
    and only then.  Every legend names the second run by the chosen rule (the registry's
    ``legend``), never "with clipping"."""
    open_surface(dash_duo, make_app, "?res=32&n=5")  # the first clip of the default start: step 11
    note = fs.COINCIDE_NOTE
    wait_until(lambda: note in text_of(dash_duo, "#es-paths .annotation-text"), what="the note on the surface")
    assert note in text_of(dash_duo, "#es-diag .annotation-text")
    type_number(dash_duo, "es-n", "40")  # now it fires
    wait_until(lambda: gd_eval(dash_duo, "es-paths", "gd.data.length") == 4, what="the fired steps")
    wait_until(lambda: note not in text_of(dash_duo, "#es-diag .annotation-text"), what="the side note gone")
    assert note not in text_of(dash_duo, "#es-paths .annotation-text")
    for name in clipping.names():
        rule = clipping.get(name)
        want = fs.rule_label(name)
        set_value(dash_duo, "es-clip", name)
        wait_until(lambda: want in text_of(dash_duo, "#es-titles .legendtext"), what=f"the legend for {name}")
        wait_until(lambda: any(t.startswith(want) for t in text_of(dash_duo, "#es-diag .legendtext")),
                   what=f"the side legend for {name}")
        legends = text_of(dash_duo, "#es-titles .legendtext") + text_of(dash_duo, "#es-diag .legendtext")
        assert rule.legend in want and not any("with clipping" in t for t in legends), (name, legends)
        if not rule.params:  # a rule that never clips: a second plain run, the same descent
            assert want.startswith("second run")
            wait_until(lambda: note in text_of(dash_duo, "#es-paths .annotation-text"), what="the note for none")
    assert severe_logs(dash_duo) == []


def test_tick_labels_are_readable_with_tanh(dash_duo, make_app):
    """With tanh the default descents barely move: E stays near 2.9.  The E axis still reads
    1, 2, 5-style ticks (not "2.899982965"), and so do the colour bar's, log or linear."""
    open_surface(dash_duo, make_app, "?res=32&act=tanh")
    readable = re.compile(r"^(\d(\.\d)?|10−?\d{1,2}|1e−?\d{1,2}|1e-\d{1,2}|0)$")
    ticks = text_of(dash_duo, "#es-diag .y2tick text")
    assert len(ticks) >= 2 and all(readable.match(t) for t in ticks), ticks
    assert all(readable.match(t) for t in text_of(dash_duo, "#es-diag .ytick text"))
    bar = text_of(dash_duo, "#es-frame .colorbar .cbaxis text")
    assert len(bar) >= 2 and all(readable.match(t) for t in bar), bar
    dash_duo.find_element("#es-log input").click()  # linear colour
    wait_until(lambda: gd_eval(dash_duo, "es-frame", "gd.layout.meta").endswith("|lin"), what="linear colour")
    bar = text_of(dash_duo, "#es-frame .colorbar .cbaxis text")
    assert len(bar) >= 2 and all(len(t) <= 4 for t in bar), bar
    assert severe_logs(dash_duo) == []


def test_the_step_slider_hover_and_play_mark_the_same_step_on_every_view(dash_duo, make_app):
    """The step slider moves a marker along both descents on the surface, the ‖g‖ and E panels and
    the 3-D view, to the step's (w, b, ‖g‖, E); hovering a step of the side figure or of the
    surface marks that step everywhere and reads it out; the play button runs to the last step.
    The 3-D view draws both descents on the surface, the clipped one dashed."""
    open_surface(dash_duo, make_app, "?res=32&n=40&view3d=1")
    u, c = descents(40)
    wait_until(lambda: gd_eval(dash_duo, "es-3d", "gd.data.length") == 4, timeout=15, what="the 3-D view")
    lines = gd_eval(dash_duo, "es-3d", "gd._fullData.filter(t => t.type === 'scatter3d' && t.mode.includes('lines'))"
                                       ".map(t => [t.name, t.line.dash, Array.from(t.x), Array.from(t.z)])")
    assert [(n, d) for n, d, _, _ in lines] == [("no clipping", "solid"), ("norm clipping, τ=1", "dash")]
    for (_, _, x, z), t in zip(lines, (u, c)):
        np.testing.assert_allclose(x, t.params[:, 0])
        np.testing.assert_allclose(z, np.maximum(t.loss, fs.E_FLOOR))

    def marked_at(k: int) -> bool:
        want = [[u.params[k, 0], u.params[k, 1]], [c.params[k, 0], c.params[k, 1]]]
        got = now_markers(dash_duo)
        return got is not None and np.allclose(got, want, rtol=0, atol=1e-12)

    press_slider(dash_duo, "es-step", times=7)
    wait_until(lambda: marked_at(7), what="the surface markers at step 7")
    marks = diag_marks(dash_duo)
    assert marks[0] == [7]
    assert marks[1:] == [[7, pytest.approx(u.grad_norm[7]), True], [7, pytest.approx(u.loss[7]), True],
                         [7, pytest.approx(c.grad_norm[7]), True], [7, pytest.approx(c.loss[7]), True]]
    # the rings are round on the page (as wide as high, about NOW_RING across)
    rings = dash_duo.driver.execute_script(
        f"const gd = {GD.format('es-diag')};"
        "return Array.from(gd.querySelectorAll('.shapelayer path')).map(p => p.getBBox())"
        ".filter(b => b.width > 0 && b.height > 0).map(b => [b.width, b.height]);")
    assert len(rings) == 4 and all(abs(w - h) < 1 and 10 < w < 14 for w, h in rings), rings
    wait_until(lambda: np.allclose(gd_eval(dash_duo, "es-3d", "Array.from(gd.data[3].x)"), [u.params[7, 0], c.params[7, 0]]),
               what="the 3-D markers at step 7")
    assert "step 7" in dash_duo.find_element("#es-step-c").text
    assert f"b = {float(f'{c.params[7, 1]:.4g}'):g}" in dash_duo.find_element("#es-step-c").text

    # hover the clipped run's ‖g‖ at step 12 on the side figure
    x, y = dash_duo.driver.execute_script(
        f"const gd = {GD.format('es-diag')}; gd.scrollIntoView(); const r = gd.getBoundingClientRect();"
        "const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, t = gd._fullData[2];"
        "return [r.left + xa._offset + xa.c2p(12), r.top + ya._offset + ya.l2p(Math.log10(t.y[12]))];")
    point_at(dash_duo, x, y)
    wait_until(lambda: marked_at(12), what="the surface markers at the hovered step 12")
    assert diag_marks(dash_duo)[0] == [12]
    assert np.allclose(gd_eval(dash_duo, "es-3d", "Array.from(gd.data[3].y)"), [u.params[12, 1], c.params[12, 1]])
    text = dash_duo.find_element("#es-step-c").text
    assert "step 12" in text and f"‖g‖ = {float(f'{c.grad_norm[12]:.4g}'):g}" in text
    point_at(dash_duo, 2, 2)
    wait_until(lambda: marked_at(7), what="the markers back at the slider's step")

    # hover a step of the clipped descent on the surface, where it has left the unclipped one
    k = 30
    x, y = dash_duo.driver.execute_script(
        f"const gd = {GD.format('es-surface')}; gd.scrollIntoView(); const r = gd.getBoundingClientRect();"
        "const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;"
        "return [r.left + xa._offset + xa.c2p(arguments[0]), r.top + ya._offset + ya.c2p(arguments[1])];",
        float(c.params[k, 0]), float(c.params[k, 1]))
    point_at(dash_duo, x, y)
    wait_until(lambda: f"step {k}" in dash_duo.find_element("#es-step-c").text, what="the hovered surface step")
    assert marked_at(k) and diag_marks(dash_duo)[0] == [k]
    point_at(dash_duo, 2, 2)
    wait_until(lambda: marked_at(7), what="the markers back at the slider's step")

    dash_duo.find_element("#es-play").click()
    wait_until(lambda: marked_at(40), timeout=20, what="play to run to the last step")
    wait_until(lambda: "play" in dash_duo.find_element("#es-play").text, what="the play button back")
    assert dash_duo.find_element("#es-step [role=slider]").get_attribute("aria-valuenow") == "40"
    assert severe_logs(dash_duo) == []


def test_new_descents_move_the_markers_and_the_step_slider_end(dash_duo, make_app):
    """A change of the descents (fewer steps) moves the step slider's end and keeps the markers on
    the new descents."""
    open_surface(dash_duo, make_app, "?res=32&n=40")
    press_slider(dash_duo, "es-step", times=30)
    type_number(dash_duo, "es-n", "20")
    u, c = descents(20)
    wait_until(lambda: dash_duo.find_element("#es-step [role=slider]").get_attribute("aria-valuemax") == "20",
               what="the slider's end at 20")
    wait_until(lambda: now_markers(dash_duo) is not None
               and np.allclose(now_markers(dash_duo), [u.params[20], c.params[20]], atol=1e-12),
               what="the markers at the new last step")
    assert severe_logs(dash_duo) == []


def test_the_step_in_view_is_in_the_link_and_a_link_opens_at_its_step(dash_duo, make_app):
    """The step slider's step goes into the address bar and the copy-link box (step=k, left out
    at 0), and opening that link shows both descents' markers and the side figure's marks at
    step k; a step past the end shows the last step with a note, a bad one step 0 with a note."""
    open_surface(dash_duo, make_app, "?res=32&n=40")
    u, c = descents(40)
    press_slider(dash_duo, "es-step", times=9)
    link = wait_until(lambda: (v := dash_duo.find_element("#es-link").get_attribute("value"))
                      and "step=9" in v and v, what="the link to carry step=9")
    assert "n=40" in link and dash_duo.driver.current_url.endswith("step=9")
    dash_duo.wait_for_page(url=link)
    wait_until(lambda: now_markers(dash_duo) is not None
               and np.allclose(now_markers(dash_duo), [u.params[9], c.params[9]], rtol=0, atol=1e-12),
               what="the markers at step 9 from the link")
    wait_until(lambda: (diag_marks(dash_duo) or [[None]])[0] == [9], what="the side marks at step 9")
    assert dash_duo.find_element("#es-step [role=slider]").get_attribute("aria-valuenow") == "9"
    assert "step 9" in dash_duo.find_element("#es-step-c").text
    assert dash_duo.find_elements("#url-notes li") == []
    press_slider(dash_duo, "es-step", times=9, key=Keys.ARROW_LEFT)
    wait_until(lambda: "step=" not in dash_duo.find_element("#es-link").get_attribute("value"),
               what="step 0 left out of the link")

    dash_duo.wait_for_page(url=dash_duo.server_url + "/surface?res=32&n=40&step=500")
    wait_until(lambda: now_markers(dash_duo) is not None
               and np.allclose(now_markers(dash_duo), [u.params[40], c.params[40]], rtol=0, atol=1e-12),
               what="the markers at the last step")
    assert "past the descents' last step (40)" in dash_duo.find_element("#url-notes").text
    dash_duo.wait_for_page(url=dash_duo.server_url + "/surface?res=32&n=40&step=x1")
    wait_until(lambda: "step must be a whole number from 0 to 40" in dash_duo.find_element("#url-notes").text,
               what="the note on a bad step")
    assert np.allclose(now_markers(dash_duo), [u.params[0], c.params[0]], rtol=0, atol=1e-12)
    assert severe_logs(dash_duo) == []


def test_autoclip_rings_leave_the_path_in_sight(dash_duo, make_app):
    """AutoClip at its default percentile fires at nearly every step: the path layer rings few of
    them, thinly, and the clipped path's own line is drawn with every step."""
    open_surface(dash_duo, make_app, "?res=32&clip=autoclip")
    _, c = descents(100, "autoclip")
    assert c.clipped.mean() > fs.DENSE_FIRED
    uids = gd_eval(dash_duo, "es-paths", "gd.data.map(t => t.uid)")
    assert "cv-fired-dense" in uids and "cv-fired" not in uids
    rings, steps = dash_duo.driver.execute_script(
        "const v = (u) => document.querySelector('#es-paths .trace' + u + ' path.js-line')"
        ".getAttribute('d').split(/[ML]/).length - 1;"
        "return [v('cv-fired-dense'), v('cv-clipped')];")
    assert 0 < rings <= steps / 3, (rings, steps)
    r = dash_duo.driver.execute_script("return +document.querySelector('#cv-fired-dense-step circle').getAttribute('r');")
    assert r < fs.FIRED_SIZE / 2
    assert severe_logs(dash_duo) == []


def test_controls_and_figures_stay_in_view_together_and_sliders_show_their_values(dash_duo, make_app):
    """At 1400×1000, scrolling to any control of the sidebar leaves the surface's and the side
    figure's plot areas in view beside it; every slider shows its value all the time (τ as τ, not
    its log10)."""
    dash_duo.start_server(make_app())
    dash_duo.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                                    {"width": 1400, "height": 1000, "deviceScaleFactor": 1, "mobile": False})
    dash_duo.wait_for_page(url=dash_duo.server_url + "/surface?res=32")
    wait_until(lambda: (gd_eval(dash_duo, "es-paths", "gd.data.length") or 0) >= 3, timeout=15, what="the page")
    assert dash_duo.driver.execute_script("return [innerWidth, innerHeight];") == [1400, 1000]
    rects = ("return ['es-surface', 'es-diag'].map(id => {"
             " const gd = document.querySelector('#' + id + ' .js-plotly-plot'), r = gd.getBoundingClientRect();"
             " const f = gd._fullLayout, ys = Object.keys(f).filter(k => /^yaxis\\d*$/.test(k)).map(k => f[k]);"
             " return [r.left + f.xaxis._offset, Math.min(...ys.map(a => r.top + a._offset)),"
             "         r.left + f.xaxis._offset + f.xaxis._length, Math.max(...ys.map(a => r.top + a._offset + a._length))];"
             "});")
    for ident in ("es-w_range", "es-T", "es-act", "es-w0", "es-clip", "es-tau", "es-p", "es-step", "es-play"):
        dash_duo.driver.execute_script("document.getElementById(arguments[0]).scrollIntoView({block: 'nearest'});",
                                       ident)
        time.sleep(0.1)
        box = dash_duo.driver.execute_script(
            "const r = document.getElementById(arguments[0]).getBoundingClientRect();"
            "return [r.left, r.top, r.right, r.bottom];", ident)
        assert -1 <= box[1] and box[3] <= 1001, (ident, box)  # in view, to a pixel's rounding
        for plot in dash_duo.driver.execute_script(rects):
            assert 0 <= plot[0] and 0 <= plot[1] and plot[2] <= 1400 and plot[3] <= 1000, (ident, plot)
    tip = "return (document.getElementById(arguments[0] + '-tooltip-' + arguments[1] + '-content') || {}).textContent;"
    want = {("es-T", 1): "50", ("es-res", 1): "32", ("es-w0", 1): "4", ("es-b0", 1): "-3.6", ("es-tau", 1): "1",
            ("es-w_range", 1): "-2", ("es-w_range", 2): "12", ("es-step", 1): "0"}
    for (ident, i), value in want.items():
        assert dash_duo.driver.execute_script(tip, ident, i) == value, (ident, i)
    visible = dash_duo.driver.execute_script(
        "return Array.from(document.querySelectorAll('.sidebar .dash-slider-tooltip, .timebar .dash-slider-tooltip'))"
        ".map(e => getComputedStyle(e).display);")
    assert len(visible) >= 9 and set(visible) == {"block"}, visible
    press_slider(dash_duo, "es-tau", key=Keys.ARROW_RIGHT, times=6)  # log10 τ: 0 -> 0.3
    wait_until(lambda: dash_duo.driver.execute_script(tip, "es-tau", 1) == "2", what="τ = 10^0.3 shown as 2")
    assert severe_logs(dash_duo) == []


def _legend_box(svg: str) -> tuple[float, float, float, float]:
    """(left, top, width, height) of an exported SVG's legend."""
    m = re.search(r'class="legend"[^>]*transform="translate\(([-\d.]+),\s*([-\d.]+)\)"', svg)
    bg = re.search(r'class="legend".*?<rect class="bg"[^>]*?width="([\d.]+)"[^>]*?height="([\d.]+)"', svg, re.S)
    assert m and bg, "no legend in the SVG"
    return float(m.group(1)), float(m.group(2)), float(bg.group(1)), float(bg.group(2))


def test_exports_fit_a_slide_with_the_whole_legend_and_no_page_hint(dash_duo, make_app):
    """The PNG / SVG of each figure carries its whole legend inside the image, the side figure's
    too; the surface's title drops what it says about the page; the marks of the step in view stay
    out."""
    open_surface(dash_duo, make_app, "?res=32&n=40")
    dash_duo.driver.execute_script(
        "window.__exported = []; HTMLAnchorElement.prototype.click = function () {"
        " window.__exported.push([this.download, this.href]); };"
        "window.__images = []; const toImage = Plotly.toImage; Plotly.toImage = function (fig, opts) {"
        " window.__images.push([opts.format, fig.layout.showlegend, fig.layout.legend,"
        "                       (fig.layout.shapes || []).map(s => s.name)]);"
        " return toImage.apply(this, arguments); };")
    press_slider(dash_duo, "es-step", times=3)  # a step in view: its marks must not be exported
    for i, button in enumerate(("es-svg", "es-diag-svg", "es-png", "es-diag-png")):
        dash_duo.find_element(f"#{button}").click()
        wait_until(lambda: dash_duo.driver.execute_script("return window.__exported.length") == i + 1,
                   timeout=15, what=button)
    files = dash_duo.driver.execute_script(
        "return window.__exported.slice(0, 2).map(([n, h]) => decodeURIComponent(h.slice(h.indexOf(',') + 1)));")
    size = page.GRAPH_CONFIG["toImageButtonOptions"]
    for svg, names in zip(files, (["no clipping", "norm clipping, τ=1", "clipping fired", "start"],
                                  ["no clipping", "norm clipping, τ=1", "clipping fired"])):
        left, top, width, height = _legend_box(svg)
        assert 0 <= left and left + width <= size["width"] and 0 <= top and top + height <= size["height"], \
            (left, top, width, height)
        legend = svg[svg.index('class="legend"'):]
        for name in names:
            assert f">{name}<" in legend, name
    assert "Error surface E₅₀(w, b)" in files[0] and fs.TITLE_HINT not in files[0]
    images = dash_duo.driver.execute_script("return window.__images;")
    assert [i[0] for i in images] == ["svg", "svg", "png", "png"]
    assert all(showlegend and legend["yref"] == "container" for _, showlegend, legend, _ in images)
    # the side figure on the page has the marks of the step in view; its exports do not
    assert "cv-now" in gd_eval(dash_duo, "es-diag", "gd.layout.shapes.map(s => s.name)")
    assert all("cv-now" not in shapes for _, _, _, shapes in images), images
    assert severe_logs(dash_duo) == []
