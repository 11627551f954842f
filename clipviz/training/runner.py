"""The training loop behind :func:`clipviz.training.train` (a Python outer
loop over updates with njit inner kernels, so progress can be reported and a
run cancelled between updates)."""

from __future__ import annotations

import logging
import math
import time

import numpy as np

from .. import datasets
from .._validate import finite_or_none as _num  # JSON has no NaN or inf
from ..config import SETTINGS
from ..clipping import Blocks
from .model import RNN, spectral_radius
from .record import EVENT_KEYS, RunRecord, code_version
from .tasks import (SequenceStream, eval_stream_lanes, one_hot, split_segments,
                    temporal_order_window, temporal_symbols)

log = logging.getLogger(__name__)
LN2 = math.log(2.0)


class TemporalOrderTask:
    """Temporal order: fresh sequences every update from the run's generator; validation =
    accuracy on ``cfg.check_sequences`` fresh sequences (all correct = solved: the paper's
    "1000 consecutive correct answers", the authors' 0 errors on 10,000), run in chunks of
    ``SETTINGS.temporal_order_eval_chunk``.  Both are drawn by ``cfg.temporal_variant``'s
    generator (task 6a, or tempOrder.py's); the check's sequences come from a generator of their
    own, so checking (and stopping when solved) never changes the training data."""

    metric = "accuracy"
    higher_is_better = True
    output = "softmax"

    def __init__(self, cfg, rng: np.random.Generator | np.random.RandomState):
        self.T, self.B = cfg.seq_len, cfg.batch_size
        self.rng = rng
        self.eval_rng = np.random.default_rng([cfg.seed, 1])
        self.dtype = np.dtype(cfg.dtype)
        self.variant = cfg.temporal_variant
        self.n_in, self.n_out = len(temporal_symbols(self.variant)), 4
        self.n_check = cfg.check_sequences

    def next_window(self):
        X, Y, W = temporal_order_window(self.T, self.B, self.rng, self.dtype, self.variant)
        return X, Y, W, np.ones(self.B, dtype=bool)

    def evaluate(self, model: RNN, theta, split: str) -> tuple[float, float]:
        """(accuracy, NLL in nats) on fresh sequences.

        ``split="valid"`` is the periodic success test: it stops after the first chunk with a
        wrong answer, whose decision (not solved) the remaining chunks could not change, and
        its accuracy and NLL are over the sequences it ran (at least one chunk).  A run that is
        not yet solved thus checks about one chunk instead of all ``check_sequences``: with the
        authors' 10,000 in chunks of 1000, most of a run's cost was its checks.  ``"test"``
        always runs them all."""
        correct = loss = weight = 0.0
        left = self.n_check
        while left > 0:
            n = min(left, SETTINGS.temporal_order_eval_chunk)
            left -= n
            X, Y, W = temporal_order_window(self.T, n, self.eval_rng, self.dtype, self.variant)
            res, _ = model.window(model.zero_state(n), X, Y, W, theta=theta)
            correct, loss, weight = correct + res.correct, loss + res.loss_sum, weight + res.weight_sum
            if split == "valid" and correct < weight:
                break
        return correct / weight, loss / weight


class _StreamTask:
    """Shared by music and characters: lanes over sequences, state carried."""

    def __init__(self, cfg, rng, splits: dict[str, list[np.ndarray]], encode, n_in, n_out,
                 kind: str):
        self.cfg = cfg
        self.splits = splits
        self.encode = encode
        self.n_in, self.n_out = n_in, n_out
        self.kind = kind
        self.dtype = np.dtype(cfg.dtype)
        self.train_stream = SequenceStream(splits["train"], cfg.batch_size, cfg.seq_len, encode,
                                           n_in, kind, rng=rng, cycle=True, dtype=self.dtype)

    def next_window(self):
        return self.train_stream.next()

    def _nll(self, model: RNN, theta, split: str) -> float:
        seqs = self.splits[split]
        stream = SequenceStream(seqs, eval_stream_lanes(len(seqs)), max(self.cfg.seq_len, 100),
                                self.encode, self.n_in, self.kind, cycle=False, dtype=self.dtype)
        state = model.zero_state(stream.B)
        total = weight = 0.0
        while True:
            w = stream.next()
            if w is None:
                break
            X, Y, Wt, reset = w
            state[reset] = 0.0
            res, state = model.window(state, X, Y, Wt, theta=theta)
            total += res.loss_sum
            weight += res.weight_sum
        return total / weight if weight else math.nan


