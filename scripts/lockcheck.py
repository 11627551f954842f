"""Does this interpreter hold exactly the set a lock file pins?

    python scripts/lockcheck.py requirements/test.lock

Exit 0 when every pinned package is installed at its pinned version and nothing else is
installed (apart from clipviz itself and the pip/setuptools that ``python -m venv`` seeds, where
the lock does not pin them); otherwise print the differences and exit 1.  Platform markers in the
lock are evaluated for this interpreter.  Standard library only: it runs in a bare venv.
"""

from __future__ import annotations

import re
import sys
from importlib import metadata

SEEDED = {"pip", "setuptools", "wheel"}  # what a new venv may hold that no lock asks for
OWN = {"clipviz"}


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def marker_ok(marker: str) -> bool:
    """Evaluate a lock line's environment marker (only the forms uv writes)."""
    if not marker.strip():
        return True
    try:
        from packaging.markers import Marker  # present in most venvs, not in a bare one
    except ImportError:
        try:
            from pip._vendor.packaging.markers import Marker
        except ImportError:  # pragma: no cover - pip is always there in a venv
            return True
    return Marker(marker).evaluate()


def pins(lock_text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in lock_text.splitlines():
        m = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)\s*(?:;([^\\]*))?", line)
        if m and marker_ok(m.group(3) or ""):
            out[norm(m.group(1))] = m.group(2)
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8") as fh:
        want = pins(fh.read())
    have = {norm(d.metadata["Name"]): d.version for d in metadata.distributions() if d.metadata["Name"]}
    problems = []
    for name, version in sorted(want.items()):
        if have.get(name) != version:
            problems.append(f"  {name}: locked {version}, installed {have.get(name, 'absent')}")
    for name, version in sorted(have.items()):
        if name not in want and name not in OWN and name not in SEEDED:
            problems.append(f"  {name}: installed {version}, not in the lock")
    if problems:
        print(f"{sys.prefix} does not hold exactly {argv[1]}:", *problems, sep="\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
