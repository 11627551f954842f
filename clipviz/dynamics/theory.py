"""The n-unit network of the paper's equation (2) (sections 2.2-2.3).

    x_t = W_rec sigma(x_{t-1}) + W_in u_t + b

How ||dx_T/dx_k|| (equation (5)) grows or shrinks with l = T - k against
rho^l, and the temporal contributions of equation (4).  Public names are
re-exported by :mod:`clipviz.dynamics`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import _validate as v
from ..config import SETTINGS
from ..kernels import dynamics as k
from ..kernels.activations import CODES, dmax

__all__ = ["N_UNIT_ACTIVATIONS", "JacobianNorms", "jacobian_norms"]

N_UNIT_ACTIVATIONS = ("identity", "tanh", "sigmoid")


@dataclass
class JacobianNorms:
    """||dx_T/dx_{T-l}|| (equation (5)) and the temporal contributions of equation (4).

    Everything is carried in logs (``log_norm``, ``log_contrib``: natural
    log) so long unrolls never overflow; ``norm`` and ``contrib`` are their
    exponentials (inf where float64 overflows).
    """

    l: np.ndarray  #: 0..T
    log_norm: np.ndarray  #: log ||dx_T/dx_{T-l}||
    log_rho_l: np.ndarray  #: l log rho, the reference rho^l
    log_contrib: np.ndarray  #: log ||dE_T/dx_T dx_T/dx_{T-l}|| (k = T - l)
    rho: float
    activation: str
    norm_kind: str
    W_rec: np.ndarray
    necessary_condition: float  #: rho must exceed this for explosion (1 identity/tanh, 4 sigmoid)
    input_scale: float = 1.0  #: u_t ~ N(0, input_scale^2): large inputs saturate sigma

    @property
    def gamma(self) -> float:
        """gamma = max |sigma'| (section 2.1: 1 for identity and tanh, 1/4 for sigmoid)."""
        return 1.0 / self.necessary_condition

    @property
    def log_bound(self) -> np.ndarray:
        """l log(gamma rho): the paper's rate (gamma rho)^l for ||dx_T/dx_{T-l}|| (section 2.1).

        Each factor of equation (5) has norm at most ||W_rec|| gamma, so gamma rho > 1 is
        necessary for explosion; the rate is reached only where sigma' stays near gamma, which
        saturating units (large |x|) do not.  For identity and tanh it equals ``log_rho_l``.
        """
        return self.log_rho_l + self.l * math.log(self.gamma)

    def grows(self) -> bool:
        """Whether the long-term components dominate: ||dx_T/dx_0|| > 1 at l = T and the
        terms with l >= T/2 carry most of the sum of equation (4)."""
        T = int(self.l[-1])
        return bool(self.log_norm[-1] > 0.0 and self.long_term_share(max(T // 2, 1)) > 0.5)

    @property
    def norm(self) -> np.ndarray:
        with np.errstate(over="ignore"):
            return np.exp(self.log_norm)

    @property
    def contrib(self) -> np.ndarray:
        with np.errstate(over="ignore"):
            return np.exp(self.log_contrib)

    @property
    def rho_l(self) -> np.ndarray:
        with np.errstate(over="ignore"):
            return np.exp(self.log_rho_l)

    def growth_rate(self, l_min: int = 50, l_max: int | None = None) -> float:
        """Least-squares slope of log ||dx_T/dx_{T-l}|| over l in [l_min, l_max] (per step)."""
        l_max = int(self.l[-1]) if l_max is None else l_max
        sel = (self.l >= l_min) & (self.l <= l_max) & np.isfinite(self.log_norm)
        if sel.sum() < 2:
            raise ValueError(f"need at least two finite points with {l_min} <= l <= {l_max}")
        return float(np.polyfit(self.l[sel], self.log_norm[sel], 1)[0])

    def long_term_share(self, l0: int) -> float:
        """Share of sum_k ||temporal contribution|| coming from l = T - k >= l0."""
        lc = self.log_contrib
        m = np.max(lc[np.isfinite(lc)])
        c = np.exp(np.where(np.isfinite(lc), lc - m, -np.inf))
        return float(c[self.l >= l0].sum() / c.sum())


def jacobian_norms(*, n: int = 50, rho: float = 1.2, steps: int = 200,
                   activation: str = "tanh", n_in: int = 1, input_scale: float = 1.0,
                   x0_scale: float = 0.1, norm: str = "spectral", seed: int = 0) -> JacobianNorms:
    """Sections 2.2-2.3: how dx_T/dx_k grows or shrinks with l = T - k.

    W_rec is drawn N(0, 1/n) and rescaled to spectral radius ``rho``; W_in
    N(0, 1/n_in), b = 0, inputs u_t ~ N(0, input_scale^2), x_0 ~
    N(0, x0_scale^2), dE_T/dx_T a random unit vector, all from ``seed``.
    For sigma = identity dx_T/dx_k = W_rec^l (equation (6)) and the growth
    rate tends to log rho; for tanh / sigmoid rho > 1 / rho > 4 is only the
    necessary condition of section 2.3, not a sufficient one: with n = 50,
    T = 200, seed 0 and tanh at rho = 1.5, inputs of scale 0.1 keep the units
    near their linear regime and ||dx_T/dx_0|| grows to about 10^5, while
    inputs of scale 1 saturate them and it falls to about 10^-7.
    """
    n = v.integer("n", n, 1, SETTINGS.dyn_max_units)
    rho = v.finite("rho", rho)
    if not 0 < rho <= 100:
        raise ValueError(f"rho must be in (0, 100], got {rho:g}")
    steps = v.integer("steps", steps, 1, SETTINGS.dyn_max_unit_steps)
    if float(n) ** 3 * steps > SETTINGS.dyn_max_unit_work:
        raise ValueError(f"n^3 x steps = {float(n) ** 3 * steps:.3g} exceeds the limit "
                         f"{SETTINGS.dyn_max_unit_work:.3g}; use fewer units or steps")
    act = CODES[v.choice("activation", activation, N_UNIT_ACTIVATIONS)]
    n_in = v.integer("n_in", n_in, 1, SETTINGS.dyn_max_units)
    input_scale = v.finite("input_scale", input_scale)
    x0_scale = v.finite("x0_scale", x0_scale)
    if input_scale < 0 or x0_scale < 0:
        raise ValueError("input_scale and x0_scale must be >= 0")
    v.choice("norm", norm, ("spectral", "frobenius"))
    seed = v.integer("seed", seed, 0, 2**32 - 1)
    rng = np.random.default_rng(seed)
    W = rng.normal(0.0, 1.0 / math.sqrt(n), (n, n))
    r0 = float(np.max(np.abs(np.linalg.eigvals(W))))
    if r0 == 0.0:
        raise ValueError("the drawn W_rec is nilpotent; choose another seed")
    W *= rho / r0
    Win = rng.normal(0.0, 1.0 / math.sqrt(n_in), (n, n_in))
    U = rng.normal(0.0, input_scale, (steps, n_in))
    x0 = rng.normal(0.0, x0_scale, n)
    e = rng.normal(0.0, 1.0, n)
    e /= np.linalg.norm(e)
    b = np.zeros(n)
    with np.errstate(over="ignore", invalid="ignore"):
        _X, D = k.n_unit_states(W, Win, b, U, x0, act)
    lognorm, logdelta = k.jacobian_products(W, D, e, norm == "spectral")
    ls = np.arange(steps + 1)
    return JacobianNorms(ls, lognorm, ls * math.log(rho), logdelta, rho, activation, norm,
                         W, 1.0 / dmax(act), input_scale)
