"""``clipviz reproduce table1|table2|figure7|wall --scale small|paper [--protocol ...] [--out DIR]``.

``wall`` (section 2.4 measured at spikes of ‖g‖) lives in :mod:`clipviz.training.reproduce_wall`.

Runs plain BPTT (``clip="none"``) and gradient rescaling (Algorithm 1) over several seeds with
the paper's models (section 4) and prints the results next to the paper's, with every
assumption the paper leaves open stated in the output.

* ``--scale`` sets the budget: updates, seeds, lengths (``small``: minutes to an hour on one
  core; ``paper``: the paper's run lengths and 5 (tables) or 50 (Figure 7) runs).
* ``--protocol`` (Figure 7 only) sets the model and learning rule: ``paper`` (section 4.3's text),
  ``authors`` (the public ICML 2013 code, ``pascanur/trainingRNNs``) or ``clipviz`` (clipviz's
  own small setting).  Default: ``clipviz`` at ``--scale small``, ``paper`` at ``--scale paper``.
* ``--controls`` (tables) adds two rows per data set: BPTT at the learning rate matched to the
  clipped runs' mean step, and rescaling with τ at the median ‖g‖ of the first updates.
* ``--out DIR`` writes table.md, table.csv, record.json and the figures (PNG + SVG, or HTML
  where kaleido/Chrome is missing); ``--out FILE.json`` writes record.json alone.

Every run goes through one function, :func:`_train_all`.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..config import SETTINGS
from ..paper import (TABLE1, TABLE1_METRIC, TABLE2, TABLE2_METRIC, THRESHOLD_MUSIC,
                     THRESHOLDS_CHARACTERS)
from .tasks import MIN_AUTHORS_LENGTH

NAMES = {"piano": "Piano-midi.de", "nottingham": "Nottingham", "musedata": "MuseData",
         "jsb": "JSB Chorales", "ptb": "Penn Treebank", "text8": "text8",
         "shakespeare": "Tiny Shakespeare (stand-in)"}
METHODS = (("none", "BPTT"), ("norm", "Rescaling"))
"""The paper's comparison: (rule, label).  The ``authors`` protocol uses ``norm_shrink``."""

EARLY_UPDATES = 1000
"""The τ-at-median control: τ = the median ‖g‖ over this many first updates of the BPTT runs."""
TRACE_POINTS = 500
"""A run's ‖g‖ trace is kept as the largest ‖g‖ of each of at most this many blocks of updates."""

SCALES: dict[str, dict[str, dict[str, Any]]] = {
    "table1": {  # section 4.1: 100 tanh units with biases, lr .001, threshold 120, 100-step windows
        # small: 50k updates (BPTT diverges after 4k-12k updates; a 3000-update budget stops
        # before it and the best checkpoint hides it: issue 15)
        "small": dict(datasets=["jsb", "nottingham", "piano"], seeds=3, max_updates=50_000,
                      eval_every=1000, config=dict(batch_size=1, dtype="float32")),
        "paper": dict(datasets=["piano", "nottingham", "musedata", "jsb"], seeds=5,
                      max_updates=200_000, eval_every=5000, config=dict(batch_size=1)),
    },
    "table2": {  # section 4.2: 500 sigmoid units, no biases, 180-char windows, tau 45 (PTB) / 20
        "small": dict(datasets=["ptb", "text8"], seeds=2, max_updates=400, eval_every=200,
                      config=dict(hidden=100, batch_size=32, dtype="float32")),
        "paper": dict(datasets=["ptb", "text8"], seeds=5, max_updates=200_000, eval_every=5000,
                      config=dict(hidden=500, batch_size=32)),
    },
    "figure7": {  # the clipviz protocol at small scale, the paper protocol at paper scale
        "small": dict(lengths=[10, 20, 30], seeds=5, max_updates=3000, eval_every=100,
                      config=dict(hidden=50, activation="tanh", lr=0.1, momentum=0.9,
                                  threshold=1.0, batch_size=20)),
        # lengths: Figure 7's range; 6 is the shortest sequence clipviz's task 6a generates
        "paper": dict(lengths=[6, 10, 15, 20, 25, 30, 50], seeds=50, max_updates=100_000,
                      eval_every=1000, config=dict(hidden=50, activation="sigmoid", lr=0.001,
                                                   threshold=1.0, batch_size=1000)),
    },
}
"""Budgets and settings of each experiment and scale (the training page's protocols read
these too)."""

# --------------------------------------------------------------------------------------------
# stated assumptions
# --------------------------------------------------------------------------------------------
OBJECTIVE = ("objective of one update: the NLL summed over the window's steps (and, for music, "
             "over the 88 keys), divided by the number of sequences in the batch; the paper does not "
             "give its normalisation and the authors' music and text code is not public (their "
             "public code averages over the batch and sums over classes, RNN.py:173-181). The "
             "thresholds (120, 45, 20) act on this sum.")

TABLE_ASSUMPTIONS = {
    "table1": [
        OBJECTIVE,
        "reported NLL: per time step, summed over the 88 keys (Bernoulli outputs), averaged over "
        "the scored steps of a split (section 4.1: 'average negative log likelihood per time step')",
        "model: 100 tanh units with biases, equation (2) (x_t = W_rec σ(x_{t-1}) + W_in u_t + b), "
        "initial weights N(0, 0.1²) (the authors' 'basic_tanh', RNN.py:115-124); the paper "
        "gives neither the parametrisation nor the initialisation",
        "learning: plain SGD, constant lr .001, one 100-step window of one song per update, state "
        "carried along a song and reset at its start (section 4.1); float32",
        "training length: the paper trains to an unstated length; here the budget of --scale",
        "best checkpoint: the parameters with the best validation NLL at the evaluations (every "
        "eval_every updates); 'final' = the last parameters",
        "diverged: a run with a skipped (non-finite) update or loss, a non-finite validation NLL, "
        f"or a validation NLL after its best checkpoint above {SETTINGS.reproduce_divergence_factor:g}"
        " x its best",
        "Algorithm 1 fires when ||g|| >= τ; 'clipped' = share of updates where it fired",
        "MuseData is not on this machine unless fetched; JSB Chorales has no paper numbers "
        "(Table 1 has none)",
    ],
    "table2": [
        OBJECTIVE,
        "reported: bits per character, with the parameters of the best validation score "
        "(section 4.2); 'final' = the last parameters",
        "model: 500 sigmoid units, no biases, equation (2), initial weights N(0, 0.01²) (the "
        "authors' 'sigmoid' init, RNN.py:95-104) (section 4.2: 500 sigmoid units, no biases)",
        "learning: plain SGD, the same constant lr for both methods (the paper does not give it; "
        "here PRESETS['characters'] lr), batches of 32 contiguous segments, 180-character windows, "
        "state carried from one window to the next (section 4.2); τ 45 (PTB), 20 (text8)",
        "the stand-in (Tiny Shakespeare) has no paper numbers; it runs with PTB's τ = 45",
        "diverged: a run with a skipped (non-finite) update or loss, a non-finite validation score, "
        f"or a validation score after its best checkpoint above {SETTINGS.reproduce_divergence_factor:g}"
        " x its best",
    ],
}

