"""clipviz's records reach the deployer's log: gunicorn's error log, or standard error.

The package's NullHandler stops Python's last-resort handler (and Flask's default one), so
before ``route_logs`` every record of the web app under gunicorn, tracebacks included, was lost.
Run in a fresh interpreter: pytest's own handlers on the root logger would hide the case.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import logging, sys
    if sys.argv[1] == "gunicorn":
        h = logging.StreamHandler(sys.stdout)
        h.setFormatter(logging.Formatter("[gunicorn-error-log] [%(levelname)s] %(message)s"))
        logging.getLogger("gunicorn.error").addHandler(h)
    from clipviz.web.app import create_app
    create_app(warm=False, cache_config={"CACHE_TYPE": "NullCache"})
    try:
        1 / 0
    except ZeroDivisionError:
        logging.getLogger("clipviz.web.pages.surface").exception("a callback failed")
""")


def _run(mode: str, tmp_path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
                                                          "CLIPVIZ_DATA_DIR": str(tmp_path / "d")})


def test_under_gunicorn_records_and_tracebacks_go_to_its_error_log(tmp_path):
    res = _run("gunicorn", tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "[gunicorn-error-log] [ERROR] a callback failed" in res.stdout
    assert "ZeroDivisionError" in res.stdout  # the traceback, not only the message
    assert "a callback failed" not in res.stderr  # once, not also through another handler


def test_without_a_configured_host_records_go_to_standard_error(tmp_path):
    res = _run("plain", tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "ERROR clipviz.web.pages.surface: a callback failed" in res.stderr
    assert "ZeroDivisionError" in res.stderr
