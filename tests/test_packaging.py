"""`pip install .` (the README's first command, and the Docker image) ships every file the app needs."""

import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_wheel_contains_the_web_assets_and_type_marker(built_wheel):
    names = set(zipfile.ZipFile(built_wheel).namelist())
    assets = sorted((REPO / "clipviz" / "web" / "assets").iterdir())
    assert assets
    for f in assets:
        assert f"clipviz/web/assets/{f.name}" in names
    assert "clipviz/py.typed" in names
    assert any(n.endswith("entry_points.txt") for n in names)
