"""Music and text loaders: real .mat files, restricted pickles, corrupt files."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from clipviz import datasets

COUNTS = {"JSB_Chorales.mat": (229, 76, 77), "Nottingham.mat": (694, 173, 170),
          "Piano_midi.mat": (87, 12, 25)}


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_mat_files_have_the_published_split_counts_and_88_keys(shared_data, name):
    d = datasets.load_music(shared_data / "music" / name)
    assert tuple(len(d[s]) for s in datasets.SPLITS) == COUNTS[name]
    for s in datasets.SPLITS:
        for song in d[s]:
            assert song.ndim == 2 and song.shape[1] == 88 and song.dtype == np.uint8
            assert set(np.unique(song)) <= {0, 1}
    assert sum(int(x.sum()) for x in d["train"]) > 0


def _songs():
    return {"train": [[[60, 64, 67], [], [21, 108]], [[62]]],
            "valid": [[[70], [71]]], "test": [[[40, 41, 42]]]}


@pytest.mark.parametrize("protocol", [2, 4, pickle.HIGHEST_PROTOCOL])
def test_pickle_of_note_lists_gives_piano_rolls(tmp_path, protocol):
    p = tmp_path / "x.pickle"
    p.write_bytes(pickle.dumps(_songs(), protocol=protocol))
    d = datasets.load_music(p)
    roll = d["train"][0]
    assert roll.shape == (3, 88)
    assert list(np.nonzero(roll[0])[0]) == [60 - 21, 64 - 21, 67 - 21]
    assert roll[1].sum() == 0 and list(np.nonzero(roll[2])[0]) == [0, 87]
    assert len(d["valid"]) == 1 and len(d["test"]) == 1


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _EvalEvil:
    def __reduce__(self):
        return (eval, ("__import__('os').getpid()",))


def test_malicious_pickle_is_refused_without_running_anything(tmp_path):
    marker = tmp_path / "pwned"
    for payload in ({"train": [_Evil(marker)], "valid": [], "test": []}, _EvalEvil()):
        p = tmp_path / "evil.pickle"
        p.write_bytes(pickle.dumps(payload, protocol=2))
        with pytest.raises(ValueError, match="refused"):
            datasets.load_music(p)
    assert not marker.exists()
    # a numpy array is not a builtin type either
    p = tmp_path / "np.pickle"
    p.write_bytes(pickle.dumps({"train": np.zeros(3)}))
    with pytest.raises(ValueError, match="refused"):
        datasets.load_music(p)


def test_corrupt_and_truncated_files_give_clear_errors(tmp_path, shared_data):
    good = pickle.dumps(_songs(), protocol=2)
    p = tmp_path / "t.pickle"
    p.write_bytes(good[: len(good) // 2])
    with pytest.raises(ValueError, match="corrupt or truncated"):
        datasets.load_music(p)
    p.write_bytes(b"not a pickle at all")
    with pytest.raises(ValueError, match="corrupt or truncated"):
        datasets.load_music(p)
    m = tmp_path / "t.mat"
    raw = (shared_data / "music" / "JSB_Chorales.mat").read_bytes()
    m.write_bytes(raw[: len(raw) // 3])
    with pytest.raises(ValueError, match="corrupt or truncated"):
        datasets.load_music(m)
    m.write_bytes(b"\x00" * 300)
    with pytest.raises(ValueError, match="corrupt or truncated|no 'traindata'"):
        datasets.load_music(m)


def test_bad_pickle_contents_are_rejected(tmp_path):
    p = tmp_path / "b.pickle"
    bad = _songs()
    bad["train"][0][0] = [12]
    p.write_bytes(pickle.dumps(bad))
    with pytest.raises(ValueError, match="MIDI number 21..108"):
        datasets.load_music(p)
    p.write_bytes(pickle.dumps({"train": []}))
    with pytest.raises(ValueError, match="'train', 'valid' and 'test'"):
        datasets.load_music(p)
    with pytest.raises(ValueError, match=r"\.mat, \.pickle or \.pkl"):
        (tmp_path / "x.txt").write_text("hi")
        datasets.load_music(tmp_path / "x.txt")


def test_ptb_word_format_to_character_format():
    assert datasets.ptb_words_to_chars(" aer banknote  berlitz \n\n the <unk> N \n") == \
        "aer_banknote_berlitz\nthe_<unk>_N\n"


def test_text_splits_and_errors(tmp_path, shared_data):
    d = datasets.load_text(shared_data / "text" / "tinyshakespeare" / "input.txt")
    n = sum(len(t) for t in d.values())
    assert n == 1115394 and abs(len(d["train"]) / n - 0.9) < 1e-3
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("caf\xe9 ".encode("latin-1") * 100)
    with pytest.raises(ValueError, match="not UTF-8"):
        datasets.load_text(bad)
    (tmp_path / "ptb").mkdir()
    with pytest.raises(ValueError, match="ptb.train.txt"):
        datasets.load_text(tmp_path / "ptb")
    vocab = datasets.vocabulary("abcabcx", max_size=3)
    assert vocab[0] == "\x00" and len(vocab) == 3
    assert datasets.encode("abz", ["\x00", "a", "b"]).tolist() == [1, 2, 0]


def test_resolve_known_and_unknown_names(shared_data, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert datasets.resolve("jsb", "music").name == "JSB_Chorales.mat"
    with pytest.raises(ValueError, match="not a music|is a characters"):
        datasets.resolve("shakespeare", "music")
    with pytest.raises(ValueError, match="known music data set"):
        datasets.resolve("nosuchthing", "music")
    monkeypatch.setattr(datasets, "data_dirs", lambda: [tmp_path])
    with pytest.raises(ValueError, match="clipviz data fetch musedata"):
        datasets.resolve("musedata", "music")
