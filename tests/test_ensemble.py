"""Ensembles (issue 15 item 3): the K-model kernel against a plain-NumPy reference, finite
differences and the single-model kernel; train_many against separate train() runs."""

from __future__ import annotations

import collections
import dataclasses
import itertools
import math
import pickle
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clipviz.config import SETTINGS
from clipviz.kernels.ensemble import ensemble_window
from clipviz.training import TrainConfig, train, train_many
from clipviz.training import ensemble as ens
from clipviz.training.model import RNN
from tests.test_rnn_bptt import reference_window

TIMING = "elapsed"


# ---------------------------------------------------------------------------
# the kernel
# ---------------------------------------------------------------------------
def _ens_case(K, param, act, bias, output, dtype="float64", T=6, B=3, I=4, H=5, O=3, seed=0):
    """K models of one shape with their own parameters, states, inputs, targets and weights."""
    rng = np.random.default_rng(seed)
    m = RNN(I, H, O, activation=act, parametrisation=param, output=output, bias=bias, dtype=dtype)
    theta = rng.normal(0, 0.6, (K, m.n_params)).astype(dtype)
    s0 = rng.normal(0, 0.5, (K, B, H)).astype(dtype)
    X = rng.normal(0, 1, (K, T, B, I)).astype(dtype)
    if output == "softmax":
        tg = rng.integers(0, O, (K, T, B))
    else:
        tg = (rng.random((K, T, B, O)) < 0.4).astype(dtype)
    w = (rng.random((K, T, B)) < 0.8).astype(float)
    return m, theta, s0, X, tg, w


def _run_kernel(m, theta, s0, X, tg, w, norm, models=None, want_grad=True, grad=None):
    K, T, B, I = X.shape
    H, O = m.n_hidden, m.n_out
    dt = np.dtype(m.dtype)
    soft = m.output == "softmax"
    ti = tg.reshape(K, T * B).astype(np.int64) if soft else np.zeros((K, 0), np.int64)
    tb = np.zeros((K, 0, 0), dt) if soft else tg.reshape(K, T * B, O).astype(dt)
    ws = m._workspace(T, B)
    grad = np.full((K, m.n_params), 7.0, dt) if grad is None else grad
    s_out = np.full((K, B, H), 7.0, dt)
    out = np.full((K, 3), 7.0)
    models = np.arange(K) if models is None else np.asarray(models, dtype=np.int64)
    ensemble_window(theta, H, I, O, m.bias, m._act, m._out, m.parametrisation == "paper",
                    np.ascontiguousarray(s0), X.reshape(K, T * B, I).copy(), ti, tb,
                    w.reshape(K, T * B).copy(), float(norm), ws["Z"], ws["Hs"], ws["Y"],
                    ws["dY"], ws["dH"], ws["DZ"], want_grad, grad, s_out, out, models)
    return grad, s_out, out


CASES = list(itertools.product(("paper", "standard"), ("tanh", "sigmoid"), (True, False),
                               ("softmax", "sigmoid")))


@pytest.mark.parametrize("param,act,bias,output", CASES)
def test_kernel_matches_numpy_reference_and_finite_differences(param, act, bias, output):
    K, norm = 3, 2.5
    m, theta, s0, X, tg, w = _ens_case(K, param, act, bias, output)
    grad, s_out, out = _run_kernel(m, theta, s0, X, tg, w, norm)
    eps = 1e-5
    for k in range(K):
        obj, total, state = reference_window(m, theta[k], s0[k], X[k], tg[k], w[k], norm)
        assert out[k, 0] == pytest.approx(total, rel=1e-12)
        assert out[k, 1] == w[k].sum()
        np.testing.assert_allclose(s_out[k], state, rtol=1e-12, atol=1e-14)
        fd = np.empty(m.n_params)
        for i in range(m.n_params):
            tp = theta[k].copy(); tp[i] += eps
            tm = theta[k].copy(); tm[i] -= eps
            fd[i] = (reference_window(m, tp, s0[k], X[k], tg[k], w[k], norm)[0]
                     - reference_window(m, tm, s0[k], X[k], tg[k], w[k], norm)[0]) / (2 * eps)
        rel = np.linalg.norm(grad[k] - fd) / np.linalg.norm(fd)
        assert rel < 1e-6, (k, rel)
    # the models really are independent: different parameters give different gradients
    assert not np.array_equal(grad[0], grad[1])


