"""The web app's page shell (clipviz.web.app): what its index page defines for the figures.

The other web-app tests are by layer: test_web_params, test_web_callbacks, test_web_endpoints,
test_web_cache, test_web_server; the figures' own are in test_figures_surface."""

from __future__ import annotations

from clipviz.figures import surface as fs


def test_step_markers_are_defined_in_the_page_for_every_marked_trace():
    from clipviz.web.app import INDEX_STRING, step_marker_html

    html_ = step_marker_html()
    assert html_ in INDEX_STRING
    for uid in fs.STEP_MARKERS:
        assert f'<marker id="{uid}-step"' in html_ and f".trace{uid} path.js-line {{ marker: url(#{uid}-step); }}" in html_