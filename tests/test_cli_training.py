"""`clipviz train` and `clipviz reproduce` end to end (tiny sizes)."""

from __future__ import annotations

import json

from clipviz.cli import main
from clipviz.training import RunRecord


def test_train_cli_summary_and_record(tmp_path, capsys):
    out = tmp_path / "run.json"
    rc = main(["train", "--task", "temporal_order", "--seq-len", "8", "--hidden", "8",
               "--activation", "tanh", "--batch-size", "4", "--max-updates", "20",
               "--eval-every", "10", "--clip", "norm", "--threshold", "0.5", "--out", str(out)])
    cap = capsys.readouterr()
    assert rc == 0
    assert "run finished: temporal_order" in cap.out and "test accuracy" in cap.out
    assert "20/20" in cap.err  # progress
    rec = RunRecord.from_json(out.read_text())
    assert rec.config["threshold"] == 0.5 and len(rec.series["loss"]) == 20


def test_train_cli_keeps_snapshots_when_asked(tmp_path, capsys):
    out = tmp_path / "run.json"
    args = ["train", "--task", "temporal_order", "--seq-len", "8", "--hidden", "8", "--batch-size", "4",
            "--max-updates", "20", "--eval-every", "10", "--clip", "norm", "--threshold", "0.01",
            "--momentum", "0", "--quiet", "--out", str(out)]
    assert main(args) == 0
    assert "snapshots" not in RunRecord.from_json(out.read_text()).result  # only when asked
    assert main(args + ["--snapshots"]) == 0
    snaps = RunRecord.from_json(out.read_text()).result["snapshots"]
    # tau far below |g|: every update clipped, the policy's largest four kept
    assert len(snaps) == 4 and all(s["kinds"] == ["clipped"] for s in snaps)
    assert "snapshots kept at updates " + ", ".join(str(s["update"]) for s in snaps) \
        in capsys.readouterr().out


def test_train_cli_bad_values_give_a_message_not_a_traceback(capsys):
    assert main(["train", "--lr", "-1"]) == 2
    err = capsys.readouterr().err
    assert "lr must be in (0, 100]" in err and "Traceback" not in err
    assert main(["train", "--task", "music", "--dataset", "/no/such.mat"]) == 2
    assert "known music data set" in capsys.readouterr().err


def test_train_cli_music_uses_the_papers_preset(shared_data, capsys):
    rc = main(["train", "--task", "music", "--dataset", "jsb", "--hidden", "10",
               "--max-updates", "5", "--eval-every", "5", "--quiet"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "10 tanh units, clip=norm (tau=120)" in out and "test nll" in out


def test_reproduce_figure7_tiny(tmp_path, capsys):
    out = tmp_path / "f7.json"
    rc = main(["reproduce", "figure7", "--lengths", "8", "--seeds", "1", "--max-updates", "20",
               "--out", str(out)])
    cap = capsys.readouterr()
    assert rc == 0 and "Rescaling success" in cap.out and "[2/2]" in cap.err
    data = json.loads(out.read_text())
    assert len(data["runs"]) == 2 and {r["config"]["clip"] for r in data["runs"]} == {"none", "norm"}


def test_reproduce_table1_tiny(shared_data, capsys):
    rc = main(["reproduce", "table1", "--datasets", "jsb", "--seeds", "1", "--max-updates", "5"])
    cap = capsys.readouterr()
    assert rc == 0
    assert "JSB Chorales" in cap.out and "7.06±0.052" not in cap.out  # no paper row for JSB
    assert main(["reproduce", "table2", "--datasets", "nosuch"]) == 2
    assert "no data set for this table" in capsys.readouterr().err