@pytest.mark.parametrize("dtype", ("float64", "float32"))
@pytest.mark.parametrize("param,act,bias,output", CASES)
def test_kernel_is_the_single_model_kernel_bit_for_bit(param, act, bias, output, dtype):
    K, norm = 4, 3.0
    m, theta, s0, X, tg, w = _ens_case(K, param, act, bias, output, dtype=dtype, seed=3)
    grad, s_out, out = _run_kernel(m, theta, s0, X, tg, w, norm)
    assert grad.dtype == np.dtype(dtype) and s_out.dtype == np.dtype(dtype)
    for k in range(K):
        g = np.zeros(m.n_params, dtype=dtype)
        res, s = m.window(s0[k], X[k], tg[k], w[k], grad=g, norm=norm, theta=theta[k])
        assert np.array_equal(g, grad[k])
        assert np.array_equal(s, s_out[k])
        assert (res.loss_sum, res.weight_sum, res.correct) == tuple(out[k])
    # forward only: the same losses and states, the gradient rows left alone
    g0 = np.full((K, m.n_params), 5.0, dtype=dtype)
    g1, s1, o1 = _run_kernel(m, theta, s0, X, tg, w, norm, want_grad=False, grad=g0)
    assert np.all(g1 == 5.0) and np.array_equal(s1, s_out) and np.array_equal(o1, out)


def test_kernel_runs_only_the_listed_models():
    m, theta, s0, X, tg, w = _ens_case(5, "paper", "tanh", True, "softmax")
    full_g, full_s, full_o = _run_kernel(m, theta, s0, X, tg, w, 3.0)
    g, s, o = _run_kernel(m, theta, s0, X, tg, w, 3.0, models=[4, 1])
    for k in (1, 4):
        assert np.array_equal(g[k], full_g[k]) and np.array_equal(s[k], full_s[k])
        assert np.array_equal(o[k], full_o[k])
    for k in (0, 2, 3):  # untouched rows keep what the caller left there
        assert np.all(g[k] == 7.0) and np.all(s[k] == 7.0) and np.all(o[k] == 7.0)


# ---------------------------------------------------------------------------
# train_many against separate runs
# ---------------------------------------------------------------------------
def small(**kw) -> TrainConfig:
    base = dict(task="temporal_order", hidden=6, batch_size=3, seq_len=8, max_updates=12,
                eval_every=5, lr=0.1, momentum=0.9, clip="norm", threshold=1.0)
    base.update(kw)
    return TrainConfig(**base)


def assert_same_record(a, b):
    """Same status, series and result, timing fields aside (bit for bit)."""
    assert a.config == b.config
    assert a.status == b.status
    assert set(a.series) == set(b.series)
    for k in a.series:
        if k != TIMING:
            assert a.series[k] == b.series[k], k
    assert len(a.series[TIMING]) == len(b.series[TIMING])
    ra = {k: v for k, v in a.result.items() if k != TIMING}
    rb = {k: v for k, v in b.result.items() if k != TIMING}
    assert ra == rb
    assert set(a.result) == set(b.result)


CLIPS = [dict(clip="none"), dict(clip="norm", threshold=0.5), dict(clip="value", threshold=0.05),
         dict(clip="autoclip", percentile=30.0), dict(clip="norm_shrink", threshold=0.5)]

