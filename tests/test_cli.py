"""The console script: `clipviz serve` starts the app; errors are messages, not tracebacks."""

import json
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np

from clipviz import one_unit
from clipviz.bench.one_unit import numpy_surface
from clipviz.cli import main


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_starts_the_app_and_answers_health():
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "clipviz.cli", "serve", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 90
        body = None
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    body = json.loads(r.read())
                    break
            except OSError:
                assert proc.poll() is None, proc.stdout.read().decode()
                time.sleep(0.5)
        assert body is not None and body["status"] == "ok"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
            assert r.status == 200
    finally:
        proc.terminate()
        proc.wait(10)


def test_unknown_command_is_a_usage_message(capsys):
    import pytest

    with pytest.raises(SystemExit) as e:
        main(["nonsense"])
    assert e.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_bench_baseline_computes_the_same_surface():
    """The benchmark compares like with like: its NumPy baseline equals the kernel."""
    ws = np.linspace(-2, 12, 40)
    bs = np.linspace(-8, 2, 30)
    s = one_unit.error_surface(ws, bs)
    for got, want in zip((s.E, s.dE_dw, s.dE_db), numpy_surface(ws, bs, 50, 0.5, 0.7)):
        assert np.abs(got - want).max() <= 1e-10 * np.abs(want).max()


def test_python_dash_m_clipviz_is_the_clipviz_command():
    """``python -m clipviz`` runs the same command line as the ``clipviz`` script."""
    out = subprocess.run([sys.executable, "-m", "clipviz", "reproduce", "--help"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "table1" in out.stdout and "figure7" in out.stdout
    bad = subprocess.run([sys.executable, "-m", "clipviz", "no-such-command"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "invalid choice" in bad.stderr
