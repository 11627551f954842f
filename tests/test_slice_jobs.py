"""Slices of a training run as background jobs (issue 16 items 3-4): a run trained through the
job system keeps its snapshots in the store; a slice job around a kept update computes the
surface with both steps and the curvature, reports progress, can be cancelled, and a cancelled
or failed slice leaves the run (row, record, telemetry, snapshots) as it was."""

from __future__ import annotations

import logging
import time

import numpy as np
import pytest

from clipviz import landscape as L
from clipviz.jobs import Jobs, execute_slice
from clipviz.runstore import RunStore

# clipping fires at once (tau far below |g|): every kept snapshot of this run is a clipped update
CLIPPED = {"task": "temporal_order", "hidden": 8, "seq_len": 10, "batch_size": 10, "max_updates": 60,
           "eval_every": 30, "seed": 3, "clip": "norm", "threshold": 0.05, "lr": 0.05,
           "momentum": 0.0}


@pytest.fixture
def jobs(store_env):
    """The embedded job layer (conftest's store_env), no runner left training after the test."""
    j = Jobs(RunStore(heartbeat_timeout_s=30))
    yield j
    for r in j.store.list():
        if r.active:
            j.cancel(r.id)
    j.wait([r.id for r in j.store.list()], timeout=30)


@pytest.fixture
def trained(jobs):
    """A finished run that clipped, trained by a local runner; (run, its kept updates)."""
    rid = jobs.submit(CLIPPED)
    (run,) = jobs.wait([rid], timeout=120)
    assert run.status == "finished", run.reason
    index = jobs.store.snapshot_index(rid)
    return run, index


def _everything(store, run_id):
    """All a run has in the store (what a slice must never change)."""
    run = store.get(run_id)
    return (run, store.record(run_id), store.metrics(run_id), store.snapshot_index(run_id),
            [store.snapshot(run_id, s["update"]) for s in store.snapshot_index(run_id)])


def test_job_runs_keep_their_snapshots_in_the_store(trained, jobs):
    run, index = trained
    assert run.result["snapshots_kept"] == len(index) > 0
    assert "snapshots" not in run.result and "snapshots" not in jobs.store.record(run.id)["result"]
    assert all("clipped" in s["kinds"] for s in index if s["update"] % 100)
    clipped = jobs.store.metrics(run.id)
    fired = {u for u, c in zip(clipped["update"], clipped["clipped"]) if c}
    assert {s["update"] for s in index if "clipped" in s["kinds"]} <= fired
    # each stored snapshot rebuilds its update: |g| recomputed equals the one the run saw
    for s in index:
        p = L.at_snapshot(run.config, jobs.store.snapshot(run.id, s["update"]))
        assert np.linalg.norm(p.grad) == pytest.approx(s["grad_norm"], rel=1e-9)


def test_slice_job_end_to_end_on_a_local_runner(trained, jobs):
    run, index = trained
    update = max(index, key=lambda s: s["grad_norm"])["update"]
    before = _everything(jobs.store, run.id)
    sid = jobs.submit_slice(run.id, update, owner="me")
    job = jobs.wait_slice(sid, timeout=120)
    assert job.status == "finished", job.error
    assert job.progress == 1.0 and job.update == update and job.run_id == run.id
    r = job.result
    n = len(r["alphas"])
    assert len(r["betas"]) == n and len(r["losses"]) == n and all(len(row) == n for row in r["losses"])
    assert r["unclipped_at"] == [1.0, 0.0]
    # the clipped step is plain BPTT's scaled to tau (no momentum): on the same ray, tau / |g| long
    a, b = r["clipped_at"]
    assert a == pytest.approx(r["tau"] / r["grad_norm"], rel=1e-9) and abs(b) < 1e-9
    assert r["clipped_norm"] == pytest.approx(r["lr"] * r["tau"], rel=1e-9)
    c = r["curvature"]
    assert c["grad_norm"] == pytest.approx(r["grad_norm"]) and c["lambda_max_abs"] is not None
    assert 0 <= c["angle_deg"] <= 90 and c["curvature_along_g"] is not None
    # the same numbers as computing it here
    here = L.snapshot_slice(run.config, jobs.store.snapshot(run.id, update)).to_dict()
    np.testing.assert_allclose(np.asarray(r["losses"], float), np.asarray(here["losses"], float),
                               rtol=1e-10)
    assert r["curvature"]["lambda_max_abs"] == pytest.approx(here["curvature"]["lambda_max_abs"])
    # the centre row at alpha = 0 is the window's objective at theta
    j0 = r["alphas"].index(0.0)
    i0 = r["betas"].index(0.0)
    assert r["losses"][i0][j0] == pytest.approx(r["step_losses"]["at_theta"], rel=1e-9)
    assert _everything(jobs.store, run.id) == before
    assert jobs.store.find_slice(run.id, update).id == sid  # the page opens it again from the link


