"""The web-latency bench's parts that need no browser: which sliders it finds on each page, which
figures each redraws, how it moves them, and how it reports (the bench itself is a benchmark
script, ``python -m clipviz.bench web``, never a timed test)."""

from __future__ import annotations

import pytest
from dash import dcc, html

from clipviz.bench import web as W

# sliders on the pages now, and the figures each redraws (a page may gain more: the bench finds them)
EXPECTED = {
    "bifurcations": {"bf-w": {"bf-diagram", "bf-basins", "bf-cobweb"},
                     "bf-b": {"bf-diagram", "bf-basins", "bf-cobweb"}},
    "dynamics": {"dy-w": {"dy-fig"}, "dy-b": {"dy-fig"}, "dy-scale": {"dy-fig"}},
    "theory": {"th-rho": {"th-jac"}, "th-cT": {"th-curv"}},
}
FULL = 24 + W.WARMUP  # the changes a full run makes per slider


@pytest.fixture
def dependencies(make_app):
    app = make_app(warm=False)
    with app.server.test_client() as client:
        return client.get("/_dash-dependencies").get_json()


def test_finds_every_slider_of_the_dash_pages_and_the_figures_it_redraws(dependencies):
    pages = {name: (path, cases) for name, path, cases in W.dash_pages(dependencies)}
    assert "surface" not in pages  # measured by its own rows (CASES, SURFACE_MORE)
    assert set(pages) == {"home", "bifurcations", "dynamics", "theory", "training"}
    assert pages["home"][1] == []  # the home page has no slider
    for name, sliders in EXPECTED.items():
        path, cases = pages[name]
        assert path == f"/{name}"
        found = {c.slider.id: set(c.graphs) for c in cases}
        for sid, graphs in sliders.items():
            assert found.get(sid) == graphs, f"{name}: {sid} redraws {found.get(sid)}, expected {graphs}"
    for name, (path, cases) in pages.items():
        for c in cases:  # every slider found can be measured: it redraws a figure, with room to move
            assert c.graphs, f"{name}: {c.slider.id} redraws no figure"
            url, plan = c.url("http://h", FULL)
            assert url.startswith("http://h" + path)
            values = _values(c.slider, plan, FULL)
            assert len(set(values)) == FULL + 1


def test_every_slider_of_the_surface_page_has_a_row():
    """The surface page draws through its own browser code; each of its sliders needs a row of
    CASES or SURFACE_MORE (a slider added to the page without one fails here)."""
    from clipviz.web.pages import surface

    found = [s.id for s in W.page_sliders(surface.layout())]
    assert sorted(W.surface_slider_ids()) == sorted(found)
    assert {"es-w0", "es-b0", "es-tau", "es-w_range", "es-T", "es-b_range", "es-res", "es-step"} == set(found)


def test_the_resolution_row_starts_where_every_change_is_a_new_resolution():
    from clipviz.web.pages import surface

    res = next(s for s in W.page_sliders(surface.layout()) if s.id == "es-res")
    (_label, _sel, key, _sigs, query) = next(c for c in W.SURFACE_MORE if c[1].startswith("#es-res "))
    start = float(query.split("=")[1])
    assert key == "ARROW_LEFT" and start - FULL * res.step >= res.lo and start <= res.hi


def _values(s: W.Slider, p: W.Plan, changes: int) -> list[float]:
    """The values the moved end takes: the start, then one per key press."""
    v = s.value[p.thumb] if s.is_range else (s.value if p.start is None else p.start)
    d = s.step if p.key == "ARROW_RIGHT" else -s.step
    out = [round(v + i * d, 9) for i in range(changes + 1)]
    assert all(s.lo - 1e-9 <= x <= s.hi + 1e-9 for x in out), (s, p, out)
    if s.is_range:  # the moved end never reaches the other
        other = s.value[1 - p.thumb]
        assert all((x < other) if p.thumb == 0 else (x > other) for x in out)
    return out


@pytest.mark.parametrize("slider, changes, expected", [
    (W.Slider("p-a", 0, 100, 1, 50.0), 27, W.Plan(0, "ARROW_RIGHT")),  # room above
    (W.Slider("p-a", 0, 100, 1, 90.0), 27, W.Plan(0, "ARROW_LEFT")),  # room below only
    (W.Slider("p-res", 16, 1024, 16, 1000.0), 20, W.Plan(0, "ARROW_LEFT")),
    (W.Slider("p-a", 0, 30, 1, 20.0), 27, W.Plan(0, "ARROW_LEFT", 27.0)),  # neither: start above
    (W.Slider("p-r", -20, 20, 0.5, (-2.0, 12.0)), 27, W.Plan(0, "ARROW_LEFT")),  # upper end has no room
    (W.Slider("p-r", -20, 20, 0.5, (-8.0, 2.0)), 27, W.Plan(1, "ARROW_RIGHT")),
])
def test_plan_moves_a_slider_to_a_new_value_every_time(slider, changes, expected):
    p = W.plan(slider, changes)
    assert p == expected
    assert len(set(_values(slider, p, changes))) == changes + 1


