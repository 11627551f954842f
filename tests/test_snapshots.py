"""Snapshots at explosion events (issue 16, item 3): bounded, reproducible from the seed, and
enough to rebuild the update (theta, state, regenerated window) for clipviz.landscape."""

from __future__ import annotations

import numpy as np
import pytest

from clipviz import landscape as L
from clipviz.training import TrainConfig
from clipviz.training.model import RNN
from clipviz.training.record import RunRecord
from clipviz.training.runner import run
from clipviz.training.snapshots import SnapshotPolicy, decode, replay_window

# a seeded BPTT run (no clipping) on temporal order whose |g| spikes within 120 updates
CFG = dict(task="temporal_order", lr=0.5, momentum=0.0, seq_len=50, hidden=30, batch_size=20,
           max_updates=120, eval_every=120, seed=0, init="smart_tanh")
POLICY = SnapshotPolicy(max_clipped=2, max_spikes=3, max_ordinary=2, spike_factor=5.0,
                        median_window=50, ordinary_every=20)


def _model(cfg):
    return RNN(8, cfg.hidden, 4, activation=cfg.activation, parametrisation=cfg.parametrisation,
               output="softmax", bias=cfg.bias, dtype=cfg.dtype)


@pytest.fixture(scope="module")
def bptt_run():
    cfg = TrainConfig(clip="none", threshold=None, **CFG)
    return cfg, run(cfg, None, snapshots=POLICY)


def test_snapshots_bounded_and_classified(bptt_run):
    cfg, rec = bptt_run
    snaps = [decode(s) for s in rec.result["snapshots"]]
    kinds = [k for s in snaps for k in s["kinds"]]
    assert kinds.count("spike") == 3 and kinds.count("ordinary") == 2
    assert "clipped" not in kinds  # no clipping in this run
    assert [s["update"] for s in snaps] == sorted({s["update"] for s in snaps})
    grad = dict(zip(rec.series["update"], rec.series["grad_norm"]))
    for s in snaps:
        assert s["grad_norm"] == grad[s["update"]]
        if "spike" in s["kinds"]:
            assert s["median_ratio"] > POLICY.spike_factor
        else:
            assert s["update"] % POLICY.ordinary_every == 0
        assert s["theta"].shape == (_model(cfg).n_params,)
        assert s["state"].shape == (cfg.batch_size, cfg.hidden)
    # the kept spikes are the three largest ratios |g| / median of the previous 50 norms
    norms = rec.series["grad_norm"]
    ratios = {u: norms[i] / np.median(norms[max(0, i - 50):i])
              for i, u in enumerate(rec.series["update"]) if i >= 10}
    best = sorted((r, u) for u, r in ratios.items() if r > POLICY.spike_factor)[-3:]
    kept = sorted(s["update"] for s in snaps if "spike" in s["kinds"])
    assert kept == sorted(u for _, u in best)


def test_snapshots_survive_json_and_are_reproducible(bptt_run):
    cfg, rec = bptt_run
    back = RunRecord.from_json(rec.to_json())
    assert back.result["snapshots"] == rec.result["snapshots"]
    again = run(cfg, None, snapshots=POLICY)
    assert again.result["snapshots"] == rec.result["snapshots"]
    plain = run(cfg, None)
    assert "snapshots" not in plain.result
    assert plain.series["grad_norm"] == rec.series["grad_norm"]  # keeping them changes nothing


def test_snapshot_rebuilds_its_update(bptt_run):
    """theta, state and the regenerated window give the recorded loss (slice centre to 1e-10)
    and the gradient whose plain step is the one taken."""
    cfg, rec = bptt_run
    m = _model(cfg)
    for s in map(decode, rec.result["snapshots"]):
        X, Y, W, _ = replay_window(cfg, s["update"])
        win = L.Window(X, Y, W, s["state"])
        loss, g = L.window_loss(m, s["theta"], win)
        assert loss == pytest.approx(s["loss"], rel=1e-12)
        assert np.linalg.norm(g) == pytest.approx(s["grad_norm"], rel=1e-12)
        # step = theta_{u+1} - theta_u, rounded at theta's scale
        ulp = 4e-16 * np.abs(s["theta"]).max()
        np.testing.assert_allclose(s["step"], -cfg.lr * g, rtol=1e-9, atol=ulp)
        np.testing.assert_allclose(s["step_unclipped"], -cfg.lr * g, rtol=1e-12, atol=0)
        d2 = L.filter_normalised_direction(m, s["theta"], 0)
        sl = L.slice_2d(m, s["theta"], win, s["step"], d2, [0.0, 1.0], [0.0])
        assert abs(sl.losses[0, 0] - s["loss"]) <= 1e-10 * abs(s["loss"])