CONTROL_ASSUMPTIONS = [
    "control 'BPTT, matched lr': BPTT at lr x the mean over every update of the data set's "
    "rescaling runs of min(1, τ/||g||) (the mean factor Algorithm 1 applied to the step; "
    "skipped updates left out): does rescaling win only by taking smaller steps?",
    f"control 'Rescaling, τ = median ||g||': τ = the median ||g|| over the first {EARLY_UPDATES} "
    "updates of the data set's BPTT runs, pooled over seeds (section 3.2: 'look at statistics "
    "on the average norm over a sufficiently large number of updates')",
]


@dataclass(frozen=True)
class Protocol:
    """A Figure 7 protocol: the model and learning rule (the scale sets the budget)."""

    name: str
    title: str  #: one line naming what it stands for
    config: dict[str, Any]  #: TrainConfig fields
    methods: tuple[tuple[str, str], ...]  #: (rule, label) compared
    budgets: dict[str, dict[str, Any]]  #: scale -> lengths, seeds, max_updates, eval_every
    assumptions: list[str] = field(default_factory=list)


_PAPER_F7 = SCALES["figure7"]["paper"]
FIGURE7_PROTOCOLS: dict[str, Protocol] = {
    "paper": Protocol(
        "paper", "the paper's text (section 4.3)",
        dict(hidden=50, activation="sigmoid", init="default", parametrisation="paper", lr=0.001,
             momentum=0.0, batch_size=1000, threshold=1.0, check_sequences=1000, dtype="float32"),
        METHODS,
        {"small": dict(lengths=[10, 20], seeds=3, max_updates=2000, eval_every=200),
         "paper": {k: _PAPER_F7[k] for k in ("lengths", "seeds", "max_updates", "eval_every")}},
        [
            "given by section 4.3: 50 sigmoid units, learning rate .001, at most 100k updates, "
            "mini-batches of 1000 sequences, solved = correct on 1000 consecutive inputs, 50 runs",
            "open, taken from the authors' code: the threshold τ = 1 (their default 'cutoff', "
            "RNN.py:495); initial weights N(0, 0.01²) with 0.01 a standard deviation (their "
            "'sigmoid' init, RNN.py:95-104)",
            "open, clipviz's reading: equation (2) as the model; plain SGD (no momentum); "
            "'1000 consecutive inputs' = 1000 fresh sequences all classified correctly; the "
            "check every eval_every updates; the lengths of Figure 7's x axis",
            OBJECTIVE.replace("(and, for music, over the 88 keys), ", "(only the last is scored), "),
            "the sequences: task 6a with start/end markers B and E (8 symbols) and the relevant "
            "symbols in [0.1T, 0.2T] and [0.5T, 0.6T] (clipviz.training.tasks)",
        ]),
    "authors": Protocol(
        "authors", "the authors' public code (pascanur/trainingRNNs, ICML 2013)",
        dict(hidden=50, activation="tanh", init="smart_tanh_authors", parametrisation="standard",
             lr=0.01, momentum=0.0, batch_size=20, threshold=1.0, check_sequences=10_000,
             dtype="float32", temporal_variant="authors"),
        (("none", "BPTT"), ("norm_shrink", "Rescaling (authors' rule)")),
        # small: 20,000 updates (theirs up to 5e6, RNN.py:497): at 5000, most unsolved runs were
        # cut off while still learning; with the success check stopping at its first wrong
        # chunk, 20,000 cost what 5000 did
        {"small": dict(lengths=[10, 20, 30], seeds=50, max_updates=20_000, eval_every=20),
         # Figure 7's lengths that tempOrder.py can generate (L >= 10)
         "paper": dict(lengths=[T for T in _PAPER_F7["lengths"] if T >= MIN_AUTHORS_LENGTH],
                       seeds=50, max_updates=100_000, eval_every=20)},
        [
            "from RNN.py: 50 units (RNN.py:449), 'smart_tanh': W_uh, W_hh, W_hy N(0, 0.01²), "
            "W_hh with 15 non-zeros per row rescaled to spectral radius 0.95 (RNN.py:125-140; "
            "init 'smart_tanh_authors'); h_t = tanh(h_{t-1} W_hh + u_t W_uh + b) (RNN.py:158); "
            "lr .01, no momentum (RNN.py:469, 248-252); batches of 20 (RNN.py:477)",
            "from RNN.py: cost = mean over the batch of the last step's cross-entropy "
            "(RNN.py:172-174); one norm over all parameters, rescaled when ||g|| > 1 "
            "(RNN.py:219-230, 495); a non-finite norm or one above 1e10 replaces the update by "
            "0.02 W_hh on W_hh and 0 elsewhere (RNN.py:234-243: rule 'norm_shrink')",
            "from RNN.py: solved = 0 errors on 10,000 fresh sequences (RNN.py:351-361, 400, 479), "
            "checked every 20 updates (RNN.py:342, 486); the run stops when solved",
            "from tempOrder.py: the sequences (temporal_variant 'authors'), drawn call for call as "
            "TempOrderTask.generate draws them (tempOrder.py:55-70): 6 symbols (A, B relevant; "
            "c-f distractors; no start/end markers), p0 in [int(0.1L), 2 int(0.1L)), p1 in "
            "[int(0.5L), int(0.5L) + int(0.1L)), class v0 + 2 v1; one numpy RandomState(seed) "
            "for the initialisation and then the training batches (RNN.py:75-79), so a run's "
            "initial weights and training sequences up to its first check are the authors' for "
            "that seed; lengths from 10 (their randint(int(0.1L)) needs L >= 10)",
            "not taken: the regulariser Ω (their script's alpha = 2, RNN.py:467): Figure 7 compares "
            "BPTT and rescaling alone; the budget (their maxiters 5e6, RNN.py:497) is --scale's",
            "differences left: the check's 10,000 sequences come from a generator of their own "
            "(the authors draw them from the training RandomState, RNN.py:350-354), so checking "
            "never changes the training data, and after the first check the training sequences "
            "are other draws of the same distribution than theirs; the check runs after updates "
            "20, 40, ... (theirs after 21, 41, ...: n % 20 == 0 and n > 0 with n from 0, "
            "RNN.py:322, 342); clipviz's BPTT skips a non-finite update where the authors' applies "
            "it; clipviz's float32 arithmetic (numba) is not Theano's, so runs are not "
            "bit-for-bit theirs",
        ]),
    "clipviz": Protocol(
        "clipviz", "clipviz's own small setting (not the paper's, not the authors')",
        dict(SCALES["figure7"]["small"]["config"], check_sequences=SETTINGS.temporal_order_valid),
        METHODS,
        {"small": {k: SCALES["figure7"]["small"][k] for k in ("lengths", "seeds", "max_updates",
                                                              "eval_every")},
         "paper": {k: _PAPER_F7[k] for k in ("lengths", "seeds", "max_updates", "eval_every")}},
        [
            "clipviz's own: tanh units with N(0, 0.1²) weights, SGD with momentum .9, lr .1, "
            "batches of 20, τ = 1: a setting where the comparison shows within minutes; sigmoid "
            "units with N(0, 0.01²) weights learn nothing within this budget",
            "solved = 1000 fresh sequences all correct",
            OBJECTIVE.replace("(and, for music, over the 88 keys), ", "(only the last is scored), "),
        ]),
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("what", choices=("table1", "table2", "figure7", "wall"),
                   help="wall: section 2.4's curvature, alignment and step losses measured at the "
                        "spikes of diverging BPTT runs (clipviz.training.reproduce_wall)")
    p.add_argument("--scale", choices=("small", "paper"), default="small",
                   help="budget: updates, seeds, lengths (small: this machine; paper: the paper's)")
    p.add_argument("--protocol", choices=tuple(FIGURE7_PROTOCOLS),
                   help="figure7: model and learning rule (paper: section 4.3's text; authors: the "
                        "public ICML 2013 code; clipviz: clipviz's own). Default: clipviz at "
                        "--scale small, paper at --scale paper")
    p.add_argument("--seeds", type=int, help="runs per cell (default: by scale)")
    p.add_argument("--max-updates", type=int, help="updates per run (default: by scale)")
    p.add_argument("--datasets", help="comma-separated data sets (tables; default: by scale); "
                                      "wall: the one music set (default jsb)")
    p.add_argument("--lengths", help="comma-separated lengths (figure7; default: by scale)")
    p.add_argument("--threshold", type=float, help="override the paper's clipping threshold "
                                                   "(wall: one τ for every clipped step instead of "
                                                   "the running median ‖g‖)")
    p.add_argument("--controls", action="store_true",
                   help="tables: add BPTT at the matched lr and rescaling with τ at the median ||g||")
    p.add_argument("--out", metavar="DIR",
                   help="write table.md, table.csv, record.json and figures (PNG, SVG) into DIR; "
                        "a path ending in .json: record.json alone, there")


# --------------------------------------------------------------------------------------------
# the seam: every run goes through here
# --------------------------------------------------------------------------------------------
def _train_all(configs: Sequence, log: Callable[[str], None] | None = None) -> list:
    """Train every :class:`clipviz.training.TrainConfig` and return their
    :class:`clipviz.training.RunRecord` s, in order, each thinned by :func:`_compact`.

    The one place runs are made.  Runs that :func:`clipviz.training.train_many` can batch
    (temporal order: Figure 7's seeds and lengths) train in ensembles, one kernel call per update
    for many models, with records equal to separate runs'; the others (music, characters) one at
    a time, each compacted as it ends so that at most one full record is held."""
    from . import train, train_many
    from .ensemble import shape_key

    out: list = [None] * len(configs)
    t0 = time.perf_counter()
    n_done = 0

    def done(i, rec, when):
        nonlocal n_done
        n_done += 1
        out[i] = _compact(rec)
        if log is not None:
            log(f"[{n_done}/{len(configs)}] {_label(configs[i].to_dict())}: "
                f"{_brief(out[i].result)} ({when})")

    batch = [i for i, cfg in enumerate(configs) if shape_key(cfg) is not None]
    if batch:
        train_many([configs[i] for i in batch],
                   on_done=lambda j, rec: done(batch[j], rec,
                                               f"ensembles, {time.perf_counter() - t0:.1f} s in"))
    for i, cfg in enumerate(configs):
        if out[i] is None:
            t = time.perf_counter()
            rec = train(cfg)
            done(i, rec, f"{time.perf_counter() - t:.1f} s")
    return out


def _compact(rec):
    """The record with its per-update series replaced by what the outputs use, and the
    statistics of the series added to its result: a 50k-update run's full telemetry is tens of
    MB in Python objects.

    series: ``updates`` / ``grad_norm_max`` (the largest finite ‖g‖ in each of at most
    :data:`TRACE_POINTS` blocks), ``eval_updates`` / ``rho`` / ``valid`` (the evaluations).
    result: ``step_factor_mean`` (mean of min(1, τ/‖g‖) over the updates with a finite ‖g‖; a
    rule with a fixed τ only), ``early_grad_norms`` (‖g‖ of the first :data:`EARLY_UPDATES`
    updates), ``nonfinite_loss`` and ``diverged`` / ``diverged_why`` (see
    :func:`divergence`)."""
    from .. import clipping

    s = rec.series
    if "grad_norm" not in s:  # compacted already
        return rec
    g = np.array([np.nan if x is None else x for x in s["grad_norm"]], dtype=np.float64)
    n = len(g)
    block = max(1, math.ceil(n / TRACE_POINTS))
    ends, gmax = [], []
    for a in range(0, n, block):
        seg = g[a:a + block]
        seg = seg[np.isfinite(seg)]
        ends.append(int(s["update"][min(a + block, n) - 1]))
        gmax.append(float(seg.max()) if seg.size else None)
    ev = [i for i, r in enumerate(s["rho"]) if r is not None]
    r = rec.result
    tau = clipping.line_value(rec.config.get("clip"), rec.config)
    fin = g[np.isfinite(g) & (g > 0)]
    r["step_factor_mean"] = float(np.mean(np.minimum(1.0, tau / fin))) if tau and fin.size else None
    r["early_grad_norms"] = [None if not math.isfinite(x) else float(x) for x in g[:EARLY_UPDATES]]
    thr = rec.config.get("threshold")
    # the config's τ for every rule, BPTT's included: how often clipping would change its steps
    r["above_tau_fraction"] = (float(np.mean(~(g <= thr))) if n and isinstance(thr, (int, float))
                               else None)  # a non-finite ‖g‖ counts as above
    r["nonfinite_loss"] = sum(1 for x in s["loss"] if x is None)
    valid = [s["valid"][i] for i in ev]
    r["diverged"], r["diverged_why"] = divergence(r, valid, rec.config.get("task"))
    rec.series = {"updates": ends, "grad_norm_max": gmax,
                  "eval_updates": [0] + [int(s["update"][i]) for i in ev],
                  "rho": [r.get("initial_rho")] + [s["rho"][i] for i in ev],
                  "valid": [None] + valid}
    return rec


def divergence(result: dict, valid: Sequence[float | None], task: str | None) -> tuple[bool, str]:
    """Whether a run diverged, and why: a skipped (non-finite) update, a non-finite training loss
    or validation score, or (lower-is-better metrics) a validation score after the best one above
    ``SETTINGS.reproduce_divergence_factor`` times the best."""
    why = []
    if result.get("skipped"):
        why.append(f"{result['skipped']} non-finite update(s) skipped")
    if result.get("nonfinite_loss"):
        why.append(f"{result['nonfinite_loss']} non-finite loss(es)")
    if any(v is None or not math.isfinite(v) for v in valid):
        why.append("non-finite validation score")
    if task != "temporal_order":
        vals = [v if v is not None and math.isfinite(v) else math.inf for v in valid]
        if vals and math.isfinite(min(vals)):
            best_i = int(np.argmin(vals))
            worst_after = max(vals[best_i:])
            k = SETTINGS.reproduce_divergence_factor
            if math.isfinite(worst_after) and worst_after > k * vals[best_i]:
                why.append(f"validation {worst_after:.3g} after the best {vals[best_i]:.3g} (> {k:g}x)")
    return bool(why), "; ".join(why)


def _label(c: dict) -> str:
    where = c.get("dataset") or f"length {c.get('seq_len')}"
    return f"{where} {c['clip']} lr {c['lr']:g} τ {c.get('threshold'):g} seed {c['seed']}"


def _brief(r: dict) -> str:
    if "test_accuracy" in r:
        return f"solved={'yes@' + str(r['solved_at']) if r['solved'] else 'no'} " \
               f"test acc {r['test_accuracy']:.3f}"
    m = r["metric"]
    return (f"test {_f(r.get('test_' + m))} (best @{r.get('best_update')}), final "
            f"{_f(r.get('final_test_' + m))}, clipped {100 * r['clipped_fraction']:.0f}%, "
            f"ρ {_f(r.get('final_rho'))}" + (", diverged" if r.get("diverged") else ""))


def _f(x, digits: int = 3) -> str:
    return "—" if x is None or not math.isfinite(x) else f"{x:.{digits}g}"


def _mean_sd(xs) -> tuple[float | None, float | None]:
    xs = [float(x) for x in xs if x is not None and math.isfinite(x)]
    if not xs:
        return None, None
    return float(np.mean(xs)), float(np.std(xs, ddof=1)) if len(xs) > 1 else 0.0


def _median(xs) -> float | None:
    xs = [float(x) for x in xs if x is not None and math.isfinite(x)]
    return float(np.median(xs)) if xs else None


def _mean(xs) -> float | None:
    xs = [float(x) for x in xs if x is not None and math.isfinite(x)]
    return float(np.mean(xs)) if xs else None


def _ms(m: float | None, sd: float | None) -> str:
    return "—" if m is None else f"{m:.2f}±{sd:.2f}"


# --------------------------------------------------------------------------------------------
# tables 1 and 2
# --------------------------------------------------------------------------------------------
TABLE_COLUMNS = ("dataset", "method", "clip", "lr", "threshold", "runs", "test_best_mean",
                 "test_best_sd", "test_final_mean", "test_final_sd", "train_best_mean",
                 "train_best_sd", "best_update_median", "best_update_min", "best_update_max",
                 "diverged", "final_rho_median", "clipped_fraction_mean", "paper_train_mean",
                 "paper_train_sd", "paper_test_mean", "paper_test_sd")
"""The columns of table.csv (tables): test/train = the metric at the best checkpoint unless
``final`` (the last parameters); paper_* = the paper's cell (empty where it has none)."""


@dataclass
class Group:
    """The runs of one row of a table or one point of Figure 7."""

    key: tuple
    method: str
    configs: list[dict]
    records: list = field(default_factory=list)


def _table_configs(what: str, spec: dict, args) -> tuple[list[str], list[str]]:
    from .. import datasets as dsm

    task = "music" if what == "table1" else "characters"
    names = args.datasets.split(",") if args.datasets else spec["datasets"]
    usable, missing = [], []
    for n in names:
        try:
            dsm.resolve(n, task)
            usable.append(n)
        except ValueError as exc:
            missing.append(f"{n} ({exc})")
    if not usable:
        raise ValueError("no data set for this table is on this machine: " + "; ".join(missing)
                         + (". Stand-in for Table 2: --datasets shakespeare" if what == "table2" else ""))
    return usable, missing


def _config(task: str, **kw):
    from . import TrainConfig

    return TrainConfig.for_task(task, **kw)


def _table(what: str, scale: str, spec: dict, args, log) -> dict:
    task = "music" if what == "table1" else "characters"
    metric = "nll" if what == "table1" else "bpc"
    paper = TABLE1 if what == "table1" else TABLE2
    usable, missing = _table_configs(what, spec, args)

    def tau_of(n: str) -> float:
        if args.threshold:
            return args.threshold
        return THRESHOLD_MUSIC if task == "music" else THRESHOLDS_CHARACTERS.get(n, THRESHOLDS_CHARACTERS["ptb"])

    groups: list[Group] = []
    for n in usable:
        for clip, label in METHODS:
            cfgs = [_config(task, dataset=n, clip=clip, seed=seed, max_updates=spec["max_updates"],
                            eval_every=spec["eval_every"], **spec["config"], threshold=tau_of(n))
                    for seed in range(spec["seeds"])]
            groups.append(Group((n, clip), label, cfgs))
    _run_groups(groups, log)
    if args.controls:
        controls = []
        for n in usable:
            clipped = [rec for g in groups if g.key == (n, "norm") for rec in g.records]
            bptt = [rec for g in groups if g.key == (n, "none") for rec in g.records]
            factors = [r.result["step_factor_mean"] for r in clipped
                       if r.result.get("step_factor_mean") is not None]
            early = [x for r in bptt for x in r.result["early_grad_norms"] if x is not None]
            base = clipped[0].config
            if factors:
                lr = base["lr"] * float(np.mean(factors))
                cfgs = [_config(task, dataset=n, clip="none", seed=seed, lr=lr,
                                max_updates=spec["max_updates"], eval_every=spec["eval_every"],
                                **spec["config"], threshold=tau_of(n)) for seed in range(spec["seeds"])]
                controls.append(Group((n, "none", "lr"), f"BPTT, matched lr {lr:.3g}", cfgs))
            if early:
                tau = float(np.median(early))
                cfgs = [_config(task, dataset=n, clip="norm", seed=seed, threshold=tau,
                                max_updates=spec["max_updates"], eval_every=spec["eval_every"],
                                **spec["config"]) for seed in range(spec["seeds"])]
                controls.append(Group((n, "norm", "tau"), f"Rescaling, τ = median ||g|| = {tau:.3g}",
                                      cfgs))
        _run_groups(controls, log)
        order = {n: i for i, n in enumerate(usable)}
        groups = sorted(groups + controls, key=lambda g: order[g.key[0]])
    rows = []
    for g in groups:
        rs = [rec.result for rec in g.records]
        n = g.key[0]
        pp = paper.get(n, {}) if len(g.key) == 2 else {}
        idx = 0 if g.key[1] == "none" else 1
        tb, tf, tr = (_mean_sd(r.get(k) for r in rs) for k in (f"test_{metric}", f"final_test_{metric}",
                                                                  f"train_{metric}"))
        best = [r["best_update"] for r in rs if r.get("best_update") is not None]
        rho = [r["final_rho"] for r in rs if r.get("final_rho") is not None and math.isfinite(r["final_rho"])]
        c0 = g.configs[0]
        rows.append({
            "dataset": n, "method": g.method, "clip": c0["clip"], "lr": c0["lr"],
            "threshold": c0["threshold"] if c0["clip"] != "none" else None, "runs": len(rs),
            "test_best_mean": tb[0], "test_best_sd": tb[1], "test_final_mean": tf[0],
            "test_final_sd": tf[1], "train_best_mean": tr[0], "train_best_sd": tr[1],
            "best_update_median": float(np.median(best)) if best else None,
            "best_update_min": min(best) if best else None, "best_update_max": max(best) if best else None,
            "diverged": sum(bool(r.get("diverged")) for r in rs),
            "final_rho_median": float(np.median(rho)) if rho else None,
            "clipped_fraction_mean": float(np.mean([r["clipped_fraction"] for r in rs])),
            "paper_train_mean": pp["train"][idx][0] if pp else None,
            "paper_train_sd": pp["train"][idx][1] if pp else None,
            "paper_test_mean": pp["test"][idx][0] if pp else None,
            "paper_test_sd": pp["test"][idx][1] if pp else None,
        })
    unit = TABLE1_METRIC if what == "table1" else TABLE2_METRIC
    c0 = groups[0].configs[0]
    head = (f"{'Table 1' if what == 'table1' else 'Table 2'} ({unit}, lower is better), "
            f"--scale {scale}: {c0['hidden']} {c0['activation']} units, lr {c0['lr']:g}, "
            f"batch {c0['batch_size']}, window {c0['seq_len']}, {spec['max_updates']} updates, "
            f"evaluation every {spec['eval_every']}, {spec['seeds']} seeds; threshold "
            + ", ".join(f"{n} {tau_of(n):g}" for n in usable))
    assumptions = list(TABLE_ASSUMPTIONS[what]) + (CONTROL_ASSUMPTIONS if args.controls else [])
    notes = [f"not run (absent): {'; '.join(missing)}"] if missing else []
    return dict(what=what, protocol="paper", scale=scale, title=head, columns=list(TABLE_COLUMNS),
                rows=rows, groups=groups, assumptions=assumptions, notes=notes,
                text=_table_text(head, rows, assumptions, notes, metric))


def _table_text(head: str, rows: list[dict], assumptions: list[str], notes: list[str],
                metric: str) -> list[str]:
    lines = [head, "",
             f"{'data set':26s} {'method':34s} | {'test (best)':>11s} {'test (final)':>12s} "
             f"{'train (best)':>12s} | {'best at':>13s} | diverged | final ρ | clipped | "
             f"{'paper test':>12s} {'paper train':>12s}",
             "-" * 178]
    for r in rows:
        best = ("—" if r["best_update_median"] is None else
                f"{r['best_update_min']}–{r['best_update_max']}")
        paper_t = "—" if r["paper_test_mean"] is None else f"{r['paper_test_mean']:.2f}±{r['paper_test_sd']:.3f}"
        paper_tr = "—" if r["paper_train_mean"] is None else f"{r['paper_train_mean']:.2f}±{r['paper_train_sd']:.3f}"
        lines.append(
            f"{NAMES.get(r['dataset'], r['dataset']):26s} {r['method']:34s} | "
            f"{_ms(r['test_best_mean'], r['test_best_sd']):>11s} "
            f"{_ms(r['test_final_mean'], r['test_final_sd']):>12s} "
            f"{_ms(r['train_best_mean'], r['train_best_sd']):>12s} | {best:>13s} | "
            f"{r['diverged']:>3d} of {r['runs']:<2d} | {_f(r['final_rho_median']):>7s} | "
            f"{100 * r['clipped_fraction_mean']:>6.0f}% | {paper_t:>12s} {paper_tr:>12s}")
    lines += notes
    lines.append(f"columns: {metric} mean±sd over seeds; 'best' = parameters with the best "
                 "validation score, 'final' = the last parameters; best at: updates of the best "
                 "checkpoints (min–max); final ρ: median ρ(W_rec) at the end; clipped: mean share "
                 "of updates where the rule fired.")
    lines.append("assumptions:")
    lines += [f"  - {a}" for a in assumptions]
    return lines


# --------------------------------------------------------------------------------------------
# figure 7
# --------------------------------------------------------------------------------------------
FIGURE7_COLUMNS = ("length", "method", "clip", "runs", "solved", "success_rate", "wilson_lo",
                   "wilson_hi", "solved_at_median", "test_accuracy_mean", "max_grad_norm_median",
                   "median_grad_norm_median", "clipped_fraction_mean", "above_tau_fraction_mean",
                   "final_rho_median", "replaced", "runs_with_shrink", "solved_only_here")
"""The columns of table.csv (Figure 7): clipped_fraction_mean = mean share of updates where the
rule fired (0 for BPTT); above_tau_fraction_mean = mean share of updates whose ‖g‖ before
clipping was above τ (for BPTT: the updates clipping would have changed); replaced = updates
replaced by the W_rec shrink (``norm_shrink``), runs_with_shrink = runs with at least one;
solved_only_here = runs solved by this method whose seed the other method did not solve (the two
methods' runs of a seed start from the same weights and draw the same training sequences)."""


def _figure7(scale: str, protocol: Protocol, args, log) -> dict:
    from . import TrainConfig
    from ..jobs import wilson_interval

    budget = dict(protocol.budgets[scale])
    if args.seeds is not None:
        budget["seeds"] = args.seeds
    if args.max_updates is not None:
        budget["max_updates"] = args.max_updates
        budget["eval_every"] = min(budget["eval_every"], max(1, args.max_updates))
    try:
        lengths = [int(x) for x in args.lengths.split(",")] if args.lengths else budget["lengths"]
    except ValueError:
        raise ValueError(f"--lengths must be comma-separated integers, got {args.lengths!r}") from None
    cfg = dict(protocol.config, **({"threshold": args.threshold} if args.threshold else {}))
    groups = [Group((T, clip), label,
                    [TrainConfig(task="temporal_order", seq_len=T, clip=clip, seed=seed,
                                 max_updates=budget["max_updates"], eval_every=budget["eval_every"],
                                 **cfg) for seed in range(budget["seeds"])])
              for T in lengths for clip, label in protocol.methods]
    _run_groups(groups, log)
    rows = []
    for g in groups:
        rs = [rec.result for rec in g.records]
        k = sum(bool(r.get("solved")) for r in rs)
        lo, hi = wilson_interval(k, len(rs))
        at = [r["solved_at"] for r in rs if r.get("solved")]
        gmax = [r["max_grad_norm"] if r.get("max_grad_norm") is not None else math.inf for r in rs]
        rho = [r["final_rho"] for r in rs if r.get("final_rho") is not None]
        rows.append({"length": g.key[0], "method": g.method, "clip": g.key[1], "runs": len(rs),
                     "solved": k, "success_rate": k / len(rs), "wilson_lo": lo, "wilson_hi": hi,
                     "solved_at_median": float(np.median(at)) if at else None,
                     "test_accuracy_mean": float(np.mean([r.get("test_accuracy", math.nan) for r in rs])),
                     "max_grad_norm_median": float(np.median(gmax)),
                     "final_rho_median": float(np.median(rho)) if rho else None,
                     "median_grad_norm_median": _median(r.get("median_grad_norm") for r in rs),
                     "clipped_fraction_mean": float(np.mean([r["clipped_fraction"] for r in rs])),
                     "above_tau_fraction_mean": _mean(r.get("above_tau_fraction") for r in rs),
                     "replaced": sum(int(r.get("replaced", 0)) for r in rs),
                     "runs_with_shrink": sum(int(r.get("replaced", 0)) > 0 for r in rs)})
    _solved_only(groups, rows)
    c = cfg
    head = (f"Figure 7 (temporal order), protocol '{protocol.name}' ({protocol.title}), --scale {scale}: "
            f"{c['hidden']} {c['activation']} units, init {c.get('init', 'default')}, lr {c['lr']:g}, "
            f"momentum {c.get('momentum', 0):g}, batch {c['batch_size']}, τ = {c['threshold']:g}, "
            f"at most {budget['max_updates']} updates, check every {budget['eval_every']}, "
            f"solved = {c['check_sequences']} fresh sequences all correct, {budget['seeds']} seeds; "
            f"methods: " + ", ".join(f"{lab} ({rule})" for rule, lab in protocol.methods))
    lines = [head, "",
             f"{'length':>6s} | {'BPTT success':>13s} {'Rescaling success':>18s} | "
             f"{'95% intervals':>21s} | {'solved by one only':>18s} | {'updates to solve':>16s} | "
             f"{'test acc':>13s} | {'median ||g||':>13s} | {'||g|| > τ':>11s} | {'clipped':>7s} | "
             f"{'max ||g||':>15s} | {'final ρ':>11s} | shrinks (runs)",
             "-" * 201]
    for T in lengths:
        b, c = (next(r for r in rows if r["length"] == T and r["clip"] == rule)
                for rule, _ in protocol.methods)
        ok = [f"{r['solved']}/{r['runs']} ({100 * r['success_rate']:.0f}%)" for r in (b, c)]
        ci = " ".join(f"{r['wilson_lo']:.2f}–{r['wilson_hi']:.2f}" for r in (b, c))
        lines.append(f"{T:>6d} | {ok[0]:>13s} {ok[1]:>18s} | {ci:>21s} | "
                     f"{str(b['solved_only_here']) + ' / ' + str(c['solved_only_here']):>18s} | "
                     f"{_f(b['solved_at_median'], 6) + ' / ' + _f(c['solved_at_median'], 6):>16s} | "
                     f"{b['test_accuracy_mean']:.3f} / {c['test_accuracy_mean']:.3f} | "
                     f"{_f(b['median_grad_norm_median']) + ' / ' + _f(c['median_grad_norm_median']):>13s} | "
                     f"{_pct(b['above_tau_fraction_mean']) + ' / ' + _pct(c['above_tau_fraction_mean']):>11s} | "
                     f"{_pct(c['clipped_fraction_mean']):>7s} | "
                     f"{_f(b['max_grad_norm_median']) + ' / ' + _f(c['max_grad_norm_median']):>15s} | "
                     f"{_f(b['final_rho_median']) + ' / ' + _f(c['final_rho_median']):>11s} | "
                     f"{c['replaced']:>7d} ({c['runs_with_shrink']})")
    verdict = _figure7_verdict(rows, protocol)
    lines.append(verdict)
    lines.append("paper (Figure 7, 50 runs, batch 1000, 100k updates): rescaling solves far more runs "
                 "than BPTT up to length ~20; neither beyond (values only in the figure). Columns "
                 "(BPTT / rescaling): 95% intervals = Wilson score intervals of the success rate; "
                 "solved by one only = runs solved by this method whose seed the other did not "
                 "solve (a seed's two runs start from the same weights and data); updates to "
                 "solve = median over solved runs; test acc = mean accuracy on fresh sequences at "
                 "the end (chance 0.25); median ||g|| = median over runs of a run's median norm "
                 "before clipping; ||g|| > τ = mean share of updates whose norm before clipping "
                 "was above τ (for BPTT: the updates clipping would have changed); clipped = mean "
                 "share of the rescaling runs' updates where the rule fired; max ||g|| = median "
                 "over runs of the largest norm before clipping; shrinks = updates replaced by the "
                 "W_rec shrink (norm_shrink), in how many runs.")
    lines.append("assumptions:")
    lines += [f"  - {a}" for a in protocol.assumptions]
    return dict(what="figure7", protocol=protocol.name, scale=scale, title=head,
                columns=list(FIGURE7_COLUMNS), rows=rows, groups=groups,
                assumptions=list(protocol.assumptions), notes=[verdict], text=lines, budget=budget)


def _solved_only(groups: list, rows: list[dict]) -> None:
    """``solved_only_here`` of each row: its runs solved where the other method's run of the same
    length and seed was not (the first two methods of a length are compared)."""
    by_key = {}
    for g, row in zip(groups, rows):
        by_key.setdefault(g.key[0], []).append((g, row))
    for pair in by_key.values():
        solved = [{c["seed"]: bool(rec.result.get("solved")) for c, rec in zip(g.configs, g.records)}
                  for g, _ in pair]
        for i, (_, row) in enumerate(pair):
            other = solved[1 - i] if len(pair) == 2 else {}
            row["solved_only_here"] = sum(ok and not other.get(seed, False)
                                          for seed, ok in solved[i].items())


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.0f}%"


