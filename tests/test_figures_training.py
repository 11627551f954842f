"""The training figures (clipviz.figures.training): the comparison with the paper's table."""

from __future__ import annotations


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
