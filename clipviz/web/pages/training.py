"""Training page: run the paper's experiments in the background and watch them live.

Pick a protocol (the paper's section 4 settings, or clipviz's small scale that
shows the effect in seconds), a task (temporal order, polyphonic music, next
character), a data set, the model size, σ, the learning rate, the clipping rule
(Algorithm 1 is ``norm``) and threshold, the seeds and the budget.  "Run"
starts one background run per seed, "Run BPTT vs clipping" the paper's
comparison: the same runs with plain BPTT and with rescaling, same settings and
seeds (:mod:`clipviz.jobs`: local processes, or Celery workers when
``CLIPVIZ_REDIS_URL`` is set).  While they run: a progress bar with updates
done, rate and time left; Cancel stops them within a second; live curves of
the loss, ‖g‖ with the threshold and the clipped updates marked, ρ(W_rec) from
update 0 with the line 1/γ of section 2.1, and the validation metric.  The runs
table lists past and running runs from the run store; selecting several
overlays their curves.  The sweep form runs the Figure 7 grid (lengths × seeds
× BPTT / rescaling) and draws the success rate against the length, with the
95 % Wilson interval and the number of runs per point.

Callbacks are plain module-level functions, unit-testable without a browser.
Nothing is kept in the web process: every callback reads the run store.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from typing import Any

import dash
import dash_ag_grid as dag
from dash import Input, Output, State, dcc, html, no_update

from ... import clipping, config, datasets
from ...config import SETTINGS
from ...paper import THRESHOLDS_CHARACTERS
from ...training import PRESETS, TASKS, TrainConfig, initial_rho, options
from ...training.reproduce import METHODS, SCALES
from ...training.model import ACTIVATIONS
from ...training.tasks import MIN_TEMPORAL_LENGTH
from .. import access
from ..cache import memoized
from ...figures.training import (Curve, curves_figure, paper_comparison, progress_text,
                                 slice_figure, slice_numbers, success_rate_figure)
from ..components import (clientside, control, graph, link_bar, link_data, number_input, page_data,
                          register_link, url_notes)
from ..._validate import show
from ..params import Choice, Num, check_all, parse

log = logging.getLogger(__name__)

PATH = "/training"
P = "tr"

GENERATED = "generated"  # the data set choice of a task that generates its sequences
DATASETS = {task: tuple(options().get(f"dataset_{task}", ())) or (GENERATED,) for task in TASKS}
"""The data sets each task accepts (the engine's :func:`clipviz.training.options`)."""
ALL_DATASETS = tuple(dict.fromkeys(d for ds in DATASETS.values() for d in ds))
MAX_SEEDS = 10
MAX_POINTS = 4000  # curve points sent per run (telemetry is thinned beyond this)
MAX_OVERLAY = 8
MAX_TRACKED = SETTINGS.web_max_runs

PAIR = tuple(name for name, _ in METHODS)
"""The rules of the paper's comparison (plain BPTT, rescaling): the one-click pair."""

# ---------------------------------------------------------------------------
# protocols: what fills the form
# ---------------------------------------------------------------------------
PROTOCOLS = ("small", "paper")
PROTOCOL_LABELS = {"small": "small scale (clipviz)", "paper": "paper (section 4)"}
_REPRODUCED = {"temporal_order": "figure7", "music": "table1", "characters": "table2"}
"""The ``clipviz reproduce`` experiment of each task, whose scales the protocols take."""
_SECTION = {"temporal_order": "section 4.3, Figure 7", "music": "section 4.1, Table 1",
            "characters": "section 4.2, Table 2"}

SMALL_TEMPORAL_ORDER = dict(hidden=50, activation="tanh", lr=0.03, momentum=0.9, threshold=1.0,
                            batch_size=20, seq_len=20, max_updates=5000, eval_every=50)
"""The page's small scale for temporal order: a clipped run solves it, plain BPTT does not.

Measured with :func:`clipviz.training.train` (seeds 0-15, length 20, 3000 updates, ρ and the
validation every 100 updates): with lr 0.03, clipping solved 16 of 16 runs (median 200 updates)
and plain BPTT none (its ρ grew to 4-29, best validation accuracy 0.27-0.59).  With the
``reproduce figure7 --scale small`` lr of 0.1, clipping solved 7 of 13 (seed 0, the form's
first seed, not) and BPTT none; with lr 0.01 BPTT solved 4 of 6 as well.  Length 30: 14 of 14
against 0 of 14; length 50: neither (0 of 6 each; the paper: neither beyond 20).  Sigmoid units
(the paper's) solved nothing in this budget at lr 0.03 or 0.3, with or without clipping.  An
evaluation every 50 updates draws ρ crossing 1 in the short clipped run and stops it sooner.
"""


def protocol_config(protocol: str, task: str) -> dict[str, Any]:
    """The TrainConfig fields a protocol sets for ``task`` (data set aside).

    ``paper``: the paper's model and learning rule (:data:`clipviz.training.PRESETS`, section 4)
    with the run lengths of ``clipviz reproduce ... --scale paper``; plain SGD.  ``small``:
    ``clipviz reproduce ... --scale small`` for music and characters, and
    :data:`SMALL_TEMPORAL_ORDER` for temporal order.
    """
    if protocol not in PROTOCOLS or task not in TASKS:
        raise ValueError(f"unknown protocol {protocol!r} or task {task!r}")
    scale = SCALES[_REPRODUCED[task]][protocol]
    if task == "temporal_order" and protocol == "small":
        return dict(SMALL_TEMPORAL_ORDER)
    out = {**PRESETS[task], **scale["config"], "max_updates": scale["max_updates"],
           "eval_every": scale["eval_every"]}
    out.setdefault("momentum", 0.0)  # section 4: plain (mini-batch) gradient descent
    out.setdefault("seq_len", SETTINGS.train_seq_len)
    out.pop("dtype", None)  # not a control of the form
    return out


def present_datasets() -> dict[str, str | None]:
    """Each known data set the page offers: None when it is on this machine, else what to do
    (``clipviz data fetch NAME``); the runs read them as :func:`clipviz.datasets.resolve` does."""
    out: dict[str, str | None] = {}
    for name in ALL_DATASETS:
        if name == GENERATED:
            out[name] = None
            continue
        try:
            datasets.resolve(name, datasets.KNOWN[name].kind)
            out[name] = None
        except (ValueError, KeyError, OSError):
            out[name] = f"not downloaded: clipviz data fetch {name}"
    return out


def dataset_options(present: dict[str, str | None] | None = None) -> list[dict]:
    """The data set dropdown: absent data sets shown with the command that fetches them, disabled."""
    present = present_datasets() if present is None else present
    return [{"label": name if present.get(name) is None else f"{name} ({present[name]})",
             "value": name, "disabled": present.get(name) is not None} for name in ALL_DATASETS]


def protocol_dataset(protocol: str, task: str, present: dict[str, str | None] | None = None) -> str:
    """The data set a protocol starts ``task`` with: the first of its ``clipviz reproduce`` data sets
    that is on this machine, else the first of the task's; the generated one for temporal order."""
    if task == "temporal_order":
        return GENERATED
    present = present_datasets() if present is None else present
    wanted = [*SCALES[_REPRODUCED[task]][protocol].get("datasets", ()), *DATASETS[task]]
    wanted = [d for d in dict.fromkeys(wanted) if d in DATASETS[task]]
    return next((d for d in wanted if present.get(d) is None), wanted[0])


_FORM_KEYS = {"activation": "act", "batch_size": "batch", "max_updates": "updates"}


def protocol_values(protocol: str, task: str, present: dict[str, str | None] | None = None) -> dict:
    """The form values (control names) a protocol fills in for ``task``."""
    cfg = protocol_config(protocol, task)
    ds = protocol_dataset(protocol, task, present)
    if ds in THRESHOLDS_CHARACTERS and task == "characters":
        cfg["threshold"] = THRESHOLDS_CHARACTERS[ds]  # section 4.2: one threshold per data set
    keys = {p.name: p.key for p in clipping.params()}
    out = {"dataset": ds}
    for field, value in cfg.items():
        key = keys.get(field, _FORM_KEYS.get(field, field))
        if key in FILLED:
            out[key] = value
    return out


FILLED = ("dataset", "hidden", "act", "lr", "momentum", *(p.key for p in clipping.params()), "seq_len",
          "batch", "updates", "eval_every")
"""The form controls a protocol fills (the task, the rule and the seeds stay as they are)."""


def protocol_note(protocol: str, task: str) -> str:
    """One line naming what a protocol stands for, for ``task``."""
    c = protocol_config(protocol, task)
    model = (f"{c.get('hidden', SETTINGS.train_hidden)} {c.get('activation', SETTINGS.train_activation)} "
             f"units, lr {c['lr']:g}, " + (f"momentum {c['momentum']:g}" if c.get("momentum")
                                          else "plain SGD")
             + f", batch {c.get('batch_size', SETTINGS.train_batch)}, τ = {c['threshold']:g}, "
             f"at most {c['max_updates']:,} updates")
    if protocol == "paper":
        return (f"paper ({_SECTION[task]}): {model}. The paper's protocol: runs this long take "
                "hours here.")
    if task == "temporal_order":
        return (f"small scale (clipviz's own, for 2 cores): {model}. Tanh units and momentum, because "
                "the paper's sigmoid units learn nothing in a short run: with these settings the clipped "
                "run solves length 20 within a few hundred updates and plain BPTT does not.")
    return (f"small scale (clipviz reproduce {_REPRODUCED[task]} --scale small): the paper's model, {model}: "
            "a first look, not the paper's numbers.")


def rule_specs() -> tuple[Num, ...]:
    """One control per parameter of the registered clipping rules (:func:`clipviz.clipping.params`)."""
    return tuple(Num(p.key, p.label, p.form_lo, p.form_hi, p.default, help=p.help)
                 for p in clipping.params())


def run_specs() -> tuple:
    """The run form: the engine's choices and limits (:mod:`clipviz.training`, :mod:`clipviz.config`)
    and the clipping rules registered now; its values start at the small protocol of the default
    task (:func:`protocol_config`)."""
    d = protocol_config("small", SETTINGS.train_task)
    return (
        Choice("task", "Task", TASKS, SETTINGS.train_task,
               help="temporal order (Hochreiter & Schmidhuber 6a), polyphonic music, or next character; "
                    "the paper's settings for the task apply to what the form does not set"),
        Choice("dataset", "Data set", ALL_DATASETS, DATASETS[SETTINGS.train_task][0],
               help="temporal order generates its sequences; music / characters read a data set"),
        Num("hidden", "Hidden units", 1, SETTINGS.max_hidden, d["hidden"], integer=True,
            help="model size (the paper: 50 for temporal order)"),
        Choice("act", "σ", ACTIVATIONS, d["activation"], help="the recurrent non-linearity"),
        Num("lr", "Learning rate", 1e-6, 100, d["lr"], help="SGD step size"),
        Num("momentum", "Momentum", 0.0, 0.999, d["momentum"],
            help="classical momentum (0: plain SGD, as in the paper)"),
        Choice("clip", "Clipping rule", clipping.names(), SETTINGS.train_clip,
               help="; ".join(clipping.get(n).title for n in clipping.names())),
        *rule_specs(),
        Num("seq_len", "Length T", MIN_TEMPORAL_LENGTH, SETTINGS.max_seq_len, d["seq_len"],
            integer=True, help="temporal-order sequence length, or the BPTT window for music / characters"),
        Num("batch", "Batch", 1, SETTINGS.max_batch, d["batch_size"], integer=True,
            help="sequences per update"),
        Num("updates", "Budget (updates)", 1, SETTINGS.web_max_updates, d["max_updates"],
            integer=True, help="number of parameter updates per run"),
        Num("eval_every", "Evaluate every", 1, SETTINGS.web_max_updates, d["eval_every"],
            integer=True, help="ρ(W_rec) and the validation metric every this many updates"),
        Num("seed", "First seed", 0, 2**32 - 1 - MAX_SEEDS, SETTINGS.train_seed, integer=True,
            help="seed of the first run"),
        Num("seeds", "Seeds", 1, MAX_SEEDS, 1, integer=True, help="runs with seeds seed, seed+1, …"),
    )


PROTOCOL_SPEC = Choice("preset", "Protocol", PROTOCOLS, "small",
                       help="choosing a protocol, or a task, fills the form below with the "
                            "protocol's settings for that task")

SWEEP_SPECS = (
    Num("sw_seeds", "Seeds per cell", 1, 20, 3, integer=True, help="runs per (length, method)"),
    Num("sw_updates", "Budget per run", 1, SETTINGS.web_max_updates, 1000, integer=True, help="updates per run"),
)


def form_names() -> tuple[str, ...]:
    """The run form's controls in order (the State values :func:`submit` receives)."""
    return tuple(s.name for s in run_specs())


MAX_SWEEP_LENGTHS = 20  # lengths in one sweep (points of the Figure 7 curve)
MAX_SWEEP_LENGTH = 2000  # longest temporal-order sequence a sweep from the page may ask for


# ---------------------------------------------------------------------------
# helpers (no Dash)
# ---------------------------------------------------------------------------
def _jobs():
    from ...jobs import Jobs
    from ...runstore import shared_store

    return Jobs(shared_store())


def form_configs(raw: dict) -> tuple[list[dict], dict[str, str]]:
    """TrainConfig dicts (one per seed) from raw form values, or messages per bad control.

    The task's preset (:data:`clipviz.training.PRESETS`, what ``clipviz train --task`` applies)
    sets what the form does not; the chosen clipping rule takes its own parameters from the form,
    and the parameters of other rules are left unset.  A data set that is not on this machine is
    refused here, with the command that fetches it.
    """
    values, errors = check_all(run_specs(), raw)
    if not errors:
        ds = values["dataset"]
        if ds not in DATASETS[values["task"]]:
            errors["dataset"] = (f"Data set: {ds!r} does not fit the {values['task']} task; choose one of "
                                 f"{', '.join(DATASETS[values['task']])}")
        elif (absent := present_datasets().get(ds)) is not None:
            errors["dataset"] = (f"Data set: {ds!r} is not on this machine ({absent}): run "
                                 f"`clipviz data fetch {ds}` where the runs are trained, then reload "
                                 f"this page, or choose another data set")
    if errors:
        return [], errors
    own = {p.name for p in clipping.get(values["clip"]).params}
    fields = {"dataset": None if values["dataset"] == GENERATED else values["dataset"],
              "hidden": values["hidden"], "activation": values["act"], "lr": values["lr"],
              "momentum": values["momentum"], "clip": values["clip"],
              **{p.name: values[p.key] if p.name in own else None for p in clipping.params()},
              "seq_len": values["seq_len"], "batch_size": values["batch"],
              "max_updates": values["updates"], "eval_every": min(values["eval_every"], values["updates"])}
    try:
        base = TrainConfig.for_task(values["task"], **fields, seed=values["seed"]).to_dict()
    except ValueError as exc:  # the engine's own checks (e.g. the memory a run may use)
        return [], {"form": str(exc)}
    return [dict(base, seed=values["seed"] + i) for i in range(values["seeds"])], {}


def parse_lengths(text: Any) -> list[int]:
    """"10, 20, 50" -> [10, 20, 50] (ValueError saying what is allowed)."""
    allowed = (f"a comma-separated list of up to {MAX_SWEEP_LENGTHS} integers from "
               f"{MIN_TEMPORAL_LENGTH} to {MAX_SWEEP_LENGTH}")
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"Lengths: enter {allowed}")
    out = []
    for part in text.replace(";", ",").split(","):
        part = part.strip()
        if not part:
            continue
        try:
            v = float(part)
        except ValueError:
            raise ValueError(f"Lengths: {part!r} is not an integer; enter {allowed}") from None
        if not v.is_integer() or not MIN_TEMPORAL_LENGTH <= v <= MAX_SWEEP_LENGTH:
            raise ValueError(f"Lengths: {part!r} is out of range; enter {allowed}")
        out.append(int(v))
    if not out or len(out) > MAX_SWEEP_LENGTHS:
        raise ValueError(f"Lengths: enter {allowed}")
    return sorted(set(out))


