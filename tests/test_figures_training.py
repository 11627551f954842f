"""The training figures (clipviz.figures.training): the comparison with the paper's table."""

from __future__ import annotations

import math

import pytest


def test_paper_comparison_uses_finished_runs_only():
    from clipviz.figures.training import paper_comparison
    from clipviz.runstore import Run

    def run(ds, clip, v, status="finished", task="music"):
        key = "test_nll" if task == "music" else "test_bpc"
        return Run(id="x", sweep_id=None, label=None, config={"task": task, "dataset": ds, "clip": clip},
                   backend="local", status=status, reason=None, worker=None, heartbeat=None, created=0,
                   updated=0, started=0, ended=0, done=1, total=1, cancel_requested=False,
                   result={key: v}, code_version=None)

    rows = {r["dataset"]: r for r in paper_comparison([
        run("nottingham", "none", 5.0), run("nottingham", "none", 6.0), run("nottingham", "norm", 4.5),
        run("nottingham", "norm", 1.0, status="cancelled"), run("ptb", "norm", 1.7, task="characters"),
        run("jsb", "norm", 9.0)])}
    assert rows["nottingham"]["paper_bptt"] == "4.57" and rows["nottingham"]["paper_rescaling"] == "4.05"
    assert rows["nottingham"]["yours_bptt"] == "5.50 ± 0.71 (n=2)"
    assert rows["nottingham"]["yours_rescaling"] == "4.50 (n=1)"
    assert rows["ptb"]["yours_rescaling"] == "1.70 (n=1)" and rows["ptb"]["yours_bptt"] == "—"
    assert "jsb" not in rows


def _metrics(n, every=10, rho=2.0):
    return {"update": list(range(1, n + 1)), "loss": [1.0] * n, "grad_norm": [0.5 + (i % 7) for i in range(n)],
            "clipped": [i % 7 > 1 for i in range(n)],
            "rho": [rho if (i + 1) % every == 0 else None for i in range(n)],
            "valid": [0.5 if (i + 1) % every == 0 else None for i in range(n)]}


def test_curves_figure_autoranges_every_x_axis():
    """The ‖g‖ and validation panels once kept x in [-1, 6]: the empty figure has no trace there, and
    the next figure (same uirevision) took the unset range as held UI state.  Every x axis now says
    autorange, in the empty figure and in one with runs."""
    from clipviz.figures.training import Curve, curves_figure

    for curves in ([], [Curve("a", _metrics(100), 1.0, "norm", initial_rho=0.7, activation="tanh")]):
        fig = curves_figure(curves)
        assert [fig.layout[f"xaxis{i}"].autorange for i in ("", 2, 3, 4)] == [True] * 4


def test_rho_starts_at_update_0_with_a_line_per_activation():
    from clipviz.figures.training import Curve, curves_figure, rho_reference

    assert rho_reference("tanh") == 1.0 and rho_reference("sigmoid") == 4.0  # 1/γ, γ = max σ'
    tanh = Curve("bptt", _metrics(50), None, "none", initial_rho=0.7, activation="tanh")
    fig = curves_figure([tanh])
    (rho,) = [tr for tr in fig.data if tr.yaxis == "y3"]
    assert list(rho.x) == [0, 10, 20, 30, 40, 50] and rho.y[0] == pytest.approx(0.7)
    assert [sh.y0 for sh in fig.layout.shapes] == [1.0]
    assert [a.text for a in fig.layout.annotations if "ρ = 1/γ" in (a.text or "")] == [
        "ρ = 1/γ = 1 (tanh, γ = max σ′ = 1)"]
    sig = Curve("sig", _metrics(50, rho=5.0), 1.0, "norm", initial_rho=0.07, activation="sigmoid")
    fig = curves_figure([sig])
    assert [sh.y0 for sh in fig.layout.shapes] == [4.0]
    (label,) = [a for a in fig.layout.annotations if "ρ = 1/γ" in (a.text or "")]
    assert "sigmoid" in label.text and label.y == pytest.approx(math.log10(4.0))  # log axis: log10
    fig = curves_figure([tanh, sig])
    assert sorted(sh.y0 for sh in fig.layout.shapes) == [1.0, 4.0]
    assert fig.layout.yaxis3.type == "log"
    # a run without a recorded start (telemetry of a run still going) starts at its first evaluation
    fig = curves_figure([Curve("r", _metrics(30), None, "none", activation="tanh")])
    assert [tr for tr in fig.data if tr.yaxis == "y3"][0].x[0] == 10


def test_success_rate_figure_shows_n_and_the_wilson_interval():
    from clipviz.figures.training import success_rate_figure
    from clipviz.jobs import wilson_interval

    summary = {"lengths": [10, 20], "methods": ["none", "norm"],
               "rate": {"none": [0.2, None], "norm": [1.0, 0.5]},
               "n": {"none": [5, 0], "norm": [5, 4]}, "solved": {"none": [1, 0], "norm": [5, 2]},
               "interval": {"none": [wilson_interval(1, 5), None],
                            "norm": [wilson_interval(5, 5), wilson_interval(2, 4)]},
               "finished": 14, "total": 14}
    fig = success_rate_figure(summary)
    none, norm = fig.data
    assert list(norm.text) == ["n=5", "n=4"] and list(none.text) == ["n=5", ""]
    lo, hi = wilson_interval(2, 4)
    assert norm.error_y.array[1] == pytest.approx(100 * hi - 50) and \
        norm.error_y.arrayminus[1] == pytest.approx(50 - 100 * lo)
    assert norm.error_y.array[0] == pytest.approx(0) and \
        norm.error_y.arrayminus[0] == pytest.approx(100 - 100 * wilson_interval(5, 5)[0])
    assert none.error_y.array[1] is None and "1/5 solved" in none.hovertext[0]
    assert "95 % Wilson" in none.hovertext[0]
    # a summary from before the counts (an older API client) still draws
    old = {k: summary[k] for k in ("lengths", "methods", "rate")}
    assert [list(tr.y) for tr in success_rate_figure(old).data] == [[20.0, None], [100.0, 50.0]]


def test_progress_text_has_no_time_left_once_nothing_runs():
    from clipviz.figures.training import progress_text

    assert progress_text(100, 1000, 1.0, 11.0) == "100 / 1000 updates · 10 updates/s · 90 s left"
    assert progress_text(100, 1000, 1.0, 11.0, running=False) == "100 / 1000 updates · 10 updates/s"


def test_log_ticks_are_1_2_5_over_a_few_decades_and_decades_beyond():
    from clipviz.figures.training import log_ticks

    t = log_ticks([0.7, None, 1.4, float("nan"), 3.0])
    assert {0.5, 1.0, 2.0, 5.0} <= set(t) and min(t) <= 0.7 and max(t) >= 3.0
    t = log_ticks([0.05, 1e4])
    assert all(math.log10(x) == round(math.log10(x)) for x in t) and min(t) <= 0.05 and max(t) >= 1e4
    assert log_ticks([]) and log_ticks([0.0, -1.0]) == log_ticks([])
