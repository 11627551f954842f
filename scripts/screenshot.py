"""Screenshot of the error-surface page by headless Chromium, for the README.

    PYTHONPATH=$PWD python scripts/screenshot.py [--out docs/error-surface.png] [--query "?..."]

Starts the app (``gunicorn app:server`` when gunicorn is available, else the
Dash development server) on a free port, opens the page, waits for both
figures, saves the PNG and stops the server.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


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
    return webdriver.Chrome(options=opts)


def wait_for(driver, js: str, timeout: float = 30.0) -> None:
    end = time.time() + timeout
    while time.time() < end:
        if driver.execute_script(js):
            return
        time.sleep(0.1)
    raise RuntimeError(f"timed out waiting for: {js}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(ROOT / "docs" / "error-surface.png"))
    p.add_argument("--path", default="/surface")
    p.add_argument("--query", default="")
    p.add_argument("--width", type=int, default=1600)
    p.add_argument("--height", type=int, default=1000)
    args = p.parse_args(argv)
    port = free_port()
    server = start_server(port)
    try:
        driver = browser(args.width, args.height)
        try:
            driver.get(f"http://127.0.0.1:{port}{args.path}{args.query}")
            # every dcc.Graph on the page has been drawn (not just the first ones to load); those
            # outside the title layers (which hold only axis titles) with their data
            wait_for(driver, "const graphs = Array.from(document.querySelectorAll('.dash-graph'))"
                             ".filter(g => g.offsetParent !== null);"
                             "return graphs.length >= 1 && graphs.every(g => { const p = g.querySelector("
                             "'.js-plotly-plot'); return p && p._fullLayout && p._fullData && "
                             "(p._fullData.length > 0 || g.closest('.overlay-top') !== null); });")
            time.sleep(1.5)  # MathJax typesetting of the axis titles
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(args.out)
        finally:
            driver.quit()
    finally:
        server.terminate()
        server.wait(10)
    sys.stdout.write(f"wrote {args.out}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
