"""The README's command 1, from nothing, as a new user runs it.

The wheel is built from a clean copy of the project's files and installed into an empty
virtualenv with plain pip (its own resolver: no lock file, no constraints), exactly what
``pip install .`` gives a new user.  ``clipviz serve`` then starts on the embedded default (no
service), and every page is loaded in headless Chromium: each shows its figures, with data, and
the browser console has no SEVERE entry; the server's log has no ERROR and no traceback.

This is the test that catches a dependency range that resolves to something the code does not
run on (an unbounded ``dash`` next to newer celery/redis resolved to Dash 3, and four pages
answered 500).  It downloads what pip resolves (from pip's cache after the first run) and
compiles the kernels from scratch, so it is slow.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.test_web_browser import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.browser]

# page -> the graphs it must show with data (layers that only carry titles or frames are left out;
# the training page shows its curves panel, empty until a run is started)
PAGES = {
    "/": [],
    "/surface": ["es-surface", "es-paths", "es-diag"],
    "/bifurcations": ["bf-diagram", "bf-basins", "bf-cobweb"],
    "/dynamics": ["dy-fig"],
    "/theory": ["th-jac", "th-curv"],
    "/training": [],
}
HEADINGS = {"/": "The exploding-gradient problem, made visible", "/training": "Training"}
HAS_DATA = ("const gd = document.querySelector('#{} .js-plotly-plot');"
            "return !!gd && (gd._fullData || []).some(t => t.visible !== false &&"
            " ((t._length | 0) > 0 || (t.z && t.z.length > 0)));")
FIRST_START_S = 300  # a fresh venv compiles every kernel on its first start


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _clean_env(venv: Path) -> dict:
    """This machine's environment, less anything that would steer pip or Python to the project's
    own environment: a new user has none of it."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PIP_CONSTRAINT", "PIP_REQUIRE_HASHES",
                        "PIP_NO_DEPS", "PIP_REQUIREMENT", "NUMBA_CACHE_DIR")
           and not k.startswith("CLIPVIZ_")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


def test_readme_command_1_from_nothing(built_wheel, tmp_path, dash_br):
    venv, work = tmp_path / "venv", tmp_path / "work"
    work.mkdir()
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=120)
    env = _clean_env(venv)
    res = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(built_wheel)],
                         env=env, cwd=work, capture_output=True, text=True, timeout=1200)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    got = subprocess.run([str(venv / "bin" / "python"), "-c",
                          "import json, importlib.metadata as m; print(json.dumps({n: m.version(n) for n in "
                          "('dash', 'plotly', 'celery', 'kombu', 'redis', 'numba', 'numpy')}))"],
                         env=env, capture_output=True, text=True, check=True).stdout
    resolved = json.loads(got)

    port = _free_port()
    log = (tmp_path / "serve.log").open("w+")
    server = subprocess.Popen([str(venv / "bin" / "clipviz"), "serve", "--port", str(port)], env=env,
                              cwd=work, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"

    def up():
        assert server.poll() is None, f"clipviz serve exited: {(tmp_path / 'serve.log').read_text()[-3000:]}"
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    try:
        wait_until(up, FIRST_START_S, "clipviz serve to answer /health")
        dash_br.server_url = url
        for path, graphs in PAGES.items():
            dash_br.wait_for_page(url=url + path, timeout=30)
            if path in HEADINGS:
                dash_br.wait_for_contains_text("h2", HEADINGS[path], timeout=20)
            for g in graphs:
                wait_until(lambda: dash_br.driver.execute_script(HAS_DATA.format(g)), 40,
                            f"{path}: figure #{g} with data (resolved: {resolved})")
            severe = [e for e in dash_br.get_logs() or [] if e.get("level") == "SEVERE"]
            assert severe == [], f"{path}: console errors {severe} (resolved: {resolved})"
            body = dash_br.find_element("body").text
            assert "Traceback" not in body and "Internal Server Error" not in body, (path, body[:500])
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
    text = (tmp_path / "serve.log").read_text()
    bad = [line for line in text.splitlines() if line.startswith(("ERROR", "CRITICAL", "Traceback"))]
    assert bad == [], text[-4000:]
    assert (work / "clipviz-data" / "web-cache").is_dir()  # the embedded default, in the working folder
