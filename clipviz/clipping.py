"""Gradient clipping rules, shared by the one-unit descent and the training engine.

Each rule is a small pure function with one signature::

    rule(g: ndarray, threshold: float) -> (clipped_g: ndarray, fired: bool)

and :func:`clip` dispatches on the rule's name.  :class:`Clipper` carries the
state a rule needs across steps (AutoClip's history of norms) and is the one
code path that both :func:`clipviz.one_unit.descend` and the training engine
call once per update.

Rules
-----
``none``
    g is returned unchanged.
``norm``
    The paper's Algorithm 1: if ||g|| >= tau then g <- tau g / ||g||.
``value``
    Mikolov's element-wise clip of every component to [-tau, tau].
``autoclip``
    AutoClip (Seetharaman et al., 2020): ``norm`` with tau set to the p-th
    percentile of all gradient norms seen so far, the current one included
    (as in the authors' implementation).

Non-finite gradients
--------------------
A gradient with a NaN or infinite component is never applied: :func:`clip`
returns a zero vector (a skipped step) and ``fired=True``;
:meth:`Clipper.step` reports it as ``skipped`` and does not add it to the
history.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from ._validate import show

RULES = ("none", "norm", "value", "autoclip")
"""Names accepted by :func:`clip` and :class:`Clipper`."""


_SAFE_SUMSQ = (2.0 ** -960, 2.0 ** 1000)
"""Sums of squares in this range keep full precision; outside it the squares have underflowed
(subnormal, up to 1e-5 relative error in the norm) or overflowed (an exploding but finite
gradient would get norm inf, and clipping would turn it into a zero step)."""


def _norm(g: np.ndarray) -> float:
    """||g||_2: the square root of the dot product (the one-unit descent calls this twice per
    step, so without ``np.linalg.norm``'s argument checks), rescaled by the largest magnitude when
    the squares would underflow or overflow.  A NaN or inf entry gives a non-finite norm."""
    flat = g.ravel()
    sumsq = float(flat.dot(flat))
    if _SAFE_SUMSQ[0] <= sumsq <= _SAFE_SUMSQ[1]:
        return math.sqrt(sumsq)
    if sumsq == 0.0 and not flat.any():
        return 0.0
    scale = float(np.max(np.abs(flat)))
    if not math.isfinite(scale):
        return math.sqrt(sumsq)  # inf or nan: the entries are not finite
    r = flat / scale
    return scale * math.sqrt(float(r.dot(r)))


def clip_none(g: np.ndarray, threshold: float) -> tuple[np.ndarray, bool]:
    """No clipping: ``g`` itself, never fired."""
    return g, False


def clip_norm(g: np.ndarray, threshold: float) -> tuple[np.ndarray, bool]:
    """Algorithm 1 of the paper: rescale g to norm ``threshold`` when ||g|| >= threshold."""
    n = _norm(g)
    if n >= threshold and n > 0.0:
        return g * (threshold / n), True
    return g, False


def clip_value(g: np.ndarray, threshold: float) -> tuple[np.ndarray, bool]:
    """Element-wise clip of every component of g to [-threshold, threshold]."""
    fired = bool(np.any(np.abs(g) > threshold))
    if not fired:
        return g, False
    return np.clip(g, -threshold, threshold), True


_RULE_FUNCTIONS: dict[str, Callable[[np.ndarray, float], tuple[np.ndarray, bool]]] = {
    "none": clip_none,
    "norm": clip_norm,
    "value": clip_value,
    "autoclip": clip_norm,  # with tau from the percentile of the history
}


def check_rule(rule: str, threshold: float | None, percentile: float | None) -> tuple[float, float]:
    """Validate a rule and its parameters; return (threshold, percentile) as floats.

    Raises
    ------
    ValueError
        For an unknown rule, a missing or non-positive threshold for
        ``norm``/``value``, or a percentile outside (0, 100] for ``autoclip``.
    """
    if rule not in RULES:
        raise ValueError(f"clip rule must be one of {', '.join(map(repr, RULES))}; got {rule!r}")
    tau = math.nan
    p = math.nan
    if rule in ("norm", "value"):
        if threshold is None:
            raise ValueError(f"clip rule {rule!r} needs a threshold > 0 (e.g. threshold=1.0)")
        try:
            tau = float(threshold)
        except (TypeError, ValueError, OverflowError):
            raise ValueError(f"threshold must be a positive finite number, got {show(threshold)}") from None
        if not (math.isfinite(tau) and tau > 0.0):
            raise ValueError(f"threshold must be a positive finite number, got {show(threshold)}")
    if rule == "autoclip":
        if percentile is None:
            raise ValueError("clip rule 'autoclip' needs a percentile in (0, 100] (e.g. percentile=10)")
        try:
            p = float(percentile)
        except (TypeError, ValueError, OverflowError):
            raise ValueError(f"percentile must be a number in (0, 100], got {show(percentile)}") from None
        if not (0.0 < p <= 100.0):
            raise ValueError(f"percentile must be a number in (0, 100], got {show(percentile)}")
    return tau, p


def clip(
    g: np.ndarray,
    rule: str,
    threshold: float | None = None,
    *,
    history: Sequence[float] | np.ndarray | None = None,
    percentile: float | None = None,
) -> tuple[np.ndarray, bool]:
    """Clip a gradient vector by ``rule``.

    Parameters
    ----------
    g : ndarray
        The gradient (any shape; norms are over all components).
    rule : {"none", "norm", "value", "autoclip"}
        See the module docstring.
    threshold : float, optional
        tau for ``norm`` (Algorithm 1) and ``value``.
    history : sequence of float, optional
        For ``autoclip``: the gradient norms of earlier steps.
    percentile : float, optional
        For ``autoclip``: p in (0, 100].

    Returns
    -------
    clipped_g : ndarray
        The gradient to apply (zeros if ``g`` was not finite: the step is skipped).
    fired : bool
        Whether the rule changed ``g``.
    """
    tau, p = check_rule(rule, threshold, percentile)
    g = np.asarray(g, dtype=np.float64) if not isinstance(g, np.ndarray) else g
    if not np.all(np.isfinite(g)):
        return np.zeros_like(g), True
    if rule == "autoclip":
        norms = np.append(np.asarray(history if history is not None else [], dtype=np.float64),
                          _norm(g))
        tau = float(np.percentile(norms, p))
    return _RULE_FUNCTIONS[rule](g, tau)


@dataclass
class ClipOutcome:
    """What one :meth:`Clipper.step` did."""

    g: np.ndarray  #: the gradient to apply (zeros when skipped)
    norm: float  #: ||g|| before clipping (inf when not finite)
    fired: bool  #: the rule rescaled or cut the gradient
    skipped: bool  #: g was not finite and must not be applied
    threshold: float  #: the tau in force for this step (nan for "none")


@dataclass
class Clipper:
    """A clipping rule with its state across steps.

    Used identically by the one-unit descent and the training engine.  For
    ``autoclip`` it keeps a sorted history of the finite norms seen, so each
    step costs O(log n) search plus one insertion.
    """

    rule: str = "none"
    threshold: float | None = None
    percentile: float | None = None
    _sorted_norms: list[float] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self._tau, self._p = check_rule(self.rule, self.threshold, self.percentile)

    def step(self, g: np.ndarray) -> ClipOutcome:
        """Clip one gradient; non-finite gradients are reported as skipped."""
        n = _norm(g)
        # a NaN or inf entry: skip the step.  (Finite entries have a finite norm unless the
        # norm itself exceeds the largest float; _norm rescales squares that would overflow.)
        if not math.isfinite(n) and not np.all(np.isfinite(g)):
            return ClipOutcome(np.zeros_like(g), math.inf, False, True, self._tau)
        tau = self._tau
        if self.rule == "autoclip":
            bisect.insort(self._sorted_norms, n)
            tau = _percentile_sorted(self._sorted_norms, self._p)
        out, fired = _RULE_FUNCTIONS[self.rule](g, tau)
        return ClipOutcome(out, n, fired, False, tau)


def _percentile_sorted(a: list[float], p: float) -> float:
    """np.percentile(a, p) (linear method) for an already sorted list."""
    pos = (len(a) - 1) * p / 100.0
    lo = int(math.floor(pos))
    hi = min(lo + 1, len(a) - 1)
    frac = pos - lo
    return a[lo] + (a[hi] - a[lo]) * frac if frac else a[lo]