def thin(m: dict, max_points: int = MAX_POINTS) -> dict:
    """At most about ``max_points`` rows per run, keeping every evaluation row and the last one."""
    n = len(m.get("update", []))
    if n <= max_points:
        return m
    k = math.ceil(n / max_points)
    keep = [i for i in range(n) if i % k == 0 or i == n - 1 or m["rho"][i] is not None
            or m["valid"][i] is not None]
    return {key: [col[i] for i in keep] for key, col in m.items()}


def run_label(r) -> str:
    c = r.config
    rule = clipping.lookup(c.get("clip"))
    params = "".join(f" {p.symbol}={c[p.name]:g}" for p in (rule.params if rule else ())
                     if isinstance(c.get(p.name), (int, float)))
    return r.label or (f"{c.get('task')} T={c.get('seq_len')} {c.get('activation')} {c.get('clip')}{params} "
                       f"seed={c.get('seed')}")


def table_rows(runs) -> list[dict]:
    rows = []
    for r in runs:
        c, res = r.config, r.result or {}
        metric = res.get("test_accuracy", res.get("test_nll", res.get("test_bpc")))
        rows.append({
            "id": r.id, "status": r.status, "task": c.get("task"), "T": c.get("seq_len"),
            "hidden": c.get("hidden"), "clip": c.get("clip"),
            "tau": clipping.line_value(c.get("clip"), c),
            "lr": c.get("lr"), "seed": c.get("seed"),
            "progress": f"{r.done}/{r.total or c.get('max_updates')}",
            "result": "" if not res else (
                ("solved" if res.get("solved") else "not solved") if c.get("task") == "temporal_order"
                else f"{metric:.4g}" if isinstance(metric, (int, float)) else ""),
            "reason": r.reason or "",
        })
    return rows