member = st.fixed_dictionaries({
    "seed": st.integers(0, 2**32 - 1),
    "clip": st.sampled_from(range(len(CLIPS))),
    "momentum": st.sampled_from([0.0, 0.5, 0.9]),
    "lr": st.sampled_from([0.05, 0.3]),
    "max_updates": st.integers(1, 14),
    "eval_every": st.integers(1, 6),
})


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(members=st.lists(member, min_size=1, max_size=5),
       act=st.sampled_from(["tanh", "sigmoid"]), param=st.sampled_from(["paper", "standard"]),
       bias=st.booleans(), dtype=st.sampled_from(["float64", "float32"]))
def test_train_many_is_separate_runs(members, act, param, bias, dtype):
    cfgs = []
    for mb in members:
        mb = dict(mb)
        clip = CLIPS[mb.pop("clip")]
        cfgs.append(small(activation=act, parametrisation=param, bias=bias, dtype=dtype,
                          **clip, **mb))
    got = train_many(cfgs)
    assert len(got) == len(cfgs)
    for cfg, rec in zip(cfgs, got):
        assert_same_record(train(cfg), rec)


def test_norm_shrink_replacement_in_an_ensemble_is_the_separate_runs(monkeypatch):
    """The authors' rule reads W_rec (clipping.Blocks): in an ensemble it must read the model's
    own row of the ensemble's theta.  A non-finite gradient at update 2 of member 1 only: its
    W_rec is shrunk as in a separate run, the other members are untouched."""
    from clipviz.training import runner

    cfgs = [small(seed=s, max_updates=4, eval_every=2, clip="norm_shrink", threshold=1.0,
                  momentum=0.0, lr=0.5, parametrisation="standard") for s in (1, 2, 3)]
    real_update = runner.Trainer.update

    def poisoned(self, loss_sum, weight_sum, new_state):
        if self.cfg.seed == 2 and self.u == 1:  # the gradient of update 2, before clipping
            self.grad[-1] = np.inf
        return real_update(self, loss_sum, weight_sum, new_state)

    monkeypatch.setattr(runner.Trainer, "update", poisoned)
    got = train_many(cfgs)
    sep = [train(c) for c in cfgs]
    for a, b in zip(sep, got):
        assert_same_record(a, b)
    assert [r.result["replaced"] for r in got] == [0, 1, 0]
    assert got[1].series["clipped"][1] and got[1].series["grad_norm"][1] is None


def test_long_runs_clipping_fires_and_one_solves():
    """Long enough that clipping fires, the state of AutoClip grows and a model is solved (it
    leaves the ensemble early, the others go on), at the paper's default model size."""
    cfgs = [TrainConfig(seq_len=20, max_updates=300, eval_every=50, seed=s, clip=c)
            for s, c in [(0, "norm"), (1, "none"), (2, "value"), (3, "autoclip")]]
    got = train_many(cfgs)
    sep = [train(c) for c in cfgs]
    for a, b in zip(sep, got):
        assert_same_record(a, b)
    assert any(r.result["solved"] for r in sep) and not all(r.result["solved"] for r in sep)
    assert min(r.result["updates"] for r in sep) < 300 == max(r.result["updates"] for r in sep)
    assert any(r.result["clipped_fraction"] > 0 for r in sep)


def test_cancel_of_one_member_leaves_the_others_as_separate_runs():
    cfgs = [small(seed=s, max_updates=15) for s in range(4)]
    seen = collections.defaultdict(list)

    def cb(i, stop_at=None):
        def f(ev):
            seen[i].append(ev["update"])
            return False if ev["update"] == stop_at else None
        return f

    order = []
    got = train_many(cfgs, [cb(0), cb(1, stop_at=4), None, cb(3)],
                     on_done=lambda i, rec: order.append(i))
    assert order[0] == 1 and sorted(order) == [0, 1, 2, 3]  # it left at once, the others went on
    assert got[1].status == "cancelled" and got[1].result["updates"] == 4
    assert seen[1] == [1, 2, 3, 4] and seen[0] == list(range(1, 16)) == seen[3]
    assert_same_record(train(cfgs[1], cb(9, stop_at=4)), got[1])
    for i in (0, 2, 3):
        assert got[i].status == "finished"
        assert_same_record(train(cfgs[i]), got[i])


