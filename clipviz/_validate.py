"""Argument checks shared by the library API; each error says what is allowed."""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np


def finite(name: str, value) -> float:
    """Return ``value`` as a float, or raise ValueError if it is not a finite number."""
    try:
        v = float(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an int beyond the float range
        raise ValueError(f"{name} must be a finite number, got {show(value)}") from None
    if not math.isfinite(v):
        raise ValueError(f"{name} must be a finite number, got {show(value)}")
    return v


def finite_or_none(x) -> float | None:
    """``float(x)`` where it is finite, else None: for JSON records, which have no NaN or inf."""
    x = float(x)
    return x if math.isfinite(x) else None


def show(value, limit: int = 60) -> str:
    """``repr(value)`` for a message, at most ``limit`` characters: a message never repeats a
    400-digit number (or a 100 MB string) whole."""
    try:
        s = repr(value)
    except ValueError:  # an int beyond Python's digit limit for str()
        return "a number too large to print"
    return s if len(s) <= limit else s[:limit - 3] + "..."


def integer(name: str, value, lo: int, hi: int) -> int:
    """Return ``value`` as an int in [lo, hi], or raise ValueError saying so."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        try:
            fv = float(value)
        except (TypeError, ValueError, OverflowError):
            raise ValueError(f"{name} must be an integer between {lo} and {hi}, got {show(value)}") from None
        if not fv.is_integer():
            raise ValueError(f"{name} must be an integer between {lo} and {hi}, got {show(value)}")
        value = int(fv)
    value = int(value)
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be between {lo} and {hi}, got {show(value)}")
    return value


def choice(name: str, value, allowed: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``allowed``, else raise ValueError listing them."""
    allowed = tuple(allowed)
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}; got {value!r}")
    return value


def finite_array(name: str, values, max_len: int) -> np.ndarray:
    """A 1-D float64 array of 1..max_len finite values, or ValueError."""
    try:
        a = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{name} must be a 1-D sequence of finite numbers") from None
    if a.ndim != 1 or a.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence of numbers, got shape {a.shape}")
    if a.size > max_len:
        raise ValueError(f"{name} has {a.size} points; at most {max_len} are allowed")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} must contain only finite numbers")
    return np.ascontiguousarray(a)