SLICE_KEYS = ("slice_run", "slice", "slice3d")
"""The slice's state in the page's link: the run, the kept update, the 3-D view (1 / 0)."""
_FLAGS = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False,
          "off": False, "": False}


def slice_state(raw: dict) -> tuple[str | None, int | None, bool, dict[str, str]]:
    """(run id, update, 3-D, messages per bad key) from the link's ``slice_run``, ``slice`` and
    ``slice3d`` (strings from the query string, or values from the page's controls).

    A run id is 1 to 64 letters and digits; an update a positive integer; 3-D 1 or 0.  Only the
    form is checked here: whether the run exists and kept that update is the store's answer
    (:func:`open_slice`).
    """
    errors: dict[str, str] = {}
    run = raw.get("slice_run")
    run = run.strip() if isinstance(run, str) else run
    if run in (None, ""):
        run = None
    elif not (isinstance(run, str) and 0 < len(run) <= 64 and run.isascii() and run.isalnum()):
        errors["slice_run"] = (f"slice_run: {show(run)} is not a run id (letters and digits, as in "
                               "the runs table); the slice is not shown")
        run = None
    upd = raw.get("slice")
    upd = upd.strip() if isinstance(upd, str) else upd
    if upd in (None, ""):
        upd = None
    else:
        try:
            f = float(upd)
            if isinstance(upd, bool) or not f.is_integer() or not 1 <= f <= SETTINGS.max_updates:
                raise ValueError
            upd = int(f)
        except (TypeError, ValueError):
            errors["slice"] = (f"slice: {show(upd)} is not an update number (a whole number from 1 "
                               f"to {SETTINGS.max_updates:,}); the slice is not shown")
            upd = None
    flag = raw.get("slice3d")
    if isinstance(flag, (list, tuple)):  # the page's checklist
        three_d = bool(flag)
    elif isinstance(flag, str) and flag.strip().lower() in _FLAGS:
        three_d = _FLAGS[flag.strip().lower()]
    elif flag is None:
        three_d = False
    else:
        errors["slice3d"] = f"slice3d: {show(flag)} is neither 1 nor 0; the heatmap is shown"
        three_d = False
    if (run is None) != (upd is None) and not errors:
        errors["slice"] = ("a slice needs both slice_run (the run) and slice (its kept update); "
                           "click a ring on the ‖g‖ curve to choose one")
    if "slice_run" in errors or "slice" in errors:
        run = upd = None
    return run, upd, three_d, errors


