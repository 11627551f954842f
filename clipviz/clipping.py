"""Gradient clipping rules as small objects, shared by the one-unit descent and the training engine.

Each rule is a class whose constructor takes exactly its own parameters, in the way optax's
``clip_by_global_norm(max_norm)`` does, and whose :meth:`Rule.step` clips one gradient::

    from clipviz.clipping import NormClip
    rule = NormClip(threshold=1.0)      # Algorithm 1 of the paper
    out = rule.step(g)                  # ClipOutcome: g to apply, ||g||, fired, skipped, tau

A rule declares its parameters (:class:`Param`: name, bounds, help, the short key forms and
links use), and a registry names the rules.  The pages' controls, the CLI's flags and ``--clip``
choices, the API's and :class:`clipviz.training.TrainConfig`'s validation and the figures' legends
all ask the registry (:func:`names`, :func:`get`, :func:`make`, :func:`params`), so a new rule is
one class with the :func:`register` decorator and nothing else.  A package adds rules to every
clipviz process (web app, runners, Celery workers) by naming its :class:`Rule` subclasses under
the entry-point group ``clipviz.clipping`` (:func:`load_plugins`)::

    [project.entry-points."clipviz.clipping"]
    soft = "my_package.rules:SoftClip"

Rules
-----
``none`` (:class:`NoClip`)
    g is returned unchanged: plain BPTT.
``norm`` (:class:`NormClip`)
    The paper's Algorithm 1: if ||g|| >= tau then g <- tau g / ||g||.
``value`` (:class:`ValueClip`)
    Mikolov's element-wise clip of every component to [-tau, tau].
``autoclip`` (:class:`AutoClip`)
    AutoClip (Seetharaman et al., 2020): ``norm`` with tau set to the p-th percentile of all
    gradient norms seen so far, the current one included (as in the authors' implementation).
``norm_shrink`` (:class:`NormShrinkClip`)
    The rule of the paper's authors' public code (``pascanur/trainingRNNs``, RNN.py:224-243):
    ``norm`` (strict ``>``), and on a non-finite norm or one above 1e10 the update replaced by a
    shrink of W_rec.  It reads the parameters (:class:`Blocks`, declared in :attr:`Rule.needs`).

Non-finite gradients
--------------------
One rule for every rule and entry point: a gradient with a NaN or infinite component is never
applied.  :meth:`Rule.step` returns a zero vector with ``skipped=True``, ``fired=False`` and
``norm=inf``, and such a norm never enters a rule's state (AutoClip's history); :func:`clip`
returns the same zero vector and ``fired=False``.  The training engine counts skipped updates
apart from clipped ones.
"""

from __future__ import annotations

import bisect
import logging
import math
from dataclasses import dataclass
from typing import Any, ClassVar, Mapping, Sequence

import numpy as np

from ._validate import show
from .config import SETTINGS

log = logging.getLogger(__name__)

__all__ = ["Param", "ClipOutcome", "Blocks", "Rule", "NoClip", "NormClip", "ValueClip", "AutoClip",
           "NormShrinkClip",
           "register", "unregister", "load_plugins", "names", "get", "lookup", "make", "line_value", "describe", "params", "clip", "Clipper"]

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


# ---------------------------------------------------------------------------
# parameters
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Param:
    """One parameter of a clipping rule: what it is called, what it may be, and how forms show it.

    The same parameter (``threshold``) may serve several rules (``norm``, ``value``); it is
    declared once and shared.
    """

    name: str  #: keyword of the rule's constructor, TrainConfig field, CLI flag, API key
    key: str  #: short key of the page controls and their links (``tau``, ``p``)
    symbol: str  #: how the parameter is written in the paper and on figures (τ, p)
    label: str  #: label of a form control
    help: str  #: one line under the control and in ``--help``
    lo: float  #: smallest admissible value (excluded when ``lo_open``)
    hi: float  #: largest admissible value (included)
    default: float  #: the value a form starts with
    form_lo: float  #: the range a form control offers (within [lo, hi])
    form_hi: float
    lo_open: bool = True
    log: bool = False  #: a slider for it moves on a log scale (thresholds span decades)
    domain: str = ""  #: the admissible values in words, for messages

    def check(self, value: Any) -> float:
        """``value`` as a float within the domain, or ValueError saying what is allowed."""
        try:
            v = float(value)
        except (TypeError, ValueError, OverflowError):
            raise ValueError(f"{self.name} must be {self.domain}, got {show(value)}") from None
        low_ok = v > self.lo if self.lo_open else v >= self.lo
        if not (math.isfinite(v) and low_ok and v <= self.hi):
            raise ValueError(f"{self.name} must be {self.domain}, got {show(value)}")
        return v


