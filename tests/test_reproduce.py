"""`clipviz reproduce` (issue 15): the protocols, the columns, the controls, every output file,
and a missing data set's message (tiny budgets)."""

from __future__ import annotations

import csv
import io
import json
import math

import numpy as np
import pytest

from clipviz import datasets
from clipviz.cli import main
from clipviz.config import SETTINGS
from clipviz.jobs import wilson_interval
from clipviz.training import RunRecord, TrainConfig
from clipviz.training import reproduce as rp


def _csv(path) -> list[dict]:
    return list(csv.DictReader(io.StringIO(path.read_text())))


def _images_or_html(out_dir, stem: str, err: str) -> None:
    """PNG and SVG where kaleido and a Chrome are there, else HTML and a message saying so."""
    png, svg, html = (out_dir / f"{stem}.{e}" for e in ("png", "svg", "html"))
    if png.exists():
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
        assert "<svg" in svg.read_text()[:2000]
    else:
        assert html.exists() and "plotly" in html.read_text()[:5000].lower()
        assert "pip install" in err


def test_figure7_authors_protocol_writes_every_output(tmp_path, capsys):
    out = tmp_path / "f7"
    rc = main(["reproduce", "figure7", "--protocol", "authors", "--lengths", "10,12", "--seeds", "2",
               "--max-updates", "30", "--out", str(out)])
    cap = capsys.readouterr()
    assert rc == 0
    assert "protocol 'authors'" in cap.out and "init smart_tanh_authors" in cap.out
    assert "solved = 10000 fresh sequences" in cap.out and "Rescaling success" in cap.out
    assert "RNN.py:234-243" in cap.out  # the assumptions, with the lines of the authors' code
    rows = _csv(out / "table.csv")
    assert list(rows[0]) == list(rp.FIGURE7_COLUMNS)
    assert [(r["length"], r["clip"]) for r in rows] == [("10", "none"), ("10", "norm_shrink"),
                                                        ("12", "none"), ("12", "norm_shrink")]
    for r in rows:
        k, n = int(r["solved"]), int(r["runs"])
        assert n == 2 and float(r["success_rate"]) == k / n
        assert (float(r["wilson_lo"]), float(r["wilson_hi"])) == pytest.approx(wilson_interval(k, n), abs=1e-6)
    rec = json.loads((out / "record.json").read_text())
    assert rec["protocol"] == "authors" and rec["scale"] == "small" and rec["what"] == "figure7"
    assert rec["code_version"].startswith(__import__("clipviz").__version__)
    assert rec["assumptions"] == rp.FIGURE7_PROTOCOLS["authors"].assumptions
    assert rec["budget"]["max_updates"] == 30 and len(rec["runs"]) == 8
    for run in rec["runs"]:
        c = TrainConfig.from_dict(run["config"])  # every config is complete and valid
        assert (c.init, c.lr, c.batch_size, c.threshold, c.check_sequences, c.parametrisation,
                c.temporal_variant) == ("smart_tanh_authors", 0.01, 20, 1.0, 10_000, "standard",
                                        "authors")
        assert run["series"]["eval_updates"][0] == 0 and len(run["series"]["rho"]) == len(
            run["series"]["eval_updates"])
        assert "solved" in run["result"]
    for r in rows:  # the new columns from the runs' own traces (30 updates: all in early_grad_norms)
        runs = [x for x in rec["runs"] if x["config"]["seq_len"] == int(r["length"])
                and x["config"]["clip"] == r["clip"]]
        above = [np.mean([g is None or g > 1.0 for g in x["result"]["early_grad_norms"]]) for x in runs]
        assert float(r["above_tau_fraction_mean"]) == pytest.approx(np.mean(above), abs=1e-6)
        assert float(r["clipped_fraction_mean"]) == pytest.approx(
            np.mean([x["result"]["clipped_fraction"] for x in runs]), abs=1e-6)
        assert int(r["runs_with_shrink"]) == sum(x["result"]["replaced"] > 0 for x in runs)
        if r["clip"] == "none":
            assert float(r["clipped_fraction_mean"]) == 0.0
    assert "||g|| > τ" in cap.out and "solved by one only" in cap.out and "shrinks (runs)" in cap.out
    md = (out / "table.md").read_text()
    assert "protocol 'authors'" in md and "| 12 | BPTT |" in md and "Stated assumptions" in md
    for stem in ("figure7", "traces_10", "traces_12"):
        _images_or_html(out, stem, cap.err)


def test_figure7_counts_runs_solved_by_one_method_only_by_seed():
    def group(clip, solved):
        recs = [RunRecord(config={}, status="finished", series={}, result={"solved": ok})
                for ok in solved]
        return rp.Group((20, clip), clip, [{"seed": s} for s in range(len(solved))], recs)

    groups = [group("none", [True, True, False, False, True]),
              group("norm_shrink", [True, False, True, True, False])]
    rows = [{}, {}]
    rp._solved_only(groups, rows)
    assert [r["solved_only_here"] for r in rows] == [2, 2]  # seeds 1, 4 against seeds 2, 3
    groups[1].configs = groups[1].configs[::-1]  # paired by seed, not by position
    groups[1].records = groups[1].records[::-1]
    rp._solved_only(groups, rows)
    assert [r["solved_only_here"] for r in rows] == [2, 2]