# ---------------------------------------------------------------------------
# callbacks (plain functions)
# ---------------------------------------------------------------------------
def submit(n_clicks, *values):
    """Run: one background run per seed.  Returns (active ids, message, the table's selection: cleared)."""
    if not n_clicks:
        return no_update, no_update, no_update
    cfgs, errors = form_configs(dict(zip(form_names(), values)))
    if errors:
        return no_update, " ".join(errors.values()), no_update
    try:
        jobs = _jobs()
        who, _ = access.session()
        ids = [jobs.submit(c, owner=who) for c in cfgs]
    except ValueError as exc:  # the engine's own validation (e.g. a missing data set)
        return no_update, str(exc), no_update
    except Exception as exc:  # noqa: BLE001 - e.g. Redis unreachable: a message, not a 500
        log.exception("submitting runs failed")
        return no_update, f"could not start the run: {type(exc).__name__}: {exc}", no_update
    return ids, f"started {len(ids)} run{'s' if len(ids) > 1 else ''} on the {jobs.backend} backend", []


def submit_pair(n_clicks, *values):
    """Run BPTT vs clipping: the form's runs twice, with plain BPTT and with rescaling
    (Algorithm 1; :data:`PAIR`), same settings and seeds, overlaid as they run.  Returns
    (active ids, message, the table's selection: cleared) like :func:`submit`."""
    if not n_clicks:
        return no_update, no_update, no_update
    raw = dict(zip(form_names(), values))
    per_rule = []
    for rule in PAIR:
        cfgs, errors = form_configs({**raw, "clip": rule})
        if errors:
            return no_update, " ".join(dict.fromkeys(errors.values())), no_update
        per_rule.append(cfgs)
    cfgs = [c for seed_pair in zip(*per_rule) for c in seed_pair]  # BPTT, clipping for each seed
    try:
        jobs = _jobs()
        who, _ = access.session()
        ids = [jobs.submit(c, owner=who) for c in cfgs]
    except ValueError as exc:
        return no_update, str(exc), no_update
    except Exception as exc:  # noqa: BLE001 - e.g. Redis unreachable: a message, not a 500
        log.exception("submitting runs failed")
        return no_update, f"could not start the runs: {type(exc).__name__}: {exc}", no_update
    names = " against ".join(clipping.get(r).method for r in PAIR)
    seeds = sorted({c["seed"] for c in cfgs})
    return ids, (f"started {names}, seed{'s' if len(seeds) > 1 else ''} "
                 f"{', '.join(map(str, seeds))}: {len(ids)} runs on the {jobs.backend} backend"), []


def message_class(result) -> Any:
    """The class of the message line after a callback: ``msg info`` when it did what was asked
    (``result``: what it started), ``msg`` (drawn as an error) when it refused (no_update)."""
    if result is no_update:
        return "msg"
    return "msg info"


def run_ids(value) -> list[str]:
    """The run ids in a store's or a table selection's value: the strings of a list, or the
    ``"id"`` of its row dicts (the runs table's ``selectedRows``), at most :data:`MAX_TRACKED` of
    them; anything else (only a hand-made request sends it) is no id."""
    if not isinstance(value, (list, tuple)):
        return []
    ids = (v.get("id") if isinstance(v, dict) else v for v in value)
    return [v for v in ids if isinstance(v, str) and 0 < len(v) <= 64][:MAX_TRACKED]


def cancel(n_clicks, active, selected):
    """Cancel the active runs (or the selected ones).  Returns a message."""
    if not n_clicks:
        return no_update
    ids = run_ids(selected) or run_ids(active)
    jobs = _jobs()
    who, admin = access.session()
    n = others = 0
    for rid in ids:
        try:
            if jobs.store.get(rid).active:
                jobs.cancel(rid, owner=who, admin=admin)
                n += 1
        except KeyError:
            continue
        except PermissionError:
            others += 1
    text = f"cancel requested for {n} run{'s' if n != 1 else ''}" if n else "no running run to cancel"
    if others:
        text += (f"; {others} run{'s were' if others != 1 else ' was'} started by another browser session "
                 "and only it may cancel them")
    return text


def starting_rho(cfg: dict) -> float | None:
    """rho(W_rec) before a running run's first update (its result has it only at the end), or None
    when the model is too large to compute it on each page (``SETTINGS.live_rho_max_hidden``) or
    it cannot be computed here."""
    if not isinstance(cfg, dict) or not isinstance(cfg.get("hidden"), int) \
            or cfg["hidden"] > SETTINGS.live_rho_max_hidden:
        return None
    rho = _starting_rho(json.dumps(cfg, sort_keys=True))
    return rho if math.isfinite(rho) else None


