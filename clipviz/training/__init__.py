"""Training engine: vanilla RNNs, exact BPTT, SGD with every clipping rule.

The paper's experiments (section 4) in one call::

    from clipviz.training import TrainConfig, train
    rec = train(TrainConfig(task="temporal_order", seq_len=20, clip="norm", threshold=1.0),
                callback=lambda ev: print(ev["update"], ev["loss"]))
    rec.result, rec.series["grad_norm"], rec.to_json()

Per update: one window of BPTT (equations (3)-(5)), then
:meth:`clipviz.clipping.Clipper.step` on the flat gradient (the same code
path as the one-unit descent; Algorithm 1 for ``clip="norm"``), then SGD
with optional momentum.  A gradient with a non-finite component is never
applied: the update is skipped and counted.

The objective of a window is the sum over its steps of the per-step loss,
averaged over the sequences of the mini-batch (so thresholds scale with the
window length as in the paper: 120 for 100-step music windows).  Telemetry
reports losses per scored step: nats for temporal order and music (music:
negative log-likelihood per time step summed over the 88 keys, Table 1),
nats per character for text (bits per character in results, Table 2).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Callable

import numpy as np

from .. import _validate as v
from .. import config
from .. import clipping
from ..config import SETTINGS
from ..paper import THRESHOLD_MUSIC, THRESHOLDS_CHARACTERS
from .model import ACTIVATIONS, DTYPES, INITS, PARAMETRISATIONS
from .record import EVENT_KEYS, RunRecord, code_version  # noqa: F401 (code_version: public)
from . import runner as _runner
from .runner import run
from .tasks import MIN_AUTHORS_LENGTH, MIN_TEMPORAL_LENGTH, TEMPORAL_VARIANTS

log = logging.getLogger(__name__)

__all__ = ["TrainConfig", "RunRecord", "train", "train_many", "snapshot_policy", "initial_rho", "TASKS", "EVENT_KEYS",
           "PRESETS", "OPTIONS", "METRICS"]

TASKS = ("temporal_order", "music", "characters")
DEFAULT_DATASET = {"temporal_order": None, "music": "jsb", "characters": "shakespeare"}

PRESETS: dict[str, dict[str, Any]] = {
    # the paper's models (section 4), with run lengths a laptop finishes
    "temporal_order": {},  # SETTINGS defaults: 50 tanh units, length 20, momentum .9
    "music": dict(activation="tanh", hidden=100, bias=True, lr=0.001, momentum=0.0,
                  threshold=THRESHOLD_MUSIC, batch_size=1, seq_len=100),  # section 4.1
    "characters": dict(activation="sigmoid", hidden=500, bias=False, lr=0.05, momentum=0.0,
                       threshold=THRESHOLDS_CHARACTERS["ptb"], batch_size=32,
                       seq_len=180),  # section 4.2
}
"""Per-task settings of the paper, applied by :meth:`TrainConfig.for_task`."""

# the widest input/output a task can have: temporal order's symbols, 88 keys, the vocabulary cap
_IO_BOUND = {"temporal_order": 8, "music": 88, "characters": SETTINGS.max_vocab}


def _memory_limit() -> int:
    """Bytes one run's arrays may use here (0: unknown, not checked)."""
    return int(config.memory_bytes() * SETTINGS.max_train_memory_fraction)


def options() -> dict[str, tuple]:
    """Allowed values of the choice fields (for forms and dropdowns); ``clip`` lists the rules
    registered now (:func:`clipviz.clipping.names`)."""
    return {
        "task": TASKS, "parametrisation": PARAMETRISATIONS, "activation": ACTIVATIONS,
        "clip": clipping.names(), "init": INITS, "dtype": DTYPES,
        "temporal_variant": TEMPORAL_VARIANTS,
        "dataset_music": ("jsb", "nottingham", "piano", "musedata"),
        "dataset_characters": ("ptb", "text8", "shakespeare"),
    }


def __getattr__(name: str) -> Any:
    if name == "OPTIONS":  # :func:`options` at the time of asking
        return options()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

METRICS = {"temporal_order": ("accuracy", "higher is better"),
           "music": ("nll", "nats per time step, lower is better"),
           "characters": ("bpc", "bits per character, lower is better")}
"""The validation metric ("valid" in events) of each task."""