def test_unknown_updates_and_runs_are_refused(trained, jobs):
    run, index = trained
    kept = {s["update"] for s in index}
    missing = next(u for u in range(1, 1000) if u not in kept)
    with pytest.raises(KeyError):
        jobs.submit_slice(run.id, missing)
    with pytest.raises(KeyError):
        jobs.submit_slice("nosuchrun", index[0]["update"])


def _inline_slice(store, run_id, update):
    sid = store.create_slice(run_id, update, "inline")
    assert store.claim_slice(sid, "test")
    return sid


class _Recording:
    """The store, with every progress report recorded and an optional hook run on it."""

    def __init__(self, store, hook=None):
        self.store, self.hook, self.seen = store, hook, []

    def __getattr__(self, name):
        return getattr(self.store, name)

    def slice_progress(self, slice_id, fraction=None):
        if fraction is not None:
            self.seen.append(fraction)
            if self.hook is not None:
                self.hook(slice_id, fraction)
        return self.store.slice_progress(slice_id, fraction)


def test_progress_advances_to_the_end(trained, jobs):
    run, index = trained
    rec = _Recording(jobs.store)
    sid = _inline_slice(jobs.store, run.id, index[0]["update"])
    assert execute_slice(rec, sid) == "finished"
    assert len(rec.seen) >= 5 and rec.seen == sorted(rec.seen) and rec.seen[-1] == 1.0
    assert 0 < rec.seen[0] < 1


def test_a_cancelled_slice_stops_and_leaves_the_run_untouched(trained, jobs):
    run, index = trained
    before = _everything(jobs.store, run.id)
    rec = _Recording(jobs.store, hook=lambda sid, f: f > 0.4 and jobs.cancel_slice(sid))
    sid = _inline_slice(jobs.store, run.id, index[0]["update"])
    assert execute_slice(rec, sid) == "cancelled"
    job = jobs.store.get_slice(sid)
    assert job.status == "cancelled" and job.result is None and job.progress < 1.0
    assert max(rec.seen) < 0.6  # it stopped at the next group of rows, not at the end
    assert _everything(jobs.store, run.id) == before
    # cancelled from the page before a runner took it: never computed
    sid = jobs.submit_slice(run.id, index[0]["update"])
    jobs.cancel_slice(sid, owner=None, admin=True)
    job = jobs.wait_slice(sid, timeout=30)
    assert job.status == "cancelled" and job.result is None
    assert _everything(jobs.store, run.id) == before


def test_only_its_session_may_cancel_a_slice(trained, jobs):
    run, index = trained
    sid = jobs.store.create_slice(run.id, index[0]["update"], "inline", owner="alice")
    with pytest.raises(PermissionError):
        jobs.cancel_slice(sid, owner="bob", admin=False)
    assert jobs.cancel_slice(sid, owner="alice", admin=False) == "cancelled"


