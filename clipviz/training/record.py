"""What a training run leaves behind: :class:`RunRecord`, the per-update event keys and
the code version stamped on every record."""

from __future__ import annotations

import functools
import json
import math
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__

EVENT_KEYS = ("update", "total", "loss", "grad_norm", "grad_norm_clipped", "clipped", "skipped",
              "rho", "valid", "elapsed")
"""The keys of every per-update event (and of :attr:`RunRecord.series`), in order."""


@dataclass
class RunRecord:
    """A finished (or cancelled) run: config, per-update series, final results."""

    config: dict[str, Any]
    status: str  #: "finished" | "cancelled"
    series: dict[str, list] = field(default_factory=dict)  #: one list per EVENT_KEYS key
    result: dict[str, Any] = field(default_factory=dict)
    code_version: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"config": dict(self.config), "status": self.status,
                "series": {k: list(x) for k, x in self.series.items()},
                "result": dict(self.result), "code_version": self.code_version}

    def to_json(self, **kw) -> str:
        """Strict JSON (non-finite numbers are stored as null)."""
        return json.dumps(_finite_or_none(self.to_dict()), allow_nan=False, **kw)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunRecord":
        try:
            return cls(config=dict(d["config"]), status=str(d["status"]),
                       series={k: list(x) for k, x in d.get("series", {}).items()},
                       result=dict(d.get("result", {})), code_version=str(d.get("code_version", "")))
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"not a run record: {exc}") from None

    @classmethod
    def from_json(cls, s: str) -> "RunRecord":
        return cls.from_dict(json.loads(s))


def _finite_or_none(x):
    if isinstance(x, dict):
        return {k: _finite_or_none(y) for k, y in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite_or_none(y) for y in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """clipviz version plus the git commit of the source tree when available."""
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=5, cwd=Path(__file__).resolve().parent)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5,
                               cwd=Path(__file__).resolve().parent)
        if rev.returncode == 0:
            return f"{__version__}+g{rev.stdout.strip()}" + (".dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return __version__
