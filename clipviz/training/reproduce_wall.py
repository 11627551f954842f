"""``clipviz reproduce wall [--seeds N] [--max-updates N] [--datasets SET] [--threshold τ] [--out DIR]``.

Section 2.4 of the paper, measured (issue 16, item 5).  The paper's picture: where ‖g‖
explodes the curvature along g explodes with it, g lies along the Hessian's top eigenvector (a
steep wall perpendicular to g), and the full step jumps off the wall where the rescaled step of
Algorithm 1 stays near it.  The paper shows this on the one-unit model only (Figure 3).

This command trains plain BPTT runs (no clipping) that spike and diverge — temporal order, and
one music set (JSB Chorales unless ``--datasets`` names another; skipped with a message where it
is absent) — keeps a snapshot at every spike of ‖g‖ (above ``SETTINGS.wall_spike_factor`` times
its running median) and at a few ordinary updates, and measures at each
(:mod:`clipviz.wall`): ‖g‖, gᵀHg/‖g‖², the top Hessian eigenvalue and the angle between g and
its eigenvector, and the window's loss after the plain step and after the clipped one.  Next to
them: the same measures at the spikes of gradient descents on the one-unit model of equation
(14), and over its whole error surface (:func:`clipviz.dynamics.curvature_alignment`).

It prints a table and a verdict; ``--out DIR`` writes table.md, table.csv (one row per group),
points.csv (one row per measured update), record.json (configs, code version, every point) and
the figures (PNG + SVG, or HTML where kaleido/Chrome is missing).
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any, Callable, Sequence

import numpy as np

from ..config import SETTINGS

log = logging.getLogger(__name__)

COLUMNS = ("source", "label", "points", "grad_norm_median", "spearman_curvature", "angle_median",
           "angle_q1", "angle_q3", "aligned_share", "curvature_share", "compared",
           "unclipped_higher", "loss_gap_median")
"""table.csv: one row per group (:class:`clipviz.wall.WallSummary`)."""
POINT_COLUMNS = ("source", "run", "update", "kind", "grad_norm", "median_ratio", "tau",
                 "curvature_along_g", "lambda_max_abs", "angle_deg", "loss", "loss_unclipped",
                 "loss_clipped")
"""points.csv: one row per measured update (:class:`clipviz.wall.WallPoint`)."""

SOURCE_NAMES = {"temporal_order": "temporal order", "one_unit": "one-unit descents",
                "one_unit_surface": "one-unit surface"}


def assumptions() -> list[str]:
    """What the measurement takes for granted, stated in every output."""
    S = SETTINGS
    return [
        f"spike: an update whose ‖g‖ is above {S.wall_spike_factor:g} x the median of the previous "
        f"{S.wall_median_window} norms (at least 10 of them); at most {S.wall_max_spikes} spikes "
        f"(the largest ratios) and {S.wall_max_ordinary} ordinary updates (multiples of "
        f"{S.wall_ordinary_every}) measured per run",
        "clipped step: Algorithm 1 with τ = that running median ‖g‖ (section 3.2: τ from the "
        "average norm), unless --threshold gives one τ; plain step: -lr g (the step the BPTT run "
        "took)",
        "loss: the update's own window objective (its minibatch and carried-in state), float64, "
        "at θ and after each step; a plain step to a non-finite loss counts as higher",
        "curvature: exact Hessian-vector products (R-operator through BPTT); top eigenvalue = the "
        "eigenvalue of largest modulus, by Lanczos; angle in [0°, 90°] (an eigenvector's sign is "
        f"arbitrary); aligned = below {S.wall_aligned_deg:g}°; curvature share = median "
        "|gᵀHg/‖g‖²| / |λ_max| (1: g is the top eigenvector)",
        "Spearman: rank correlation of |gᵀHg|/‖g‖² with ‖g‖ over the group's points",
        f"temporal order: {S.wall_hidden} tanh units, init {S.wall_init}, length {S.wall_seq_len}, "
        f"batch {S.train_batch}, plain SGD lr {S.wall_lr:g}, no momentum, no clipping",
        f"music: section 4.1's model (tanh, biases, 100-step windows of one song) with "
        f"{S.wall_music_hidden} units and lr {S.wall_music_lr:g} (section 4.1: 100 units, lr "
        ".001, which spikes only after thousands of updates), no clipping",
        f"one-unit descents: equation (14), T = {S.steps}, x0 = {S.x0:g}, target {S.target:g}, "
        f"{S.activation}; plain gradient descent, lr {S.wall_one_unit_lr:g}, "
        f"{S.wall_one_unit_steps} steps, from a {S.wall_one_unit_starts} x "
        f"{S.wall_one_unit_starts} grid of starts over w ∈ [{S.w_min:g}, {S.w_max:g}], "
        f"b ∈ [{S.b_min:g}, {S.b_max:g}]; exact 2x2 Hessian",
        f"one-unit surface: every point of a {S.wall_one_unit_resolution}² grid over the same "
        "window (clipviz.dynamics.curvature_alignment), and its top 1 % of ‖g‖",
    ]


def _policy():
    from .snapshots import SnapshotPolicy

    S = SETTINGS
    return SnapshotPolicy(max_clipped=0, max_spikes=S.wall_max_spikes,
                          max_ordinary=S.wall_max_ordinary, spike_factor=S.wall_spike_factor,
                          median_window=S.wall_median_window,
                          ordinary_every=S.wall_ordinary_every)


def configs(args) -> tuple[list, list, str | None]:
    """The temporal-order and music configs of a run of the command, and why music is left out
    (None when it is not)."""
    from .. import datasets as dsm
    from . import TrainConfig

    S = SETTINGS
    seeds = args.seeds if args.seeds is not None else S.wall_seeds
    updates = args.max_updates if args.max_updates is not None else S.wall_updates
    to = [TrainConfig(task="temporal_order", clip="none", threshold=None, lr=S.wall_lr,
                      momentum=0.0, seq_len=S.wall_seq_len, hidden=S.wall_hidden,
                      activation="tanh", init=S.wall_init, batch_size=S.train_batch,
                      max_updates=updates, eval_every=updates, seed=seed)
          for seed in range(seeds)]
    name = args.datasets or S.wall_music_dataset
    if "," in name:
        raise ValueError("reproduce wall measures one music set: give --datasets one name "
                         "(jsb, nottingham, piano, musedata) or a path")
    try:
        dsm.resolve(name, "music")
    except ValueError as exc:
        return to, [], f"music part skipped: {exc}"
    m_seeds = args.seeds if args.seeds is not None else S.wall_music_seeds
    m_updates = args.max_updates if args.max_updates is not None else S.wall_music_updates
    music = [TrainConfig.for_task("music", dataset=name, clip="none", threshold=None,
                                  lr=S.wall_music_lr, hidden=S.wall_music_hidden,
                                  max_updates=m_updates, eval_every=m_updates, seed=seed)
             for seed in range(m_seeds)]
    return to, music, None


def _run_label(cfg) -> str:
    where = cfg.dataset if cfg.task == "music" else f"length {cfg.seq_len}"
    return f"{where} BPTT lr {cfg.lr:g} seed {cfg.seed}"


def _divergence(rec) -> dict[str, Any]:
    """How the run's training loss moved: median over its first and last tenth of updates, and
    the update of its largest ‖g‖."""
    loss = np.array([math.nan if x is None else x for x in rec.series["loss"]], dtype=np.float64)
    g = np.array([math.inf if x is None else x for x in rec.series["grad_norm"]], dtype=np.float64)
    k = max(1, len(loss) // 10)
    first = float(np.nanmedian(loss[:k])) if np.isfinite(loss[:k]).any() else math.nan
    last = float(np.nanmedian(loss[-k:])) if np.isfinite(loss[-k:]).any() else math.nan
    factor = SETTINGS.reproduce_divergence_factor
    return {"loss_first": first, "loss_last": last,
            "diverged": bool(not math.isfinite(last) or last > factor * first),
            "max_grad_norm": float(g.max()) if g.size else math.nan,
            "max_grad_norm_update": int(np.argmax(g)) + 1 if g.size else None}


def _one_unit_starts() -> list[tuple[float, float]]:
    S = SETTINGS
    n = S.wall_one_unit_starts
    ws = np.linspace(S.w_min, S.w_max, n + 2)[1:-1]
    bs = np.linspace(S.b_min, S.b_max, n + 2)[1:-1]
    return [(float(w), float(b)) for w in ws for b in bs]


def measure(args, say: Callable[[str], None]) -> dict[str, Any]:
    """Train, measure, summarise: everything the outputs show."""
    from .. import dynamics as dyn
    from .. import landscape as L
    from .. import wall as W
    from .runner import run

    if args.threshold is not None and not (math.isfinite(args.threshold) and args.threshold > 0):
        raise ValueError("--threshold must be a positive number")
    to_cfgs, music_cfgs, skipped = configs(args)
    if skipped:
        say(skipped)
    policy = _policy()
    points: list = []
    runs: list[dict] = []
    profiles: list = []
    for source, cfgs in (("temporal_order", to_cfgs), ("music", music_cfgs)):
        best = None  # the largest spike of this source, for the profile
        for cfg in cfgs:
            t = time.perf_counter()
            rec = run(cfg, None, snapshots=policy)
            label = _run_label(cfg)
            pts = W.measure_run(rec, source=source, run=label, tau=args.threshold)
            div = _divergence(rec)
            n_spikes = sum(p.kind == "spike" for p in pts)
            say(f"{label}: {rec.result['updates']} updates, loss {div['loss_first']:.3g} -> "
                f"{div['loss_last']:.3g}{' (diverged)' if div['diverged'] else ''}, max ‖g‖ "
                f"{div['max_grad_norm']:.3g} at update {div['max_grad_norm_update']}; "
                f"{n_spikes} spikes measured ({time.perf_counter() - t:.1f} s)")
            runs.append({"label": label, "source": source, "config": cfg.to_dict(),
                         "status": rec.status, **div, "spikes": n_spikes,
                         "points": len(pts)})
            points += pts
            spikes = [p for p in pts if p.kind == "spike"]
            if spikes:
                top = max(spikes, key=lambda p: p.grad_norm)
                if best is None or top.grad_norm > best[0].grad_norm:
                    best = (top, rec)
        if best is not None:
            top, rec = best
            snap = next(s for s in rec.result["snapshots"] if s["update"] == top.update)
            sl = W.step_slice(L.at_snapshot(rec.config, snap, tau=top.tau), n_alpha=121, n_beta=1)
            row = sl.centre[0]
            profiles.append({"label": f"{SOURCE_NAMES.get(source, source)}, {top.run}, update "
                                      f"{top.update} (‖g‖ {top.grad_norm:.3g})",
                             "alphas": sl.slice.alphas.tolist(),
                             "losses": sl.slice.losses[row].tolist(),
                             "alpha_clipped": float(sl.slice.alphas[sl.clipped[1]])})
    t = time.perf_counter()
    ou = W.one_unit_spikes(_one_unit_starts())
    S = SETTINGS
    ca = dyn.curvature_alignment(np.linspace(S.w_min, S.w_max, S.wall_one_unit_resolution),
                                 np.linspace(S.b_min, S.b_max, S.wall_one_unit_resolution))
    say(f"one-unit model: {len(ou)} spikes over {len(_one_unit_starts())} descents, surface "
        f"{S.wall_one_unit_resolution}² ({time.perf_counter() - t:.1f} s)")
    points += ou
    music_name = music_cfgs[0].dataset if music_cfgs else None
    names = dict(SOURCE_NAMES, music=_music_name(music_name))
    summaries = []
    for source in ("temporal_order", "music"):
        for kind in ("spike", "ordinary"):
            sel = [p for p in points if p.source == source and p.kind == kind]
            if source == "music" and not music_cfgs:
                continue
            summaries.append(W.summarise_points(
                sel, source, f"{names[source]}, {'spikes' if kind == 'spike' else 'ordinary updates'}"))
    summaries.append(W.summarise_points(ou, "one_unit", "one-unit descents, spikes"))
    summaries += W.surface_summaries(ca)
    notes = verdict(summaries)
    if skipped:
        notes.append(skipped)
    title = ("Section 2.4's wall at spikes of ‖g‖: plain BPTT runs (no clipping) on temporal order"
             + (f" and {names['music']}" if music_cfgs else "") + ", next to the one-unit model")
    return {"title": title, "summaries": summaries, "points": points, "runs": runs,
            "profiles": profiles, "notes": notes, "assumptions": assumptions(),
            "skipped": skipped, "threshold": args.threshold}


def _music_name(name: str | None) -> str:
    from .reproduce import NAMES

    return NAMES.get(name, name) if name else "music"


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.0f}%"


def _claim(head: str, parts: list[str], real: list, holds, yes: str, no: str) -> str:
    """One numbered claim of the verdict: the numbers, then what they say on the real networks'
    spikes, task by task (``holds(summary)``: whether the claim holds for that task)."""
    good = [s.label.removesuffix(", spikes") for s in real if holds(s)]
    bad = [s.label.removesuffix(", spikes") for s in real if not holds(s)]
    if not real:
        tail = "No spike of a real network was measured."
    elif not bad:
        tail = yes
    elif not good:
        tail = no
    else:
        tail = f"Mixed: it holds on {', '.join(good)}, not on {', '.join(bad)}."
    return f"{head}: " + "; ".join(parts) + ". " + tail


def verdict(summaries: Sequence) -> list[str]:
    """What the numbers say about each of section 2.4's three claims, group by group: a claim
    holds on the real networks when it holds for every real task's spikes (Spearman above
    ``SETTINGS.wall_spearman_support``; median angle below ``SETTINGS.wall_aligned_deg``; the
    plain step higher in more than half of the spikes), and "mixed" when it holds for some."""
    S = SETTINGS
    real = [s for s in summaries if s.source in ("temporal_order", "music")
            and s.label.endswith("spikes") and s.points]
    one = [s for s in summaries if s.source.startswith("one_unit") and s.points]

    def rho(s):
        r = s.spearman_curvature
        return f"{s.label}: {'—' if r is None else f'{r:.2f}'} (n = {s.points})"

    def angle(s):
        return (f"{s.label}: median {s.angle_median:.3g}° (quartiles {s.angle_q1:.3g}°–"
                f"{s.angle_q3:.3g}°, {_pct(s.aligned_share)} below {S.wall_aligned_deg:g}°)")

    def gap(s):
        return (f"{s.label}: plain step higher in {s.unclipped_higher} of {s.compared} (median "
                f"gap {s.loss_gap_median:+.3g})")

    one_aligned = [s.label for s in one if s.angle_median < S.wall_aligned_deg]
    compared = [s for s in real if s.compared]
    return [
        _claim("1. Curvature along g rises with ‖g‖ (Spearman of |gᵀHg|/‖g‖² with ‖g‖)",
               [rho(s) for s in real + one], real,
               lambda s: (s.spearman_curvature is not None
                          and s.spearman_curvature > S.wall_spearman_support),
               "On the real networks' spikes this supports the paper's 'gradient and curvature "
               "explode together'.",
               "On the real networks' spikes this does NOT clearly support the paper's 'gradient "
               f"and curvature explode together' (a rank correlation of {S.wall_spearman_support:g}"
               " or less, or too few spikes)."),
        _claim("2. g along the top Hessian eigenvector (the wall perpendicular to g)",
               [angle(s) for s in real + one], real,
               lambda s: s.angle_median < S.wall_aligned_deg,
               "On the real networks' spikes g is aligned with the top eigenvector, as the paper "
               "assumes.",
               "On the real networks' spikes g is NOT aligned with the top eigenvector"
               + (f"; it is on the one-unit model ({', '.join(one_aligned)}), where the alignment "
                  "is structural: g and the Gauss-Newton term both lie along ∇x_T."
                  if one_aligned else ".")),
        _claim("3. The plain step lands higher on the window's loss than the clipped step",
               [gap(s) for s in real + one if s.compared], compared,
               lambda s: 2 * s.unclipped_higher > s.compared,
               "On the real networks' spikes the plain step lands higher in most cases, as the "
               "paper's Figure 3 draws it.",
               "On the real networks' spikes the plain step does NOT land higher in most cases."),
    ]


# --------------------------------------------------------------------------------------------
# outputs
# --------------------------------------------------------------------------------------------
def _cell(x, digits: int = 3) -> str:
    if x is None:
        return "—"
    if isinstance(x, float):
        return "—" if not math.isfinite(x) else f"{x:.{digits}g}"
    return str(x)


def _cells(s) -> list[str]:
    """One summary's cells, as the printed table and table.md show them."""
    iqr = ("—" if s.angle_median is None else
           f"{s.angle_median:.3g}° ({s.angle_q1:.3g}°–{s.angle_q3:.3g}°)")
    higher = "—" if s.compared is None else f"{s.unclipped_higher}/{s.compared}"
    return [s.label, str(s.points), _cell(s.grad_norm_median), _cell(s.spearman_curvature, 2),
            iqr, _pct(s.aligned_share), _cell(s.curvature_share, 2), higher,
            _cell(s.loss_gap_median)]


