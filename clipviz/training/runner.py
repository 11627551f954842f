"""The training loop behind :func:`clipviz.training.train` (a Python outer
loop over updates with njit inner kernels, so progress can be reported and a
run cancelled between updates)."""

from __future__ import annotations

import logging
import math
import time

import numpy as np

from .. import datasets
from ..config import SETTINGS
from .model import RNN, spectral_radius
from .record import EVENT_KEYS, RunRecord, code_version
from .tasks import (SYMBOLS, SequenceStream, eval_stream_lanes, one_hot, split_segments,
                    temporal_order_window)

log = logging.getLogger(__name__)
LN2 = math.log(2.0)


class TemporalOrderTask:
    """Task 6a: fresh sequences every update; validation = accuracy on
    ``SETTINGS.temporal_order_valid`` fresh sequences (all correct = the
    paper's "1000 consecutive correct answers")."""

    metric = "accuracy"
    higher_is_better = True
    output = "softmax"

    def __init__(self, cfg, rng: np.random.Generator):
        self.T, self.B = cfg.seq_len, cfg.batch_size
        self.rng = rng
        self.eval_rng = np.random.default_rng([cfg.seed, 1])
        self.dtype = np.dtype(cfg.dtype)
        self.n_in, self.n_out = len(SYMBOLS), 4

    def next_window(self):
        X, Y, W = temporal_order_window(self.T, self.B, self.rng, self.dtype)
        return X, Y, W, np.ones(self.B, dtype=bool)

    def evaluate(self, model: RNN, theta, split: str) -> tuple[float, float]:
        """(accuracy, NLL in nats) on fresh sequences."""
        n = SETTINGS.temporal_order_valid
        X, Y, W = temporal_order_window(self.T, n, self.eval_rng, self.dtype)
        res, _ = model.window(model.zero_state(n), X, Y, W, theta=theta)
        return res.correct / res.weight_sum, res.loss_sum / res.weight_sum


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


def run(cfg, callback, snapshots=None):
    """Train (see :func:`clipviz.training.train`); ``snapshots``: a
    :class:`~clipviz.training.snapshots.SnapshotPolicy` to keep theta at explosion events in
    ``result["snapshots"]`` (None: none kept)."""
    t0 = time.perf_counter()
    keeper = None
    if snapshots is not None:
        from .snapshots import SnapshotKeeper

        keeper = SnapshotKeeper(snapshots)
    rng = np.random.default_rng(cfg.seed)
    task = make_task(cfg, rng)
    model = RNN(task.n_in, cfg.hidden, task.n_out, activation=cfg.activation,
                parametrisation=cfg.parametrisation, output=task.output, bias=cfg.bias,
                dtype=cfg.dtype)
    model.initialise(rng, cfg.init)
    theta = model.theta
    # rho(W_rec) before the first update (the events report it from update K on): where the
    # training page's rho curve starts, so that it shows rho crossing 1 / max sigma'
    initial_rho = spectral_radius(model.W_rec)
    grad = np.zeros_like(theta)
    vel = np.zeros_like(theta) if cfg.momentum > 0 else None
    clipper = cfg.rule()
    state = model.zero_state(cfg.batch_size)
    series: dict[str, list] = {k: [] for k in EVENT_KEYS}
    skipped = 0
    n_clipped = 0
    status = "finished"
    best_metric, best_theta, best_update = None, theta.copy(), 0
    solved_at = None
    sign = 1.0 if task.higher_is_better else -1.0
    lr = cfg.lr
    u = 0
    for u in range(1, cfg.max_updates + 1):
        X, Y, W, reset = task.next_window()
        state[reset] = 0.0
        res, new_state = model.window(state, X, Y, W, grad=grad)
        loss = res.loss_sum / res.weight_sum if res.weight_sum else math.nan
        out = clipper.step(grad)
        snap = _snapshot_before(keeper, u, out, theta, state, vel, grad, cfg, lr, loss)
        if out.skipped:
            skipped += 1
            state = model.zero_state(cfg.batch_size)
            norm_after = 0.0
        else:
            g = out.g
            if vel is not None:
                vel *= cfg.momentum
                vel -= lr * g
                theta += vel
            else:
                theta -= lr * g
            state = new_state
            norm_after = out.norm if not out.fired else float(np.linalg.norm(g))
            n_clipped += bool(out.fired)
        if snap is not None:
            _snapshot_after(keeper, snap, theta)
        rho = valid = None
        if u % cfg.eval_every == 0 or u == cfg.max_updates:
            rho = spectral_radius(model.W_rec)
            valid = float(task.evaluate(model, theta, "valid")[0])
            if math.isfinite(valid) and (best_metric is None or sign * valid > sign * best_metric):
                best_metric, best_update = valid, u
                best_theta = theta.copy()
            if cfg.task == "temporal_order" and valid == 1.0:
                solved_at = u
        event = {"update": u, "total": cfg.max_updates, "loss": _num(loss),
                 "grad_norm": _num(out.norm), "grad_norm_clipped": float(norm_after),
                 "clipped": bool(out.fired), "skipped": skipped, "rho": rho,
                 "valid": None if valid is None else _num(valid),
                 "elapsed": time.perf_counter() - t0}
        for k in EVENT_KEYS:
            series[k].append(event[k])
        if callback is not None and callback(dict(event)) is False:
            status = "cancelled"
            break
        if solved_at is not None:
            break
    result = {"updates": u, "skipped": skipped, "clipped_fraction": n_clipped / max(u, 1),
              "metric": task.metric, "final_loss": series["loss"][-1] if series["loss"] else None,
              "max_grad_norm": _num(max((x for x in series["grad_norm"] if x is not None),
                                        default=math.nan)),
              "median_grad_norm": _num(np.median([x for x in series["grad_norm"] if x is not None]))
              if any(x is not None for x in series["grad_norm"]) else None,
              "initial_rho": initial_rho, "final_rho": spectral_radius(model.W_rec)}
    if status == "finished":
        if cfg.task == "temporal_order":
            acc, nll = task.evaluate(model, theta, "test")
            result.update(test_accuracy=acc, test_nll=nll, solved=solved_at is not None,
                          solved_at=solved_at, best_valid=best_metric, best_update=best_update)
        else:
            for split in ("train", "valid", "test"):
                result[f"{split}_{task.metric}"] = _num(task.evaluate(model, best_theta, split)[0])
            result.update(best_update=best_update, source=task.source)
            if cfg.task == "characters":
                result.update(vocab_size=len(task.vocab),
                              eval_truncated_to=SETTINGS.max_eval_symbols
                              if any(task.truncated.values()) else None)
    if keeper is not None:
        result["snapshots"] = keeper.snapshots()
    result["elapsed"] = time.perf_counter() - t0
    return RunRecord(config=cfg.to_dict(), status=status, series=series, result=result,
                     code_version=code_version())


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


def _num(x):
    x = float(x)
    return x if math.isfinite(x) else None