THRESHOLD = Param(
    "threshold", "tau", "τ", "Threshold τ",
    "norm / value clipping threshold (the paper: 1 for the synthetic tasks, 120 for music)",
    lo=0.0, hi=math.inf, default=SETTINGS.clip_threshold, form_lo=1e-3, form_hi=1e4, log=True,
    domain="a positive finite number")
PERCENTILE = Param(
    "percentile", "p", "p", "Autoclip percentile",
    "autoclip's τ = this percentile of all gradient norms so far",
    lo=0.0, hi=100.0, default=SETTINGS.autoclip_percentile, form_lo=0.1, form_hi=100.0,
    domain="a number in (0, 100]")


# ---------------------------------------------------------------------------
# outcome and the rule base class
# ---------------------------------------------------------------------------
@dataclass
class ClipOutcome:
    """What one :meth:`Rule.step` did."""

    g: np.ndarray  #: the gradient to apply (zeros when skipped)
    norm: float  #: ||g|| before clipping (inf when not finite)
    fired: bool  #: the rule rescaled or cut the gradient
    skipped: bool  #: g was not finite and must not be applied
    threshold: float  #: the tau in force for this step (nan for a rule without one)
    replaced: bool = False  #: g was replaced by another step (not a rescaling of g; norm_shrink)


@dataclass(frozen=True)
class Blocks:
    """What a rule that declares :attr:`Rule.needs` reads besides g: the parameters.

    ``theta`` is the flat parameter vector (the layout of g) and ``where`` names the slices of
    blocks in it; ``"W"`` is the recurrent matrix W_rec, row-major (the training engine's
    :class:`clipviz.training.model.RNN` puts it first).  Engines pass it only to rules that need it
    (``rule.step(g, blocks) if rule.needs else rule.step(g)``), so a plug-in rule whose ``step``
    takes g alone keeps working.
    """

    theta: np.ndarray
    where: Mapping[str, slice]


class Rule:
    """A clipping rule with its parameters and its state across steps.

    Subclasses set the class attributes and implement :meth:`_clip`; the constructor takes exactly
    the parameters in :attr:`params`, as keywords.  :meth:`step` is the one code path that both
    :func:`clipviz.one_unit.descend` and the training engine call once per update.
    """

    name: ClassVar[str]  #: registry name (``--clip``, the ``clip`` field of a config)
    title: ClassVar[str]  #: one line for menus and help: what the rule does
    legend: ClassVar[str]  #: how a figure's legend names a run made with this rule
    method: ClassVar[str]  #: how comparisons of methods (Figure 7, Tables 1-2) name it
    params: ClassVar[tuple[Param, ...]] = ()  #: the parameters the constructor takes
    line: ClassVar[str | None] = None  #: the parameter drawn as a line on ‖g‖ plots (a fixed τ)
    needs: ClassVar[tuple[str, ...]] = ()  #: parameter blocks :meth:`step` reads (:class:`Blocks`)

    def __init__(self, **values: Any) -> None:
        own = {p.name: p for p in self.params}
        extra = sorted(set(values) - set(own))
        if extra:
            raise ValueError(f"clip rule {self.name!r} takes {_param_list(self.params)}; "
                             f"got {', '.join(map(repr, extra))}")
        checked = {}
        for p in self.params:
            if values.get(p.name) is None:
                raise ValueError(f"clip rule {self.name!r} needs a {p.name} ({p.domain}, "
                                 f"e.g. {p.name}={p.default:g})")
            checked[p.name] = p.check(values[p.name])
        self.values: dict[str, float] = checked
        self.reset()

    # -- state ---------------------------------------------------------------
    def reset(self) -> None:
        """Forget what earlier steps left (a fresh descent or run starts from here)."""

    def fresh(self) -> "Rule":
        """A new rule of the same kind and parameters, with no state."""
        return type(self)(**self.values)

    # -- one step ------------------------------------------------------------
    @property
    def threshold(self) -> float:
        """The fixed tau of this rule (nan for a rule without one)."""
        return self.values[self.line] if self.line else math.nan

    def step(self, g: np.ndarray, blocks: Blocks | None = None) -> ClipOutcome:
        """Clip one gradient; a gradient with a non-finite entry is skipped (module docstring).

        ``blocks``: the parameters, for a rule that declares :attr:`needs` (ignored here)."""
        n = _norm(g)
        # a NaN or inf entry: skip the step.  (Finite entries have a finite norm unless the
        # norm itself exceeds the largest float; _norm rescales squares that would overflow.)
        if not math.isfinite(n) and not np.all(np.isfinite(g)):
            return ClipOutcome(np.zeros_like(g), math.inf, False, True, self.threshold)
        out, fired, tau = self._clip(g, n)
        return ClipOutcome(out, n, fired, False, tau)

    def _clip(self, g: np.ndarray, n: float) -> tuple[np.ndarray, bool, float]:
        """(gradient to apply, fired, tau in force) for a finite ``g`` of norm ``n``."""
        raise NotImplementedError

    # -- description ---------------------------------------------------------
    def describe(self, ascii_keys: bool = True) -> str:
        """``norm (tau=1)``: the name and the parameters by their short keys (or symbols)."""
        if not self.params:
            return self.name
        parts = [f"{p.key if ascii_keys else p.symbol}={self.values[p.name]:g}" for p in self.params]
        return f"{self.name} ({', '.join(parts)})"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.values.items())})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.values == self.values  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((self.name, tuple(sorted(self.values.items()))))