def text(out: dict) -> list[str]:
    """The printed table: one line per group, then the verdict and the assumptions."""
    lines = [out["title"], "",
             f"{'group':40s} | {'n':>5s} | {'median ‖g‖':>10s} | {'Spearman':>8s} | "
             f"{'angle median (IQR)':>24s} | {'aligned':>7s} | {'curv/λmax':>9s} | "
             f"{'plain higher':>12s} | {'median gap':>10s}", "-" * 150]
    widths = (40, 5, 10, 8, 24, 7, 9, 12, 10)
    for s in out["summaries"]:
        cells = _cells(s)
        lines.append(" | ".join(f"{c:{w}s}" if i == 0 else f"{c:>{w}s}"
                                for i, (c, w) in enumerate(zip(cells, widths))))
    lines += ["", *out["notes"], "columns: n = points measured; Spearman = rank correlation of "
              "|gᵀHg|/‖g‖² with ‖g‖; angle = between g and the top Hessian eigenvector; aligned = "
              f"share below {SETTINGS.wall_aligned_deg:g}°; curv/λmax = median |gᵀHg/‖g‖²| / "
              "|λ_max|; plain higher = points where the window's loss after the plain step is "
              "above the loss after the clipped step; median gap = median of their difference.",
              "assumptions:"]
    lines += [f"  - {a}" for a in out["assumptions"]]
    return lines


