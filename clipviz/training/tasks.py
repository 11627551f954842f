"""The paper's three task families as batch streams and evaluators.

Every task yields windows ``(X, targets, weights, reset)``: inputs (T, B, I),
targets (T, B) class ids or (T, B, O) binary, step weights (T, B) and a (B,)
mask of lanes whose state must be reset before the window (a new song or a
new text segment starts there).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import SETTINGS

# --- temporal order (Hochreiter & Schmidhuber 1997, task 6a) ----------------------------

SYMBOLS = ("a", "b", "c", "d", "X", "Y", "B", "E")
"""Input alphabet: distractors a-d, the relevant X/Y, start B and end E markers."""
CLASSES = ("XX", "XY", "YX", "YY")  # Q, R, S, U in the original
MIN_TEMPORAL_LENGTH = 6


def temporal_order_positions(length: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """Ranges (inclusive) of the two relevant positions for a sequence of ``length``.

    The original (length 100..110) puts them in [10, 20] and [50, 60]; they
    scale with the length as [0.1 T, 0.2 T] and [0.5 T, 0.6 T], kept inside
    the sequence (after B and before E).
    """
    lo1 = max(1, int(0.1 * length))
    hi1 = max(lo1, int(0.2 * length))
    lo2 = max(hi1 + 1, int(0.5 * length))
    hi2 = min(length - 2, max(lo2, int(0.6 * length)))
    return (lo1, hi1), (lo2, hi2)


def temporal_order(length: int, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` sequences of task 6a of length ``length``.

    Returns
    -------
    symbols : (n, length) int ids into :data:`SYMBOLS`: B, distractors
        uniformly from a-d, X or Y at one position in each relevant range, E.
    classes : (n,) int in 0..3: the order of the two relevant symbols
        (XX, XY, YX, YY).
    """
    if length < MIN_TEMPORAL_LENGTH:
        raise ValueError(f"temporal order length must be at least {MIN_TEMPORAL_LENGTH}")
    (a1, b1), (a2, b2) = temporal_order_positions(length)
    seq = rng.integers(0, 4, (n, length))
    seq[:, 0] = 6
    seq[:, -1] = 7
    p1 = rng.integers(a1, b1 + 1, n)
    p2 = rng.integers(a2, b2 + 1, n)
    v1 = rng.integers(0, 2, n)
    v2 = rng.integers(0, 2, n)
    rows = np.arange(n)
    seq[rows, p1] = 4 + v1
    seq[rows, p2] = 4 + v2
    return seq, 2 * v1 + v2


# --- temporal order as the authors' code generates it (pascanur/trainingRNNs, tempOrder.py) --

AUTHORS_SYMBOLS = ("A", "B", "c", "d", "e", "f")
"""tempOrder.py's 6 input channels (tempOrder.py:27-33, 49): the relevant A and B, the
distractors c-f; no start or end markers."""
AUTHORS_CLASSES = ("AA", "BA", "AB", "BB")
"""tempOrder.py's class ids: ``v0 + 2 v1`` with v0 the first relevant symbol (A = 0, B = 1) and
v1 the second (tempOrder.py:62)."""
MIN_AUTHORS_LENGTH = 10
"""tempOrder.py draws p0 with ``randint(int(0.1 L))``, which needs ``int(0.1 L) >= 1``."""

TEMPORAL_VARIANTS = ("6a", "authors")
"""Generators of the temporal-order task (``TrainConfig.temporal_variant``): ``6a``
(:func:`temporal_order`: 8 symbols with start/end markers) or ``authors``
(:func:`temporal_order_authors`: tempOrder.py's draws)."""


def temporal_symbols(variant: str = "6a") -> tuple[str, ...]:
    """The input alphabet of a temporal-order variant (its one-hot width)."""
    return AUTHORS_SYMBOLS if variant == "authors" else SYMBOLS