def test_figure7_protocols_say_what_they_are():
    p = rp.FIGURE7_PROTOCOLS
    assert set(p) == {"paper", "authors", "clipviz"}
    assert (p["paper"].config["activation"], p["paper"].config["lr"], p["paper"].config["batch_size"],
            p["paper"].config["hidden"]) == ("sigmoid", 0.001, 1000, 50)
    assert p["paper"].budgets["paper"]["max_updates"] == 100_000
    assert any(a.startswith("open") for a in p["paper"].assumptions)
    assert p["authors"].methods[1][0] == "norm_shrink" and p["clipviz"].methods == rp.METHODS
    assert "clipviz's own" in p["clipviz"].title
    for proto in p.values():
        for budget in proto.budgets.values():
            for T in budget["lengths"]:
                TrainConfig(task="temporal_order", seq_len=T, max_updates=budget["max_updates"],
                            eval_every=budget["eval_every"], **proto.config)


def test_figure7_default_protocol_follows_the_scale(tmp_path, capsys):
    assert main(["reproduce", "figure7", "--lengths", "6", "--seeds", "1", "--max-updates", "5"]) == 0
    assert "protocol 'clipviz'" in capsys.readouterr().out
    assert main(["reproduce", "table1", "--protocol", "authors"]) == 2
    assert "--protocol is for figure7" in capsys.readouterr().err


def test_table1_columns_controls_and_files(shared_data, tmp_path, capsys):
    out = tmp_path / "t1"
    rc = main(["reproduce", "table1", "--datasets", "nottingham", "--seeds", "2", "--max-updates",
               "12", "--controls", "--out", str(out)])
    cap = capsys.readouterr()
    assert rc == 0
    for col in ("test (best)", "test (final)", "best at", "diverged", "final ρ", "clipped", "paper test"):
        assert col in cap.out
    assert rp.OBJECTIVE in cap.out  # the normalisation, stated
    rows = _csv(out / "table.csv")
    assert list(rows[0]) == list(rp.TABLE_COLUMNS)
    assert [r["method"].split(",")[0] for r in rows] == ["BPTT", "Rescaling", "BPTT", "Rescaling"]
    bptt, resc, lr_ctl, tau_ctl = rows
    assert (float(bptt["paper_test_mean"]), float(resc["paper_test_mean"])) == (4.57, 4.05)
    assert lr_ctl["paper_test_mean"] == "" and tau_ctl["paper_test_mean"] == ""
    rec = json.loads((out / "record.json").read_text())
    runs = rec["runs"]
    assert len(runs) == 8 and rp.OBJECTIVE in rec["assumptions"]
    by = lambda g: [r for r in runs if r["group"] == g]  # noqa: E731
    # the controls are what they say: lr x mean min(1, τ/||g||) of the rescaling runs; τ = the
    # median ||g|| of the BPTT runs' first updates
    factors = [r["result"]["step_factor_mean"] for r in by("Rescaling")]
    assert float(lr_ctl["lr"]) == pytest.approx(0.001 * np.mean(factors), rel=1e-5)
    early = [x for r in by("BPTT") for x in r["result"]["early_grad_norms"] if x is not None]
    assert len(early) == 2 * 12 and float(tau_ctl["threshold"]) == pytest.approx(np.median(early), rel=1e-5)
    for r in rows:  # each row from its runs
        rs = [x["result"] for x in by(r["method"])]
        assert float(r["test_best_mean"]) == pytest.approx(np.mean([x["test_nll"] for x in rs]), rel=1e-5)
        assert float(r["test_final_mean"]) == pytest.approx(np.mean([x["final_test_nll"] for x in rs]), rel=1e-5)
        assert int(r["diverged"]) == sum(x["diverged"] for x in rs)
        assert float(r["clipped_fraction_mean"]) == pytest.approx(np.mean([x["clipped_fraction"] for x in rs]), rel=1e-5)
    assert "Nottingham" in (out / "table.md").read_text()
    _images_or_html(out, "traces_nottingham", cap.err)


def test_table2_stand_in_and_missing_data_sets(shared_data, tmp_path, capsys):
    for name in ("ptb", "text8"):
        try:
            datasets.resolve(name, "characters")
            pytest.skip(f"{name} is on this machine: the missing-data message cannot be checked")
        except ValueError:
            pass
    assert main(["reproduce", "table2"]) == 2
    err = capsys.readouterr().err
    assert "no data set for this table" in err and "clipviz data fetch" in err
    assert "--datasets shakespeare" in err
    assert main(["reproduce", "table2", "--datasets", "shakespeare", "--seeds", "1", "--max-updates",
                 "3"]) == 0
    out = capsys.readouterr().out
    assert "Tiny Shakespeare (stand-in)" in out and "threshold shakespeare 45" in out
    assert "--scale small: 100 sigmoid units" in out  # small scale: 100 units; --scale paper: 500
    paper = rp.SCALES["table2"]["paper"]
    cfg = TrainConfig.for_task("characters", dataset="ptb", **paper["config"])
    assert (cfg.hidden, cfg.activation, cfg.bias, cfg.seq_len, cfg.threshold) == (500, "sigmoid", False,
                                                                                 180, 45.0)