def markdown(out: dict) -> str:
    md = [f"# {out['title']}", "",
          "| group | n | median ‖g‖ | Spearman | angle median (quartiles) | aligned | curv/λmax | "
          "plain step higher | median loss gap |",
          "|---|---:|---:|---:|---|---:|---:|---:|---:|"]
    md += ["| " + " | ".join(_cells(s)) + " |" for s in out["summaries"]]
    md += ["", "## Runs", "", "| run | loss, first → last tenth | diverged | max ‖g‖ (update) | "
           "spikes measured |", "|---|---|---|---|---:|"]
    for r in out["runs"]:
        md.append(f"| {r['label']} | {_cell(r['loss_first'])} → {_cell(r['loss_last'])} | "
                  f"{'yes' if r['diverged'] else 'no'} | {_cell(r['max_grad_norm'])} "
                  f"({r['max_grad_norm_update']}) | {r['spikes']} |")
    md += ["", "## What the numbers say", ""] + out["notes"]
    md += ["", "## Stated assumptions", ""] + [f"- {a}" for a in out["assumptions"]]
    return "\n".join(md) + "\n"


def record(out: dict, argv: Sequence[str] | None) -> dict:
    from .record import _finite_or_none, code_version

    return _finite_or_none({
        "what": "wall", "scale": "small", "code_version": code_version(),
        "command": list(argv) if argv else None, "title": out["title"],
        "assumptions": out["assumptions"], "notes": out["notes"], "threshold": out["threshold"],
        "settings": {k: getattr(SETTINGS, k) for k in SETTINGS.__dataclass_fields__
                     if k.startswith("wall_")},
        "columns": list(COLUMNS), "rows": [s.to_dict() for s in out["summaries"]],
        "point_columns": list(POINT_COLUMNS), "points": [p.to_dict() for p in out["points"]],
        "runs": out["runs"], "profiles": out["profiles"]})