class MusicTask(_StreamTask):
    """Polyphonic music: NLL per time step summed over the 88 keys (Table 1)."""

    metric = "nll"
    higher_is_better = False
    output = "sigmoid"

    def __init__(self, cfg, rng):
        path = datasets.resolve(cfg.dataset or "jsb", "music")
        songs = datasets.load_music(path)
        self.source = str(path)
        super().__init__(cfg, rng, songs, lambda seg: seg, datasets.N_KEYS, datasets.N_KEYS,
                         "binary")

    def evaluate(self, model, theta, split):
        nll = self._nll(model, theta, split)
        return nll, nll


class CharacterTask(_StreamTask):
    """Next character: bits per character (Table 2).

    Training: the training text cut into ``batch_size`` contiguous segments,
    one per lane, state carried across windows (reset when a lane starts a
    segment again).  Evaluation: each split (at most
    ``SETTINGS.max_eval_symbols`` characters) cut into ``SETTINGS.eval_lanes``
    segments run side by side, each from a zero state.
    """

    metric = "bpc"
    higher_is_better = False
    output = "softmax"

    def __init__(self, cfg, rng):
        path = datasets.resolve(cfg.dataset or "shakespeare", "characters")
        text = datasets.load_text(path)
        self.source = str(path)
        self.vocab = datasets.vocabulary(text["train"])
        V = len(self.vocab)
        cap = SETTINGS.max_eval_symbols
        ids = {s: datasets.encode(t if s == "train" else t[:cap], self.vocab)
               for s, t in text.items()}
        self.truncated = {s: len(t) > cap for s, t in text.items()}
        train_segs = split_segments(ids["train"], cfg.batch_size, cfg.seq_len + 1)
        self.eval_splits = {s: split_segments(ids[s][:cap], SETTINGS.eval_lanes, 2)
                            for s in ids}
        dt = np.dtype(cfg.dtype)
        super().__init__(cfg, rng, {"train": train_segs, **{k: v for k, v in self.eval_splits.items()
                                                            if k != "train"}},
                         lambda seg: one_hot(np.asarray(seg), V, dt), V, V, "class")
        self.splits["train_eval"] = self.eval_splits["train"]

    def evaluate(self, model, theta, split):
        nll = self._nll(model, theta, "train_eval" if split == "train" else split)
        return nll / LN2, nll


def make_task(cfg, rng):
    if cfg.task == "temporal_order":
        return TemporalOrderTask(cfg, rng)
    if cfg.task == "music":
        return MusicTask(cfg, rng)
    return CharacterTask(cfg, rng)


def start(cfg) -> tuple[np.random.Generator | np.random.RandomState, object, RNN]:
    """What a run of ``cfg`` starts from: its random generator (after the draws below), its task
    and its model with the initial parameters (every draw from the one seeded generator, in this
    order, so that a run is reproducible from its seed).

    The generator is ``numpy.random.default_rng(seed)``, or, for temporal order with
    ``temporal_variant="authors"``, ``numpy.random.RandomState(seed)`` shared by the
    initialisation and the training data as in the authors' RNN.py:75-79 (so that with
    ``init="smart_tanh_authors"`` the initial weights and the training sequences are their
    draws for that seed)."""
    if cfg.task == "temporal_order" and cfg.temporal_variant == "authors":
        rng = np.random.RandomState(cfg.seed)
    else:
        rng = np.random.default_rng(cfg.seed)
    task = make_task(cfg, rng)
    model = RNN(task.n_in, cfg.hidden, task.n_out, activation=cfg.activation,
                parametrisation=cfg.parametrisation, output=task.output, bias=cfg.bias,
                dtype=cfg.dtype)
    model.initialise(rng, cfg.init)
    return rng, task, model


def initial_rho(cfg) -> float:
    """rho(W_rec) of the parameters a run of ``cfg`` starts from, before its first update (equal
    to its result's ``initial_rho``; the training page draws it while the run is still going)."""
    return spectral_radius(start(cfg)[2].W_rec)