@memoized
def _starting_rho(cfg_json: str) -> float:
    """NaN (remembered like a value, so not retried on every tick) where it cannot be computed."""
    try:
        return float(initial_rho(TrainConfig.from_dict(json.loads(cfg_json))))
    except ValueError as exc:  # e.g. the run's data set is on a worker only: drawn at the end
        log.info("no initial rho for a running run: %s", exc)
    except Exception:  # noqa: BLE001 - a drawing aid: logged, never an error on the page
        log.exception("initial rho of a running run failed")
    return math.nan


def tick(_n, active, selected, slice_run=None):
    """Refresh: progress of the active runs, curves of the selected (or active) runs, the table;
    with none of them, the curve of the run whose slice is open (a link to a slice).  Each curve
    carries its run's kept updates, ringed on the ‖g‖ panel."""
    jobs = _jobs()
    jobs.supervise_quietly()  # queued runs are never stranded by dead runners
    store = jobs.store
    store.reap_due()  # dead workers' runs marked failed, at most once per heartbeat period
    active, selected = run_ids(active), run_ids(selected)
    runs = store.list(limit=MAX_TRACKED, reap=False)
    by_id = {r.id: r for r in runs}
    act = [by_id[i] for i in active if i in by_id]
    for i in active:
        if i not in by_id:
            try:
                act.append(store.get(i))
            except KeyError:
                pass
    done = sum(r.done for r in act)
    # a finished run (its budget, or solved early) needs no more updates: its part is full; a
    # cancelled or failed one stopped short of its budget, and says so
    total = sum(r.done if r.status == "finished" else (r.total or r.config.get("max_updates", 0))
                for r in act)
    started = min((r.started for r in act if r.started), default=None)
    now = time.time()
    if act:
        states = sorted({r.status for r in act})
        running = any(r.active for r in act)
        end = now if running else max((r.ended for r in act if r.ended), default=now)
        text = progress_text(done, total, started, end, running=running) + " · " + ", ".join(states)
        reasons = [r.reason for r in act if r.status == "failed" and r.reason]
        if reasons:
            text += " · " + reasons[0]
    else:
        text = "no run started from this page yet"
    show = list(selected or []) or [r.id for r in act]
    if not show and isinstance(slice_run, str) and slice_run:
        show = [slice_run]
    curves, shown = [], []
    for rid in show[:MAX_OVERLAY]:
        r = by_id.get(rid)
        if r is None and rid == slice_run:
            try:
                r = store.get(rid)
            except KeyError:
                r = None
        if r is None:
            continue
        rho0 = (r.result or {}).get("initial_rho")
        if not isinstance(rho0, (int, float)) and r.active:
            rho0 = starting_rho(r.config)
        curves.append(Curve(run_label(r), thin(store.metrics(rid)),
                            clipping.line_value(r.config.get("clip"), r.config),
                            r.config.get("clip", "none"),
                            initial_rho=rho0 if isinstance(rho0, (int, float)) else None,
                            activation=r.config.get("activation"), run_id=r.id,
                            kept=store.snapshot_index(r.id) if not r.active else ()))
        shown.append(rid)
    # a zoom is kept while the same runs refresh; other runs start from the whole of their curves
    fig = curves_figure(curves, uirevision="runs:" + ",".join(shown))
    return (done, max(total, 1), text, fig, table_rows(runs), paper_comparison(runs))


def tick_unchanged(_n, active, selected, slice_run=None, drawn=None):
    """:func:`tick`, with the curves figure sent only when it differs from the one drawn
    (``drawn``: its digest, the last output): a figure redrawn under the pointer every refresh
    drops the click on a ring that lands during the redraw, and finished runs do not change."""
    done, total, text, fig, rows, paper = tick(_n, active, selected, slice_run)
    key = hashlib.sha1(fig.to_json().encode()).hexdigest()
    return done, total, text, no_update if key == drawn else fig, rows, paper, key


def submit_sweep(n_clicks, lengths_text, seeds, updates, methods, *values):
    """Run the Figure 7 grid; (sweep id, message)."""
    if not n_clicks:
        return no_update, no_update
    try:
        lengths = parse_lengths(lengths_text)
    except ValueError as exc:
        return no_update, str(exc)
    sv, errors = check_all(SWEEP_SPECS, {"sw_seeds": seeds, "sw_updates": updates})
    cfgs, ferr = form_configs(dict(zip(form_names(), values)))
    errors.update(ferr)
    if not methods:
        errors["methods"] = "Methods: choose at least one"
    if errors:
        return no_update, " ".join(errors.values())
    base = {k: v for k, v in cfgs[0].items() if k not in ("seed", "seq_len", "clip")}
    base.update(task="temporal_order", dataset=None, max_updates=sv["sw_updates"],
                eval_every=min(base["eval_every"], sv["sw_updates"]))
    # every compared method takes its parameters from the form, whichever rule the form shows
    form_values = {s.name: s.default for s in run_specs()} | dict(zip(form_names(), values))
    for p, spec in zip(clipping.params(), rule_specs()):
        try:
            base[p.name] = spec.check(form_values.get(p.key))
        except ValueError:
            base[p.name] = p.default
    try:
        sid, ids = _jobs().submit_sweep(base, lengths, range(sv["sw_seeds"]), methods,
                                        owner=access.session()[0])
    except ValueError as exc:
        return no_update, str(exc)
    except Exception as exc:  # noqa: BLE001
        log.exception("submitting a sweep failed")
        return no_update, f"could not start the sweep: {type(exc).__name__}: {exc}"
    return sid, f"sweep {sid}: {len(ids)} runs queued"


def sweep_tick(_n, sweep_id):
    """The success-rate figure of the current sweep, and its status line."""
    from ...jobs import sweep_summary

    if not sweep_id or not isinstance(sweep_id, str):
        return no_update, "no sweep started from this page yet"
    try:
        s = sweep_summary(_jobs().store, sweep_id)
    except KeyError:
        return no_update, f"no sweep {sweep_id!r}"
    return (success_rate_figure(s),
            f"{s['finished']} finished, {s['active']} running or queued, {s['failed']} failed, "
            f"{s['cancelled']} cancelled of {s['total']}")


