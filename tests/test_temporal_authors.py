"""The authors' temporal-order generator (``temporal_variant="authors"``) against a literal
transcription of ``pascanur/trainingRNNs`` tempOrder.py and RNN.py, and the success check that
stops a run without touching its training data (issue 15, Figure 7 ``--protocol authors``)."""

from __future__ import annotations

import numpy as np
import pytest

from clipviz.training import TrainConfig, train
from clipviz.training.runner import Trainer
from clipviz.training.tasks import (AUTHORS_SYMBOLS, MIN_AUTHORS_LENGTH, temporal_order_authors,
                                    temporal_order_authors_positions, temporal_order_window)


# --- a literal transcription (Python 3) of the authors' code -------------------------------------
def _generate(rng, batchsize, length):
    """tempOrder.py:55-70, TempOrderTask.generate, line for line (floatX float64)."""
    l = length
    p0 = rng.randint(int(l*.1), size=(batchsize,)) + int(l*.1)
    v0 = rng.randint(2, size=(batchsize,))
    p1 = rng.randint(int(l*.1), size=(batchsize,)) + int(l*.5)
    v1 = rng.randint(2, size=(batchsize,))
    targ_vals = v0 + v1*2
    vals = rng.randint(4, size=(l, batchsize))+2
    vals[p0, np.arange(batchsize)] = v0
    vals[p1, np.arange(batchsize)] = v1
    data = np.zeros((l, batchsize, 6))
    targ = np.zeros((batchsize, 4))
    data.reshape((l*batchsize, 6))[np.arange(l*batchsize), vals.flatten()] = 1.
    targ[np.arange(batchsize), targ_vals] = 1.
    return data, targ


def _smart_tanh(rng, nin, n_hidden, nout):
    """RNN.py:125-140, the 'smart_tanh' initialisation (floatX float32)."""
    W_uh = np.asarray(rng.normal(size=(nin, n_hidden), scale=.01, loc=.0), dtype="float32")
    W_hh = np.asarray(rng.normal(size=(n_hidden, n_hidden), scale=.01, loc=.0), dtype="float32")
    for dx in range(n_hidden):
        spng = rng.permutation(n_hidden)
        W_hh[dx][spng[15:]] = 0.
    sr = np.max(abs(np.linalg.eigvals(W_hh)))
    W_hh = np.float32(.95 * W_hh / sr)
    W_hy = np.asarray(rng.normal(size=(n_hidden, nout), loc=0.0, scale=.01), dtype="float32")
    return W_uh, W_hh, W_hy


class _IntegersAsRandint:
    """A Generator behind RandomState's ``randint`` name: the transcription's calls, unchanged."""

    def __init__(self, gen):
        self.randint = gen.integers


@pytest.mark.parametrize("length,n", [(10, 3), (25, 20), (30, 1000), (57, 7)])
def test_generator_is_tempOrder_py_draw_for_draw(length, n):
    """With the authors' RandomState: the same numbers, and the generator left in the same state
    (the same calls in the same order); with a Generator: the same calls (``integers`` for
    ``randint``)."""
    for seed in (0, 123):
        ours, theirs = np.random.RandomState(seed), np.random.RandomState(seed)
        for _ in range(2):  # consecutive batches from one generator
            seq, cls = temporal_order_authors(length, n, ours)
            data, targ = _generate(theirs, n, length)
            X, Y, W = temporal_order_window(length, n, np.random.RandomState(0), variant="authors")
            np.testing.assert_array_equal(np.eye(6)[seq.T], data)
            np.testing.assert_array_equal(cls, targ.argmax(1))
        assert ours.randint(2**31) == theirs.randint(2**31)
        g1, g2 = np.random.default_rng(seed), np.random.default_rng(seed)
        X, Y, W = temporal_order_window(length, n, g1, variant="authors")
        data, targ = _generate(_IntegersAsRandint(g2), n, length)
        np.testing.assert_array_equal(X, data)
        np.testing.assert_array_equal(Y[-1], targ.argmax(1))
        assert (W[-1] == 1).all() and not W[:-1].any() and not Y[:-1].any()
        assert g1.integers(2**62) == g2.integers(2**62)