def figures(out: dict) -> dict[str, Any]:
    """wall_angles, wall_curvature, wall_losses and (where a run spiked) wall_profile."""
    from ..figures.wall import (Profile, angle_figure, curvature_figure, losses_figure,
                                profile_figure)

    groups: dict[str, list] = {}
    names = {s.source: s.label.split(",")[0] for s in out["summaries"]}
    for p in out["points"]:
        if p.kind == "spike":
            groups.setdefault(names.get(p.source, p.source), []).append(p)
    figs = {
        "wall_angles": angle_figure({k: [p.angle_deg for p in v] for k, v in groups.items()},
                                    "Angle between g and the top Hessian eigenvector at spikes "
                                    "of ‖g‖", SETTINGS.wall_aligned_deg),
        "wall_curvature": curvature_figure(
            {k: ([p.grad_norm for p in v], [p.curvature_along_g for p in v])
             for k, v in groups.items()}, "Curvature along g against ‖g‖ at spikes"),
        "wall_losses": losses_figure(
            {k: ([p.loss_unclipped for p in v], [p.loss_clipped for p in v])
             for k, v in groups.items()}, "Loss after the plain step against after the clipped "
                                          "step, at spikes"),
    }
    if out["profiles"]:
        figs["wall_profile"] = profile_figure([Profile(**p) for p in out["profiles"]],
                                              "The loss along the plain step at each task's "
                                              "largest spike")
    return figs


