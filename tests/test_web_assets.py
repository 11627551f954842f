"""The pages' browser code: in clipviz/web/assets, told what it needs by the pages as data."""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import parse_qsl

import pytest

from clipviz.web.components import click_data
from clipviz.web.pages import surface as page
from clipviz.web.params import parse

WEB = Path(__file__).resolve().parent.parent / "clipviz" / "web"
ASSETS = WEB / "assets"

#: what marks a string as JavaScript: a function, an arrow, the browser's globals, a declaration
JS = re.compile(r"\bfunction\s*\w*\s*\(|=>|\bwindow\.|\bdocument\.|\bdash_clientside\b|\b(const|let|var)\s+\w+\s*=")
MAX_JS_LINES = 20


def js_lines(source: str) -> int:
    """Lines of JavaScript in a Python source's string literals (docstrings aside)."""
    tree = ast.parse(source)
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    return sum(sum(1 for line in node.value.splitlines() if line.strip())
               for node in ast.walk(tree)
               if isinstance(node, ast.Constant) and isinstance(node.value, str)
               and id(node) not in docstrings and JS.search(node.value))


def test_js_lines_counts_javascript_in_strings_and_not_docstrings():
    source = '''
def f():
    """A plain function: window.open is not called here."""
    return 1

CODE = """
function(click) {
    if (!click) { return window.dash_clientside.no_update; }
    return click.points[0].x;
}
"""
MSG = "the function of this control"
ARROW = "(a) => a + 1"
'''
    assert js_lines(source) == 5


@pytest.mark.parametrize("path", sorted(WEB.rglob("*.py")), ids=lambda p: str(p.relative_to(WEB)))
def test_no_python_file_of_the_web_app_holds_more_than_a_few_lines_of_javascript(path):
    assert js_lines(path.read_text(encoding="utf-8")) <= MAX_JS_LINES


def test_every_clientside_function_the_app_registers_is_in_the_assets(make_app):
    """Each clientside callback names a function of window.dash_clientside.clipviz that an asset
    file defines (the app serves them from its assets folder)."""
    http = make_app(warm=False).server.test_client()
    wanted = {d["clientside_function"]["function_name"] for d in http.get("/_dash-dependencies").get_json()
              if (d.get("clientside_function") or {}).get("namespace") == "clipviz"}
    assert {"surfaceView", "surfaceExport", "whileTicked", "clickPoint", "urlSync"} <= wanted
    page_html = http.get("/surface").get_data(as_text=True)
    served = [name for name in re.findall(r'<script src="/assets/([^"?]+\.js)', page_html)]
    assert sorted(served) == sorted(p.name for p in ASSETS.glob("*.js"))
    defined = set()
    for name in served:
        defined |= set(re.findall(r"^    (\w+): function", (ASSETS / name).read_text(), re.M))
    assert wanted <= defined, wanted - defined


def run_node(script: str):
    """The value a script that prints JSON gives, run with the assets loaded in Node (no DOM)."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed: the assets' functions are checked in the browser tests")
    assets = "\n".join(p.read_text() for p in sorted(ASSETS.glob("*.js")))
    out = subprocess.run([node, "-e", "globalThis.window = {};\n" + assets + "\n" + script],
                         capture_output=True, text=True, timeout=30, check=True)
    return json.loads(out.stdout)


def test_the_link_the_browser_writes_restores_the_same_controls():
    """The surface page's link, as the browser code writes it from the controls' values and the
    page's data, parses (as a URL's query) back to the same values: the windows' ends, the flags,
    and τ from the log slider."""
    view = page.browser_data()["view"]
    raw = {"w_range": [-2, 12], "b_range": [-8, 2.5], "res": 32, "T": 30, "x0": 0.5, "target": 0.7,
           "act": "tanh", "log": [], "view3d": ["view3d"], "w0": 4.0, "b0": -3.6, "lr": 1.5, "n": 40,
           "clip": "value", "tau": 0.5, "p": 10}
    values = [raw[c["name"]] for c in view["controls"]]
    query = run_node("const ns = window.dash_clientside.clipviz;\n"
                     f"console.log(JSON.stringify(ns.urlQuery({json.dumps([c['url'] for c in view['controls']])}, "
                     f"{json.dumps(values)})));")
    got, errors = parse(page.ALL_SPECS, dict(parse_qsl(query)))
    assert not errors and set(dict(parse_qsl(query))) <= set(page.SPEC)
    assert (got["w_min"], got["w_max"], got["b_min"], got["b_max"]) == (-2, 12, -8, 2.5)
    assert got["log"] is False and got["view3d"] is True and got["act"] == "tanh" and got["clip"] == "value"
    assert got["tau"] == pytest.approx(10 ** 0.5, rel=1e-3) and got["n"] == 40 and got["w0"] == 4.0


def test_a_click_sets_the_controls_rounded_and_within_their_bounds():
    click = click_data(("x", page.SPEC["w0"]), ("y", page.SPEC["b0"]))
    got = run_node("const ns = window.dash_clientside.clipviz;\n"
                   f"console.log(JSON.stringify(ns.clickPoint({{points: [{{x: 25.5, y: -3.456}}]}}, "
                   f"{{click: {json.dumps(click)}}})));")
    assert got == [page.SPEC["w0"].hi, -3.46]


@pytest.mark.parametrize("prefix, shown, written", [("/", "/training", True), ("/", "/surface", False),
                                                     ("/app/", "/app/training", True)])
def test_a_page_link_is_written_to_the_address_bar_only_while_the_page_is_shown(prefix, shown, written):
    from clipviz.web.components import link_data

    data = {"link": link_data("/training", ["task", "seeds", "lengths"])}
    got = run_node(
        f"const written = []; window.location = {{pathname: {json.dumps(shown)}, origin: 'http://h'}};\n"
        "window.history = {state: null, replaceState: (s, t, url) => written.push(url)};\n"
        "globalThis.document = {getElementById: () => ({textContent: "
        f"{json.dumps(json.dumps({'requests_pathname_prefix': prefix}))}}})}};\n"
        "const link = window.dash_clientside.clipviz.urlSync('music', 3, '', "
        f"{json.dumps(data)});\n"
        "console.log(JSON.stringify([link, written]));")
    url = f"{shown}?task=music&seeds=3"
    assert got == [f"http://h{url}", [url] if written else []]
