"""Section 2.4's wall measured at spikes (issue 16, item 5): the acceptance test on a seeded
BPTT run that diverged, the one-unit measures against an independent NumPy computation, the
summaries against SciPy, and ``clipviz reproduce wall`` at a tiny scale."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math

import numpy as np
import pytest
from scipy.stats import spearmanr

from clipviz import landscape as L
from clipviz import wall as W
from clipviz.cli import main
from clipviz.config import SETTINGS
from clipviz.training import TrainConfig
from clipviz.training import reproduce_wall as rw
from clipviz.training.runner import run
from clipviz.training.snapshots import SnapshotPolicy
from tests.test_reproduce import _images_or_html

# plain BPTT on temporal order that diverges: the loss leaves chance (ln 4 = 1.39) for ~10
DIVERGING = dict(task="temporal_order", clip="none", threshold=None, lr=1.0, momentum=0.0,
                 seq_len=20, hidden=30, batch_size=20, max_updates=100, eval_every=100, seed=0,
                 init="smart_tanh", activation="tanh")
POLICY = SnapshotPolicy(max_clipped=0, max_spikes=12, max_ordinary=2, spike_factor=3.0,
                        median_window=50, ordinary_every=50)


@pytest.fixture(scope="module")
def diverged():
    cfg = TrainConfig(**DIVERGING)
    return cfg, run(cfg, None, snapshots=POLICY)


def _median_tau(snap) -> float:
    return snap["grad_norm"] / snap["median_ratio"]


@pytest.mark.parametrize("tau", ["running median", 1.0])
def test_divergence_spike_unclipped_step_lands_higher_on_the_slice(diverged, tau):
    """Acceptance: on a BPTT run that diverged, the slice at the divergence spike shows the
    plain step landing at a higher loss than the clipped one (tau: the running median |g|
    the spike stands out from, or the authors' threshold 1)."""
    cfg, rec = diverged
    loss = np.array(rec.series["loss"], dtype=float)
    assert np.median(loss[-20:]) > 2 * np.median(loss[:10])  # the run diverged
    # the divergence spike, from the run's own record: its largest |g|, kept as a spike
    g = np.array(rec.series["grad_norm"], dtype=float)
    u = int(rec.series["update"][int(np.argmax(g))])
    snap = W.largest_spike(rec)
    assert snap["update"] == u and "spike" in snap["kinds"]
    assert np.median(loss[u:u + 20]) > 2 * np.median(loss[:u - 1])  # the loss left chance here
    t = _median_tau(snap) if tau == "running median" else tau
    p = L.at_snapshot(rec.config, snap, tau=t)
    assert np.linalg.norm(p.step_clipped) == pytest.approx(cfg.lr * t, rel=1e-12)
    ss = W.step_slice(p)
    centre = ss.loss_at(ss.centre)
    assert abs(centre - snap["loss"]) <= 1e-10 * abs(snap["loss"])  # the recorded loss
    assert abs(centre - loss[u - 1]) <= 1e-10 * abs(loss[u - 1])
    # the grid holds the two steps' ends exactly: theta + alpha d1 + beta d2
    a, b = ss.slice.alphas, ss.slice.betas
    d1 = p.step_unclipped
    np.testing.assert_allclose(a[ss.unclipped[1]] * d1, p.step_unclipped, rtol=0, atol=1e-15)
    assert b[ss.unclipped[0]] == 0.0
    np.testing.assert_allclose(a[ss.clipped[1]] * d1, p.step_clipped, rtol=1e-12, atol=1e-15)
    assert b[ss.clipped[0]] == 0.0  # no momentum: the clipped step is along the plain one
    higher, lower = ss.loss_at(ss.unclipped), ss.loss_at(ss.clipped)
    assert higher > lower
    # the same two numbers by another path (landscape.window_loss at theta + step)
    sl = L.step_losses(p)
    assert higher == pytest.approx(sl["unclipped"], rel=1e-10)
    assert lower == pytest.approx(sl["clipped"], rel=1e-10)


def test_step_slice_with_momentum_holds_both_steps():
    """With momentum the clipped step leaves the plain step's line: the slice's second direction
    spans it, and the grid's points are the two steps' ends (against landscape.step_losses)."""
    cfg = TrainConfig(**dict(DIVERGING, lr=0.1, momentum=0.9, max_updates=50, eval_every=50))
    rec = run(cfg, None, snapshots=POLICY)
    snap = next(s for s in rec.result["snapshots"] if s["update"] == 50)
    p = L.at_snapshot(rec.config, snap, tau=0.5 * snap["grad_norm"])
    ss = W.step_slice(p, n_alpha=5, n_beta=3)
    d1 = p.step_unclipped
    d2 = p.step_clipped - (p.step_clipped @ d1) / (d1 @ d1) * d1
    d2 *= np.linalg.norm(p.step_clipped) / np.linalg.norm(d2)
    assert ss.slice.cosine == pytest.approx(0.0, abs=1e-12)
    a, b = ss.slice.alphas[ss.clipped[1]], ss.slice.betas[ss.clipped[0]]
    assert b != 0.0
    np.testing.assert_allclose(a * d1 + b * d2, p.step_clipped, rtol=1e-10,
                               atol=1e-12 * np.abs(p.step_clipped).max())
    sl = L.step_losses(p)
    assert ss.loss_at(ss.centre) == pytest.approx(sl["at_theta"], rel=1e-10)
    assert ss.loss_at(ss.unclipped) == pytest.approx(sl["unclipped"], rel=1e-10)
    assert ss.loss_at(ss.clipped) == pytest.approx(sl["clipped"], rel=1e-10)


def test_measure_run_at_the_spikes(diverged):
    cfg, rec = diverged
    pts = W.measure_run(rec, source="temporal_order", run="seed 0")
    kept = {s["update"]: s for s in rec.result["snapshots"]}
    assert sorted(p.update for p in pts) == sorted(u for u, s in kept.items()
                                                   if s["grad_norm"] is not None)
    assert {p.kind for p in pts} == {"spike", "ordinary"}
    m = RNN64(cfg)
    for p in pts:
        s = kept[p.update]
        assert p.grad_norm == pytest.approx(s["grad_norm"], rel=1e-12)
        if p.kind == "spike":
            assert p.median_ratio > POLICY.spike_factor
            assert p.tau == pytest.approx(_median_tau(s), rel=1e-12)
        assert 0.0 <= p.angle_deg <= 90.0 and math.isfinite(p.lambda_max_abs)
        # the curvature along g by central differences of the exact gradient along g / |g|,
        # Richardson-extrapolated (error O(eps^4): the third derivative is large on the wall)
        sp = L.at_snapshot(rec.config, s, tau=p.tau)
        th = sp.theta.astype(np.float64)
        gh = sp.grad / np.linalg.norm(sp.grad)

        def central(eps):
            return (L.window_loss(m, th + eps * gh, sp.window)[1]
                    - L.window_loss(m, th - eps * gh, sp.window)[1]) @ gh / (2 * eps)

        fd = (4 * central(5e-6) - central(1e-5)) / 3
        assert p.curvature_along_g == pytest.approx(fd, rel=1e-4, abs=1e-6)
        sl = L.step_losses(sp)
        assert (p.loss, p.loss_unclipped, p.loss_clipped) == (sl["at_theta"], sl["unclipped"],
                                                             sl["clipped"])


def RNN64(cfg):
    from clipviz.training.model import RNN

    return RNN(8, cfg.hidden, 4, activation=cfg.activation, parametrisation=cfg.parametrisation,
               output="softmax", bias=cfg.bias, dtype="float64")


def test_measure_run_needs_snapshots():
    cfg = TrainConfig(**dict(DIVERGING, max_updates=5, eval_every=5))
    with pytest.raises(ValueError, match="SnapshotPolicy"):
        W.measure_run(run(cfg, None))


# --- the one-unit model, against plain NumPy --------------------------------------------------


def _np_loss(w, b, T=SETTINGS.steps, x0=SETTINGS.x0, target=SETTINGS.target):
    """E_T of equation (14) with a sigmoid, in plain NumPy (complex-safe)."""
    x = x0 + 0j * w
    for _ in range(T):
        x = w / (1 + np.exp(-x)) + b
    return (1 / (1 + np.exp(-x)) - target) ** 2


def _np_grad(w, b):
    h = 1e-30  # complex step: exact to rounding
    return np.array([_np_loss(w + 1j * h, b).imag / h, _np_loss(w, b + 1j * h).imag / h])


def _np_hessian(w, b):
    out = np.empty((2, 2))
    for j in range(2):
        d = 1e-6 * max(1.0, abs((w, b)[j]))
        e = np.zeros(2)
        e[j] = d
        out[:, j] = (_np_grad(w + e[0], b + e[1]) - _np_grad(w - e[0], b - e[1])) / (2 * d)
    return 0.5 * (out + out.T)


# a 5 x 5 grid of descents over Figure 3's window, and the surface page's default start
STARTS = [(w, b) for w in np.linspace(-1, 11, 5) for b in np.linspace(-7, 1, 5)] + [(4.0, -3.6)]


def test_one_unit_spikes_against_numpy():
    lr, n = SETTINGS.wall_one_unit_lr, SETTINGS.wall_one_unit_steps
    pts = W.one_unit_spikes(STARTS, lr=lr, n_steps=n)
    assert len(pts) >= 20
    from clipviz import one_unit

    # the spikes are exactly the steps whose |g| is above 3 x the median of the previous 50
    expect = []
    for w0, b0 in STARTS:
        tr = one_unit.descend(w0, b0, lr=lr, n_steps=n)
        g = tr.grad_norm
        for i in range(10, len(g)):
            med = np.median(g[max(0, i - 50):i])
            if g[i] > SETTINGS.wall_spike_factor * med and i < len(tr.params):
                expect.append((f"start ({w0:.3g}, {b0:.3g})", i + 1, tr.params[i], med))
    assert [(p.run, p.update) for p in pts] == [(r, u) for r, u, _, _ in expect]
    for p, (_, _, (w, b), med) in zip(pts, expect):
        assert p.tau == pytest.approx(med, rel=1e-12)
        g = _np_grad(w, b)
        assert p.grad_norm == pytest.approx(np.linalg.norm(g), rel=1e-8)
        assert p.loss == pytest.approx(_np_loss(w, b).real, rel=1e-10, abs=1e-300)
        Hm = _np_hessian(w, b)
        scale = np.abs(Hm).max()
        assert p.curvature_along_g == pytest.approx(g @ Hm @ g / (g @ g), rel=1e-4,
                                                    abs=1e-6 * scale)
        lam, vec = np.linalg.eigh(Hm)
        i = int(np.argmax(np.abs(lam)))
        assert p.lambda_max_abs == pytest.approx(lam[i], rel=1e-4, abs=1e-6 * scale)
        ang = np.degrees(np.arccos(min(1.0, abs(g @ vec[:, i]) / np.linalg.norm(g))))
        assert p.angle_deg == pytest.approx(ang, abs=0.05)
        gn = np.linalg.norm(g)
        s = min(1.0, p.tau / gn)
        assert p.loss_unclipped == pytest.approx(_np_loss(w - lr * g[0], b - lr * g[1]).real,
                                                 rel=1e-7, abs=1e-12)
        assert p.loss_clipped == pytest.approx(
            _np_loss(w - lr * s * g[0], b - lr * s * g[1]).real, rel=1e-7, abs=1e-12)


# --- summaries -------------------------------------------------------------------------------


def test_summarise_against_scipy_and_numpy():
    rng = np.random.default_rng(0)
    g = np.exp(rng.normal(size=40))
    c = g ** 1.5 * np.exp(0.3 * rng.normal(size=40)) * rng.choice([-1, 1], 40)
    lam = np.abs(c) * 2.0
    a = rng.uniform(0, 90, 40)
    lu = rng.normal(5, 1, 40)
    lc = rng.normal(5, 1, 40)
    lu[0] = np.inf  # a plain step to a non-finite loss: higher
    lc[1] = np.inf  # a clipped step to one: not compared
    g_bad = g.copy()
    g_bad[2] = np.nan  # left out everywhere except the loss columns
    s = W.summarise("x", "x", g_bad, c, lam, a, lu, lc)
    keep = np.arange(40) != 2
    assert s.points == 39
    assert s.spearman_curvature == pytest.approx(spearmanr(g[keep], np.abs(c[keep])).statistic)
    assert s.angle_median == pytest.approx(np.median(a[keep]))
    assert (s.angle_q1, s.angle_q3) == pytest.approx(tuple(np.quantile(a[keep], [0.25, 0.75])))
    assert s.aligned_share == pytest.approx(np.mean(a[keep] < SETTINGS.wall_aligned_deg))
    assert s.curvature_share == pytest.approx(0.5)
    both = np.arange(40) != 1
    assert s.compared == 39 and s.unclipped_higher == int(np.sum(lu[both] > lc[both]))
    assert s.loss_gap_median == pytest.approx(np.median(lu[both] - lc[both]))
    empty = W.summarise("x", "none", [], [], [], [])
    assert empty.points == 0 and empty.spearman_curvature is None and empty.compared is None
    with pytest.raises(ValueError, match="same length"):
        W.summarise("x", "x", [1.0], [1.0, 2.0], [1.0], [1.0])


def test_verdict_says_what_the_numbers_say():
    def row(source, label, rho, angle, higher, n=20):
        return W.WallSummary(source, label, n, 1.0, rho, angle, angle / 2, angle * 2, 0.1, 0.5,
                             n, higher, 0.1)

    yes = rw.verdict([row("temporal_order", "TO, spikes", 0.9, 3.0, 15)])
    assert "supports" in yes[0] and "is aligned" in yes[1] and "lands higher in most" in yes[2]
    no = rw.verdict([row("temporal_order", "TO, spikes", 0.2, 40.0, 5)])
    assert "does NOT clearly support" in no[0] and "NOT aligned" in no[1]
    assert "does NOT land higher" in no[2]
    mixed = rw.verdict([row("temporal_order", "temporal order, spikes", 0.2, 40.0, 5),
                        row("music", "JSB Chorales, spikes", 0.9, 3.0, 15)])
    for line in mixed:
        assert "Mixed: it holds on JSB Chorales, not on temporal order." in line


# --- the command -----------------------------------------------------------------------------


@pytest.fixture
def small_settings(monkeypatch):
    """A tiny budget for the command: few one-unit descents, a coarse surface."""
    s = dataclasses.replace(SETTINGS, wall_one_unit_starts=3, wall_one_unit_resolution=48,
                            wall_max_spikes=6)
    monkeypatch.setattr(rw, "SETTINGS", s)
    return s


def _csv(path) -> list[dict]:
    return list(csv.DictReader(io.StringIO(path.read_text())))


def test_reproduce_wall_writes_every_output(shared_data, small_settings, tmp_path, capsys):
    out = tmp_path / "wall"
    rc = main(["reproduce", "wall", "--seeds", "1", "--max-updates", "120", "--out", str(out)])
    cap = capsys.readouterr()
    assert rc == 0
    for words in ("Spearman", "angle median", "plain higher", "1. Curvature along g",
                  "2. g along the top Hessian eigenvector", "3. The plain step lands higher",
                  "assumptions:"):
        assert words in cap.out
    rows = _csv(out / "table.csv")
    assert list(rows[0]) == list(rw.COLUMNS)
    labels = [r["label"] for r in rows]
    assert labels == ["temporal order, spikes", "temporal order, ordinary updates",
                      "JSB Chorales, spikes", "JSB Chorales, ordinary updates",
                      "one-unit descents, spikes", "one-unit surface, every grid point",
                      "one-unit surface, top 1 % of ‖g‖"]
    to = rows[0]
    assert int(to["points"]) > 0 and int(to["compared"]) == int(to["points"])
    assert 0 <= float(to["angle_median"]) <= 90 and -1 <= float(to["spearman_curvature"]) <= 1
    surface, top = rows[5], rows[6]
    assert surface["compared"] == "" and 0.9 * 48 ** 2 < int(surface["points"]) <= 48 ** 2
    assert int(top["points"]) == pytest.approx(0.01 * int(surface["points"]), abs=2)
    pts = _csv(out / "points.csv")
    assert list(pts[0]) == list(rw.POINT_COLUMNS)
    spikes = [p for p in pts if p["source"] == "temporal_order" and p["kind"] == "spike"]
    assert len(spikes) == int(to["points"])
    assert sum(float(p["loss_unclipped"]) > float(p["loss_clipped"]) for p in spikes) == \
        int(to["unclipped_higher"])
    rec = json.loads((out / "record.json").read_text())
    assert rec["what"] == "wall" and rec["code_version"].startswith(
        __import__("clipviz").__version__)
    assert rec["columns"] == list(rw.COLUMNS) and rec["point_columns"] == list(rw.POINT_COLUMNS)
    assert rec["settings"]["wall_one_unit_starts"] == 3
    assert len(rec["runs"]) == 2 and {r["source"] for r in rec["runs"]} == {"temporal_order",
                                                                           "music"}
    for r in rec["runs"]:
        c = TrainConfig.from_dict(r["config"])  # complete and valid
        assert c.clip == "none" and c.max_updates == 120 and c.seed == 0
    assert len(rec["points"]) == len(pts) and rec["assumptions"] == rw.assumptions()
    md = (out / "table.md").read_text()
    for col in ("median ‖g‖", "Spearman", "angle median", "aligned", "curv/λmax",
                "plain step higher", "median loss gap", "What the numbers say",
                "Stated assumptions"):
        assert col in md
    for stem in ("wall_angles", "wall_curvature", "wall_losses", "wall_profile"):
        _images_or_html(out, stem, cap.err)


def test_reproduce_wall_without_music_says_so(small_settings, tmp_path, capsys, monkeypatch):
    from clipviz import datasets

    def absent(name, kind):
        raise ValueError(f"data set {name!r} is not on this machine; run `clipviz data fetch "
                         f"{name}`")

    monkeypatch.setattr(datasets, "resolve", absent)
    out = tmp_path / "w.json"
    assert main(["reproduce", "wall", "--seeds", "1", "--max-updates", "60", "--out",
                 str(out)]) == 0
    cap = capsys.readouterr()
    assert "music part skipped" in cap.err and "clipviz data fetch jsb" in cap.err
    rec = json.loads(out.read_text())
    assert not any(r["source"] == "music" for r in rec["rows"])
    assert any("music part skipped" in n for n in rec["notes"])


@pytest.mark.parametrize("argv,msg", [(["--scale", "paper"], "one scale"),
                                      (["--controls"], "--controls is not"),
                                      (["--datasets", "jsb,piano"], "one music set"),
                                      (["--threshold", "-1"], "--threshold must be")])
def test_reproduce_wall_bad_arguments(argv, msg, capsys):
    assert main(["reproduce", "wall", *argv]) == 2
    assert msg in capsys.readouterr().err