@pytest.mark.parametrize("length", [10, 19, 20, 30, 100])
def test_positions_symbols_and_classes(length):
    seq, cls = temporal_order_authors(length, 4000, np.random.RandomState(length))
    (a0, b0), (a1, b1) = temporal_order_authors_positions(length)
    d = int(length * .1)
    assert (a0, b0, a1, b1) == (d, 2 * d - 1, int(length * .5), int(length * .5) + d - 1)
    assert 0.1 * length - 1 < a0 and b0 < 0.2 * length and 0.5 * length - 1 < a1 and b1 < 0.6 * length
    rel = np.argwhere(seq < 2)  # A, B: the only relevant symbols, no markers
    assert len(rel) == 2 * len(seq)
    p = rel[:, 1].reshape(-1, 2)
    assert set(p[:, 0]) == set(range(a0, b0 + 1)) and set(p[:, 1]) == set(range(a1, b1 + 1))
    rows = np.arange(len(seq))
    np.testing.assert_array_equal(cls, seq[rows, p[:, 0]] + 2 * seq[rows, p[:, 1]])
    assert set(np.unique(seq)) == set(range(len(AUTHORS_SYMBOLS)))
    assert set(np.unique(cls)) == {0, 1, 2, 3}


def test_config_validates_the_variant():
    assert TrainConfig().temporal_variant == "6a"
    with pytest.raises(ValueError, match="temporal_variant"):
        TrainConfig(temporal_variant="6b")
    with pytest.raises(ValueError, match="seq_len must be at least 10"):
        TrainConfig(temporal_variant="authors", seq_len=MIN_AUTHORS_LENGTH - 1)
    with pytest.raises(ValueError, match="temporal_order task"):
        TrainConfig.for_task("music", temporal_variant="authors")
    c = TrainConfig(temporal_variant="authors", seq_len=10)
    assert TrainConfig.from_dict(c.to_dict()).temporal_variant == "authors"
    old = c.to_dict()
    del old["temporal_variant"]  # a record written before the field existed
    assert TrainConfig.from_dict(old).temporal_variant == "6a"


AUTHORS = dict(task="temporal_order", temporal_variant="authors", hidden=50, activation="tanh",
               init="smart_tanh_authors", parametrisation="standard", lr=0.01, momentum=0.0,
               batch_size=20, threshold=1.0, clip="norm_shrink", dtype="float32")


def test_a_run_starts_from_the_authors_draws():
    """RNN.py:75-79 seeds one RandomState for the initialisation and then the data: a run's
    initial weights and first training batches are theirs for the same seed."""
    tr = Trainer(TrainConfig(seq_len=20, seed=52, **AUTHORS))
    rng = np.random.RandomState(52)
    W_uh, W_hh, W_hy = _smart_tanh(rng, 6, 50, 4)
    v = tr.model.views(tr.model.theta)
    np.testing.assert_allclose(v["W"], W_hh.T, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(v["W"] != 0, W_hh.T != 0)
    np.testing.assert_array_equal(v["U"], W_uh.T)
    np.testing.assert_array_equal(v["V"], W_hy.T)
    assert tr.model.n_in == 6
    for _ in range(3):
        X, Y, W = tr.next_window()
        data, targ = _generate(rng, 20, 20)
        np.testing.assert_array_equal(X, data)
        np.testing.assert_array_equal(Y[-1], targ.argmax(1))


@pytest.mark.parametrize("cfg", [
    dict(AUTHORS, check_sequences=1000),
    dict(task="temporal_order", hidden=30, activation="tanh", lr=0.1, momentum=0.9, clip="norm",
         threshold=1.0, batch_size=20, check_sequences=300),
], ids=["authors", "6a"])
def test_the_success_check_stops_the_run_without_changing_its_decisions(cfg):
    """A run checked every 20 updates stops when solved; the same run checked only at its end
    takes the same steps, ‖g‖ for ‖g‖ and clip for clip, up to that update (the check's
    sequences come from a stream of their own)."""
    checked = train(TrainConfig(seq_len=10, seed=0, max_updates=3000, eval_every=20, **cfg))
    r = checked.result
    assert r["solved"] and r["updates"] == r["solved_at"] < 3000 and r["solved_at"] % 20 == 0
    assert checked.series["valid"][-1] == 1.0
    u = r["solved_at"]
    unchecked = train(TrainConfig(seq_len=10, seed=0, max_updates=u + 40, eval_every=u + 40, **cfg))
    assert unchecked.result["updates"] == u + 40  # no check before its end: it did not stop at u
    for key in ("loss", "grad_norm", "grad_norm_clipped", "clipped", "skipped"):
        assert unchecked.series[key][:u] == checked.series[key], key
    assert any(checked.series["clipped"]) and not all(checked.series["clipped"])