def _param_list(ps: Sequence[Param]) -> str:
    return ", ".join(p.name for p in ps) if ps else "no parameter"


# ---------------------------------------------------------------------------
# the registry
# ---------------------------------------------------------------------------
_REGISTRY: dict[str, type[Rule]] = {}


def register(cls: type[Rule]) -> type[Rule]:
    """Class decorator: make ``cls`` a rule every form, the CLI and the API offer.

    A parameter name a registered rule already declares must mean the same :class:`Param`.
    """
    if not (isinstance(cls, type) and issubclass(cls, Rule)) or not getattr(cls, "name", ""):
        raise TypeError("register takes a Rule subclass with a name")
    known = {p.name: p for p in params()}
    for p in cls.params:
        if p.name in known and known[p.name] != p:
            raise ValueError(f"parameter {p.name!r} of rule {cls.name!r} differs from the one "
                             "another rule declares; share the same Param")
    if cls.line is not None and cls.line not in {p.name for p in cls.params}:
        raise ValueError(f"rule {cls.name!r}: line {cls.line!r} is not one of its parameters")
    _REGISTRY[cls.name] = cls
    return cls


def unregister(name: str) -> None:
    """Remove a rule from the registry (for tests and plug-ins)."""
    _REGISTRY.pop(name, None)


def names() -> tuple[str, ...]:
    """The registered rules' names, in registration order."""
    return tuple(_REGISTRY)


