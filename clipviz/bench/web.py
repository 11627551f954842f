"""Web-app latency: headless Chromium against ``gunicorn app:server``.

For each kind of change the script presses a slider's arrow key (a real user
input on the slider thumb) and measures, inside the browser, the time from the
keydown event to the last ``plotly_afterplot`` event of the figures the change
redraws (surface layer, path layer, side figure), each checked to show the new
value (``performance.now()`` both ends,
so polling from Python adds nothing).  Every change goes to a value not seen
before, so no result comes from the cache.  Reported: median and 95th
percentile over >= 20 changes after 3 unrecorded warm-up changes.

(a) trajectory-only changes: the start w_0, the start b_0 and the threshold τ;
(b) surface changes at the default 256 x 256 resolution: the w window (surface
    only) and T (surface and both descents).

Requires chromium + chromedriver and gunicorn; run with
``python -m clipviz.bench web``.
"""

from __future__ import annotations

import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from clipviz import config

ROOT = Path(__file__).resolve().parents[2]
WORKERS = 2
THREADS = 2

INSTRUMENT = """
// arguments[0]: [[graph id, signature function body, part of the main figure], ...]; a change counts
// as redrawn when every listed graph has fired plotly_afterplot with its signature changed.
const specs = arguments[0];
window.__specs = specs.map(([id, body, main]) => ({
    gd: document.querySelector('#' + id + ' .js-plotly-plot'), sig: new Function('gd', body), main: main}));
window.__lat = null;
window.__t0 = null;
const check = () => {
    if (window.__t0 === null) { return; }
    const t0 = window.__t0, now = performance.now();
    window.__specs.forEach(s => { if (!s.done && s.sig(s.gd) !== s.sig0) { s.done = true; s.at = now - t0; } });
    if (window.__specs.every(s => s.done)) {
        const reqs = performance.getEntriesByType('resource').filter(
            e => (e.name.includes('_dash-update-component') || e.name.includes('api/surface/')) && e.startTime >= t0);
        const served = reqs.length ? Math.max(...reqs.map(e => e.responseEnd)) - t0 : 0;
        const sent = reqs.length ? Math.min(...reqs.map(e => e.startTime)) - t0 : 0;
        const mainAt = Math.max(...window.__specs.filter(s => s.main).map(s => s.at));
        window.__lat = [now - t0, served, mainAt, sent];
        window.__t0 = null;
    }
};
window.__specs.forEach(s => { s.gd.on('plotly_afterplot', check); });
document.addEventListener('keydown', () => {
    window.__specs.forEach(s => { s.sig0 = s.sig(s.gd); s.done = false; s.at = null; });
    window.__lat = null;
    window.__t0 = performance.now();
}, true);
"""

PATHS_SIG = "return JSON.stringify([gd.data[0].x, gd.data[1].x, gd.data[1].name]);"
DIAG_SIG = "return JSON.stringify([gd.data[0].y, gd.data[2].y, gd.layout.shapes]);"
SURF_SIG = "return JSON.stringify([gd.data[0].z, gd.layout.xaxis.range, gd.layout.yaxis.range]);"
FRAME_SIG = "return gd.layout.meta;"  # the window and the colour range it shows
RANGE_SIG = "return JSON.stringify(gd.layout.xaxis.range);"

# label, kind, slider thumb, key, graphs that must be redrawn: (id, signature, part of the main figure)
CASES = [
    ("start w0 (slider)", "a", "#es-w0 [role=slider]", "ARROW_RIGHT",
     [("es-paths", PATHS_SIG, True), ("es-diag", DIAG_SIG, False)]),
    ("start b0 (slider)", "a", "#es-b0 [role=slider]", "ARROW_RIGHT",
     [("es-paths", PATHS_SIG, True), ("es-diag", DIAG_SIG, False)]),
    ("threshold tau (log slider)", "a", "#es-tau [role=slider]", "ARROW_LEFT",
     [("es-paths", PATHS_SIG, True), ("es-diag", DIAG_SIG, False)]),
    # the window: the surface and its tick labels (frame layer) make the main figure
    ("w window (range slider)", "b", "#es-w_range [role=slider]:last-of-type", "ARROW_LEFT",
     [("es-surface", SURF_SIG, True), ("es-frame", FRAME_SIG, True), ("es-paths", RANGE_SIG, False)]),
    # T: the frame is redrawn only when the colour range moves (not waited for: it may not change)
    ("T (slider; surface + descents)", "b", "#es-T [role=slider]", "ARROW_RIGHT",
     [("es-surface", SURF_SIG, True), ("es-paths", PATHS_SIG, False), ("es-diag", DIAG_SIG, False)]),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_gunicorn(port: int, data_dir: str, root: Path = ROOT) -> subprocess.Popen:
    """``gunicorn app:server`` of the checkout at ``root`` (its clipviz first on the path)."""
    env = config.child_env(path_first=root, unset=("CLIPVIZ_REDIS_URL",), CLIPVIZ_DATA_DIR=data_dir)
    cmd = ["gunicorn", "-w", str(WORKERS), "--threads", str(THREADS), "-b", f"127.0.0.1:{port}", "app:server"]
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    end = time.time() + 120
    while time.time() < end:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"{root}: gunicorn did not answer /health within 120 s")


