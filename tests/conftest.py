import os
from pathlib import Path

import pytest

os.environ.setdefault("NUMBA_THREADING_LAYER", "workqueue")

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """../shared/data next to the checkout; tests that need it skip only where it is absent."""
    if not DATA.is_dir():
        pytest.skip(f"data folder {DATA} is absent (CI has it; see README)")
    return DATA
