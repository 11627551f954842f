"""Bounded page controls: parsing and validation of values from the URL, the UI or a raw request.

Every control of every page is described by one :class:`Num` or :class:`Choice`
with explicit bounds.  :func:`parse` turns untrusted values (strings from the
query string, numbers or garbage from a callback request) into clean values
plus one clear message per bad control, so a page can show the message next to
the control and keep its last good figure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence
from urllib.parse import urlencode

from .._validate import show


@dataclass(frozen=True)
class Num:
    """A numeric control bounded to [lo, hi] (integers when ``integer``)."""

    name: str  #: URL key and component id suffix
    label: str  #: what the user sees
    lo: float
    hi: float
    default: float
    integer: bool = False
    help: str = ""  #: one-line explanation shown under the control

    def check(self, value: Any) -> float | int:
        """The value as a number within bounds, or ValueError saying what is allowed."""
        kind = "an integer" if self.integer else "a number"
        allowed = f"{kind} between {_fmt(self.lo)} and {_fmt(self.hi)}"
        if value is None or isinstance(value, bool) or (isinstance(value, str) and not value.strip()):
            raise ValueError(f"{self.label}: enter {allowed}")
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{self.label}: {_show(value)} is not {kind}; allowed: {allowed}") from None
        if not math.isfinite(v):
            raise ValueError(f"{self.label}: {_show(value)} is not finite; allowed: {allowed}")
        if self.integer and not v.is_integer():
            raise ValueError(f"{self.label}: {_show(value)} is not an integer; allowed: {allowed}")
        if not self.lo <= v <= self.hi:
            raise ValueError(f"{self.label}: {_show(value)} is out of range; allowed: {allowed}")
        return int(v) if self.integer else v


@dataclass(frozen=True)
class Choice:
    """A control taking one of a fixed set of strings."""

    name: str
    label: str
    options: tuple[str, ...]
    default: str
    help: str = ""

    def check(self, value: Any) -> str:
        if not isinstance(value, str) or value not in self.options:
            raise ValueError(f"{self.label}: {_show(value)} is not allowed; choose one of "
                             f"{', '.join(self.options)}")
        return value


@dataclass(frozen=True)
class Flag:
    """An on/off control; in the URL ``1``/``0`` (also true/false, on/off)."""

    name: str
    label: str
    default: bool
    help: str = ""

    def check(self, value: Any) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, (list, tuple)):  # a dcc.Checklist value
            return self.name in value
        if isinstance(value, (int, float)) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.lower() in ("1", "true", "on", "yes", "0", "false", "off", "no"):
            return value.lower() in ("1", "true", "on", "yes")
        raise ValueError(f"{self.label}: {_show(value)} is not allowed; use 1 (on) or 0 (off)")


Spec = Num | Choice | Flag


def _fmt(x: float) -> str:
    return f"{x:g}"


def _show(value: Any) -> str:
    return show(value, 40)


def parse(specs: Sequence[Spec], raw: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Validate ``raw`` against ``specs``.

    Returns
    -------
    values : dict
        One entry per spec: the checked value, or the default where the raw
        value is missing or bad.
    errors : dict
        name -> message for every bad value (missing keys are not errors).
    """
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for s in specs:
        if s.name not in raw:
            values[s.name] = s.default
            continue
        try:
            values[s.name] = s.check(raw[s.name])
        except ValueError as exc:
            values[s.name] = s.default
            errors[s.name] = str(exc)
    return values, errors


def check_all(specs: Sequence[Spec], raw: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Like :func:`parse`, but every spec must be present (callback inputs)."""
    full = {s.name: raw.get(s.name) for s in specs}
    return parse(specs, full)


def query_string(specs: Sequence[Spec], values: Mapping[str, Any]) -> str:
    """``?k=v&...`` for the values (booleans as 1/0), in spec order."""
    pairs = []
    for s in specs:
        v = values.get(s.name, s.default)
        if isinstance(s, Flag):
            v = int(bool(v))
        elif isinstance(s, Num) and s.integer and isinstance(v, float) and v.is_integer():
            v = int(v)
        pairs.append((s.name, v))
    return "?" + urlencode(pairs)


def round_sig(x: float, digits: int = 6) -> float:
    """x rounded to ``digits`` significant digits (cache keys, reproducible URLs)."""
    if x == 0 or not math.isfinite(x):
        return float(x)
    return float(f"{x:.{digits}g}")