def test_clipped_snapshots_keep_both_steps():
    cfg = TrainConfig(clip="norm", threshold=1.0, **CFG)
    rec = run(cfg, None, snapshots=POLICY)
    snaps = [decode(s) for s in rec.result["snapshots"]]
    clipped = [s for s in snaps if "clipped" in s["kinds"]]
    assert len(clipped) == 2
    fired = [n for n, c in zip(rec.series["grad_norm"], rec.series["clipped"]) if c]
    assert sorted(s["grad_norm"] for s in clipped) == sorted(fired)[-2:]  # the largest |g|
    for s in clipped:
        assert s["clipped"] and s["grad_norm"] > 1.0
        assert np.linalg.norm(s["step"]) == pytest.approx(cfg.lr * 1.0, rel=1e-9)
        assert np.linalg.norm(s["step_unclipped"]) == pytest.approx(cfg.lr * s["grad_norm"],
                                                                   rel=1e-9)


@pytest.mark.parametrize("kw,msg", [({"max_spikes": -1}, "max_spikes"),
                                    ({"max_clipped": 10_000}, "max_clipped"),
                                    ({"spike_factor": 1.0}, "spike_factor"),
                                    ({"median_window": 0}, "median_window")])
def test_policy_validated(kw, msg):
    with pytest.raises(ValueError, match=msg):
        SnapshotPolicy(**kw)


def test_replay_window_validates_update():
    with pytest.raises(ValueError, match="update"):
        replay_window(TrainConfig(**CFG), 0)


@pytest.mark.parametrize("clip,threshold", [("none", None), ("norm", 1.0)])
def test_at_snapshot_rebuilds_the_three_steps(clip, threshold):
    """clipviz.landscape.at_snapshot: the step the run took is plain BPTT's in a BPTT run and
    Algorithm 1's in a clipped one; step_losses starts from the recorded loss."""
    cfg = TrainConfig(clip=clip, threshold=threshold, **CFG)
    rec = run(cfg, None, snapshots=POLICY)
    assert rec.result["snapshots"]
    for s in rec.result["snapshots"]:
        p = L.at_snapshot(rec.config, s, tau=1.0)
        gn = np.linalg.norm(p.grad)
        assert gn == pytest.approx(s["grad_norm"], rel=1e-12)
        np.testing.assert_allclose(p.step_unclipped, -cfg.lr * p.grad, rtol=1e-12, atol=0)
        assert np.linalg.norm(p.step_clipped) == pytest.approx(cfg.lr * min(gn, 1.0), rel=1e-12)
        ulp = 4e-16 * np.abs(p.theta).max()
        taken = p.step_clipped if clip == "norm" else p.step_unclipped
        np.testing.assert_allclose(p.step_taken, taken, rtol=1e-9, atol=ulp)
        losses = L.step_losses(p)
        assert losses["at_theta"] == pytest.approx(s["loss"], rel=1e-12)
        assert losses["taken"] == pytest.approx(losses["clipped" if clip == "norm"
                                                       else "unclipped"], rel=1e-9)


def test_at_snapshot_needs_a_threshold_for_a_bptt_run(bptt_run):
    cfg, rec = bptt_run
    with pytest.raises(ValueError, match="give tau"):
        L.at_snapshot(rec.config, rec.result["snapshots"][0])
    with pytest.raises(ValueError, match="tau"):
        L.at_snapshot(rec.config, rec.result["snapshots"][0], tau=-1.0)
    with pytest.raises(ValueError, match="snapshot"):
        L.at_snapshot(rec.config, {"update": 3})



def test_train_and_train_many_keep_snapshots_when_asked():
    """The public entry points: train(..., snapshots=True | policy), train_many(..., snapshots=)."""
    from clipviz.training import train, train_many

    cfg = TrainConfig(clip="none", threshold=None, **dict(CFG, max_updates=60))
    assert "snapshots" not in train(cfg).result
    mine = train(cfg, snapshots=POLICY).result["snapshots"]
    assert mine == run(cfg, None, snapshots=POLICY).result["snapshots"] and mine
    default = train(cfg, snapshots=True).result["snapshots"]
    assert default == run(cfg, None, snapshots=SnapshotPolicy()).result["snapshots"]
    with pytest.raises(ValueError, match="snapshots must be"):
        train(cfg, snapshots="yes")
    # an ensemble keeps the snapshots separate runs keep (its kernel is bit for bit theirs)
    other = TrainConfig(clip="norm", threshold=1.0, **dict(CFG, max_updates=60, seed=1))
    recs = train_many([cfg, other], snapshots=POLICY)
    assert recs[0].result["snapshots"] == mine
    assert recs[1].result["snapshots"] == run(other, None, snapshots=POLICY).result["snapshots"]
