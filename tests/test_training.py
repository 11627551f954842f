"""The training API: config validation, events, cancellation, skipping, tasks."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from clipviz.training import EVENT_KEYS, RunRecord, TrainConfig, train
from clipviz.training import runner
from clipviz.training.tasks import temporal_order, temporal_order_positions


def small(**kw):
    base = dict(task="temporal_order", seq_len=8, hidden=8, batch_size=4, max_updates=10,
                eval_every=5, activation="tanh", lr=0.1)
    base.update(kw)
    return TrainConfig(**base)


def test_config_round_trip_and_validation():
    c = small(clip="autoclip", percentile=50)
    assert TrainConfig.from_dict(c.to_dict()) == c
    assert json.loads(json.dumps(c.to_dict())) == c.to_dict()
    bad = [({"task": "poems"}, "task must be one of"),
           ({"clip": "norm", "threshold": None}, "needs a threshold"),
           ({"clip": "norm", "threshold": -1}, "positive finite"),
           ({"lr": -0.1}, r"lr must be in \(0, 100\]"),
           ({"momentum": 1.0}, r"momentum must be in \[0, 1\)"),
           ({"hidden": 0}, "hidden must be between 1 and"),
           ({"seq_len": 3}, "seq_len must be between 6 and"),
           ({"dataset": "jsb"}, "generates its data"),
           ({"dtype": "float16"}, "dtype must be one of"),
           ({"parametrisation": "lstm"}, "parametrisation must be one of"),
           ({"batch_size": 2.5}, "batch_size must be an integer"),
           ({"bias": "yes"}, "bias must be true or false")]
    for change, msg in bad:
        d = c.to_dict()
        d.update(change)
        with pytest.raises(ValueError, match=msg):
            TrainConfig.from_dict(d)
    with pytest.raises(ValueError, match="unknown config key.*allowed: task"):
        TrainConfig.from_dict({"tsak": "music"})


def test_events_series_and_record():
    events = []
    rec = train(small(clip="norm", threshold=0.05, max_updates=12, eval_every=4),
                callback=events.append)
    assert rec.status == "finished" and len(events) == 12
    assert all(set(e) == set(EVENT_KEYS) for e in events)
    assert [e["update"] for e in events] == list(range(1, 13))
    assert all(len(x) == 12 for x in rec.series.values()) and set(rec.series) == set(EVENT_KEYS)
    for e in events:
        assert (e["rho"] is not None) == (e["update"] % 4 == 0)
        assert (e["valid"] is not None) == (e["update"] % 4 == 0)
        if e["clipped"]:   # Algorithm 1 through the shared Clipper
            assert e["grad_norm"] >= 0.05 and e["grad_norm_clipped"] == pytest.approx(0.05)
        else:
            assert e["grad_norm_clipped"] == pytest.approx(e["grad_norm"])
    assert any(e["clipped"] for e in events)
    assert 0.0 <= rec.result["test_accuracy"] <= 1.0
    back = RunRecord.from_json(rec.to_json())
    assert back.to_dict() == json.loads(rec.to_json())
    assert back.config == rec.config and back.code_version.startswith("0.1.0")


def test_callback_false_cancels_after_that_update():
    seen = []

    def cb(ev):
        seen.append(ev["update"])
        return ev["update"] < 3

    rec = train(small(max_updates=50), callback=cb)
    assert rec.status == "cancelled" and seen == [1, 2, 3]
    assert len(rec.series["loss"]) == 3


def test_non_finite_gradient_is_skipped_and_counted(monkeypatch):
    real = runner.RNN.window
    calls = {"n": 0}
    snapshots = []

    def poisoned(self, state, X, Y, W, *, grad=None, norm=None, theta=None):
        out = real(self, state, X, Y, W, grad=grad, norm=norm, theta=theta)
        if grad is not None:
            calls["n"] += 1
            snapshots.append(self.theta.copy())
            if calls["n"] == 3:
                grad[5] = np.nan
        return out

    monkeypatch.setattr(runner.RNN, "window", poisoned)
    events = []
    rec = train(small(max_updates=5, eval_every=100, clip="none"), callback=events.append)
    assert [e["skipped"] for e in events] == [0, 0, 1, 1, 1]
    assert events[2]["grad_norm"] is None and rec.result["skipped"] == 1
    np.testing.assert_array_equal(snapshots[2], snapshots[3])  # the skipped update left theta alone
    assert not np.array_equal(snapshots[1], snapshots[2])
    assert "NaN" not in rec.to_json()


def test_temporal_order_generator_follows_task_6a():
    rng = np.random.default_rng(0)
    seq, cls = temporal_order(100, 500, rng)
    (a1, b1), (a2, b2) = temporal_order_positions(100)
    assert (a1, b1, a2, b2) == (10, 20, 50, 60)  # Hochreiter & Schmidhuber's positions
    assert np.all(seq[:, 0] == 6) and np.all(seq[:, -1] == 7)
    for s, c in zip(seq, cls):
        rel = np.nonzero((s == 4) | (s == 5))[0]
        assert len(rel) == 2 and a1 <= rel[0] <= b1 and a2 <= rel[1] <= b2
        assert c == 2 * (s[rel[0]] == 5) + (s[rel[1]] == 5)
        assert np.all(s[1:-1][(s[1:-1] != 4) & (s[1:-1] != 5)] < 4)
    assert set(np.bincount(cls)) and len(np.unique(cls)) == 4


def test_temporal_order_short_length_learns_well_above_chance():
    rec = train(TrainConfig(task="temporal_order", seq_len=10, hidden=30, activation="tanh",
                            lr=0.1, momentum=0.9, clip="norm", threshold=1.0, batch_size=20,
                            max_updates=400, eval_every=50, seed=3))
    assert rec.result["test_accuracy"] > 0.8  # chance is 0.25


@pytest.mark.parametrize("param", ["paper", "standard"])
def test_music_training_lowers_nll(shared_data, param):
    rec = train(TrainConfig(task="music", dataset="jsb", hidden=16, activation="tanh",
                            parametrisation=param, lr=0.01, momentum=0.9, clip="norm",
                            threshold=120, batch_size=8, seq_len=50, max_updates=40,
                            eval_every=20, dtype="float32"))
    r = rec.result
    # an untrained model predicts 0.5 per key: 88 ln 2 = 61 nats per step
    assert r["valid_nll"] < 20 and r["test_nll"] < 20 and r["train_nll"] < 20
    assert rec.series["loss"][0] > 55 and rec.series["loss"][-1] < 25


def test_characters_training_beats_uniform(shared_data):
    rec = train(TrainConfig(task="characters", dataset="shakespeare", hidden=32,
                            activation="sigmoid", bias=False, lr=0.05, momentum=0.9, clip="norm",
                            threshold=20, batch_size=16, seq_len=50, max_updates=60,
                            eval_every=30, dtype="float32"))
    r = rec.result
    assert r["vocab_size"] == 66  # 65 symbols + 'unknown'
    assert r["valid_bpc"] < 5.0 < math.log2(66) - 1  # uniform: 6.04 bits


def test_options_and_presets_are_valid_configs():
    from clipviz import datasets
    from clipviz.training import OPTIONS, PRESETS

    for task in PRESETS:
        assert TrainConfig.for_task(task).task == task
    assert set(OPTIONS["dataset_music"]) | set(OPTIONS["dataset_characters"]) == set(datasets.KNOWN)
    assert TrainConfig.for_task("characters").bias is False


def test_music_training_from_a_pickle_path(tmp_path):
    import pickle

    rng = np.random.default_rng(0)

    def song(n):
        return [sorted(set(rng.integers(21, 109, 3).tolist())) for _ in range(n)]

    p = tmp_path / "tiny.pickle"
    p.write_bytes(pickle.dumps({"train": [song(30), song(12)], "valid": [song(9)],
                                "test": [song(7)]}, protocol=2))
    rec = train(TrainConfig(task="music", dataset=str(p), hidden=6, activation="tanh",
                            threshold=120, batch_size=2, seq_len=10, max_updates=4, eval_every=2))
    r = rec.result
    assert r["source"] == str(p) and all(math.isfinite(r[f"{s}_nll"]) for s in ("train", "valid", "test"))


def _child(q):
    rec = train(small(max_updates=5, seed=7))
    q.put(rec.to_json())


def test_training_runs_in_a_forked_child_after_the_parent_trained():
    import multiprocessing as mp

    parent = train(small(max_updates=5, seed=7))
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(q,))
    p.start()
    out = q.get(timeout=60)
    p.join(timeout=60)
    assert p.exitcode == 0
    child = RunRecord.from_json(out)
    assert child.series["loss"] == pytest.approx(parent.series["loss"], rel=1e-12)


# ---------------------------------------------------------------------------
# issue 15: the authors' initialisation and rule, the success test's size, the final test NLL
# ---------------------------------------------------------------------------
from clipviz.training.model import RNN, spectral_radius  # noqa: E402


@pytest.mark.parametrize("H", [50, 120])
def test_smart_tanh_authors_init_follows_rnn_py(H):
    """RNN.py:125-140: W_hh with 15 non-zeros per row (clipviz's W_rec = W_hh^T: per column),
    spectral radius 0.95; W_uh and W_hy N(0, 0.01²); biases 0."""
    m = RNN(8, H, 4, activation="tanh", parametrisation="standard", bias=True)
    m.initialise(np.random.default_rng(3), "smart_tanh_authors")
    v = m.views(m.theta)
    W = v["W"]
    assert ((W != 0).sum(axis=0) == 15).all()  # each unit's outgoing weights: 15 non-zeros
    assert spectral_radius(W) == pytest.approx(0.95, rel=1e-10)
    for name in ("U", "V"):
        x = v[name].ravel()
        # sample std within 4 standard errors of 0.01 (se of a std: sigma / sqrt(2n))
        assert abs(x.std() - 0.01) < 4 * 0.01 / math.sqrt(2 * x.size)
        assert abs(x.mean()) < 4 * 0.01 / math.sqrt(x.size)
    assert not v["b"].any() and not v["c"].any()
    # before the rescaling the non-zeros were N(0, 0.01²): their spread over their count is the
    # scale factor sr/0.95; what the rescaling cannot change is that every row of W_hh is sparse
    m2 = RNN(8, H, 4, activation="tanh")
    m2.initialise(np.random.default_rng(3), "smart_tanh")  # the recorded smart_tanh is unchanged
    assert ((m2.W_rec != 0).sum(axis=1) == 15).all()
    assert not np.array_equal(m2.W_rec, W)


def test_check_sequences_is_a_bounded_setting_run_in_chunks(monkeypatch):
    from clipviz.config import SETTINGS

    assert TrainConfig().check_sequences == SETTINGS.temporal_order_valid
    with pytest.raises(ValueError, match="check_sequences"):
        TrainConfig(check_sequences=SETTINGS.max_check_sequences + 1)
    with pytest.raises(ValueError, match="check_sequences"):
        TrainConfig(check_sequences=0)
    seen = []
    real = runner.temporal_order_window

    def spy(T, n, rng, dtype=np.float64, variant="6a"):
        seen.append(n)
        return real(T, n, rng, dtype, variant)

    monkeypatch.setattr(runner, "temporal_order_window", spy)
    n = 2 * SETTINGS.temporal_order_eval_chunk + 7
    rec = train(small(max_updates=2, eval_every=2, check_sequences=n))
    evals = [x for x in seen if x != 4]  # the training windows have batch_size 4
    chunk = SETTINGS.temporal_order_eval_chunk
    # the check at update 2 stops at its first chunk with a wrong answer (an untrained model
    # answers wrongly), the final test runs them all
    assert evals == [chunk] + [chunk, chunk, 7]
    assert rec.config["check_sequences"] == n
    assert TrainConfig.from_dict(rec.config).check_sequences == n


def test_the_success_check_stops_at_its_first_wrong_chunk_and_decides_as_the_full_check():
    from types import SimpleNamespace

    from clipviz.config import SETTINGS

    chunk = SETTINGS.temporal_order_eval_chunk
    cfg = small(check_sequences=3 * chunk)

    class Model:  # answers every sequence right, except `wrong` of them in chunk `bad`
        def __init__(self, bad, wrong):
            self.bad, self.wrong, self.calls = bad, wrong, 0

        def zero_state(self, n):
            return None

        def window(self, state, X, Y, W, theta=None):
            self.calls += 1
            n = X.shape[1] if X.shape[0] == cfg.seq_len else X.shape[0]
            miss = self.wrong if self.calls == self.bad else 0
            return SimpleNamespace(correct=float(n - miss), loss_sum=0.5 * n, weight_sum=float(n)), None

    task = runner.TemporalOrderTask(cfg, np.random.default_rng(0))
    perfect = Model(bad=0, wrong=0)
    assert task.evaluate(perfect, None, "valid") == (1.0, 0.5) and perfect.calls == 3  # solved: all run
    m = Model(bad=2, wrong=3)
    acc, _ = task.evaluate(m, None, "valid")
    assert m.calls == 2 and acc == (2 * chunk - 3) / (2 * chunk) < 1.0  # not solved: as the full check
    m = Model(bad=2, wrong=3)
    assert task.evaluate(m, None, "test")[0] == (3 * chunk - 3) / (3 * chunk) and m.calls == 3


def test_norm_shrink_in_training_shrinks_w_rec_on_a_non_finite_gradient(monkeypatch):
    """RNN.py:234-252: a non-finite norm makes the update W_hh <- W_hh - lr 0.02 W_hh, others kept."""
    real = runner.RNN.window
    snaps = []

    def poisoned(self, state, X, Y, W, *, grad=None, norm=None, theta=None):
        out = real(self, state, X, Y, W, grad=grad, norm=norm, theta=theta)
        if grad is not None:
            snaps.append(self.theta.copy())
            if len(snaps) == 2:
                grad[-1] = np.inf
        return out

    monkeypatch.setattr(runner.RNN, "window", poisoned)
    events = []
    cfg = small(max_updates=3, eval_every=100, clip="norm_shrink", threshold=1.0, momentum=0.0,
                lr=0.5, init="smart_tanh_authors", parametrisation="standard")
    rec = train(cfg, callback=events.append)
    H = cfg.hidden
    before, after = snaps[1], snaps[2]
    np.testing.assert_allclose(after[:H * H], (1 - 0.5 * 0.02) * before[:H * H], rtol=1e-12)
    np.testing.assert_array_equal(after[H * H:], before[H * H:])
    assert rec.result["replaced"] == 1 and rec.result["skipped"] == 0
    assert events[1]["clipped"] and events[1]["grad_norm"] is None


def test_music_result_has_the_final_test_nll(shared_data):
    rec = train(TrainConfig.for_task("music", dataset="jsb", hidden=8, max_updates=4, eval_every=2,
                                     dtype="float32"))
    r = rec.result
    assert math.isfinite(r["final_test_nll"]) and math.isfinite(r["test_nll"])
    assert r["best_update"] in (2, 4)
    if r["best_update"] == 4:  # the best checkpoint is the last parameters
        assert r["final_test_nll"] == pytest.approx(r["test_nll"], rel=1e-6)