def test_groups_chunks_and_fallback(tmp_path, monkeypatch):
    """Configs of different shapes form different ensembles, an ensemble holds at most
    ensemble_max_models, another task runs with train(); the order of records is kept."""
    rng = np.random.default_rng(0)

    def song(n):
        return [sorted(set(rng.integers(21, 109, 3).tolist())) for _ in range(n)]

    p = tmp_path / "tiny.pickle"
    p.write_bytes(pickle.dumps({"train": [song(30), song(12)], "valid": [song(9)],
                                "test": [song(7)]}, protocol=2))
    music = TrainConfig(task="music", dataset=str(p), hidden=6, activation="tanh",
                        threshold=120, batch_size=2, seq_len=10, max_updates=4, eval_every=2)
    cfgs = [small(seed=1), small(seed=2, seq_len=9), music, small(seed=3), small(seed=4),
            small(seed=5, hidden=7), small(seed=6, seq_len=9)]
    sizes = []
    real = ens._train_together

    def spy(trainers, on_done=None):
        sizes.append(sorted(t.cfg.seed for t in trainers))
        return real(trainers, on_done)

    monkeypatch.setattr(ens, "_train_together", spy)
    monkeypatch.setattr(ens, "SETTINGS", dataclasses.replace(SETTINGS, ensemble_max_models=2))
    done = {}
    got = train_many(cfgs, on_done=lambda i, rec: done.setdefault(i, rec))
    assert sorted(sizes) == [[1, 3], [2, 6], [4], [5]]
    assert sorted(done) == list(range(len(cfgs))) and all(done[i] is got[i] for i in done)
    for cfg, rec in zip(cfgs, got):
        assert_same_record(train(cfg), rec)
    assert math.isfinite(got[2].result["test_nll"])


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="one per config"):
        train_many([small()], [None, None])
    with pytest.raises(ValueError, match="TrainConfig"):
        train_many([small().to_dict()])
    with pytest.raises(ValueError, match="callable"):
        train_many([small()], [3])
    assert train_many([]) == []


def test_shape_key_names_what_must_match():
    a, b = small(seed=1, lr=0.3, clip="none"), small(seed=2, momentum=0.0, max_updates=3)
    assert ens.shape_key(a) == ens.shape_key(b)
    for field, value in [("hidden", 7), ("batch_size", 4), ("seq_len", 9), ("activation", "sigmoid"),
                         ("parametrisation", "standard"), ("bias", False), ("dtype", "float32")]:
        assert ens.shape_key(small(**{field: value})) != ens.shape_key(a), field
    assert ens.shape_key(TrainConfig.for_task("music")) is None


# ---------------------------------------------------------------------------
# a runner trains a sweep's compatible runs together (jobs.execute_run)
# ---------------------------------------------------------------------------
def _strip(rec: dict) -> dict:
    rec = dict(rec)
    rec["series"] = {k: v for k, v in rec["series"].items() if k != TIMING}
    rec["result"] = {k: v for k, v in rec["result"].items() if k != TIMING}
    rec.pop("code_version", None)
    return rec


def _sweep(store, cfgs):
    sid = store.create_sweep({"test": True})
    return [store.create_run(TrainConfig(**c).to_dict(), "local", sweep_id=sid,
                             total=c["max_updates"]) for c in cfgs]


SWEEP_RUN = dict(task="temporal_order", hidden=6, batch_size=4, seq_len=8, max_updates=40,
                 eval_every=10)


