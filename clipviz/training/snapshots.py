"""Snapshots of a training run at explosion events (issue 16, item 3).

At a bounded number of updates the runner keeps theta (the parameters at
which that update's gradient was computed), the state carried into its
window, the step actually taken and the step plain BPTT (no clipping) would
have taken, and the minibatch's identity (the update number: the window is
regenerated from the run's seed by :func:`replay_window`).  Three kinds of
moments are kept:

* ``clipped``: the clipping rule fired (the largest |g| of those are kept);
* ``spike``: |g| above ``spike_factor`` times the running median of the
  last ``median_window`` norms (the largest ratios are kept);
* ``ordinary``: the first few updates at multiples of ``ordinary_every``
  where neither happened, for comparison.

Arrays are stored base64-encoded (little-endian) so the run record stays
strict JSON; :func:`decode` turns a stored snapshot back into arrays.
"""

from __future__ import annotations

import base64
import heapq
import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from ..config import SETTINGS

KINDS = ("clipped", "spike", "ordinary")


@dataclass(frozen=True)
class SnapshotPolicy:
    """How many snapshots of each kind a run keeps, and what counts as a spike."""

    max_clipped: int = SETTINGS.snapshot_max_clipped
    max_spikes: int = SETTINGS.snapshot_max_spikes
    max_ordinary: int = SETTINGS.snapshot_max_ordinary
    spike_factor: float = SETTINGS.snapshot_spike_factor
    median_window: int = SETTINGS.snapshot_median_window
    ordinary_every: int = SETTINGS.snapshot_ordinary_every

    def __post_init__(self) -> None:
        for name in ("max_clipped", "max_spikes", "max_ordinary"):
            n = getattr(self, name)
            if not isinstance(n, int) or not 0 <= n <= SETTINGS.snapshot_max_each:
                raise ValueError(f"{name} must be an integer from 0 to "
                                 f"{SETTINGS.snapshot_max_each}, got {n!r}")
        if not (isinstance(self.spike_factor, (int, float)) and math.isfinite(self.spike_factor)
                and self.spike_factor > 1.0):
            raise ValueError(f"spike_factor must be a finite number above 1, got "
                             f"{self.spike_factor!r}")
        for name in ("median_window", "ordinary_every"):
            n = getattr(self, name)
            if not isinstance(n, int) or n < 1:
                raise ValueError(f"{name} must be a positive integer, got {n!r}")


def encode(a: np.ndarray) -> dict:
    """A JSON-able dict holding the array exactly."""
    a = np.ascontiguousarray(a)
    return {"dtype": a.dtype.str.lstrip("<>="), "shape": list(a.shape),
            "b64": base64.b64encode(a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes())
            .decode("ascii")}


def decode_array(d: dict) -> np.ndarray:
    """The array of :func:`encode`."""
    dt = np.dtype("<" + d["dtype"])
    return np.frombuffer(base64.b64decode(d["b64"]), dtype=dt).reshape(d["shape"]).copy()


def decode(snapshot: dict) -> dict:
    """A stored snapshot with its arrays (theta, state, step, step_unclipped) decoded."""
    out = dict(snapshot)
    for k in ("theta", "state", "step", "step_unclipped"):
        out[k] = decode_array(snapshot[k])
    return out


class SnapshotKeeper:
    """Decides, update by update, which moments to keep (bounded by the policy)."""

    def __init__(self, policy: SnapshotPolicy):
        self.policy = policy
        self.norms: deque = deque(maxlen=policy.median_window)
        self.heaps: dict[str, list] = {"clipped": [], "spike": []}
        self.ordinary: list = []
        self._n = 0

    def wants(self, u: int, grad_norm: float, fired: bool) -> tuple[list[str], float]:
        """The kinds update ``u`` qualifies for (empty: none) and its |g| / running median."""
        p = self.policy
        finite = math.isfinite(grad_norm)
        enough = len(self.norms) >= min(10, p.median_window)
        med = float(np.median(self.norms)) if enough else math.nan
        ratio = grad_norm / med if finite and med > 0 else math.nan
        if finite:
            self.norms.append(grad_norm)
        kinds = []
        if fired and p.max_clipped and self._fits("clipped", grad_norm if finite else math.inf):
            kinds.append("clipped")
        if (ratio > p.spike_factor or (not finite and med > 0)) and p.max_spikes \
                and self._fits("spike", ratio if finite else math.inf):
            kinds.append("spike")
        if not kinds and not fired and u % p.ordinary_every == 0 \
                and len(self.ordinary) < p.max_ordinary:
            kinds.append("ordinary")
        return kinds, ratio

    def _fits(self, kind: str, score: float) -> bool:
        cap = self.policy.max_clipped if kind == "clipped" else self.policy.max_spikes
        h = self.heaps[kind]
        return len(h) < cap or score > h[0][0]

    def keep(self, kinds: list[str], score_g: float, ratio: float, snap: dict) -> None:
        """Store ``snap`` under each of ``kinds``, dropping the weakest of a full kind."""
        snap = dict(snap, kinds=list(kinds))
        for kind in kinds:
            if kind == "ordinary":
                self.ordinary.append(snap)
                continue
            score = score_g if kind == "clipped" else ratio
            score = math.inf if not math.isfinite(score) else score
            cap = self.policy.max_clipped if kind == "clipped" else self.policy.max_spikes
            self._n += 1
            item = (score, self._n, snap)
            h = self.heaps[kind]
            if len(h) < cap:
                heapq.heappush(h, item)
            else:
                heapq.heapreplace(h, item)

    def snapshots(self) -> list[dict]:
        """Every kept snapshot once, in update order; ``kinds`` lists the kinds that keep it
        (a snapshot displaced from one kind by larger ones may still be kept by another)."""
        seen: dict[int, dict] = {}
        held: dict[int, list] = {}
        groups = [(k, [s for _, _, s in self.heaps[k]]) for k in ("clipped", "spike")]
        for kind, snaps in groups + [("ordinary", self.ordinary)]:
            for s in snaps:
                seen[s["update"]] = s
                held.setdefault(s["update"], []).append(kind)
        return [dict(seen[u], kinds=held[u]) for u in sorted(seen)]


def replay(cfg, update: int):
    """The model (at its initial parameters) and the window ``(X, targets, weights, reset)``
    that update ``update`` (1-based) of a run with ``cfg`` trained on, regenerated from the seed
    (the runner's order of random draws: task, initialisation, then one window per update)."""
    from .runner import start

    if isinstance(update, bool) or not isinstance(update, int) or update < 1:
        raise ValueError(f"update must be a positive integer, got {update!r}")
    if update > cfg.max_updates:
        raise ValueError(f"update {update} is past the run's last update ({cfg.max_updates})")
    _, task, model = start(cfg)
    w = None
    for _ in range(update):
        w = task.next_window()
    return model, w


def replay_window(cfg, update: int):
    """The window ``(X, targets, weights, reset)`` of update ``update`` (see :func:`replay`)."""
    return replay(cfg, update)[1]