def _driver():
    from selenium import webdriver

    opts = webdriver.ChromeOptions()
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1600,1000"):
        opts.add_argument(a)
    return webdriver.Chrome(options=opts)


def _wait(driver, js: str, timeout: float) -> object:
    end = time.time() + timeout
    while time.time() < end:
        v = driver.execute_script(js)
        if v is not None and v is not False:
            return v
        time.sleep(0.005)
    raise RuntimeError(f"timed out: {js}")


def _measure(driver, url: str, selector: str, key: str, signatures: list, n: int,
             warmup: int) -> tuple[list[float], list[float], list[float], list[float]]:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver.get(url)
    _wait(driver, "const g = document.querySelector('#es-surface .js-plotly-plot');"
                  "const p = document.querySelector('#es-paths .js-plotly-plot');"
                  "return g && g._fullLayout && p && p._fullLayout && p.data.length >= 3;", 60)
    time.sleep(0.5)
    driver.execute_script(INSTRUMENT, [list(s) for s in signatures])
    thumb = driver.find_element(By.CSS_SELECTOR, selector)
    out, served, main, sent = [], [], [], []
    for i in range(warmup + n):
        thumb.send_keys(getattr(Keys, key))
        lat = _wait(driver, "return window.__lat;", 30)
        if i >= warmup:
            out.append(float(lat[0]))
            served.append(float(lat[1]))
            main.append(float(lat[2]))
            sent.append(float(lat[3]))
        time.sleep(0.15)  # let the URL update and any second callback finish
        driver.execute_script("performance.clearResourceTimings();")
    return out, served, main, sent


def _p95(xs: list[float]) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(round(0.95 * (len(s) - 1))))]


def run(quick: bool = False) -> list[str]:
    if not (shutil.which("gunicorn") and (shutil.which("chromedriver") or shutil.which("chromium"))):
        return ["skipped: needs gunicorn, chromium and chromedriver"]
    n = 20 if quick else 24
    port = _free_port()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines = [f"machine: {os.cpu_count()} CPUs, load average {load:.2f} at start",
             f"server: gunicorn -w {WORKERS} --threads {THREADS} app:server; client: headless Chromium; "
             f"{n} changes per row after 3 warm-up changes",
             "main: keydown -> plotly_afterplot of the main figure showing the new value (paths layer for",
             "      (a); surface layer, and for a window change its tick labels, for (b)); all: -> the last",
             "      figure the change redraws (the side figure too);",
             "      sent / responses: keydown -> first callback request sent / last response received",
             "      (medians; before 'sent' the browser handles the input, after 'responses' it draws)",
             f"{'change':32s} {'kind':>4s} {'main med':>9s} {'main p95':>9s} {'all med':>9s} {'all p95':>9s} "
             f"{'sent':>7s} {'responses':>10s}"]
    with tempfile.TemporaryDirectory() as data_dir:
        server = _start_gunicorn(port, data_dir)
        try:
            driver = _driver()
            try:
                main_kind: dict[str, list[float]] = {"a": [], "b": []}
                all_kind: dict[str, list[float]] = {"a": [], "b": []}
                for label, kind, selector, key, sigs in CASES:
                    lat, served, main, sent = _measure(driver, f"http://127.0.0.1:{port}/surface", selector, key,
                                                 sigs, n, 3)
                    main_kind[kind] += main
                    all_kind[kind] += lat
                    lines.append(f"{label:32s} {kind:>4s} {statistics.median(main):7.1f}ms {_p95(main):7.1f}ms "
                                 f"{statistics.median(lat):7.1f}ms {_p95(lat):7.1f}ms "
                                 f"{statistics.median(sent):5.1f}ms {statistics.median(served):8.1f}ms")
                for kind, target, what in (("a", 60, "trajectory-only"), ("b", 150, "surface 256x256")):
                    for name, data in (("main figure", main_kind[kind]), ("all figures", all_kind[kind])):
                        p95 = _p95(data)
                        lines.append(f"({kind}) {what:16s} {name}, {len(data)} changes: median "
                                     f"{statistics.median(data):6.1f} ms, p95 {p95:6.1f} ms "
                                     f"(target p95 <= {target} ms: {'met' if p95 <= target else 'NOT met'})")
            finally:
                driver.quit()
        finally:
            server.terminate()
            server.wait(15)
    return lines


if __name__ == "__main__":  # pragma: no cover
    sys.stdout.write("\n".join(run("--quick" in sys.argv)) + "\n")