def _figure7_verdict(rows: list[dict], protocol: Protocol) -> str:
    bptt, clip = protocol.methods[0][0], protocol.methods[1][0]
    worse = []
    for T in sorted({r["length"] for r in rows}):
        b = next(r for r in rows if r["length"] == T and r["clip"] == bptt)
        c = next(r for r in rows if r["length"] == T and r["clip"] == clip)
        if c["success_rate"] < b["success_rate"]:
            worse.append(f"T = {T} ({c['solved']}/{c['runs']} against {b['solved']}/{b['runs']})")
    if not worse:
        return "rescaling solved at least as many runs as BPTT at every length run"
    return "rescaling solved FEWER runs than BPTT at " + ", ".join(worse)


# --------------------------------------------------------------------------------------------
# running groups, writing outputs
# --------------------------------------------------------------------------------------------
def _run_groups(groups: list[Group], log) -> None:
    from . import TrainConfig

    configs = [c if isinstance(c, TrainConfig) else TrainConfig.from_dict(c)
               for g in groups for c in g.configs]
    records = _train_all(configs, log)
    i = 0
    for g in groups:
        g.configs = [c.to_dict() for c in configs[i:i + len(g.configs)]]
        g.records = records[i:i + len(g.configs)]
        i += len(g.configs)


