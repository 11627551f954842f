"""Lanes over songs/text: state carried within a sequence, reset between, padding masked."""

from __future__ import annotations

import numpy as np
import pytest

from clipviz.training.model import RNN
from clipviz.training.tasks import SequenceStream, split_segments


def _songs(rng, n=5):
    return [(rng.random((int(rng.integers(5, 40)), 6)) < 0.3).astype(np.uint8) for _ in range(n)]


@pytest.mark.parametrize("param", ["paper", "standard"])
def test_windowed_lanes_equal_whole_sequence_forward(param):
    rng = np.random.default_rng(0)
    songs = _songs(rng)
    m = RNN(6, 7, 6, activation="tanh", parametrisation=param, output="sigmoid")
    m.theta[:] = rng.normal(0, 0.5, m.n_params)
    # reference: each song in one window from a zero state
    ref = 0.0
    for s in songs:
        X = s[:-1, None, :].astype(float)
        Y = s[1:, None, :].astype(float)
        res, _ = m.window(m.zero_state(1), X, Y, np.ones((len(s) - 1, 1)))
        ref += res.loss_sum
    # windows of 7 steps over 3 lanes, state carried, reset at each new song
    stream = SequenceStream(songs, 3, 7, lambda seg: seg, 6, "binary", cycle=False)
    state = m.zero_state(3)
    total = weight = 0.0
    while (w := stream.next()) is not None:
        X, Y, W, reset = w
        state[reset] = 0.0
        res, state = m.window(state, X, Y, W)
        total += res.loss_sum
        weight += res.weight_sum
    assert weight == sum(len(s) - 1 for s in songs)
    assert total == pytest.approx(ref, rel=1e-12)


def test_training_stream_cycles_and_resets():
    rng = np.random.default_rng(1)
    seqs = [np.arange(10), np.arange(100, 105)]
    stream = SequenceStream(seqs, 1, 4, lambda seg: np.asarray(seg, float)[:, None], 1, "class",
                            rng=rng, cycle=True)
    seen = []
    for _ in range(12):
        X, Y, W, reset = stream.next()
        n = int(W[:, 0].sum())
        seen.append((bool(reset[0]), X[:n, 0, 0].astype(int).tolist(), Y[:n, 0].tolist()))
        assert np.all(W[n:, 0] == 0)
        assert Y[:n, 0].tolist() == [x + 1 for x in X[:n, 0, 0].astype(int).tolist()]
    starts = [s for s in seen if s[0]]
    assert all(s[1][0] in (0, 100) for s in starts)  # a reset always starts a sequence
    assert not any(s[0] for s in seen if s[1][0] not in (0, 100))  # otherwise the state is carried


def test_split_segments_cover_the_text():
    ids = np.arange(1000)
    segs = split_segments(ids, 7, 2)
    assert len(segs) == 7 and np.array_equal(np.concatenate(segs), ids)
    assert len(split_segments(np.arange(5), 32, 2)) == 2