@dataclass
class TrainConfig:
    """Everything that defines a training run (defaults from :data:`clipviz.config.SETTINGS`)."""

    task: str = SETTINGS.train_task  #: "temporal_order" | "music" | "characters"
    dataset: str | None = None  #: known name (see clipviz.datasets.KNOWN) or a path; None: task default
    parametrisation: str = SETTINGS.train_parametrisation  #: "paper" (equation 2) | "standard"
    activation: str = SETTINGS.train_activation  #: "sigmoid" | "tanh"
    hidden: int = SETTINGS.train_hidden  #: hidden units
    lr: float = SETTINGS.train_lr  #: SGD learning rate
    momentum: float = SETTINGS.train_momentum  #: classical momentum in [0, 1)
    clip: str = SETTINGS.train_clip  #: a registered clipping rule (clipviz.clipping.names())
    threshold: float | None = SETTINGS.train_threshold  #: tau for norm / value
    percentile: float | None = SETTINGS.autoclip_percentile  #: p for autoclip
    batch_size: int = SETTINGS.train_batch  #: sequences (lanes) per update
    seq_len: int = SETTINGS.train_seq_len  #: temporal-order length, or BPTT window
    max_updates: int = SETTINGS.train_max_updates  #: number of updates
    eval_every: int = SETTINGS.train_eval_every  #: K: rho(W_rec) and validation every K updates
    seed: int = SETTINGS.train_seed  #: seed of initialisation, data order and generated data
    init: str = SETTINGS.train_init  #: "default" | "smart_tanh"
    dtype: str = SETTINGS.train_dtype  #: "float64" | "float32"
    bias: bool = True  #: biases b and c (the paper's character model has none)
    #: temporal order: fresh sequences of the success test (solved = all of them correct; the
    #: paper's text: 1000 in a row, the authors' code: 0 errors on 10,000, RNN.py:351-361, 400)
    check_sequences: int = SETTINGS.temporal_order_valid
    #: temporal order: the generator, for training and for the success check: "6a" (8 symbols,
    #: start/end markers) or "authors" (tempOrder.py, 6 symbols, its positions and class ids,
    #: drawn with its calls from numpy.random.RandomState(seed) as RNN.py:75 seeds it)
    temporal_variant: str = SETTINGS.train_temporal_variant
    #: parameters of registered clipping rules that have no field above (a plug-in rule's own);
    #: :meth:`to_dict` writes them beside the other fields and :meth:`from_dict` reads them back
    clip_params: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> "TrainConfig":
        """Check every field in place (ValueError saying what is allowed)."""
        v.choice("task", self.task, TASKS)
        if self.dataset is not None and not isinstance(self.dataset, str):
            raise ValueError(f"dataset must be a name, a path or None; got {self.dataset!r}")
        if self.task == "temporal_order" and self.dataset not in (None, ""):
            raise ValueError("the temporal_order task generates its data; dataset must be None")
        if self.dataset == "":
            self.dataset = None
        v.choice("parametrisation", self.parametrisation, PARAMETRISATIONS)
        v.choice("activation", self.activation, ACTIVATIONS)
        self.hidden = v.integer("hidden", self.hidden, 1, SETTINGS.max_hidden)
        self.lr = v.finite("lr", self.lr)
        if not 0.0 < self.lr <= 100.0:
            raise ValueError(f"lr must be in (0, 100], got {self.lr}")
        self.momentum = v.finite("momentum", self.momentum)
        if not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum}")
        self._validate_clip()
        self.batch_size = v.integer("batch_size", self.batch_size, 1, SETTINGS.max_batch)
        lo = MIN_TEMPORAL_LENGTH if self.task == "temporal_order" else 1
        self.seq_len = v.integer("seq_len", self.seq_len, lo, SETTINGS.max_seq_len)
        self.max_updates = v.integer("max_updates", self.max_updates, 1, SETTINGS.max_updates)
        self.eval_every = v.integer("eval_every", self.eval_every, 1, SETTINGS.max_updates)
        self.seed = v.integer("seed", self.seed, 0, 2**32 - 1)
        v.choice("init", self.init, INITS)
        v.choice("dtype", self.dtype, DTYPES)
        if not isinstance(self.bias, (bool, np.bool_)):
            raise ValueError(f"bias must be true or false, got {self.bias!r}")
        self.bias = bool(self.bias)
        self.check_sequences = v.integer("check_sequences", self.check_sequences, 1,
                                         SETTINGS.max_check_sequences)
        v.choice("temporal_variant", self.temporal_variant, TEMPORAL_VARIANTS)
        if self.temporal_variant != "6a" and self.task != "temporal_order":
            raise ValueError(f"temporal_variant is for the temporal_order task; leave it at '6a' "
                             f"for task {self.task!r}")
        if self.temporal_variant == "authors" and self.seq_len < MIN_AUTHORS_LENGTH:
            raise ValueError(f"seq_len must be at least {MIN_AUTHORS_LENGTH} with "
                             f"temporal_variant 'authors' (tempOrder.py draws the first relevant "
                             f"position with randint(int(0.1 L))), got {self.seq_len}")
        need, limit = self.memory_estimate(), _memory_limit()
        if limit and need > limit:
            raise ValueError(
                f"this run needs about {need / 2**30:.1f} GiB for its arrays (hidden {self.hidden} x "
                f"batch_size {self.batch_size} x seq_len {self.seq_len}), more than the "
                f"{limit / 2**30:.1f} GiB a run may use on this machine "
                f"({SETTINGS.max_train_memory_fraction:.0%} of its memory): make one of them smaller")
        return self

    def _validate_clip(self) -> None:
        """The rule's own parameters checked by the rule; the others, where set, finite."""
        v.choice("clip", self.clip, clipping.names())
        if not isinstance(self.clip_params, dict):
            raise ValueError(f"clip_params must be a dict, got {type(self.clip_params).__name__}")
        known = {p.name for p in clipping.params()}
        unknown = sorted(k for k in self.clip_params if k not in known or k in _FIELD_NAMES)
        if unknown:
            raise ValueError(f"unknown clipping parameter(s) {', '.join(map(repr, unknown))}; "
                             f"allowed: {', '.join(sorted(known - _FIELD_NAMES))}")
        rule = self.rule()
        for name in known:
            value = rule.values.get(name, self._param(name))
            if name not in rule.values and value is not None:
                value = v.finite(name, value)
            if name in _FIELD_NAMES:
                setattr(self, name, value)
            elif name in rule.values or name in self.clip_params:
                self.clip_params[name] = value

    def _param(self, name: str) -> Any:
        return getattr(self, name) if name in _FIELD_NAMES else self.clip_params.get(name)

    def rule(self) -> clipping.Rule:
        """A fresh :class:`clipviz.clipping.Rule` for this config (ValueError if a parameter the
        rule needs is missing or out of its domain)."""
        return clipping.make(self.clip, {p.name: self._param(p.name) for p in clipping.params()})

    def memory_estimate(self) -> int:
        """Bytes of the arrays one training window and one evaluation allocate (an upper bound).

        BPTT keeps, per step and sequence, the pre-activations, states, their gradients and the
        outputs (``RNN.window``'s workspace: T·B·(5H + 2O) numbers) and the inputs; the
        temporal-order check evaluates ``check_sequences`` sequences in chunks of at most
        ``SETTINGS.temporal_order_eval_chunk``, the other tasks ``SETTINGS.eval_lanes`` at once.  Parameters are kept about six times (values,
        gradient, momentum, best checkpoint, copies).
        """
        width = _IO_BOUND[self.task]
        H, T = self.hidden, self.seq_len
        lanes = (min(self.check_sequences, SETTINGS.temporal_order_eval_chunk)
                 if self.task == "temporal_order" else SETTINGS.eval_lanes)
        per_step = max(self.batch_size, lanes) * (5 * H + 3 * width)
        params = H * H + 2 * H * width + H + width
        return (T * per_step + 6 * params) * (4 if self.dtype == "float32" else 8)

    @classmethod
    def for_task(cls, task: str, **overrides) -> "TrainConfig":
        """A config with the paper's settings for ``task`` (:data:`PRESETS`), then ``overrides``."""
        v.choice("task", task, TASKS)
        return cls.from_dict({"task": task, **PRESETS[task], **overrides})

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict of every field (a plug-in rule's parameters beside them)."""
        d = asdict(self)
        extra = d.pop("clip_params")
        return {**d, **extra}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        """Build and validate from a dict; unknown keys are an error naming the allowed ones."""
        if not isinstance(d, dict):
            raise ValueError(f"a training config must be a dict, got {type(d).__name__}")
        names = [f.name for f in fields(cls) if f.name != "clip_params"]
        rule_params = {p.name for p in clipping.params()} - _FIELD_NAMES
        unknown = [k for k in d if k not in names and k not in rule_params]
        if unknown:
            raise ValueError(f"unknown config key(s) {', '.join(map(repr, unknown))}; "
                             f"allowed: {', '.join(names + sorted(rule_params))}")
        extra = {k: d[k] for k in d if k in rule_params}
        return cls(**{k: x for k, x in d.items() if k in names}, clip_params=extra)



_FIELD_NAMES = frozenset(f.name for f in fields(TrainConfig)) - {"clip_params"}
"""TrainConfig's own fields (clipping parameters with a field: threshold, percentile)."""


def snapshot_policy(snapshots: Any) -> Any:
    """The :class:`~clipviz.training.snapshots.SnapshotPolicy` that ``snapshots`` asks for:
    None or False keeps none, True the default policy (:mod:`clipviz.config`), a policy itself."""
    from .snapshots import SnapshotPolicy

    if snapshots is None or snapshots is False:
        return None
    if snapshots is True:
        return SnapshotPolicy()
    if isinstance(snapshots, SnapshotPolicy):
        return snapshots
    raise ValueError("snapshots must be None, True or a clipviz.training.snapshots.SnapshotPolicy, "
                     f"got {type(snapshots).__name__}")


def train(config: TrainConfig, callback: Callable[[dict], Any] | None = None,
          snapshots: Any = None) -> RunRecord:
    """Train a vanilla RNN on ``config.task`` and return its run record.

    Parameters
    ----------
    config : TrainConfig
    callback : callable, optional
        Called after every update with a dict of :data:`EVENT_KEYS`:
        update (1-based), total (max_updates), loss (per scored step, before
        the update), grad_norm (before clipping; None if not finite),
        grad_norm_clipped, clipped (bool), skipped (cumulative count of
        non-finite gradients not applied), rho (spectral radius of W_rec
        every K updates, else None), valid (validation metric every K
        updates, else None), elapsed (seconds).  Returning ``False`` stops
        training after that update (status "cancelled").
    snapshots : None, True or SnapshotPolicy, optional
        Keep theta, the carried-in state and both steps (taken, and plain BPTT's) at a bounded
        number of updates (issue 16): where clipping fired, where ‖g‖ spiked above a multiple
        of its running median, and a few ordinary ones; ``True``: the default
        :class:`~clipviz.training.snapshots.SnapshotPolicy`.  They are in
        ``result["snapshots"]`` (:func:`clipviz.landscape.at_snapshot` rebuilds each one; the
        window is regenerated from the seed).

    Returns
    -------
    RunRecord
        ``result`` of a finished run: updates, skipped, clipped_fraction,
        metric, final_loss, max_grad_norm, final_rho, elapsed and, for
        temporal order, test_accuracy / test_nll on fresh sequences, solved
        (``check_sequences`` fresh sequences all correct), solved_at, best_valid; for music and
        characters, train_/valid_/test_ nll or bpc with the parameters of the best
        validation score, best_update, and final_test_ nll or bpc with the last parameters;
        replaced: updates a rule replaced (``norm_shrink``'s W_rec shrink).  A cancelled run's result holds the
        counters only (no final evaluation, so cancelling is immediate).
    """
    if not isinstance(config, TrainConfig):
        raise ValueError("config must be a TrainConfig (use TrainConfig.from_dict for dicts)")
    config.validate()
    return run(config, callback, snapshot_policy(snapshots))


def initial_rho(config: TrainConfig) -> float:
    """rho(W_rec) of the parameters a run of ``config`` starts from, before its first update.

    The same number as the run's ``result["initial_rho"]`` (the same seeded draws), known before
    the run ends: the training page starts the rho curve with it while the run is still going,
    so that rho is seen crossing 1/gamma from where it began (section 2.1 of the paper).
    """
    if not isinstance(config, TrainConfig):
        raise ValueError("config must be a TrainConfig (use TrainConfig.from_dict for dicts)")
    config.validate()
    return _runner.initial_rho(config)


from .ensemble import train_many  # noqa: E402  (many temporal-order runs in ensembles)