def fill_protocol(protocol, task):
    """Protocol or task changed: the form values of :data:`FILLED` for that protocol and task,
    then the line naming the protocol.  A value no control offers changes nothing."""
    if protocol not in PROTOCOLS or task not in TASKS:
        return (no_update,) * (len(FILLED) + 1)
    values = protocol_values(protocol, task)
    return (*(values.get(k, no_update) for k in FILLED), protocol_note(protocol, task))


def open_slice(run_id, update):
    """The slice's state changed (a ring clicked, or a link opened): find its slice job, or
    start one.  Returns (job id or None, message, message class)."""
    run, upd, _, errors = slice_state({"slice_run": run_id, "slice": update})
    if errors:
        return None, " ".join(errors.values()), "msg"
    if run is None:
        return None, "", "msg info"
    jobs = _jobs()
    try:
        r = jobs.store.get(run)
    except KeyError:
        return None, (f"no run {run!r} in the run store: choose a run in the table and click a "
                      "ring on its ‖g‖ curve"), "msg"
    kept = [k["update"] for k in jobs.store.snapshot_index(run)]
    if upd not in kept:
        where = (f"its kept updates are {', '.join(map(str, kept))}" if kept else
                 "it kept none" + (" yet (it is still running)" if r.active else ""))
        return None, (f"run {run} kept no snapshot at update {upd}: {where}; click a ring on "
                      "the ‖g‖ curve"), "msg"
    job = jobs.store.find_slice(run, upd)
    if job is not None:
        return job.id, f"the error surface at update {upd} of run {run}", "msg info"
    try:
        sid = jobs.submit_slice(run, upd, owner=access.session()[0])
    except (KeyError, ValueError) as exc:
        return None, f"could not start the slice: {exc}", "msg"
    except Exception as exc:  # noqa: BLE001 - e.g. Redis unreachable: a message, not a 500
        log.exception("starting a slice failed")
        return None, f"could not start the slice: {type(exc).__name__}: {exc}", "msg"
    return sid, (f"started the error surface at update {upd} of run {run} in the background "
                 "(progress below)"), "msg info"


def slice_tick(_n, job_id, three_d, shown):
    """The open slice: progress bar value, its line, the figure, the curvature numbers, whether
    Cancel is disabled, and what the figure shows now (a figure is sent only when that changes)."""
    want3d = bool(three_d)
    if not isinstance(job_id, str) or not job_id:
        key = "none"
        fig = no_update if shown == key else slice_figure(None)
        return 0, "", fig, [], True, key
    try:
        job = _jobs().store.get_slice(job_id)
    except KeyError:
        return 0, f"no slice {job_id!r}", no_update, [], True, shown
    if job.status == "finished" and job.result:
        key = f"{job.id}:{want3d}"
        fig = no_update if shown == key else slice_figure(job.result, want3d)
        numbers = [html.Li(line) for line in slice_numbers(job.result)]
        return 1, f"update {job.update} of run {job.run_id}: done", fig, numbers, True, key
    key = f"{job.id}:{job.status}"
    note = {"queued": "waiting for a worker …", "running": "computing …",
            "cancelled": "cancelled: nothing of the run was changed",
            "failed": f"failed: {job.error}"}.get(job.status, job.status)
    fig = no_update if shown == key else slice_figure(None, note=note)
    text = f"update {job.update} of run {job.run_id}: {job.status}"
    if job.active:
        text += f" · {100 * job.progress:.0f} %"
    elif job.error:
        text += f" · {job.error}"
    return job.progress, text, fig, [], not job.active, key


def cancel_slice(n_clicks, job_id):
    """Cancel the open slice (the run is never touched).  Returns (message, class)."""
    if not n_clicks or not isinstance(job_id, str) or not job_id:
        return no_update, no_update
    who, admin = access.session()
    try:
        status = _jobs().cancel_slice(job_id, owner=who, admin=admin)
    except KeyError:
        return f"no slice {job_id!r}", "msg"
    except PermissionError as exc:
        return str(exc), "msg"
    if status == "cancelled":
        return "slice cancelled; the run is as it was", "msg info"
    return f"the slice had already ended ({status})", "msg info"


# ---------------------------------------------------------------------------
# layout
# ---------------------------------------------------------------------------
COLUMNS = [{"headerName": n, "field": i, **extra} for n, i, extra in (
    ("status", "status", {}), ("task", "task", {"flex": 2, "minWidth": 110}), ("T", "T", {}),
    ("hidden", "hidden", {}), ("clip", "clip", {}), ("τ", "tau", {}), ("lr", "lr", {}), ("seed", "seed", {}),
    ("progress", "progress", {"minWidth": 90}), ("result", "result", {"minWidth": 90}),
    ("reason", "reason", {"flex": 3, "tooltipField": "reason"}))]
"""The runs table's columns (AG Grid column definitions); a long failure reason ends in an
ellipsis and shows whole on hover."""


PAPER_COLUMNS = [{"headerName": n, "field": i, **extra} for n, i, extra in (
    ("data set", "dataset", {}), ("metric (test, lower is better)", "metric", {"flex": 2, "minWidth": 190}),
    ("paper: BPTT", "paper_bptt", {}), ("paper: rescaling", "paper_rescaling", {}),
    ("yours: BPTT", "yours_bptt", {}), ("yours: rescaling", "yours_rescaling", {}))]


GRID_THEME = {"function": "themeQuartz.withParams({fontSize: 12, headerFontSize: 12, spacing: 4})"}
"""The tables' look (AG Grid's Theming API): the small type and tight cells of the page's other text."""


