"""The training page: callbacks as plain functions (embedded backend) and in headless Chromium."""

from __future__ import annotations

import time

import pytest

from clipviz.config import SETTINGS
from clipviz.web.pages import training as tp

FORM = dict(task="temporal_order", dataset="generated", hidden=8, act="sigmoid", lr=0.1, momentum=0.9,
            clip="norm", tau=1.0, p=10.0, seq_len=10, batch=10, updates=150, eval_every=50, seed=0,
            seeds=2)


def _values(**kw):
    d = dict(FORM, **kw)
    return [d[n] for n in tp.form_names()]


def test_form_validation():
    cfgs, errors = tp.form_configs(dict(zip(tp.form_names(), _values())))
    assert errors == {} and [c["seed"] for c in cfgs] == [0, 1]
    assert cfgs[0]["threshold"] == 1.0 and cfgs[0]["dataset"] is None
    _, errors = tp.form_configs(dict(zip(tp.form_names(), _values(hidden=-1, lr="abc"))))
    # the engine's own limit (issue 12: the form is built from the engine's limits)
    assert set(errors) == {"hidden", "lr"} and f"between 1 and {SETTINGS.max_hidden}" in errors["hidden"]
    _, errors = tp.form_configs(dict(zip(tp.form_names(), _values(dataset="jsb"))))
    assert "does not fit" in errors["dataset"]
    cfgs, _ = tp.form_configs(dict(zip(tp.form_names(), _values(clip="none"))))
    assert cfgs[0]["threshold"] is None
    assert tp.parse_lengths("20, 10,10 ;40") == [10, 20, 40]
    for bad in ("", "5", "10, x", "1e9", None):
        with pytest.raises(ValueError, match="Lengths"):
            tp.parse_lengths(bad)


def test_thin_keeps_evaluations_and_the_end():
    n = 10_000
    m = {"update": list(range(1, n + 1)), "loss": [1.0] * n,
         "rho": [0.5 if i % 777 == 0 else None for i in range(n)], "valid": [None] * n}
    t = tp.thin(m, 1000)
    assert len(t["update"]) < 1100 and t["update"][-1] == n
    assert sum(v is not None for v in t["rho"]) == sum(v is not None for v in m["rho"])


def test_run_ids_from_the_store_and_from_the_grid_selection():
    """The active store holds ids; the runs grid's ``selectedRows`` holds row dicts keyed by "id"."""
    assert tp.run_ids(["a1", "b2"]) == ["a1", "b2"]
    assert tp.run_ids([{"id": "a1", "status": "finished"}, {"id": "b2"}]) == ["a1", "b2"]
    assert tp.run_ids([{"id": 3}, {"status": "x"}, "", "x" * 65, None, ["a1"], "c3"]) == ["c3"]
    assert tp.run_ids(None) == [] and tp.run_ids({"id": "a1"}) == [] and tp.run_ids("a1") == []
    assert len(tp.run_ids([{"id": f"r{i}"} for i in range(tp.MAX_TRACKED + 5)])) == tp.MAX_TRACKED


def test_callbacks_run_cancel_and_show(store_env):
    ids, msg, sel = tp.submit(1, *_values())
    assert len(ids) == 2 and "started 2 runs on the local backend" in msg and sel == []
    deadline = time.monotonic() + 120
    while True:
        done, total, text, fig, rows, paper = tp.tick(1, ids, [])
        if "finished" in text and "running" not in text and "queued" not in text:
            break
        assert time.monotonic() < deadline, text
        time.sleep(0.1)
    store = tp._jobs().store
    assert done == total == sum(store.get(i).result["updates"] for i in ids)
    assert f"{done} / {done} updates" in text
    assert all(store.get(i).done == 150 or store.get(i).result["solved"] for i in ids)
    assert len(rows) == 2 and {r["status"] for r in rows} == {"finished"}
    assert [p["dataset"] for p in paper] == ["piano", "nottingham", "musedata", "text8", "ptb"]
    names = {tr.name for tr in fig.data}
    assert any("seed=0" in n for n in names) and any("seed=1" in n for n in names)
    assert any("threshold" in (tr.name or "") for tr in fig.data)  # τ drawn on the ‖g‖ panel
    # selecting one run shows only its curves
    _, _, _, fig1, _, _ = tp.tick(2, ids, [ids[1]])
    assert {tr.legendgroup for tr in fig1.data if tr.legendgroup} == {tp.run_label(
        tp._jobs().store.get(ids[1]))}
    # bad form -> message, nothing queued
    out = tp.submit(1, *_values(seq_len=3))
    assert out[0] is tp.no_update and "Length T" in out[1]
    # a long run, cancelled
    (rid,), _, _ = tp.submit(1, *_values(updates=200_000, eval_every=1000, seeds=1))
    while tp._jobs().store.get(rid).done < 10:
        time.sleep(0.05)
    assert tp.cancel(1, [rid], []) == "cancel requested for 1 run"
    deadline = time.monotonic() + 2
    while tp._jobs().store.get(rid).active:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert tp._jobs().store.get(rid).status == "cancelled"
    assert tp.cancel(1, [rid], []) == "no running run to cancel"