def test_plan_refuses_a_slider_with_too_few_steps():
    with pytest.raises(ValueError, match="27 changes need 27 steps; it has 10"):
        W.plan(W.Slider("p-a", 0, 10, 1, 5.0), 27)
    with pytest.raises(ValueError, match="no room"):
        W.plan(W.Slider("p-r", 0, 10, 1, (2.0, 8.0)), 27)


def test_a_start_goes_into_the_link_under_the_controls_name():
    case = W.Case("dynamics", "/dynamics", W.Slider("dy-scale", 0, 5, 0.25, 4.5), ("dy-fig",))
    url, p = case.url("http://h", 19)  # 4.75 of room needed: neither above nor below 4.5
    assert (url, p) == ("http://h/dynamics?scale=4.75", W.Plan(0, "ARROW_LEFT", 4.75))
    assert W.case_label(case, p) == "scale (slider, from 4.75)"
    assert W.case_label(W.Case("s", "/s", W.Slider("s-r", 0, 9, 1, (1.0, 2.0)), ("g",)), W.Plan(1, "ARROW_RIGHT")) \
        == "r (range slider, upper end)"


def test_page_sliders_and_graphs_are_found_in_nested_lists():
    layout = html.Div([html.Div(dcc.Slider(id="a-s", min=0, max=4, step=0.5, value=1)),
                       [dcc.Graph(id="a-g"), [dcc.RangeSlider(id="a-r", min=-1, max=1, value=[-1, 0])]],
                       "text", None])
    assert W.page_sliders(layout) == [W.Slider("a-s", 0.0, 4.0, 0.5, 1.0),
                                      W.Slider("a-r", -1.0, 1.0, 1.0, (-1.0, 0.0))]  # no step: Dash's 1
    assert W.page_graphs(layout) == ["a-g"]


def test_redrawn_graphs_reads_dashs_outputs():
    deps = [
        {"output": "..g1.figure...m.children..", "inputs": [{"id": "s", "property": "value"}]},
        {"output": "..g1.figure@a1b2...g2.figure@a1b2...g3.figure..", "inputs": [{"id": "s", "property": "value"}]},
        {"output": "g4.figure", "inputs": [{"id": "other", "property": "value"}]},
        {"output": "store.data", "inputs": [{"id": {"type": "x", "index": 1}, "property": "value"}]},
    ]
    assert W._outputs("..a.b...c.d@ff..") == [("a", "b"), ("c", "d")]
    assert W._outputs("a.figure") == [("a", "figure")]
    # g3 is not one of the page's graphs (e.g. on another page); g4's callback does not take s
    assert W.redrawn_graphs(deps, "s", {"g1", "g2", "g4"}) == ["g1", "g2"]
    assert W.redrawn_graphs(deps, "nothing", {"g1"}) == []


def test_the_reference_is_one_slider_driving_a_small_line_through_a_server_callback():
    server = W.reference_server()
    with server.test_client() as client:
        assert client.get("/health").get_json() == {"status": "ok"}
        deps = client.get("/_dash-dependencies").get_json()
        assert W.redrawn_graphs(deps, W.REF_SLIDER, [W.REF_GRAPH]) == [W.REF_GRAPH]
        assert not deps[0].get("clientside_function")
        body = {"output": f"{W.REF_GRAPH}.figure", "outputs": {"id": W.REF_GRAPH, "property": "figure"},
                "inputs": [{"id": W.REF_SLIDER, "property": "value", "value": 51}], "changedPropIds": []}
        fig = client.post("/_dash-update-component", json=body).get_json()["response"][W.REF_GRAPH]["figure"]
    (trace,) = fig["data"]
    assert trace["type"] == "scatter" and trace["mode"] == "lines" and len(trace["y"]) == W.REF_POINTS


def test_rows_give_median_p95_first_and_their_ratios_to_the_reference():
    ref = [30.0] * 19 + [40.0]  # median 30, p95 (the 19th of 20 sorted) 30
    row = W.Row("dynamics", "w (slider)", "fig", tuple(float(x) for x in range(41, 61)), 123.4, 12.25)
    line = W.format_row(row, ref)
    assert line.split() == ["dynamics", "w", "(slider)", "fig", "20", "50.5ms", "59.0ms", "123.4ms",
                            "1.68x", "1.97x", "12.2ms"]
    assert len(line) == len(W.TABLE_HEAD)
    assert W.ratio(45.0, 30.0) == "1.50x" and W.ratio(1.0, 0.0) == "n/a"
    assert W._p95([3.0, 1.0, 2.0]) == 3.0 and W._p95([5.0]) == 5.0


def test_the_reference_lines_pool_its_rounds_and_give_each():
    lines = W.format_reference([("before", [30.0, 32.0, 34.0], 50.0), ("after", [36.0, 38.0, 40.0], 60.0)])
    assert "6 changes: median  35.0 ms, p95  40.0 ms" in lines[0]
    assert lines[1].split() == ["before", "median", "32.0", "ms,", "p95", "34.0", "ms,", "first", "change",
                                "after", "load", "50.0", "ms"]
    assert lines[2].split()[:3] == ["after", "median", "38.0"] and lines[2].endswith("load  60.0 ms")