def test_a_failed_slice_says_why_and_leaves_the_run_untouched(trained, jobs, monkeypatch, caplog):
    run, index = trained
    before = _everything(jobs.store, run.id)

    def boom(*a, **k):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(L, "snapshot_slice", boom)
    sid = _inline_slice(jobs.store, run.id, index[0]["update"])
    with caplog.at_level(logging.ERROR, logger="clipviz.jobs"):
        assert execute_slice(jobs.store, sid) == "failed"
    job = jobs.store.get_slice(sid)
    assert job.status == "failed" and job.error == "RuntimeError: disk on fire" and job.result is None
    assert "Traceback" in caplog.text  # an unexpected failure is logged with its traceback
    assert _everything(jobs.store, run.id) == before
    monkeypatch.undo()
    # a snapshot that does not fit the run's model: a clear reason, the run untouched
    bad = dict(jobs.store.snapshot(run.id, index[0]["update"]))
    bad["theta"] = dict(bad["theta"], shape=[2], b64="AAAAAAAAAAAAAAAAAAAAAA==")
    other = jobs.store.create_run(run.config, "inline")
    jobs.store.put_snapshots(other, [bad])
    sid = _inline_slice(jobs.store, other, bad["update"])
    assert execute_slice(jobs.store, sid) == "failed"
    assert "theta must have the model's" in jobs.store.get_slice(sid).error
    assert _everything(jobs.store, run.id) == before


def test_a_slice_cancelled_while_a_runner_computes_it(trained, jobs, monkeypatch):
    """Through a real runner process: cancel while it runs; the runner stops it and moves on."""
    run, index = trained
    before = _everything(jobs.store, run.id)
    sid = jobs.submit_slice(run.id, index[-1]["update"])
    deadline = time.monotonic() + 60
    while jobs.store.get_slice(sid).status == "queued":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    jobs.cancel_slice(sid)
    job = jobs.wait_slice(sid, timeout=30)
    assert job.status in ("cancelled", "finished")  # a fast machine may finish first
    if job.status == "cancelled":
        assert job.result is None
    # the runner is free again: a new slice finishes
    sid2 = jobs.submit_slice(run.id, index[-1]["update"])
    assert jobs.wait_slice(sid2, timeout=120).status == "finished"
    assert _everything(jobs.store, run.id) == before



# ---------------------------------------------------------------------------
# the training page: the slice's state in the URL, and its callbacks as plain functions
# ---------------------------------------------------------------------------
def test_slice_state_from_the_link():
    from clipviz.web.pages import training as tp

    assert tp.slice_state({}) == (None, None, False, {})
    assert tp.slice_state({"slice_run": "ab12", "slice": "40", "slice3d": "1"}) == ("ab12", 40, True, {})
    assert tp.slice_state({"slice_run": "ab12", "slice": "40.0", "slice3d": "0"})[:3] == ("ab12", 40, False)
    assert tp.slice_state({"slice_run": "ab12", "slice": 7, "slice3d": ["3d"]})[:3] == ("ab12", 7, True)
    for raw, key in (({"slice_run": "../etc", "slice": "3"}, "slice_run"),
                     ({"slice_run": "ab12", "slice": "x"}, "slice"),
                     ({"slice_run": "ab12", "slice": "-3"}, "slice"),
                     ({"slice_run": "ab12", "slice": "2.5"}, "slice"),
                     ({"slice_run": "ab12", "slice": "1e12"}, "slice"),
                     ({"slice_run": "ab12"}, "slice"), ({"slice": "3"}, "slice"),
                     ({"slice_run": "x" * 65, "slice": "3"}, "slice_run")):
        run, upd, three_d, errors = tp.slice_state(raw)
        assert (run, upd) == (None, None) and key in errors, raw
        assert key in errors[key] and ("not" in errors[key] or "needs" in errors[key])
    # a bad 3-D flag: said so, and the slice shown as a heatmap
    assert tp.slice_state({"slice_run": "ab12", "slice": "3", "slice3d": "maybe"}) == (
        "ab12", 3, False, {"slice3d": "slice3d: 'maybe' is neither 1 nor 0; the heatmap is shown"})


def _texts(component):
    """Every string in a Dash component tree."""
    out = []

    def walk(c):
        if isinstance(c, str):
            out.append(c)
        elif isinstance(c, (list, tuple)):
            for x in c:
                walk(x)
        elif c is not None and hasattr(c, "children"):
            walk(c.children)
    walk(component)
    return " ".join(out)