def test_a_runner_trains_a_sweeps_compatible_runs_together(tmp_path):
    from clipviz import jobs
    from clipviz.runstore import RunStore

    store = RunStore(str(tmp_path / "runs.sqlite"))
    cfgs = [dict(SWEEP_RUN, seed=s, clip=c) for s, c in [(1, "norm"), (2, "none"), (3, "value")]]
    cfgs.append(dict(SWEEP_RUN, seed=4, seq_len=9))  # another shape: not taken
    ids = _sweep(store, cfgs)
    assert store.claim_next("local", "me") == ids[0]
    assert jobs.execute_run(store, ids[0]) == "finished"
    assert [store.get(r).status for r in ids] == ["finished"] * 3 + ["queued"]
    alone = RunStore(str(tmp_path / "alone.sqlite"))
    for cfg, rid in zip(cfgs[:3], ids):
        single = alone.create_run(TrainConfig(**cfg).to_dict(), "local", total=cfg["max_updates"])
        assert alone.claim_next("local", "me") == single
        assert jobs.execute_run(alone, single) == "finished"
        assert _strip(store.record(rid)) == _strip(alone.record(single))
        m, m1 = store.metrics(rid), alone.metrics(single)
        assert {k: v for k, v in m.items() if k != TIMING} == \
            {k: v for k, v in m1.items() if k != TIMING}
        r, r1 = store.get(rid), alone.get(single)
        assert (r.done, r.total) == (r1.done, r1.total)
        assert _strip({"series": {}, "result": r.result}) == _strip({"series": {}, "result": r1.result})


def test_a_cancel_drops_only_its_model(tmp_path):
    import threading

    from clipviz import jobs
    from clipviz.runstore import RunStore

    store = RunStore(str(tmp_path / "runs.sqlite"))
    # a small step: far from solved (a solved run stops before it is cancelled)
    cfgs = [dict(SWEEP_RUN, seed=s, max_updates=n, eval_every=1000, lr=1e-3, momentum=0.0)
            for s, n in [(1, 10_000), (2, 60_000), (3, 10_000)]]
    ids = _sweep(store, cfgs)
    assert store.claim_next("local", "me") == ids[0]
    t = threading.Thread(target=jobs.execute_run, args=(store, ids[0]))
    t.start()
    deadline = time.monotonic() + 60
    while store.get(ids[1]).done < 20:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert store.request_cancel(ids[1]) == "running"
    t.join(timeout=120)
    runs = [store.get(r) for r in ids]
    assert [r.status for r in runs] == ["finished", "cancelled", "finished"]
    assert runs[1].ended < min(runs[0].ended, runs[2].ended)  # the others went on
    assert 20 <= runs[1].done < 60_000 and store.record(ids[1])["status"] == "cancelled"
    assert store.metrics(ids[1])["update"][-1] == runs[1].done
    for i in (0, 2):
        # the record a run trained alone stores: its snapshots in the store's own table
        alone = train(TrainConfig(**cfgs[i]), snapshots=True).to_dict()
        snaps = alone["result"].pop("snapshots")
        alone["result"]["snapshots_kept"] = len(snaps)
        assert _strip(store.record(ids[i])) == _strip(alone)
        assert [store.snapshot(ids[i], s["update"]) for s in snaps] == snaps and snaps


def test_a_failure_marks_every_run_not_yet_stored(tmp_path, monkeypatch):
    from clipviz import jobs
    from clipviz.runstore import RunStore
    from clipviz.training import runner

    calls = []
    real = runner.TemporalOrderTask.evaluate

    def evaluate(self, model, theta, split):
        calls.append(split)
        if len(calls) == 3:
            raise RuntimeError("boom")
        return real(self, model, theta, split)

    monkeypatch.setattr(runner.TemporalOrderTask, "evaluate", evaluate)
    store = RunStore(str(tmp_path / "runs.sqlite"))
    cfgs = [dict(SWEEP_RUN, seed=1, max_updates=2, eval_every=100),
            dict(SWEEP_RUN, seed=2, eval_every=5), dict(SWEEP_RUN, seed=3, eval_every=5)]
    ids = _sweep(store, cfgs)
    assert store.claim_next("local", "me") == ids[0]
    assert jobs.execute_run(store, ids[0]) == "finished"
    runs = [store.get(r) for r in ids]
    assert [r.status for r in runs] == ["finished", "failed", "failed"]
    assert all(r.reason == "RuntimeError: boom" for r in runs[1:])
    assert [store.metrics(r)["update"][-1] for r in ids[1:]] == [4, 4]  # telemetry kept
