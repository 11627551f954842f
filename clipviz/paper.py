"""The numbers of the paper that clipviz sets its results beside.

Pascanu, Mikolov & Bengio, "Understanding the exploding gradient problem"
(arXiv:1211.5063, 2012; the text is in ``shared/reference/``).  Each
constant names the table, figure or section it is copied from; the values
are the paper's, digit for digit.  Used by ``clipviz reproduce``
(:mod:`clipviz.training.reproduce`), the training presets and the training
figures (:mod:`clipviz.figures.training`).
"""

from __future__ import annotations

Cell = tuple[tuple[float, float], tuple[float, float]]
"""((BPTT mean, std), (rescaling mean, std)) of one data set and fold, over 5 runs."""

TABLE1_METRIC = "NLL per time step"
TABLE1: dict[str, dict[str, Cell]] = {
    "piano": {"train": ((7.06, 0.052), (7.12, 0.027)), "test": ((7.79, 0.013), (7.77, 0.019))},
    "nottingham": {"train": ((4.12, 0.330), (3.71, 0.059)), "test": ((4.57, 0.718), (4.05, 0.052))},
    "musedata": {"train": ((7.99, 0.768), (7.02, 0.031)), "test": ((8.00, 0.426), (7.24, 0.037))},
}
"""Table 1 (section 4.1, polyphonic music): negative log-likelihood per time step,
data set -> fold ("train", "test") -> :data:`Cell`."""

TABLE2_METRIC = "bits per character"
TABLE2: dict[str, dict[str, Cell]] = {
    "text8": {"train": ((1.66, 0.010), (1.67, 0.006)), "test": ((1.82, 0.067), (1.80, 0.021))},
    "ptb": {"train": ((2.25, 0.960), (1.41, 0.120)), "test": ((2.24, 0.942), (1.44, 0.006))},
}
"""Table 2 (section 4.2, next character prediction): entropy in bits per character,
data set -> fold -> :data:`Cell` ("ptb" is the paper's Penn Treebank)."""

THRESHOLD_MUSIC = 120.0
"""Section 4.1: the clipping threshold of Algorithm 1 for the music models (100-step windows)."""

THRESHOLDS_CHARACTERS = {"ptb": 45.0, "text8": 20.0}
"""Section 4.2: the clipping threshold for Penn Treebank and text8 (180-character windows)."""

FIGURE7 = "Figure 7: rate of success on the temporal order task against sequence length"
"""What Figure 7 (section 4.3) shows; its values are only in the plot, so none are copied."""