def test_bad_slice_values_in_the_link_are_explained_not_a_500(store_env):
    from clipviz.web.pages import training as tp

    page = tp.layout(slice_run="<script>", slice="abc", slice3d="2")
    text = _texts(page)
    assert "slice_run: '<script>' is not a run id" in text
    assert "unknown parameter" not in text  # the slice's keys are the page's own
    page = tp.layout(slice="12")
    assert "a slice needs both slice_run" in _texts(page)
    # the callback on an unknown run or update says what to do
    job, msg, cls = tp.open_slice("abc123", "5")
    assert job is None and cls == "msg" and "no run 'abc123' in the run store" in msg
    job, msg, cls = tp.open_slice("abc123", "five")
    assert job is None and cls == "msg" and "not an update number" in msg
    assert tp.open_slice("", "") == (None, "", "msg info")
    assert tp.slice_tick(1, "nosuchslice", [], None)[1] == "no slice 'nosuchslice'"


def test_open_slice_starts_once_then_reopens_and_cancel(trained, jobs):
    from clipviz.web.pages import training as tp

    run, index = trained
    kept = [s["update"] for s in index]
    missing = next(u for u in range(1, 1000) if u not in kept)
    job, msg, cls = tp.open_slice(run.id, str(missing))
    assert job is None and cls == "msg" and f"kept no snapshot at update {missing}" in msg
    assert str(kept[0]) in msg
    job, msg, cls = tp.open_slice(run.id, str(kept[0]))
    assert job and cls == "msg info" and "started the error surface" in msg
    done = jobs.wait_slice(job, timeout=120)
    assert done.status == "finished"
    again, msg, _ = tp.open_slice(run.id, str(kept[0]))  # a link opens the stored slice
    assert again == job and "started" not in msg
    value, text, fig, numbers, disabled, shown = tp.slice_tick(1, job, [], None)
    assert value == 1 and disabled and "done" in text
    names = [t.name for t in fig.data]
    assert names[0] == "log10 loss" and "plain BPTT step" in names
    assert any(n.startswith("clipped step (τ = 0.05)") for n in names)
    lines = " ".join(li.children for li in numbers)
    assert "gᵀHg/‖g‖²" in lines and "top Hessian eigenvalue" in lines and "angle" in lines
    assert tp.slice_tick(2, job, [], shown)[2] is tp.no_update  # the same figure is not resent
    fig3 = tp.slice_tick(3, job, ["3d"], shown)[2]
    assert fig3.data[0].type == "surface"
    assert tp.cancel_slice(1, job) == ("the slice had already ended (finished)", "msg info")
    # the curves carry the run's kept updates as rings with their run id and update
    out = tp.tick(1, [], [], run.id)
    (rings,) = [t for t in out[3].data if t.name.endswith("kept updates (click one for its error surface)")]
    assert [list(c) for c in rings.customdata] == [[run.id, u] for u in kept]


def test_the_page_cancels_a_slice_and_says_the_run_is_untouched(trained, jobs):
    from clipviz.web.pages import training as tp

    run, index = trained
    before = _everything(jobs.store, run.id)
    sid = jobs.store.create_slice(run.id, index[0]["update"], "inline")  # no worker takes it
    value, text, _, _, disabled, shown = tp.slice_tick(1, sid, [], None)
    assert value == 0 and "queued" in text and disabled is False  # Cancel offered
    assert tp.cancel_slice(1, sid) == ("slice cancelled; the run is as it was", "msg info")
    value, text, fig, numbers, disabled, shown = tp.slice_tick(2, sid, [], shown)
    assert "cancelled" in text and disabled is True and numbers == []
    assert "nothing of the run was changed" in fig.layout.annotations[0].text
    assert tp.cancel_slice(None, sid) == (tp.no_update, tp.no_update)  # no click, nothing done
    assert _everything(jobs.store, run.id) == before


def test_the_curves_are_sent_again_only_when_they_change(trained, jobs):
    """A finished run's figure is drawn once: a redraw every refresh would drop a click on a ring
    that lands during it."""
    from clipviz.web.pages import training as tp

    run, _ = trained
    first = tp.tick_unchanged(1, [run.id], [], "", None)
    assert first[3] is not tp.no_update and len(first) == 7
    again = tp.tick_unchanged(2, [run.id], [], "", first[6])
    assert again[3] is tp.no_update and again[6] == first[6] and again[4] == first[4]
    other = tp.tick_unchanged(3, [], [], "", first[6])  # nothing to show: another figure
    assert other[3] is not tp.no_update and other[6] != first[6]