def get(name: str) -> type[Rule]:
    """The rule class registered as ``name`` (ValueError listing the names)."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(f"clip rule must be one of {', '.join(map(repr, names()))}; "
                         f"got {show(name)}") from None


def lookup(name: Any) -> type[Rule] | None:
    """The rule class registered as ``name``, or None (a stored run may name a rule that a
    plug-in registered in another process)."""
    return _REGISTRY.get(name) if isinstance(name, str) else None


def params() -> tuple[Param, ...]:
    """Every parameter of every registered rule, once each (for forms and CLI flags)."""
    seen: dict[str, Param] = {}
    for cls in _REGISTRY.values():
        for p in cls.params:
            seen.setdefault(p.name, p)
    return tuple(seen.values())


def line_value(name: Any, values: Mapping[str, Any]) -> float | None:
    """The fixed τ that a run with rule ``name`` and parameters ``values`` (a config) draws on
    ‖g‖ plots; None for a rule without one (or one not registered here)."""
    rule = lookup(name)
    v = values.get(rule.line) if rule is not None and rule.line is not None else None
    return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None


def describe(name: Any, values: Mapping[str, Any], ascii_keys: bool = True) -> str:
    """``norm (tau=120)`` for a rule name and a config holding its parameters; the bare name
    where the rule is not registered here or the config lacks its parameters."""
    try:
        return make(name, values).describe(ascii_keys)
    except ValueError:
        return str(name)


def make(name: str | Rule, values: Mapping[str, Any] | None = None, /, **kw: Any) -> Rule:
    """The rule ``name`` with its own parameters taken from ``values`` and ``kw``.

    Values for parameters the rule does not take are ignored, so a form or a config that holds
    every rule's parameters can be passed whole.  A :class:`Rule` is returned as a fresh copy.
    """
    if isinstance(name, Rule):
        return name.fresh()
    cls = get(name)
    merged = {**(values or {}), **kw}
    return cls(**{p.name: merged.get(p.name) for p in cls.params})


# ---------------------------------------------------------------------------
# the rules
# ---------------------------------------------------------------------------
@register
class NoClip(Rule):
    """No clipping: ``g`` itself, never fired (plain BPTT)."""

    name = "none"
    title = "none: plain BPTT"
    legend = "no clipping"
    method = "plain BPTT (no clipping)"

    def __init__(self) -> None:
        super().__init__()

    def _clip(self, g, n):
        return g, False, math.nan


class _FixedThreshold(Rule):
    """A rule with one fixed threshold τ, drawn as a line on ‖g‖ plots (not registered itself)."""

    params = (THRESHOLD,)
    line = "threshold"

    def __init__(self, threshold: float) -> None:
        super().__init__(threshold=threshold)


@register
class NormClip(_FixedThreshold):
    """Algorithm 1 of the paper: rescale g to norm ``threshold`` when ||g|| >= threshold."""

    name = "norm"
    title = "norm: Algorithm 1, rescale ‖g‖ to τ"
    legend = "norm clipping"
    method = "rescaling (Algorithm 1)"

    def _clip(self, g, n):
        tau = self.values["threshold"]
        return (*_rescale(g, n, tau), tau)


@register
class ValueClip(_FixedThreshold):
    """Element-wise clip of every component of g to [-threshold, threshold] (Mikolov)."""

    name = "value"
    title = "value: clip each component to [−τ, τ]"
    legend = "value clipping"
    method = "element-wise clipping"

    def _clip(self, g, n):
        tau = self.values["threshold"]
        if not np.any(np.abs(g) > tau):
            return g, False, tau
        return np.clip(g, -tau, tau), True, tau


@register
class AutoClip(Rule):
    """AutoClip: Algorithm 1 with τ the ``percentile``-th percentile of all norms so far.

    Keeps a sorted history of the finite norms seen, so each step costs O(log n) search plus
    one insertion.
    """

    name = "autoclip"
    title = "autoclip: τ = a percentile of past ‖g‖"
    legend = "autoclip"
    method = "AutoClip"
    params = (PERCENTILE,)

    def __init__(self, percentile: float) -> None:
        super().__init__(percentile=percentile)

    def reset(self) -> None:
        self._sorted_norms: list[float] = []

    def prime(self, norms: Sequence[float] | np.ndarray) -> "AutoClip":
        """Add earlier gradient norms to the history (for the stateless :func:`clip`)."""
        for v in np.asarray(norms, dtype=np.float64).ravel():
            bisect.insort(self._sorted_norms, float(v))
        return self

    def _clip(self, g, n):
        bisect.insort(self._sorted_norms, n)
        tau = _percentile_sorted(self._sorted_norms, self.values["percentile"])
        return (*_rescale(g, n, tau), tau)


@register
class NormShrinkClip(_FixedThreshold):
    """The authors' rule (``pascanur/trainingRNNs``, the ICML 2013 code, RNN.py:219-243).

    * ``||g|| > threshold`` (strictly, RNN.py:226): g <- threshold g / ||g||, as Algorithm 1;
    * ``||g||`` not finite, negative or above :attr:`BLOW_UP` = 1e10 (RNN.py:234-237: "we can not
      even trust the numbers we get"): the update is *replaced* by ``SHRINK`` W_rec on the W_rec
      block and 0 elsewhere (RNN.py:239-243), so SGD's ``theta -= lr g`` shrinks W_rec by the
      factor ``1 - lr SHRINK`` and leaves the other parameters as they are.

    The shrink reads W_rec (``needs = ("W",)``: :class:`Blocks`).  Called without it (the one-unit
    descent has no W_rec block), a blow-up is skipped as every other rule skips a non-finite
    gradient.  Outcomes of a shrink have ``fired`` and ``replaced`` set.
    """

    name = "norm_shrink"
    title = "norm_shrink: Algorithm 1; W_rec shrunk on a norm > 1e10 (authors' code)"
    legend = "norm clipping + W shrink"
    method = "rescaling, authors' code (W_rec shrink on blow-up)"
    needs = ("W",)
    BLOW_UP: ClassVar[float] = 1e10  #: RNN.py:237
    SHRINK: ClassVar[float] = 0.02  #: RNN.py:239

    def step(self, g: np.ndarray, blocks: Blocks | None = None) -> ClipOutcome:
        tau = self.values["threshold"]
        n = _norm(g)
        if math.isfinite(n) and n <= self.BLOW_UP:
            if n > tau:
                return ClipOutcome(g * (tau / n), n, True, False, tau)
            return ClipOutcome(g, n, False, False, tau)
        n = n if math.isfinite(n) else math.inf
        if blocks is None or "W" not in blocks.where:
            return ClipOutcome(np.zeros_like(g), n, False, True, tau)
        out = np.zeros_like(g)
        w = blocks.where["W"]
        out[w] = self.SHRINK * blocks.theta[w]
        return ClipOutcome(out, n, True, False, tau, replaced=True)


def _rescale(g: np.ndarray, n: float, tau: float) -> tuple[np.ndarray, bool]:
    if n >= tau and n > 0.0:
        return g * (tau / n), True
    return g, False


def _percentile_sorted(a: list[float], p: float) -> float:
    """np.percentile(a, p) (linear method) for an already sorted list."""
    pos = (len(a) - 1) * p / 100.0
    lo = int(math.floor(pos))
    hi = min(lo + 1, len(a) - 1)
    frac = pos - lo
    return a[lo] + (a[hi] - a[lo]) * frac if frac else a[lo]


# ---------------------------------------------------------------------------
# one-call forms
# ---------------------------------------------------------------------------
def clip(
    g: np.ndarray,
    rule: str | Rule,
    threshold: float | None = None,
    *,
    history: Sequence[float] | np.ndarray | None = None,
    percentile: float | None = None,
    **values: Any,
) -> tuple[np.ndarray, bool]:
    """Clip one gradient vector by a rule with no state of its own.

    Parameters
    ----------
    g : ndarray
        The gradient (any shape; norms are over all components).
    rule : str or Rule
        A registered name (:func:`names`) or a rule object (its copy is used, so its own state is
        left as it was).
    threshold, percentile, **values
        The rule's parameters (``threshold``: tau of Algorithm 1 and of ``value``; ``percentile``:
        p of ``autoclip``); those the rule does not take are ignored.
    history : sequence of float, optional
        For ``autoclip``: the gradient norms of earlier steps.

    Returns
    -------
    clipped_g : ndarray
        The gradient to apply (zeros if ``g`` was not finite: the step is skipped).
    fired : bool
        Whether the rule rescaled or cut ``g`` (False for a skipped step).
    """
    r = make(rule, {"threshold": threshold, "percentile": percentile, **values})
    g = np.asarray(g, dtype=np.float64) if not isinstance(g, np.ndarray) else g
    if history is not None and isinstance(r, AutoClip):
        r.prime(history)
    out = r.step(g)
    return out.g, out.fired


def Clipper(rule: str | Rule = "none", threshold: float | None = None,
            percentile: float | None = None, **values: Any) -> Rule:
    """The rule object for a name and parameters: ``Clipper("norm", 1.0)`` is ``NormClip(1.0)``
    (the spelling of code written before rules were objects)."""
    return make(rule, {"threshold": threshold, "percentile": percentile, **values})


def __getattr__(name: str) -> Any:
    if name == "RULES":  # the registered names at the time of asking
        return names()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


PLUGIN_GROUP = "clipviz.clipping"
"""Entry-point group of installed packages' clipping rules (each names a :class:`Rule` subclass)."""


def load_plugins() -> tuple[str, ...]:
    """Register the rules installed packages declare under :data:`PLUGIN_GROUP`; the names added.

    Runs when this module is imported, so every clipviz process knows the same rules; call it
    again after installing a package at run time.  A plug-in that fails to load is logged with
    its traceback and skipped: the built-in rules always work.
    """
    from importlib.metadata import entry_points

    added = []
    for ep in entry_points(group=PLUGIN_GROUP):
        if ep.name in _REGISTRY:
            continue
        try:
            cls = ep.load()
            register(cls)
        except Exception:  # noqa: BLE001 - a broken plug-in must not break clipviz
            log.exception("clipping rule plug-in %r (%s) could not be registered", ep.name, ep.value)
            continue
        added.append(cls.name)
    return tuple(added)


load_plugins()