def temporal_order_authors_positions(length: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """Ranges (inclusive) of tempOrder.py's two relevant positions: p0 in
    [int(0.1 L), 2 int(0.1 L) - 1] and p1 in [int(0.5 L), int(0.5 L) + int(0.1 L) - 1]
    (tempOrder.py:57-60; the docstring's [0.1 L, 0.2 L) and [0.5 L, 0.6 L) up to rounding)."""
    d = int(length * .1)
    return (d, 2 * d - 1), (int(length * .5), int(length * .5) + d - 1)


def temporal_order_authors(length: int, n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """``n`` sequences of length ``length`` drawn as ``TempOrderTask.generate`` draws them
    (tempOrder.py:55-70), call for call: p0, v0, p1, v1, then the (length, n) distractors.

    Parameters
    ----------
    rng : numpy.random.RandomState or numpy.random.Generator
        With a ``RandomState`` (the authors' generator, RNN.py:75) the draws are theirs number for
        number (``randint``); with a ``Generator`` the same calls go to ``integers``, which has
        the same distribution but other numbers.

    Returns
    -------
    symbols : (n, length) int ids into :data:`AUTHORS_SYMBOLS`.
    classes : (n,) int ids into :data:`AUTHORS_CLASSES` (``v0 + 2 v1``).
    """
    if length < MIN_AUTHORS_LENGTH:
        raise ValueError(f"the authors' temporal order generator needs length >= "
                         f"{MIN_AUTHORS_LENGTH} (it draws p0 in [int(0.1 L), 2 int(0.1 L)))")
    randint = rng.integers if isinstance(rng, np.random.Generator) else rng.randint
    d = int(length * .1)
    p0 = randint(d, size=(n,)) + d
    v0 = randint(2, size=(n,))
    p1 = randint(d, size=(n,)) + int(length * .5)
    v1 = randint(2, size=(n,))
    vals = randint(4, size=(length, n)) + 2
    cols = np.arange(n)
    vals[p0, cols] = v0
    vals[p1, cols] = v1
    return np.ascontiguousarray(vals.T), v0 + v1 * 2


def one_hot(ids: np.ndarray, n: int, dtype=np.float64) -> np.ndarray:
    """One-hot encoding along a new last axis."""
    out = np.zeros(ids.shape + (n,), dtype=dtype)
    np.put_along_axis(out, ids[..., None], 1.0, axis=-1)
    return out


def temporal_order_window(length: int, n: int, rng, dtype=np.float64, variant: str = "6a"):
    """(X (T, n, I), targets (T, n), weights (T, n)): only the last step is scored; I = 8
    (``variant="6a"``, :func:`temporal_order`) or 6 (``"authors"``, :func:`temporal_order_authors`,
    whose X is tempOrder.py's ``data``)."""
    if variant == "authors":
        seq, cls = temporal_order_authors(length, n, rng)
    else:
        seq, cls = temporal_order(length, n, rng)
    X = one_hot(seq.T, len(temporal_symbols(variant)), dtype)
    targets = np.zeros((length, n), dtype=np.int64)
    targets[-1] = cls
    weights = np.zeros((length, n))
    weights[-1] = 1.0
    return X, targets, weights


# --- lanes over a list of sequences (songs, text segments) --------------------------------

@dataclass
class _Lane:
    seq: int = -1
    pos: int = 0


class SequenceStream:
    """B lanes walking through sequences window by window.

    Each sequence s (songs: (L, 88) rolls; text: (L,) ids) gives L-1
    predictions (input step t, target step t+1).  A lane's state is carried
    from one window to the next while it stays in the same sequence and reset
    when it starts a new one; a sequence's last window is padded with weight 0.
    In training mode (``cycle``) the sequences are drawn in a fresh random
    order each epoch; in evaluation mode each is visited once, in order.
    """

    def __init__(self, seqs: list[np.ndarray], lanes: int, window: int, encode, n_in: int,
                 target_kind: str, rng: np.random.Generator | None = None, cycle: bool = True,
                 dtype=np.float64):
        self.seqs = [s for s in seqs if len(s) >= 2]
        if not self.seqs:
            raise ValueError("no sequence with at least two steps to learn from")
        self.B = lanes
        self.T = window
        self.encode = encode
        self.n_in = n_in
        self.kind = target_kind
        self.rng = rng
        self.cycle = cycle
        self.dtype = dtype
        self.order: list[int] = [] if cycle else list(range(len(self.seqs)))
        self.next_idx = 0
        self.lanes = [_Lane() for _ in range(lanes)]
        self.done = False

    def _take(self) -> int:
        if self.next_idx >= len(self.order):
            if not self.cycle:
                return -1
            self.order = list(self.rng.permutation(len(self.seqs))) if self.rng is not None \
                else list(range(len(self.seqs)))
            self.next_idx = 0
        i = self.order[self.next_idx]
        self.next_idx += 1
        return int(i)

    def next(self):
        """The next window, or None when an evaluation stream is exhausted."""
        T, B = self.T, self.B
        reset = np.zeros(B, dtype=bool)
        for ln_i, ln in enumerate(self.lanes):
            if ln.seq < 0 or ln.pos >= len(self.seqs[ln.seq]) - 1:
                ln.seq = self._take()
                ln.pos = 0
                reset[ln_i] = True
        if all(ln.seq < 0 for ln in self.lanes):
            self.done = True
            return None
        X = np.zeros((T, B, self.n_in), dtype=self.dtype)
        W = np.zeros((T, B))
        if self.kind == "class":
            Y = np.zeros((T, B), dtype=np.int64)
        else:
            Y = np.zeros((T, B, self.n_in), dtype=self.dtype)
        for b, ln in enumerate(self.lanes):
            if ln.seq < 0:
                continue
            s = self.seqs[ln.seq]
            n = min(T, len(s) - 1 - ln.pos)
            seg = s[ln.pos:ln.pos + n + 1]
            X[:n, b] = self.encode(seg[:n])
            Y[:n, b] = seg[1:n + 1]
            W[:n, b] = 1.0
            ln.pos += n
        return X, Y, W, reset


def split_segments(ids: np.ndarray, n: int, min_len: int = 2) -> list[np.ndarray]:
    """``ids`` cut into ``n`` contiguous segments (fewer if it is short)."""
    n = max(1, min(n, len(ids) // max(min_len, 1)))
    bounds = np.linspace(0, len(ids), n + 1).astype(int)
    return [ids[bounds[i]:bounds[i + 1]] for i in range(n)]


def eval_stream_lanes(n_seqs: int) -> int:
    return max(1, min(SETTINGS.eval_lanes, n_seqs))