def test_sweep_callbacks(store_env):
    sid, msg = tp.submit_sweep(1, "8, 12", 2, 60, ["none", "norm"], *_values())
    assert "8 runs queued" in msg
    deadline = time.monotonic() + 180
    while True:
        fig, status = tp.sweep_tick(1, sid)
        if status.startswith("8 finished"):
            break
        assert time.monotonic() < deadline, status
        time.sleep(0.2)
    assert [list(tr.x) for tr in fig.data] == [[8, 12], [8, 12]]
    assert all(y is None or 0 <= y <= 100 for tr in fig.data for y in tr.y)
    assert tp.submit_sweep(1, "x", 2, 60, ["none"], *_values())[1].startswith("Lengths")
    assert "Methods" in tp.submit_sweep(1, "10", 2, 60, [], *_values())[1]


def run_from_page(dash_duo, app, query, started_msg, finish_timeout):
    """Open the training page with ``query``, press Run, and wait until the run is finished."""
    dash_duo.start_server(app)
    dash_duo.wait_for_page(url=dash_duo.server_url + "/training" + query)
    dash_duo.wait_for_element("#tr-run", timeout=15)
    dash_duo.find_element("#tr-run").click()
    dash_duo.wait_for_contains_text("#tr-msg", started_msg, timeout=15)
    dash_duo.wait_for_contains_text("#tr-progress-text", "· finished", timeout=finish_timeout)
    dash_duo.wait_for_contains_text("#tr-table", "finished", timeout=10)


def wait_for_every_update_on_the_loss_curve(dash_duo, n_updates, timeout=5.0):
    """The live loss curve ends up with one point per update of the run."""
    deadline = time.monotonic() + timeout
    while dash_duo.driver.execute_script(
            "const gd = document.querySelector('#tr-curves .js-plotly-plot');"
            "return gd._fullData[0].x.length;") != n_updates:
        assert time.monotonic() < deadline, "the loss curve does not show every update"
        time.sleep(0.1)


@pytest.mark.browser
def test_training_page_in_the_browser(dash_duo, make_app, store_env):
    run_from_page(dash_duo, make_app(), "?hidden=8&seq_len=20&batch=10&updates=400&eval_every=100&seeds=1",
                  "started 1 run", finish_timeout=60)
    (run,) = tp._jobs().store.list()
    assert f"{run.done} / {run.done} updates" in dash_duo.find_element("#tr-progress-text").text
    n = dash_duo.driver.execute_script(
        "const gd = document.querySelector('#tr-curves .js-plotly-plot'); return gd.data.length;")
    assert n >= 4
    wait_for_every_update_on_the_loss_curve(dash_duo, run.done)
    # a long run is cancelled from the page
    dash_duo.find_element("#tr-updates").clear()
    dash_duo.find_element("#tr-updates").send_keys("200000\t")
    time.sleep(0.3)
    dash_duo.find_element("#tr-run").click()
    dash_duo.wait_for_contains_text("#tr-progress-text", "running", timeout=30)
    dash_duo.find_element("#tr-cancel").click()
    dash_duo.wait_for_contains_text("#tr-msg", "cancel requested for 1 run", timeout=10)
    dash_duo.wait_for_contains_text("#tr-progress-text", "cancelled", timeout=10)
    logs = [e for e in dash_duo.get_logs() or [] if e.get("level") in ("SEVERE", "WARNING")]
    assert logs == []


def test_runs_queued_before_a_restart_are_started(store_env):
    from clipviz.jobs import resume_queued, validate_config
    from clipviz.runstore import shared_store
    from clipviz.web.app import create_app

    store = shared_store()
    cfg = tp.form_configs(dict(zip(tp.form_names(), _values(seeds=1))))[0][0]

    def finished(rid):
        deadline = time.monotonic() + 60
        while store.get(rid).active:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        return store.get(rid).status == "finished"

    rid = store.create_run(validate_config(cfg), "local")  # queued; its app died before starting it
    assert resume_queued() == 1
    assert finished(rid)
    assert resume_queued() == 0  # nothing queued: no runner
    # the app factory (not a page) resumes what an earlier app process left queued
    rid = store.create_run(validate_config(cfg), "local")
    create_app(warm=False)
    assert finished(rid)