class Trainer:
    """One run's state and its per-update bookkeeping, shared by :func:`run` (one model) and
    :func:`clipviz.training.ensemble.train_many` (many models whose windows one kernel call
    computes).

    The gradient of a window is written into :attr:`grad` and the parameters live in
    ``model.theta``; the ensemble points both at rows of its (K, P) arrays.  Per update:
    :meth:`next_window` (the data, the state reset where a lane starts over), the window's
    forward and BPTT pass by the caller, then :meth:`update` (clipping through the config's rule
    object, SGD with momentum, the periodic evaluation, the event); :meth:`record` assembles
    the run record.
    """

    def __init__(self, cfg, callback=None, snapshots=None):
        self.t0 = time.perf_counter()
        self.cfg = cfg
        self.callback = callback
        self.keeper = None  # issue 16: theta kept at explosion events (SnapshotPolicy)
        if snapshots is not None:
            from .snapshots import SnapshotKeeper

            self.keeper = SnapshotKeeper(snapshots)
        self.rng, self.task, self.model = start(cfg)
        task, model = self.task, self.model
        # rho(W_rec) before the first update (the events report it from update K on): where the
        # training page's rho curve starts, so that it shows rho crossing 1 / max sigma'
        self.initial_rho = spectral_radius(model.W_rec)
        self.grad = np.zeros_like(model.theta)
        self.vel = np.zeros_like(model.theta) if cfg.momentum > 0 else None
        self.clipper = cfg.rule()
        # a rule that reads the parameters (norm_shrink shrinks W_rec) gets them as clipping.Blocks
        self.W_block = slice(0, cfg.hidden * cfg.hidden) if self.clipper.needs else None
        self.n_replaced = 0
        self.state = model.zero_state(cfg.batch_size)
        self.series: dict[str, list] = {k: [] for k in EVENT_KEYS}
        self.skipped = 0
        self.n_clipped = 0
        self.status = "finished"
        self.best_metric, self.best_theta, self.best_update = None, model.theta.copy(), 0
        self.solved_at = None
        self.sign = 1.0 if task.higher_is_better else -1.0
        self.u = 0

    def next_window(self):
        """The next window's (X, targets, weights); lanes that start over get a zero state."""
        X, Y, W, reset = self.task.next_window()
        self.state[reset] = 0.0
        return X, Y, W

    def update(self, loss_sum: float, weight_sum: float, new_state) -> bool:
        """Clip :attr:`grad`, step, evaluate every K updates, report; False when the run ends
        here (its last update, solved, or the callback cancelled it: :attr:`status`)."""
        cfg, model = self.cfg, self.model
        theta = model.theta
        self.u = u = self.u + 1
        loss = loss_sum / weight_sum if weight_sum else math.nan
        # (model.theta, not a copy kept from __init__: an ensemble points it at a row of its own)
        out = (self.clipper.step(self.grad, Blocks(theta, {"W": self.W_block}))
               if self.W_block is not None else self.clipper.step(self.grad))
        snap = _snapshot_before(self.keeper, u, out, theta, self.state, self.vel, self.grad, cfg,
                                cfg.lr, loss)
        if out.replaced:  # a step of the rule's own (the W_rec shrink) instead of g
            self.n_replaced += 1
            self.n_clipped += 1  # the rule fired: clipped_fraction counts rescaled and replaced
            theta -= cfg.lr * out.g
            self.state = model.zero_state(cfg.batch_size)  # the window's state is not trusted
            norm_after = float(np.linalg.norm(out.g))
        elif out.skipped:
            self.skipped += 1
            self.state = model.zero_state(cfg.batch_size)
            norm_after = 0.0
        else:
            g = out.g
            if self.vel is not None:
                self.vel *= cfg.momentum
                self.vel -= cfg.lr * g
                theta += self.vel
            else:
                theta -= cfg.lr * g
            self.state = new_state
            norm_after = out.norm if not out.fired else float(np.linalg.norm(g))
            self.n_clipped += bool(out.fired)
        if snap is not None:
            _snapshot_after(self.keeper, snap, theta)
        rho = valid = None
        if u % cfg.eval_every == 0 or u == cfg.max_updates:
            rho = spectral_radius(model.W_rec)
            valid = float(self.task.evaluate(model, theta, "valid")[0])
            if math.isfinite(valid) and (self.best_metric is None
                                         or self.sign * valid > self.sign * self.best_metric):
                self.best_metric, self.best_update = valid, u
                self.best_theta = theta.copy()
            if cfg.task == "temporal_order" and valid == 1.0:
                self.solved_at = u
        event = {"update": u, "total": cfg.max_updates, "loss": _num(loss),
                 "grad_norm": _num(out.norm), "grad_norm_clipped": float(norm_after),
                 "clipped": bool(out.fired), "skipped": self.skipped, "rho": rho,
                 "valid": None if valid is None else _num(valid),
                 "elapsed": time.perf_counter() - self.t0}
        for k in EVENT_KEYS:
            self.series[k].append(event[k])
        if self.callback is not None and self.callback(dict(event)) is False:
            self.status = "cancelled"
            return False
        return self.solved_at is None and u < cfg.max_updates

    def record(self) -> RunRecord:
        """The run record: config, status, series and the final results."""
        cfg, task, model, series, u = self.cfg, self.task, self.model, self.series, self.u
        theta = model.theta
        result = {"updates": u, "skipped": self.skipped,
                  "clipped_fraction": self.n_clipped / max(u, 1),
                  "metric": task.metric,
                  "final_loss": series["loss"][-1] if series["loss"] else None,
                  "max_grad_norm": _num(max((x for x in series["grad_norm"] if x is not None),
                                            default=math.nan)),
                  "median_grad_norm": _num(np.median([x for x in series["grad_norm"]
                                                      if x is not None]))
                  if any(x is not None for x in series["grad_norm"]) else None,
                  "initial_rho": self.initial_rho, "final_rho": spectral_radius(model.W_rec),
                  "replaced": self.n_replaced}
        if self.status == "finished":
            if cfg.task == "temporal_order":
                acc, nll = task.evaluate(model, theta, "test")
                result.update(test_accuracy=acc, test_nll=nll, solved=self.solved_at is not None,
                              solved_at=self.solved_at, best_valid=self.best_metric,
                              best_update=self.best_update)
            else:
                for split in ("train", "valid", "test"):
                    result[f"{split}_{task.metric}"] = _num(
                        task.evaluate(model, self.best_theta, split)[0])
                # the last parameters too: the best checkpoint hides a run that diverged after it
                result[f"final_test_{task.metric}"] = _num(task.evaluate(model, theta, "test")[0])
                result.update(best_update=self.best_update, source=task.source)
                if cfg.task == "characters":
                    result.update(vocab_size=len(task.vocab),
                                  eval_truncated_to=SETTINGS.max_eval_symbols
                                  if any(task.truncated.values()) else None)
        if self.keeper is not None:
            result["snapshots"] = self.keeper.snapshots()
        result["elapsed"] = time.perf_counter() - self.t0
        return RunRecord(config=cfg.to_dict(), status=self.status, series=series, result=result,
                         code_version=code_version())