def _csv(columns: Sequence[str], rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for r in rows:
        w.writerow(["" if r.get(c) is None else (f"{r[c]:.6g}" if isinstance(r[c], float) else r[c])
                    for c in columns])
    return buf.getvalue()


def _markdown(out: dict) -> str:
    md = [f"# {out['title']}", ""]
    if out["what"] == "figure7":
        md += ["| length | method | solved | success rate (95% Wilson) | solved by this method "
               "only | updates to solve (median) | test accuracy | median ‖g‖ (median) | "
               "‖g‖ > τ | clipped | max ‖g‖ (median) | final ρ (median) | shrinks (runs) |",
               "|---:|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in out["rows"]:
            md.append(f"| {r['length']} | {r['method']} | {r['solved']}/{r['runs']} | "
                      f"{r['success_rate']:.2f} ({r['wilson_lo']:.2f}–{r['wilson_hi']:.2f}) | "
                      f"{r['solved_only_here']} | "
                      f"{_f(r['solved_at_median'], 6)} | {r['test_accuracy_mean']:.3f} | "
                      f"{_f(r['median_grad_norm_median'])} | {_pct(r['above_tau_fraction_mean'])} | "
                      f"{_pct(r['clipped_fraction_mean'])} | "
                      f"{_f(r['max_grad_norm_median'])} | {_f(r['final_rho_median'])} | "
                      f"{r['replaced']} ({r['runs_with_shrink']}) |")
    else:
        md += ["| data set | method | test, best ckpt | test, final | train, best ckpt | best at "
               "(updates) | diverged | final ρ (median) | clipped | paper test | paper train |",
               "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in out["rows"]:
            paper_t = "—" if r["paper_test_mean"] is None else f"{r['paper_test_mean']:.2f} ± {r['paper_test_sd']:.3f}"
            paper_tr = "—" if r["paper_train_mean"] is None else f"{r['paper_train_mean']:.2f} ± {r['paper_train_sd']:.3f}"
            best = "—" if r["best_update_min"] is None else f"{r['best_update_min']}–{r['best_update_max']}"
            md.append(f"| {NAMES.get(r['dataset'], r['dataset'])} | {r['method']} | "
                      f"{_ms(r['test_best_mean'], r['test_best_sd']).replace('±', ' ± ')} | "
                      f"{_ms(r['test_final_mean'], r['test_final_sd']).replace('±', ' ± ')} | "
                      f"{_ms(r['train_best_mean'], r['train_best_sd']).replace('±', ' ± ')} | {best} | "
                      f"{r['diverged']} of {r['runs']} | {_f(r['final_rho_median'])} | "
                      f"{100 * r['clipped_fraction_mean']:.0f}% | {paper_t} | {paper_tr} |")
    md += [""] + out["notes"] + ["", "Stated assumptions:", ""] + [f"- {a}" for a in out["assumptions"]]
    return "\n".join(md) + "\n"


def _record(out: dict, argv: Sequence[str] | None) -> dict:
    from .record import _finite_or_none, code_version

    runs = [{"label": _label(c), "group": g.method, "config": c, "status": rec.status,
             "result": rec.result, "series": rec.series}
            for g in out["groups"] for c, rec in zip(g.configs, g.records)]
    return _finite_or_none({
        "what": out["what"], "protocol": out["protocol"], "scale": out["scale"],
        "code_version": code_version(), "command": list(argv) if argv else None,
        "title": out["title"], "assumptions": out["assumptions"], "notes": out["notes"],
        "budget": out.get("budget"), "columns": out["columns"], "rows": out["rows"],
        "paper": {"table1": TABLE1, "table2": TABLE2}.get(out["what"]),
        "divergence_factor": SETTINGS.reproduce_divergence_factor,
        "table": out["text"], "runs": runs})


def figures(out: dict) -> dict[str, Any]:
    """The figures of a result: ``figure7`` (success rate, Wilson intervals) for Figure 7, and one
    ``traces_<key>`` per data set or length (per-run ‖g‖ and ρ(W_rec))."""
    from ..figures.reproduce import SuccessPoint, Trace, success_figure, traces_figure

    figs: dict[str, Any] = {}
    if out["what"] == "figure7":
        figs["figure7"] = success_figure(
            [SuccessPoint(r["method"], r["length"], r["solved"], r["runs"]) for r in out["rows"]],
            f"Figure 7, protocol '{out['protocol']}', --scale {out['scale']}")
    from .. import clipping

    keys = list(dict.fromkeys(g.key[0] for g in out["groups"]))
    for key in keys:
        traces = []
        for g in out["groups"]:
            if g.key[0] != key:
                continue
            for c, rec in zip(g.configs, g.records):
                traces.append(Trace(g.method, _label(c), rec.series["updates"], rec.series["grad_norm_max"],
                                    rec.series["eval_updates"], rec.series["rho"],
                                    clipping.line_value(c["clip"], c)))
        act = out["groups"][0].configs[0]["activation"]
        name = f"length {key}" if out["what"] == "figure7" else NAMES.get(key, key)
        figs[f"traces_{key}"] = traces_figure(traces, f"{name}: ‖g‖ and ρ(W_rec) per run "
                                              f"({out['what']}, protocol '{out['protocol']}')", act)
    return figs


def write_outputs(out: dict, where: str, argv: Sequence[str] | None, log) -> list[str]:
    """Write table.md, table.csv, record.json and the figures into ``where`` (a directory), or
    record.json alone to ``where`` if it ends in ``.json``; the paths written."""
    files = (("table.md", _markdown(out)), ("table.csv", _csv(out["columns"], out["rows"])))
    return write_files(where, _record(out, argv), files, lambda: figures(out), log)


def write_files(where: str, record: dict, files: Sequence[tuple[str, str]],
                figs: Callable[[], dict[str, Any]], log) -> list[str]:
    """record.json alone to ``where`` where it ends in ``.json``; else ``files`` ((name, text)
    pairs), record.json and the figures ``figs()`` builds into the directory ``where``. The
    paths written (shared by every ``clipviz reproduce`` experiment)."""
    path = Path(where)
    if path.suffix == ".json":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record, indent=1, allow_nan=False), encoding="utf-8")
        return [str(path)]
    path.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in (*files, ("record.json", json.dumps(record, indent=1, allow_nan=False))):
        (path / name).write_text(text, encoding="utf-8")
        written.append(str(path / name))
    return written + write_figures(figs(), path, log)


def write_figures(figs: dict[str, Any], path: Path, log) -> list[str]:
    """Each figure as PNG and SVG (plotly + kaleido, which drives a Chrome); where kaleido or a
    Chrome is missing, as HTML, with what to install said in the log."""
    written = []
    for name in ("kaleido", "choreographer"):  # their INFO lines would drown the table's progress
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        import plotly.io as pio

        targets = [(fig, path / f"{name}.{ext}") for name, fig in figs.items() for ext in ("png", "svg")]
        if hasattr(pio, "write_images"):  # plotly >= 6.1: one Chrome for every image
            pio.write_images([f for f, _ in targets], [str(p) for _, p in targets], scale=2)
        else:  # pragma: no cover - older plotly
            for f, p in targets:
                f.write_image(str(p), scale=2)
        written += [str(p) for _, p in targets]
    except Exception as exc:  # noqa: BLE001 - kaleido missing, no Chrome, or Chrome failing
        for name, fig in figs.items():
            fig.write_html(str(path / f"{name}.html"), include_plotlyjs="cdn")
            written.append(str(path / f"{name}.html"))
        log(f"figures written as HTML, not PNG/SVG ({type(exc).__name__}: {exc}). For PNG and SVG: "
            "pip install 'kaleido>=1' and a Chrome or Chromium (`plotly_get_chrome`, or "
            "apt-get install chromium), then rerun")
    return written


def run(args: argparse.Namespace) -> int:
    if args.seeds is not None and not 1 <= args.seeds <= 1000:
        raise ValueError("--seeds must be between 1 and 1000")
    if args.max_updates is not None and args.max_updates < 1:
        raise ValueError("--max-updates must be at least 1")
    if args.protocol is not None and args.what != "figure7":
        raise ValueError("--protocol is for figure7 (the tables have one protocol: the paper's)")

    def log(msg: str) -> None:
        sys.stderr.write(msg + "\n")
        sys.stderr.flush()

    if args.what == "wall":
        from .reproduce_wall import run as run_wall

        return run_wall(args, log, sys.argv[1:])
    t = time.perf_counter()
    if args.what == "figure7":
        protocol = FIGURE7_PROTOCOLS[args.protocol or ("clipviz" if args.scale == "small" else "paper")]
        log(f"figure7: protocol '{protocol.name}' ({protocol.title}), --scale {args.scale}")
        out = _figure7(args.scale, protocol, args, log)
    else:
        spec = dict(SCALES[args.what][args.scale])
        if args.seeds is not None:
            spec["seeds"] = args.seeds
        if args.max_updates is not None:
            spec["max_updates"] = args.max_updates
            spec["eval_every"] = min(spec["eval_every"], max(1, args.max_updates))
        if args.scale == "paper":
            log(f"--scale paper: runs of up to {spec['max_updates']} updates each with the paper's "
                "sizes; expect hours to days on a laptop")
        out = _table(args.what, args.scale, spec, args, log)
    out["text"].append(f"total time {time.perf_counter() - t:.0f} s")
    sys.stdout.write("\n".join(out["text"]) + "\n")
    if args.out:
        for p in write_outputs(out, args.out, sys.argv[1:], log):
            log(f"wrote {p}")
    return 0