def layout(**kwargs) -> html.Div:
    """The page; every form control can be set from the URL's query parameters."""
    if config.read_only():
        return html.Div(className="page", children=[html.H2("Training"), html.P(
            "Training runs are switched off on this deployment (read-only); the figure pages work.")])
    specs = run_specs()
    values, errors = parse(specs + SWEEP_SPECS + (PROTOCOL_SPEC,), kwargs)
    sp = {s.name: s for s in specs + SWEEP_SPECS}
    unknown = sorted(k for k in kwargs if k not in sp and k not in ("lengths", PROTOCOL_SPEC.name)
                     and k not in SLICE_KEYS)
    s_run, s_upd, s_3d, s_errors = slice_state(kwargs)
    errors = {**errors, **s_errors}
    present = present_datasets()
    # the protocol fills what the link does not set
    filled = protocol_values(values["preset"], values["task"], present)
    v = {**values, **{k: x for k, x in filled.items() if k not in kwargs or k in errors}}

    def err(name):
        return errors.get(name)

    def dd(name, options):
        return dcc.Dropdown(id=f"{P}-{name}", options=list(options), value=v[name], clearable=False)

    def widget(spec):
        if spec.name == "dataset":
            return dcc.Dropdown(id=f"{P}-dataset", options=dataset_options(present), value=v["dataset"],
                                clearable=False)
        if spec.name == "act":
            return dcc.RadioItems(id=f"{P}-act", options=list(spec.options), value=v["act"], inline=True)
        if isinstance(spec, Choice):
            return dd(spec.name, spec.options)
        return number_input(P, spec, v[spec.name])

    form = [control(P, spec, widget(spec), err(spec.name)) for spec in specs]
    lengths = kwargs.get("lengths", "10, 20, 40")
    sweep_form = [
        html.Div(className="control", children=[
            html.Label("Lengths T", htmlFor=f"{P}-lengths"),
            dcc.Input(id=f"{P}-lengths", type="text", value=str(lengths), debounce=True),
            html.Div("comma-separated temporal-order lengths (x axis of Figure 7)", className="help")]),
        control(P, sp["sw_seeds"], number_input(P, sp["sw_seeds"], v["sw_seeds"]), err("sw_seeds")),
        control(P, sp["sw_updates"], number_input(P, sp["sw_updates"], v["sw_updates"]), err("sw_updates")),
        html.Div(className="control", children=[
            html.Label("Methods"),
            dcc.Checklist(id=f"{P}-methods", options=[
                {"label": " " + clipping.get(n).method, "value": n} for n in clipping.names()],
                value=list(PAIR)),
            html.Div("compared methods; hidden size, σ, lr, the rules' parameters and batch come from "
                     "the run form", className="help")]),
    ]
    return html.Div(className="page", children=[
        html.H2("Training: plain BPTT against gradient clipping"),
        html.P("Train the paper's recurrent networks in the background (section 4: temporal order, "
               "polyphonic music, next character) and watch the gradient norm spike past the threshold, "
               "ρ(W_rec) cross 1, and the clipped run (Algorithm 1) pull ahead. Runs persist in the run "
               "store: leave the page and come back, or select several runs in the table to overlay them.",
               className="lead"),
        url_notes(unknown, errors),
        link_bar(P),
        page_data(P, link=link_data(PATH, url_names())),
        dcc.Store(id=f"{P}-active", data=[]),
        dcc.Store(id=f"{P}-curves-drawn", data=None),
        dcc.Store(id=f"{P}-sweep", data=None),
        dcc.Interval(id=f"{P}-tick", interval=700),
        html.Div(className="layout", children=[
            html.Div(className="sidebar", children=[
                html.H3("Run"),
                html.Div(className="control", children=[
                    html.Label(PROTOCOL_SPEC.label, htmlFor=f"{P}-preset"),
                    dcc.RadioItems(id=f"{P}-preset", value=v["preset"], inline=True, options=[
                        {"label": PROTOCOL_LABELS[p], "value": p} for p in PROTOCOLS]),
                    html.Div(protocol_note(v["preset"], v["task"]), id=f"{P}-preset-note",
                             className="help protocol-note"),
                    html.Div(err("preset") or "", className="msg", role="alert")]),
                *form,
                html.Button("Run BPTT vs clipping", id=f"{P}-pair", className="primary",
                            title="the form's runs twice, with plain BPTT and with rescaling "
                                  "(Algorithm 1): same settings and seeds, overlaid"),
                html.Button("Run", id=f"{P}-run"),
                html.Button("Cancel", id=f"{P}-cancel"),
                html.Div(id=f"{P}-msg", className="msg", role="alert"),
            ]),
            html.Div(className="main", children=[
                html.Progress(id=f"{P}-progress", value=0, max=1, style={"width": "100%"}),
                html.Div(id=f"{P}-progress-text", className="help"),
                graph(f"{P}-curves", curves_figure([])),
                html.Div(id=f"{P}-slice-panel", className="slice-panel", children=[
                    html.H3("Error surface at a kept update (section 2.4)"),
                    html.P("The runs keep θ at updates where clipping fired, where ‖g‖ spiked and at "
                           "a few ordinary ones: the rings on the ‖g‖ curve. Click one: the loss "
                           "of that update's minibatch on the plane through plain BPTT's step "
                           "and the clipped step (Algorithm 1), computed in the background.",
                           className="help"),
                    dcc.Input(id=f"{P}-slice_run", type="text", value=s_run or "",
                              style={"display": "none"}),
                    dcc.Input(id=f"{P}-slice", type="text", value="" if s_upd is None else str(s_upd),
                              style={"display": "none"}),
                    dcc.Store(id=f"{P}-slice-job", data=None),
                    dcc.Store(id=f"{P}-slice-shown", data=None),
                    html.Div(id=f"{P}-slice-msg", className="msg", role="alert"),
                    html.Div(className="row", children=[
                        html.Progress(id=f"{P}-slice-progress", value=0, max=1,
                                      style={"width": "60%"}),
                        html.Button("Cancel slice", id=f"{P}-slice-cancel", disabled=True),
                        dcc.Checklist(id=f"{P}-slice3d", options=[{"label": " 3-D", "value": "3d"}],
                                      value=["3d"] if s_3d else [], inline=True),
                    ]),
                    html.Div(id=f"{P}-slice-text", className="help"),
                    graph(f"{P}-slice-fig", slice_figure(None)),
                    html.Ul(id=f"{P}-slice-numbers", className="slice-numbers"),
                ]),
                html.H3("Runs"),
                html.P("select rows to overlay their curves (e.g. BPTT against clipping)", className="help"),
                dag.AgGrid(id=f"{P}-table", columnDefs=COLUMNS, rowData=[], selectedRows=[],
                           getRowId="params.data.id",
                           defaultColDef={"sortable": True, "resizable": True, "flex": 1, "minWidth": 60},
                           dashGridOptions={"rowSelection": {"mode": "multiRow", "headerCheckbox": False,
                                                             "enableClickSelection": False},
                                            "pagination": True, "paginationPageSize": 15,
                                            "paginationPageSizeSelector": False,
                                            "domLayout": "autoHeight", "suppressColumnVirtualisation": True,
                                            "theme": GRID_THEME}),
                html.H3("Tables 1 and 2: test results beside the paper's"),
                html.P("means over your finished runs on the same data set (clip none = BPTT, norm = "
                       "rescaling); start them with the form above (task music or characters)",
                       className="help"),
                dag.AgGrid(id=f"{P}-paper", columnDefs=PAPER_COLUMNS, rowData=paper_comparison([]),
                           defaultColDef={"resizable": True, "flex": 1, "minWidth": 80},
                           dashGridOptions={"domLayout": "autoHeight", "suppressColumnVirtualisation": True,
                                            "theme": GRID_THEME}),
                html.H3("Sweep: success rate against length (Figure 7)"),
                html.Div(className="row", children=[
                    html.Div(className="col", children=[
                        *sweep_form,
                        html.Button("Run sweep", id=f"{P}-sweep-run"),
                        html.Div(id=f"{P}-sweep-msg", className="msg", role="alert")]),
                    html.Div(className="col-wide", children=[
                        graph(f"{P}-sweep-fig", success_rate_figure(
                            {"lengths": [], "methods": [], "rate": {}}, paper=True)),
                        html.Div(id=f"{P}-sweep-status", className="help")]),
                ]),
            ]),
        ]),
    ])