# ---------------------------------------------------------------------------
# issue 13: protocols, the one-click pair, ρ from update 0, absent data sets, messages, progress
# ---------------------------------------------------------------------------
def test_protocols_fill_the_form_and_name_what_they_stand_for(monkeypatch):
    from clipviz.training import PRESETS
    from clipviz.training.reproduce import SCALES

    small = tp.protocol_values("small", "temporal_order")
    assert small == {"dataset": "generated", "hidden": 50, "act": "tanh", "lr": 0.03, "momentum": 0.9,
                     "tau": 1.0, "batch": 20, "seq_len": 20, "updates": 5000, "eval_every": 50}
    # the form starts at the small protocol of the default task
    defaults = {s.name: s.default for s in tp.run_specs()}
    assert {k: defaults[k] for k in small if k != "tau"} == {k: v for k, v in small.items() if k != "tau"}
    paper = tp.protocol_values("paper", "temporal_order")
    fig7 = SCALES["figure7"]["paper"]
    assert (paper["act"], paper["lr"], paper["momentum"], paper["batch"], paper["updates"]) == (
        "sigmoid", fig7["config"]["lr"], 0.0, fig7["config"]["batch_size"], fig7["max_updates"])
    assert "section 4.3" in tp.protocol_note("paper", "temporal_order")
    assert tp.protocol_note("small", "temporal_order").startswith("small scale (clipviz's own")
    music = tp.protocol_values("paper", "music")
    assert (music["hidden"], music["lr"], music["tau"]) == (PRESETS["music"]["hidden"], PRESETS["music"]["lr"],
                                                           PRESETS["music"]["threshold"])
    assert "section 4.1" in tp.protocol_note("paper", "music")
    # characters: the paper's threshold of the data set (section 4.2), the first data set present
    monkeypatch.setattr(tp, "present_datasets", lambda: {**dict.fromkeys(tp.ALL_DATASETS), "ptb": "absent"})
    chars = tp.protocol_values("small", "characters")
    assert chars["dataset"] == "text8" and chars["tau"] == 20.0
    # the callback: every filled control, then the note; a value no control offers changes nothing
    out = tp.fill_protocol("paper", "temporal_order")
    assert len(out) == len(tp.FILLED) + 1 and out[tp.FILLED.index("lr")] == 0.001
    assert out[-1] == tp.protocol_note("paper", "temporal_order")
    assert tp.fill_protocol("fast", "temporal_order") == (tp.no_update,) * (len(tp.FILLED) + 1)


def test_absent_data_sets_are_marked_and_refused(monkeypatch, tmp_path):
    from clipviz import datasets

    monkeypatch.setattr(datasets, "data_dirs", lambda: [tmp_path])  # nothing downloaded
    options = {o["value"]: o for o in tp.dataset_options()}
    assert options["generated"]["disabled"] is False
    assert options["text8"]["disabled"] is True
    assert options["text8"]["label"] == "text8 (not downloaded: clipviz data fetch text8)"
    _, errors = tp.form_configs(dict(zip(tp.form_names(), _values(task="characters", dataset="text8"))))
    assert "clipviz data fetch text8" in errors["dataset"] and "not on this machine" in errors["dataset"]
    ids, msg, _ = tp.submit(1, *_values(task="characters", dataset="text8"))
    assert ids is tp.no_update and "clipviz data fetch text8" in msg
    assert tp.message_class(ids) == "msg"  # drawn as an error
    assert tp.message_class(["a"]) == "msg info"  # what a button started: drawn as information


def test_initial_rho_is_recorded():
    from clipviz.training import TrainConfig, train

    rec = train(TrainConfig(task="temporal_order", hidden=20, activation="tanh", seq_len=10, batch_size=5,
                            max_updates=30, eval_every=10, seed=4, clip="none"))
    r0 = rec.result["initial_rho"]
    # tanh weights N(0, 0.1²): ρ about 0.1 √20 at the start, below 1 (section 2.1's condition)
    assert 0.2 < r0 < 1.0 and r0 != rec.result["final_rho"]
    assert rec.series["rho"][9] is not None and len(rec.series["rho"]) == 30  # events: one per update