def write_outputs(out: dict, where: str, argv: Sequence[str] | None, say) -> list[str]:
    """table.md, table.csv, points.csv, record.json and the figures in ``where`` (a directory),
    or record.json alone where ``where`` ends in .json."""
    from .reproduce import _csv, write_files

    files = (("table.md", markdown(out)),
             ("table.csv", _csv(COLUMNS, [s.to_dict() for s in out["summaries"]])),
             ("points.csv", _csv(POINT_COLUMNS, [p.__dict__ for p in out["points"]])))
    return write_files(where, record(out, argv), files, lambda: figures(out), say)


def run(args, say: Callable[[str], None], argv: Sequence[str] | None) -> int:
    """``clipviz reproduce wall`` (called by :func:`clipviz.training.reproduce.run`)."""
    import sys

    if args.scale != "small":
        raise ValueError("reproduce wall has one scale, small (the paper measures nothing here to "
                         "match): use --seeds and --max-updates for more runs")
    for flag, value in (("--controls", args.controls), ("--lengths", args.lengths),
                        ("--protocol", args.protocol)):
        if value:
            raise ValueError(f"{flag} is not an option of reproduce wall")
    t = time.perf_counter()
    out = measure(args, say)
    lines = text(out) + [f"total time {time.perf_counter() - t:.0f} s"]
    sys.stdout.write("\n".join(lines) + "\n")
    if args.out:
        for p in write_outputs(out, args.out, argv, say):
            say(f"wrote {p}")
    return 0
