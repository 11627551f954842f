"""`pip install .` (the README's first command, and the Docker image) ships every file the app needs."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_wheel_contains_the_web_assets_and_type_marker(tmp_path):
    # Build from a clean copy of the tracked files: a leftover clipviz.egg-info
    # (from `pip install -e`) would otherwise supply the file list itself.
    try:
        files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, check=True,
                               capture_output=True).stdout.decode().split("\0")
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: cannot list the tracked files")
    src = tmp_path / "src"
    for name in filter(None, files):
        if (REPO / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, src / name)
    out = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(out), str(src)], check=True, capture_output=True)
    (wheel,) = out.glob("clipviz-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assets = sorted((REPO / "clipviz" / "web" / "assets").iterdir())
    assert assets
    for f in assets:
        assert f"clipviz/web/assets/{f.name}" in names
    assert "clipviz/py.typed" in names
    assert any(n.endswith("entry_points.txt") for n in names)