def test_divergence_is_defined_after_the_best_checkpoint():
    k = SETTINGS.reproduce_divergence_factor
    ok = {"skipped": 0, "nonfinite_loss": 0}
    assert not rp.divergence(ok, [30.0, 9.0, 8.0, 8.0 * k * 0.99], "music")[0]  # early high is training
    bad, why = rp.divergence(ok, [30.0, 9.0, 8.0, 8.0 * k * 1.01], "music")
    assert bad and "after the best" in why
    assert rp.divergence({"skipped": 2, "nonfinite_loss": 0}, [9.0], "music")[0]
    assert rp.divergence(ok, [9.0, math.nan], "music")[0]
    assert not rp.divergence(ok, [0.3, 0.9, 0.2], "temporal_order")[0]  # accuracy: higher is better


def test_compact_keeps_what_the_outputs_use():
    n = 2500
    g = [float(i % 7 + 1) for i in range(n)]
    g[10] = None
    rho = [None] * n
    valid = [None] * n
    for u in (999, 1999, 2499):
        rho[u], valid[u] = 1.5, 3.0
    series = {"update": list(range(1, n + 1)), "grad_norm": g, "loss": [1.0] * n, "rho": rho,
              "valid": valid}
    rec = RunRecord(config={"clip": "norm", "threshold": 4.0, "task": "music"}, status="finished",
                    series=series, result={"initial_rho": 0.9, "skipped": 0})
    c = rp._compact(rec)
    fin = np.array([x for x in g if x is not None])
    assert c.result["step_factor_mean"] == pytest.approx(np.mean(np.minimum(1, 4.0 / fin)))
    assert len(c.result["early_grad_norms"]) == rp.EARLY_UPDATES and c.result["early_grad_norms"][10] is None
    assert c.series["eval_updates"] == [0, 1000, 2000, 2500] and c.series["rho"] == [0.9, 1.5, 1.5, 1.5]
    assert len(c.series["updates"]) <= rp.TRACE_POINTS and c.series["updates"][-1] == n
    assert max(c.series["grad_norm_max"]) == 7.0 and not c.result["diverged"]


def test_figures_show_the_wilson_intervals_and_log_traces():
    from clipviz.figures.reproduce import SuccessPoint, Trace, success_figure, traces_figure

    fig = success_figure([SuccessPoint("BPTT", 10, 1, 5), SuccessPoint("Rescaling", 10, 5, 5),
                          SuccessPoint("BPTT", 20, 0, 5), SuccessPoint("Rescaling", 20, 4, 5)], "t")
    bptt = fig.data[0]
    lo, hi = wilson_interval(1, 5)
    assert bptt.y[0] == 0.2 and bptt.error_y.array[0] == pytest.approx(hi - 0.2)
    assert bptt.error_y.arrayminus[0] == pytest.approx(0.2 - lo)
    with pytest.raises(ValueError):
        success_figure([], "t")
    tr = traces_figure([Trace("BPTT", "a", [1, 2], [3.0, None], [0, 2], [0.9, 1.2]),
                        Trace("Rescaling", "b", [1, 2], [3.0, 50.0], [0, 2], [0.9, 1.1], threshold=1.0)],
                       "t", activation="tanh")
    assert tr.layout.yaxis.type == "log" and tr.layout.yaxis2.type is None  # ρ within a decade: linear
    wide = traces_figure([Trace("BPTT", "a", [1, 2], [3.0, 1e9], [0, 2], [0.9, 40.0])], "t")
    assert wide.layout.yaxis2.type == "log"
    assert any(t.name == "τ = 1" and list(t.y) == [1.0, 1.0] for t in tr.data)
    assert sum(1 for t in tr.data if t.showlegend is not False) == 2  # one legend entry per method


def test_without_kaleido_the_figures_are_html_and_the_message_says_how(tmp_path, monkeypatch):
    import plotly.io as pio

    from clipviz.figures.reproduce import SuccessPoint, success_figure

    def broken(*a, **k):
        raise RuntimeError("Kaleido requires Google Chrome to be installed")

    monkeypatch.setattr(pio, "write_images", broken, raising=False)
    monkeypatch.setattr("plotly.graph_objects.Figure.write_image", broken)
    said = []
    paths = rp.write_figures({"figure7": success_figure([SuccessPoint("BPTT", 10, 1, 2)], "t")},
                             tmp_path, said.append)
    assert paths == [str(tmp_path / "figure7.html")] and (tmp_path / "figure7.html").exists()
    assert "pip install" in said[0] and "Chrome" in said[0]
