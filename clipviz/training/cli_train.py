"""``clipviz train``: one training run with a progress bar and a final summary."""

from __future__ import annotations

import argparse
import sys
import time

from .. import clipping
from ..config import SETTINGS

_FIELDS = [  # (flag, config field, type, help)
    ("--dataset", "dataset", str, "known name (jsb, nottingham, piano, musedata, ptb, text8, "
                                  "shakespeare) or a path to a .mat/.pickle/text file"),
    ("--parametrisation", "parametrisation", str, "paper (equation 2) or standard"),
    ("--activation", "activation", str, "sigmoid or tanh"),
    ("--hidden", "hidden", int, "hidden units"),
    ("--lr", "lr", float, "SGD learning rate"),
    ("--momentum", "momentum", float, "momentum in [0, 1)"),
    ("--batch-size", "batch_size", int, "sequences per update"),
    ("--seq-len", "seq_len", int, "temporal-order length or BPTT window"),
    ("--max-updates", "max_updates", int, "number of updates"),
    ("--eval-every", "eval_every", int, "K: validation and rho(W_rec) every K updates"),
    ("--seed", "seed", int, "random seed"),
    ("--init", "init", str, "default or smart_tanh"),
    ("--dtype", "dtype", str, "float64 or float32"),
]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task", default=SETTINGS.train_task,
                   help="temporal_order, music or characters (the paper's settings for the task "
                        "are the defaults; every flag overrides them)")
    for flag, _name, typ, help_ in _FIELDS:
        p.add_argument(flag, type=typ, default=None, help=help_)
    # the clipping rules and their parameters, as registered now (clipviz.clipping)
    p.add_argument("--clip", choices=clipping.names(), default=None,
                   help="clipping rule: " + "; ".join(clipping.get(n).title for n in clipping.names()))
    for par in clipping.params():
        p.add_argument("--" + par.name.replace("_", "-"), dest=par.name, type=float, default=None,
                       help=f"{par.help} ({par.domain})")
    p.add_argument("--no-bias", action="store_true", help="no biases (the paper's character model)")
    p.add_argument("--snapshots", action="store_true",
                   help="keep theta at explosion events (clipping fired, |g| spikes, a few ordinary "
                        "updates) in the run record's result['snapshots'] (issue 16)")
    p.add_argument("--out", metavar="FILE", help="write the run record (JSON) here")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def config_from_args(args: argparse.Namespace):
    from . import TrainConfig

    names = [name for _f, name, _t, _h in _FIELDS] + ["clip"] + [p.name for p in clipping.params()]
    over = {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}
    if args.no_bias:
        over["bias"] = False
    return TrainConfig.for_task(args.task, **over)


class ProgressBar:
    """A one-line progress bar on a stream, redrawn at most 10 times a second."""

    def __init__(self, stream=None, width: int = 24):
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.width = width
        self.last = 0.0
        self.valid = None
        self.rho = None

    def __call__(self, ev: dict) -> bool:
        if ev["valid"] is not None:
            self.valid, self.rho = ev["valid"], ev["rho"]
        now = time.perf_counter()
        final = ev["update"] == ev["total"]
        if self.tty and now - self.last < 0.1 and not final:
            return True
        if not self.tty and ev["valid"] is None and not final:
            return True  # not a terminal: one line per evaluation
        self.last = now
        frac = ev["update"] / ev["total"]
        fill = int(frac * self.width)
        loss = "nan" if ev["loss"] is None else f"{ev['loss']:.4f}"
        gn = "inf" if ev["grad_norm"] is None else f"{ev['grad_norm']:.3g}"
        extra = "" if self.valid is None else f" valid {self.valid:.4f} rho {self.rho:.3f}"
        self.stream.write(("\r" if self.tty else "") + f"[{'#' * fill}{'.' * (self.width - fill)}] {ev['update']}/{ev['total']}"
                          f" loss {loss} |g| {gn} skipped {ev['skipped']}{extra}" + ("  " if self.tty else "\n"))
        self.stream.flush()
        return True


def summary_lines(rec) -> list[str]:
    c, r = rec.config, rec.result
    lines = [f"run {rec.status}: {c['task']}"
             + (f" on {c['dataset']}" if c.get("dataset") else "")
             + f", {c['parametrisation']} RNN, {c['hidden']} {c['activation']} units, "
               f"clip={clipping.describe(c['clip'], c)}",
             f"  updates {r['updates']}, clipped {100 * r['clipped_fraction']:.1f}%, "
             f"skipped {r['skipped']}, max |g| {r['max_grad_norm']}, final rho(W_rec) {r['final_rho']:.3f}, "
             f"{r['elapsed']:.1f} s"]
    m = r.get("metric")
    if c["task"] == "temporal_order" and "test_accuracy" in r:
        lines.append(f"  test accuracy {r['test_accuracy']:.3f} on fresh sequences; solved "
                     f"(1000 in a row): {'yes, at update ' + str(r['solved_at']) if r['solved'] else 'no'}")
    elif f"test_{m}" in r:
        lines.append("  " + ", ".join(f"{s} {m} {r[f'{s}_{m}']:.4f}" for s in ("train", "valid", "test")
                                      if r.get(f"{s}_{m}") is not None)
                     + f" (parameters of the best validation, update {r['best_update']})")
    return lines


def run(args: argparse.Namespace) -> int:
    from . import train

    cfg = config_from_args(args)
    bar = None if args.quiet else ProgressBar()
    rec = train(cfg, callback=bar, snapshots=True if getattr(args, "snapshots", False) else None)
    if bar is not None and bar.tty:
        sys.stderr.write("\n")
    for line in summary_lines(rec):
        sys.stdout.write(line + "\n")
    if rec.result.get("snapshots") is not None:
        sys.stdout.write(f"  snapshots kept at updates "
                         f"{', '.join(str(s['update']) for s in rec.result['snapshots']) or 'none'}\n")
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(rec.to_json(indent=1))
        sys.stdout.write(f"run record written to {args.out}\n")
    return 0
