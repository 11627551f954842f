"""Dynamics of the paper's recurrent models (sections 2.2-2.5).

The one-unit map of equation (14) without input,

    x_t = F(x_{t-1}) = w * sigma(x_{t-1}) + b,

with sigma in {"sigmoid", "tanh"} (:mod:`clipviz.dynamics.one_unit_map`), the
n-unit network of equation (2),

    x_t = W_rec sigma(x_{t-1}) + W_in u_t + b

(:mod:`clipviz.dynamics.theory`), and the curvature of the one-unit error
surface (:mod:`clipviz.dynamics.curvature`).  Everything public is
re-exported here, so ``from clipviz.dynamics import X`` works for all of it.

Public API (names used by notebooks, the CLI and the web app):

* :func:`map_values` -- F itself at given states.
* :func:`fixed_points` -- every fixed point of F, its slope F'(x*) and stability.
* :func:`fold_points`, :func:`period_doubling_points` -- special points at a given w.
* :func:`bifurcation_diagram` -- Figure 4 by pseudo-arclength continuation:
  fixed-point branches (turning at folds), the period-2 branch, special points.
* :func:`orbit_diagram` -- brute-force iteration from several x_0 (what is reached).
* :func:`basins` -- which attractor is reached over a (b, x_0) grid.
* :func:`attractors` -- the attractors and their basin labels at each b.
* :func:`sensitivity`, :func:`sensitivity_grid` -- exact dx_T/db and dx_T/dx_0;
  :func:`sensitivity_bs` -- a b grid that resolves their spikes, :func:`fixed_point_b` -- the
  b at which a given state is a fixed point (where the spike sits).
* :func:`vector_field` -- the arrows x -> F(x) - x of Figure 4.
* :func:`input_driven` -- Figures 5/6: x_t = w sigma(x_{t-1}) + b + u_t from two
  nearby initial states, and the time at which they separate.
* :func:`jacobian_norms` -- sections 2.2-2.3: ||dx_t/dx_k|| against l = t - k
  (equation (5)) with rho^l for reference, and the temporal contributions of
  equation (4).
* :func:`curvature_alignment` -- section 2.4's hypothesis, measured on the
  (w, b) error surface: gradient vs leading Hessian eigenvector, and the
  curvature along the gradient against ||g||.
* :func:`warm_up` -- compile every dynamics kernel ahead of the first request.

All results are small dataclasses of NumPy arrays; bad arguments raise
``ValueError`` saying what is allowed.
"""

from __future__ import annotations

import numpy as np

from ..config import ACTIVATIONS
from .curvature import CurvatureAlignment, curvature_alignment
from .one_unit_map import (
    Attractors,
    BifurcationDiagram,
    Branch,
    FixedPoint,
    InputDriven,
    OrbitDiagram,
    Sensitivity,
    SensitivityGrid,
    SpecialPoint,
    VectorField,
    attractors,
    basins,
    bifurcation_diagram,
    fixed_point_b,
    fixed_points,
    fold_points,
    input_driven,
    map_values,
    orbit_diagram,
    period_doubling_points,
    sensitivity,
    sensitivity_bs,
    sensitivity_grid,
    vector_field,
)
from .one_unit_map import __all__ as _one_unit_map_names
from .theory import N_UNIT_ACTIVATIONS, JacobianNorms, jacobian_norms

__all__ = [*_one_unit_map_names, "JacobianNorms", "jacobian_norms", "CurvatureAlignment",
           "curvature_alignment", "warm_up"]


def warm_up() -> None:
    """Compile (or load from Numba's cache) every dynamics kernel on tiny inputs.

    Without a cache the first call of each kernel compiles it; call
    this at build or start-up time (e.g. in a Docker build step or a worker's
    start hook) so that no user request pays for it.
    """
    small = np.linspace(-3.0, 1.0, 4)
    for act in ACTIVATIONS:
        bifurcation_diagram(-8.0 if act == "sigmoid" else -3.0, -2.0, 10.0, act)
        basins(5.0, small, small, steps=3, activation=act)
        sensitivity_grid(5.0, small, small, steps=3, activation=act)
        orbit_diagram(5.0, small, x0s=small, transient=2, keep=2, activation=act)
        input_driven(5.0, 0.0, steps=3, activation=act)
    for act in N_UNIT_ACTIVATIONS:
        jacobian_norms(n=3, steps=3, activation=act)
