"""Many temporal-order runs trained together: :func:`train_many`.

Figure 7 of the paper trains 50 seeds for each of many sequence lengths of one small model
(50 units, batch 20).  Run one by one, every update of such a model pays a Python wrapper around
its BPTT kernel; :func:`train_many` groups the runs that share a model shape into ensembles of at
most :attr:`clipviz.config.Settings.ensemble_max_models` and computes the windows of all the
models of an ensemble in one call of :func:`clipviz.kernels.ensemble.ensemble_window` per update.

Everything else is per model and is the code of a single run
(:class:`clipviz.training.runner.Trainer`): each model draws its data from its own generator
(seeded by its own ``seed``, in the order a separate run draws), is clipped by *its own* gradient
norm through its own rule object (``cfg.rule().step(grad)``), takes its own SGD step, is evaluated
on its own schedule and reports its own events to its own callback.  A model leaves its ensemble
when it ends (solved, its ``max_updates``, or its callback returned False: "cancelled"); the
others go on.  The records are those of ``[train(c) for c in configs]`` except the timing fields
(``elapsed`` in the series and the result): the kernel runs each model's window with the
single-model kernel, so the arithmetic is the same, bit for bit.

What may differ within an ensemble: every field that does not fix the model's shape or the
window's: ``seed``, ``lr``, ``momentum``, ``clip`` and its parameters (``threshold``,
``percentile``, a plug-in rule's own), ``max_updates``, ``eval_every``, ``init`` and any field
added later that only the task, the initialisation or the rule reads.  What must be equal
(:data:`SHAPE_FIELDS`): the task, ``hidden``, ``batch_size``, ``seq_len``, ``activation``,
``parametrisation``, ``bias``, ``dtype`` and ``temporal_variant`` (its input width); the built models are compared again before an
ensemble starts, so that a shape a new field changes is caught and run on its own.  Other tasks
(music, characters) run with :func:`clipviz.training.train`, logged at debug level.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Sequence

import numpy as np

from ..config import SETTINGS
from ..kernels.ensemble import ensemble_window
from .record import RunRecord
from .runner import Trainer, run

log = logging.getLogger(__name__)

__all__ = ["train_many", "SHAPE_FIELDS", "BATCHABLE_TASKS"]

SHAPE_FIELDS = ("task", "hidden", "batch_size", "seq_len", "activation", "parametrisation",
                "bias", "dtype", "temporal_variant")
"""Config fields that must be equal for runs to share an ensemble."""

BATCHABLE_TASKS = ("temporal_order",)
"""Tasks whose runs :func:`train_many` batches (fresh fixed-length sequences every update)."""


def shape_key(cfg) -> tuple | None:
    """The ensemble a config may join (None: it runs on its own)."""
    if cfg.task not in BATCHABLE_TASKS:
        return None
    return tuple(getattr(cfg, f) for f in SHAPE_FIELDS)


def _model_key(tr: Trainer) -> tuple:
    m = tr.model
    return (type(tr.task), m.n_in, m.n_hidden, m.n_out, m.activation, m.parametrisation,
            m.output, m.bias, np.dtype(m.dtype), tr.cfg.seq_len, tr.cfg.batch_size)


def train_many(configs: Sequence[Any], callbacks: Sequence[Callable[[dict], Any] | None] | None
               = None, *, on_done: Callable[[int, RunRecord], Any] | None = None,
               snapshots: Any = None) -> list[RunRecord]:
    """Train every config and return the records of ``[train(c, cb) for c, cb in ...]``.

    Parameters
    ----------
    configs : list of TrainConfig
    callbacks : list of (callable or None), optional
        One per config, called after each of its updates as by
        :func:`clipviz.training.train`; returning ``False`` cancels that run only.
    on_done : callable, optional
        ``on_done(i, record)`` as soon as run ``i`` ends (a model leaves its ensemble when it
        ends; the others go on), so that a job runner can store each record at once.
    snapshots : None, True or SnapshotPolicy, optional
        Each run keeps its snapshots at explosion events as with :func:`clipviz.training.train`.

    Returns
    -------
    list of RunRecord
        In the order of ``configs``; equal to separate runs' records except the timing fields.
    """
    from . import TrainConfig, snapshot_policy

    policy = snapshot_policy(snapshots)
    configs = list(configs)
    if callbacks is None:
        callbacks = [None] * len(configs)
    callbacks = list(callbacks)
    if len(callbacks) != len(configs):
        raise ValueError(f"callbacks must be None or one per config: got {len(callbacks)} for "
                         f"{len(configs)} configs")
    for i, (cfg, cb) in enumerate(zip(configs, callbacks)):
        if not isinstance(cfg, TrainConfig):
            raise ValueError(f"configs[{i}] must be a TrainConfig (use TrainConfig.from_dict "
                             "for dicts)")
        if cb is not None and not callable(cb):
            raise ValueError(f"callbacks[{i}] must be callable or None")
        cfg.validate()
    records: list[RunRecord | None] = [None] * len(configs)
    groups: dict[tuple, list[int]] = {}
    for i, cfg in enumerate(configs):
        key = shape_key(cfg)
        if key is None:
            log.debug("run %d (task %s) is trained on its own", i, cfg.task)
            records[i] = run(cfg, callbacks[i], policy)
            if on_done is not None:
                on_done(i, records[i])
        else:
            groups.setdefault(key, []).append(i)
    size = max(1, int(SETTINGS.ensemble_max_models))
    for idx in groups.values():
        for start in range(0, len(idx), size):
            chunk = idx[start:start + size]
            done = None if on_done is None else (lambda j, rec, chunk=chunk: on_done(chunk[j], rec))
            for i, rec in zip(chunk, run_ensemble([configs[i] for i in chunk],
                                                  [callbacks[i] for i in chunk], done,
                                                  policy)):
                records[i] = rec
    return records  # type: ignore[return-value]


def run_ensemble(configs: Sequence[Any], callbacks: Sequence[Callable | None],
                 on_done: Callable[[int, RunRecord], Any] | None = None,
                 snapshots: Any = None) -> list[RunRecord]:
    """Train configs of one shape (:func:`shape_key`) together; their records in order
    (``on_done(j, record)`` as each ends).

    Configs are not validated here (:func:`train_many` does).  A model whose shape differs from
    the first one's after all (a field :data:`SHAPE_FIELDS` does not name) is trained on its own.
    """
    trainers = [Trainer(cfg, cb, snapshots) for cfg, cb in zip(configs, callbacks)]
    key = _model_key(trainers[0])
    records: list[RunRecord | None] = [None] * len(trainers)
    members = []
    for k, tr in enumerate(trainers):
        if _model_key(tr) == key:
            members.append(k)
        else:
            log.debug("run %d has another model shape than its ensemble; trained on its own", k)
            records[k] = run(configs[k], callbacks[k], snapshots)
            if on_done is not None:
                on_done(k, records[k])
    done = None if on_done is None else (lambda j, rec: on_done(members[j], rec))
    for k, rec in zip(members, _train_together([trainers[k] for k in members], done)):
        records[k] = rec
    return records  # type: ignore[return-value]


def _train_together(trainers: list[Trainer],
                    on_done: Callable[[int, RunRecord], Any] | None = None) -> list[RunRecord]:
    """The update loop of an ensemble: one kernel call per update for the models still running."""
    K = len(trainers)
    m0 = trainers[0].model
    cfg0 = trainers[0].cfg
    T, B = cfg0.seq_len, cfg0.batch_size
    H, I, O, P = m0.n_hidden, m0.n_in, m0.n_out, m0.n_params
    dt = np.dtype(m0.dtype)
    theta = np.empty((K, P), dtype=dt)
    grad = np.zeros((K, P), dtype=dt)
    for k, tr in enumerate(trainers):
        theta[k] = tr.model.theta
        tr.model.theta = theta[k]  # the trainer's updates and evaluations act on the row
        tr.grad = grad[k]  # the kernel writes the row; the trainer's rule clips it
        tr.model._work = m0._work  # one evaluation workspace for the ensemble (run in turn)
    softmax = m0.output == "softmax"
    s0 = np.zeros((K, B, H), dtype=dt)
    s_out = np.empty((K, B, H), dtype=dt)
    X = np.zeros((K, T * B, I), dtype=dt)
    tgt_idx = np.zeros((K, T * B if softmax else 0), dtype=np.int64)
    tgt_bin = np.zeros((K, T * B, O) if not softmax else (K, 0, 0), dtype=dt)
    wts = np.zeros((K, T * B), dtype=np.float64)
    out = np.zeros((K, 3), dtype=np.float64)
    ws = m0._workspace(T, B)
    paper = m0.parametrisation == "paper"
    records: list[RunRecord | None] = [None] * K
    active = list(range(K))
    while active:
        for k in active:
            tr = trainers[k]
            Xk, Yk, Wk = tr.next_window()
            if Xk.shape != (T, B, I):
                raise RuntimeError(f"a window of shape {Xk.shape}, not {(T, B, I)}: the task "
                                   "no longer fits its ensemble")
            X[k] = Xk.reshape(T * B, I)
            if softmax:
                tgt_idx[k] = Yk.reshape(T * B)
            else:
                tgt_bin[k] = Yk.reshape(T * B, O)
            wts[k] = Wk.reshape(T * B)
            s0[k] = tr.state
        ensemble_window(theta, H, I, O, m0.bias, m0._act, m0._out, paper, s0, X, tgt_idx,
                        tgt_bin, wts, float(B), ws["Z"], ws["Hs"], ws["Y"], ws["dY"], ws["dH"],
                        ws["DZ"], True, grad, s_out, out, np.asarray(active, dtype=np.int64))
        still = []
        for k in active:
            tr = trainers[k]
            if tr.update(float(out[k, 0]), float(out[k, 1]), s_out[k].copy()):
                still.append(k)
            else:
                records[k] = tr.record()
                if on_done is not None:
                    on_done(k, records[k])
        active = still
    return records  # type: ignore[return-value]
