"""`pip install .` (the README's first command, and the Docker image) ships every file the app needs."""

import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_wheel_contains_the_web_assets_and_type_marker(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path), str(REPO)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("clipviz-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for f in (REPO / "clipviz" / "web" / "assets").iterdir():
        assert f"clipviz/web/assets/{f.name}" in names
    assert "clipviz/py.typed" in names
    assert any(n.endswith("entry_points.txt") for n in names)