@pytest.mark.parametrize("task,init,extra", [
    ("temporal_order", "default", dict(seq_len=10)),
    ("temporal_order", "smart_tanh", dict(seq_len=10, activation="tanh")),
    ("music", "default", dict(dataset="jsb", seq_len=20)),
    ("characters", "smart_tanh", dict(dataset="shakespeare", seq_len=20, activation="tanh")),
])
def test_initial_rho_is_known_before_the_run_ends(task, init, extra):
    """The library's initial_rho draws the very parameters the run starts from (smart_tanh draws
    W_rec after W_in and W_out, so it depends on the task's input and output sizes too)."""
    from clipviz.training import TrainConfig, initial_rho, train

    if task != "temporal_order":
        pytest.importorskip("scipy")
        from clipviz import datasets
        try:
            datasets.resolve(extra["dataset"], task)
        except ValueError as exc:
            pytest.skip(f"data set absent: {exc}")
    cfg = TrainConfig.for_task(task, hidden=16, batch_size=2, max_updates=1, eval_every=1, seed=7,
                               init=init, **extra)
    want = train(cfg).result["initial_rho"]
    assert initial_rho(cfg) == want
    other = TrainConfig.from_dict({**cfg.to_dict(), "seed": 8})
    assert initial_rho(other) != want  # a function of the seed, not a constant
    with pytest.raises(ValueError, match="TrainConfig"):
        initial_rho(cfg.to_dict())


def test_a_running_run_draws_rho_from_update_0(store_env, make_app):
    """ρ(W_rec) at update 0 is drawn while a run is still going (not only once it has ended)."""
    from clipviz.training import TrainConfig, initial_rho

    cfg = TrainConfig(task="temporal_order", hidden=30, activation="tanh", seq_len=10, batch_size=5,
                      max_updates=1000, eval_every=10, seed=3, clip="none").to_dict()
    app = make_app()
    with app.server.app_context():
        store = tp._jobs().store
        rid = store.create_run(cfg, "celery")  # no worker: it stays as it is put
        store.claim(rid, "test-worker")
        store.append_metrics(rid, [{"update": u, "total": 1000, "loss": 1.0, "grad_norm": 0.5,
                                    "grad_norm_clipped": 0.5, "clipped": False, "skipped": 0,
                                    "rho": 0.9 if u == 10 else None, "valid": None, "elapsed": 0.1}
                                   for u in range(1, 11)], done=10, total=1000)
        assert store.get(rid).active and store.get(rid).result is None
        _, _, text, fig, _, _ = tp.tick(1, [rid], [])
        rho = [tr for tr in fig.data if tr.yaxis == "y3"]
        assert len(rho) == 1 and list(rho[0].x) == [0, 10]
        assert rho[0].y[0] == pytest.approx(initial_rho(TrainConfig.from_dict(cfg)), rel=1e-6)
        assert rho[0].y[1] == pytest.approx(0.9)
        big = {**cfg, "hidden": tp.SETTINGS.live_rho_max_hidden + 1}
        assert tp.starting_rho(big) is None  # too large to solve on each page: drawn at the end


def test_one_click_pair_and_the_progress_of_a_cancelled_run(store_env):
    ids, msg, sel = tp.submit_pair(1, *_values(act="tanh", lr=0.03, updates=60, eval_every=20, seeds=1))
    assert len(ids) == 2 and sel == [] and msg.startswith("started plain BPTT")
    store = tp._jobs().store
    cfgs = [store.get(i).config for i in ids]
    assert [c["clip"] for c in cfgs] == list(tp.PAIR) == ["none", "norm"]
    assert cfgs[1]["threshold"] == 1.0 and cfgs[0]["threshold"] is None
    assert {k: v for k, v in cfgs[0].items() if k not in ("clip", "threshold")} == \
        {k: v for k, v in cfgs[1].items() if k not in ("clip", "threshold")}  # same settings and seed
    deadline = time.monotonic() + 120
    while any(store.get(i).active for i in ids):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    _, _, text, fig, _, _ = tp.tick(1, ids, [])
    rho = [tr for tr in fig.data if tr.yaxis == "y3"]
    assert len(rho) == 2 and all(tr.x[0] == 0 for tr in rho)  # both runs' ρ from update 0
    assert [sh.y0 for sh in fig.layout.shapes] == [1.0]  # tanh runs: the line at 1
    assert fig.layout.uirevision == "runs:" + ",".join(ids)
    assert " left" not in text
    # a bad form starts neither run
    out = tp.submit_pair(1, *_values(seq_len=3))
    assert out[0] is tp.no_update and "Length T" in out[1]
    # a cancelled run's progress is measured against its budget, not against where it stopped
    (rid,), _, _ = tp.submit(1, *_values(updates=200_000, eval_every=1000, seeds=1))
    while store.get(rid).done < 10:
        time.sleep(0.05)
    tp.cancel(1, [rid], [])
    deadline = time.monotonic() + 5
    while store.get(rid).active:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    run = store.get(rid)
    done, total, text, _, _, _ = tp.tick(2, [rid], [])
    assert (done, total) == (run.done, 200_000) and run.done < 200_000
    assert f"{run.done} / 200000 updates" in text and "cancelled" in text and " left" not in text
