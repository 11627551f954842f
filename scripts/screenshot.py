"""Screenshots of the app's pages by headless Chromium, for the README and docs/.

    PYTHONPATH=$PWD python scripts/screenshot.py [--out docs/error-surface.png] [--path /surface] [--query "?..."]
    PYTHONPATH=$PWD python scripts/screenshot.py --all [--dir docs]

Starts the app (``gunicorn app:server`` when gunicorn is available, else the
Dash development server) on a free port, opens the page (the error-surface
page by default; with ``--all`` every page of the app in turn, at 1400 x 1000,
each into ``<dir>/<page>.png``), waits until its figures are drawn with their
data, saves the PNG and stops the server.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

#: a page's file under --all where it is not the page module's name: the README's image
FILE_NAMES = {"surface": "error-surface"}

#: the page is drawn: Dash has no callback in flight, the page's content is there, and every
#: visible dcc.Graph is drawn with all its figure's traces (the surface page's title layers hold
#: no trace: only axis titles)
READY_JS = """
const store = (window.dash_stores || [])[0] || window.store;
if (!store || store.getState().isLoading || !document.querySelector('#_pages_content > *')) { return false; }
return Array.from(document.querySelectorAll('.dash-graph')).filter(g => g.offsetParent !== null).every(g => {
    const p = g.querySelector('.js-plotly-plot');
    return p && p._fullLayout && p._fullData && p._fullData.length >= (p.data || []).length
        && (p._fullData.length > 0 || g.closest('.overlay-top') !== null || (p.data || []).length === 0); });
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    if shutil.which("gunicorn"):
        cmd = ["gunicorn", "-w", "1", "-b", f"127.0.0.1:{port}", "app:server"]
    else:
        cmd = [sys.executable, "-c", f"from app import app; app.run(port={port})"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    end = time.time() + 90
    while time.time() < end:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError("the app did not start within 90 s")


def browser(width: int, height: int):
    from selenium import webdriver

    opts = webdriver.ChromeOptions()
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              f"--window-size={width},{height}", "--hide-scrollbars"):
        opts.add_argument(a)
    driver = webdriver.Chrome(options=opts)
    # the window's size includes the browser's own bars: make the page's viewport (the image) the size
    dw, dh = driver.execute_script("return [window.outerWidth - window.innerWidth, "
                                   "window.outerHeight - window.innerHeight];")
    if dw or dh:
        driver.set_window_size(width + dw, height + dh)
    return driver


def wait_for(driver, js: str, timeout: float = 30.0) -> None:
    end = time.time() + timeout
    while time.time() < end:
        if driver.execute_script(js):
            return
        time.sleep(0.1)
    raise RuntimeError(f"timed out waiting for: {js}")


def pages() -> list[tuple[str, str]]:
    """(page module name, path) of every page the app serves, in menu order."""
    from clipviz import config
    from clipviz.web.app import PAGE_MODULES, READ_ONLY_HIDDEN

    out = [(name, importlib.import_module(f"clipviz.web.pages.{name}").PATH) for name in PAGE_MODULES]
    return [(n, path) for n, path in out if not (config.read_only() and path in READ_ONLY_HIDDEN)]


def shoot(driver, url: str, out: str) -> None:
    """Open ``url``, wait until the page is drawn (:data:`READY_JS`), save the PNG at ``out``."""
    driver.get(url)
    wait_for(driver, READY_JS, 60)
    time.sleep(1.5)  # MathJax typesetting of the axis titles
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(out)
    sys.stdout.write(f"wrote {out}\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(ROOT / "docs" / "error-surface.png"))
    p.add_argument("--path", default="/surface")
    p.add_argument("--query", default="")
    p.add_argument("--all", action="store_true",
                   help="every page, each into DIR/<page>.png (the surface page: error-surface.png)")
    p.add_argument("--dir", default=str(ROOT / "docs"), help="where --all writes")
    p.add_argument("--width", type=int, default=None, help="default 1600, with --all 1400")
    p.add_argument("--height", type=int, default=1000)
    args = p.parse_args(argv)
    width = args.width or (1400 if args.all else 1600)
    port = free_port()
    server = start_server(port)
    try:
        driver = browser(width, args.height)
        try:
            if args.all:
                for name, path in pages():
                    shoot(driver, f"http://127.0.0.1:{port}{path}",
                          str(Path(args.dir) / f"{FILE_NAMES.get(name, name)}.png"))
            else:
                shoot(driver, f"http://127.0.0.1:{port}{args.path}{args.query}", args.out)
        finally:
            driver.quit()
    finally:
        server.terminate()
        server.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