def run(cfg, callback, snapshots=None):
    """Train one model (see :func:`clipviz.training.train`); ``snapshots``: a
    :class:`~clipviz.training.snapshots.SnapshotPolicy` to keep theta at explosion events in
    ``result["snapshots"]`` (None: none kept)."""
    tr = Trainer(cfg, callback, snapshots)
    while True:
        X, Y, W = tr.next_window()
        res, new_state = tr.model.window(tr.state, X, Y, W, grad=tr.grad)
        if not tr.update(res.loss_sum, res.weight_sum, new_state):
            break
    return tr.record()


def _snapshot_before(keeper, u, out, theta, state, vel, grad, cfg, lr, loss):
    """Issue 16: whether to keep update u; if so, what must be copied before theta changes."""
    if keeper is None:
        return None
    kinds, ratio = keeper.wants(u, out.norm, bool(out.fired))
    if not kinds:
        return None
    from .snapshots import encode

    plain = -lr * grad  # the step plain BPTT (no clipping) would take
    if vel is not None:
        plain = plain + cfg.momentum * vel
    return {"kinds": kinds, "ratio": ratio, "theta": theta.copy(),
            "data": {"update": u, "loss": _num(loss), "grad_norm": _num(out.norm),
                     "median_ratio": _num(ratio), "clipped": bool(out.fired),
                     "skipped": bool(out.skipped), "seed": cfg.seed,
                     "state": encode(state), "step_unclipped": encode(plain)}}


def _snapshot_after(keeper, snap, theta):
    from .snapshots import encode

    data = dict(snap["data"], theta=encode(snap["theta"]), step=encode(theta - snap["theta"]))
    keeper.keep(snap["kinds"], data["grad_norm"] if data["grad_norm"] is not None else math.inf,
                snap["ratio"], data)
