"""JSON endpoints of the training jobs (used by scripts, tests and other front ends).

``POST /api/runs``               body: a TrainConfig dict (+ optional "label") -> 201 {"id", "status"}
``GET  /api/runs``               ?sweep=ID&status=S -> {"runs": [...]}
``GET  /api/runs/<id>``          ?since=N -> {"run": {...}, "metrics": {update > N}}
``POST /api/runs/<id>/cancel``   -> {"id", "status"}
``POST /api/sweeps``             body: {"base", "lengths", "seeds", "methods"} -> 201 {"id", "runs"}
``GET  /api/sweeps/<id>``        -> the success-rate summary (clipviz.jobs.sweep_summary)

A run's ``dataset`` is a known name or a file in the data sets folder ($CLIPVIZ_DATA): the API
reads no other file (:func:`clipviz.datasets.confine`).

Bad input answers 400 with {"error": message}; unknown ids 404.  Non-finite
numbers are sent as null (JSON has no NaN).
"""

from __future__ import annotations

import math
from typing import Any

from flask import Flask, jsonify, request

from .. import config
from .._validate import integer
from ..config import SETTINGS
from ..datasets import confine
from . import access


def _clean(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def _jobs():
    from ..jobs import Jobs
    from ..runstore import shared_store

    return Jobs(shared_store())


def _confined(cfg: dict) -> dict:
    """``cfg`` as the web accepts it: its dataset confined to the data sets folder
    (:func:`clipviz.datasets.confine`), its budget at most ``SETTINGS.web_max_updates``."""
    if "dataset" in cfg:
        cfg = dict(cfg, dataset=confine(cfg["dataset"], config.download_dir()))
    if "max_updates" in cfg:
        integer("max_updates", cfg["max_updates"], 1, SETTINGS.web_max_updates)
    return cfg


def json_depth(obj: Any, limit: int) -> int:
    """How deep ``obj`` nests lists and dicts, counted up to ``limit + 1`` (no recursion)."""
    depth, stack = 0, [(obj, 1)]
    while stack:
        o, d = stack.pop()
        if isinstance(o, (list, dict)):
            depth = max(depth, d)
            if depth > limit:
                return depth
            stack.extend((v, d + 1) for v in (o.values() if isinstance(o, dict) else o))
    return depth


def guard_json_bodies(server: Flask) -> None:
    """Parse every JSON request body once, before any view, and answer one that nests deeper
    than ``SETTINGS.json_max_depth`` with a 400 (the parser's RecursionError was a 500).  Flask
    caches the parsed body, so Dash's dispatch and the views do not parse it again."""
    limit = SETTINGS.json_max_depth
    msg = f"the request body nests JSON more than {limit} levels deep; at most {limit} are accepted"

    @server.before_request
    def _check_json_depth():
        if not request.is_json:
            return None
        try:
            data = request.get_json(silent=True)
        except RecursionError:
            return jsonify(error=msg), 400
        if data is not None and json_depth(data, limit) > limit:
            return jsonify(error=msg), 400
        return None


def register_api(server: Flask) -> None:
    """Add the /api/... routes to the Flask server of the Dash app."""
    server.config["MAX_CONTENT_LENGTH"] = SETTINGS.max_request_bytes
    guard_json_bodies(server)

    from ..jobs import CapacityError

    def err(msg: str, code: int = 400):
        return jsonify(error=msg), code

    @server.errorhandler(413)
    def too_large(_exc):
        return err(f"the request body is larger than {SETTINGS.max_request_bytes} bytes, the most "
                   "accepted", 413)

    def body() -> dict:
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            raise ValueError("the request body must be a JSON object")
        return data

    @server.post("/api/runs")
    def api_submit():
        try:
            cfg = body()
            label = cfg.pop("label", None)  # checked by Jobs (a string, at most max_label_chars)
            rid = _jobs().submit(_confined(cfg), label=label, owner=access.owner())
        except CapacityError as exc:
            return err(str(exc), 429)
        except ValueError as exc:
            return err(str(exc))
        return jsonify(id=rid, status="queued"), 201

    @server.get("/api/runs")
    def api_list():
        jobs = _jobs()
        jobs.supervise_quietly()
        status = request.args.get("status")
        if status is not None and status not in ("queued", "running", "finished", "cancelled", "failed"):
            return err("status must be one of queued, running, finished, cancelled, failed")
        runs = jobs.store.list(sweep_id=request.args.get("sweep"), status=status)
        return jsonify(runs=_clean([r.to_dict() for r in runs]))

    @server.get("/api/runs/<run_id>")
    def api_run(run_id: str):
        try:
            since = integer("since", request.args.get("since", "-1"), -1, SETTINGS.max_updates)
        except ValueError:
            return err(f"since must be an integer update number from -1 to {SETTINGS.max_updates}")
        jobs = _jobs()
        jobs.supervise_quietly()
        try:
            run = jobs.store.get(run_id)
        except KeyError:
            return err(f"no run {run_id!r}", 404)
        return jsonify(run=_clean(run.to_dict()), metrics=_clean(jobs.store.metrics(run_id, since)))

    @server.post("/api/runs/<run_id>/cancel")
    def api_cancel(run_id: str):
        try:
            status = _jobs().cancel(run_id, owner=access.owner(), admin=access.is_admin())
        except KeyError:
            return err(f"no run {run_id!r}", 404)
        except PermissionError as exc:
            return err(str(exc), 403)
        return jsonify(id=run_id, status=status)

    @server.post("/api/sweeps")
    def api_sweep():
        try:
            d = body()
            for key in ("base", "lengths", "seeds"):
                if key not in d:
                    raise ValueError(f"a sweep needs {key!r}")
            if not isinstance(d["base"], dict):
                raise ValueError("base must be a TrainConfig dict")
            for key in ("lengths", "seeds", "methods"):
                if key in d and not (isinstance(d[key], list) and all(
                        isinstance(v, (int, str)) and not isinstance(v, bool) for v in d[key])):
                    raise ValueError(f"{key} must be a list")
            sid, ids = _jobs().submit_sweep(_confined(d["base"]), d["lengths"], d["seeds"],
                                            d.get("methods", ["none", "norm"]), owner=access.owner())
        except CapacityError as exc:
            return err(str(exc), 429)
        except ValueError as exc:
            return err(str(exc))
        return jsonify(id=sid, runs=ids), 201

    @server.get("/api/sweeps/<sweep_id>")
    def api_sweep_summary(sweep_id: str):
        from ..jobs import sweep_summary

        try:
            return jsonify(_clean(sweep_summary(_jobs().store, sweep_id)))
        except KeyError:
            return err(f"no sweep {sweep_id!r}", 404)