# ---------------------------------------------------------------------------
# registration
# ---------------------------------------------------------------------------
def url_names() -> tuple[str, ...]:
    """The controls whose values the page's link carries."""
    return (PROTOCOL_SPEC.name,) + form_names() + ("lengths", "sw_seeds", "sw_updates") + SLICE_KEYS


def register(app: dash.Dash) -> None:
    """Register the page and its callbacks on ``app`` (the run form as the clipping rules
    registered now make it)."""
    form, links = form_names(), url_names()
    dash.register_page(__name__, path=PATH, name="Training", order=5, layout=layout,
                       title="clipviz · training",
                       description="RNN training with and without gradient clipping, live")
    form_states = [State(f"{P}-{n}", "value") for n in form]
    msg = (Output(f"{P}-msg", "children", allow_duplicate=True),
           Output(f"{P}-msg", "className", allow_duplicate=True))

    def run_cb(n_clicks, *values):
        ids, text, sel = submit(n_clicks, *values)
        return ids, text, message_class(ids), sel

    def pair_cb(n_clicks, *values):
        ids, text, sel = submit_pair(n_clicks, *values)
        return ids, text, message_class(ids), sel

    def cancel_cb(n_clicks, active, selected):
        return cancel(n_clicks, active, selected), message_class([])

    def sweep_cb(n_clicks, *args):
        sid, text = submit_sweep(n_clicks, *args)
        return sid, text, message_class(sid)

    for button, fn in (("run", run_cb), ("pair", pair_cb)):
        app.callback(Output(f"{P}-active", "data", allow_duplicate=True), *msg,
                     Output(f"{P}-table", "selectedRows", allow_duplicate=True),
                     Input(f"{P}-{button}", "n_clicks"), *form_states, prevent_initial_call=True)(fn)
    app.callback(*msg, Input(f"{P}-cancel", "n_clicks"),
                 State(f"{P}-active", "data"), State(f"{P}-table", "selectedRows"),
                 prevent_initial_call=True)(cancel_cb)
    app.callback(*(Output(f"{P}-{k}", "value") for k in FILLED),
                 Output(f"{P}-preset-note", "children"),
                 Input(f"{P}-preset", "value"), Input(f"{P}-task", "value"),
                 prevent_initial_call=True)(fill_protocol)
    app.callback(Output(f"{P}-progress", "value"), Output(f"{P}-progress", "max"),
                 Output(f"{P}-progress-text", "children"), Output(f"{P}-curves", "figure"),
                 Output(f"{P}-table", "rowData"), Output(f"{P}-paper", "rowData"),
                 Output(f"{P}-curves-drawn", "data"),
                 Input(f"{P}-tick", "n_intervals"), Input(f"{P}-active", "data"),
                 Input(f"{P}-table", "selectedRows"), Input(f"{P}-slice_run", "value"),
                 State(f"{P}-curves-drawn", "data"))(tick_unchanged)
    # the slice of a kept update (issue 16): a ring clicked sets the run and the update
    clientside(app, "sliceClick", P, Output(f"{P}-slice_run", "value"), Output(f"{P}-slice", "value"),
               Input(f"{P}-curves", "clickData"), prevent_initial_call=True)
    app.callback(Output(f"{P}-slice-job", "data"), Output(f"{P}-slice-msg", "children"),
                 Output(f"{P}-slice-msg", "className"),
                 Input(f"{P}-slice_run", "value"), Input(f"{P}-slice", "value"))(open_slice)
    app.callback(Output(f"{P}-slice-progress", "value"), Output(f"{P}-slice-text", "children"),
                 Output(f"{P}-slice-fig", "figure"), Output(f"{P}-slice-numbers", "children"),
                 Output(f"{P}-slice-cancel", "disabled"), Output(f"{P}-slice-shown", "data"),
                 Input(f"{P}-tick", "n_intervals"), Input(f"{P}-slice-job", "data"),
                 Input(f"{P}-slice3d", "value"), State(f"{P}-slice-shown", "data"))(slice_tick)
    app.callback(Output(f"{P}-slice-msg", "children", allow_duplicate=True),
                 Output(f"{P}-slice-msg", "className", allow_duplicate=True),
                 Input(f"{P}-slice-cancel", "n_clicks"), State(f"{P}-slice-job", "data"),
                 prevent_initial_call=True)(cancel_slice)
    app.callback(Output(f"{P}-sweep", "data"), Output(f"{P}-sweep-msg", "children"),
                 Output(f"{P}-sweep-msg", "className"),
                 Input(f"{P}-sweep-run", "n_clicks"), State(f"{P}-lengths", "value"),
                 State(f"{P}-sw_seeds", "value"), State(f"{P}-sw_updates", "value"),
                 State(f"{P}-methods", "value"), *form_states, prevent_initial_call=True)(sweep_cb)
    app.callback(Output(f"{P}-sweep-fig", "figure"), Output(f"{P}-sweep-status", "children"),
                 Input(f"{P}-tick", "n_intervals"), Input(f"{P}-sweep", "data"))(sweep_tick)
    register_link(app, P, links)
