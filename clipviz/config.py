"""One place for clipviz's defaults and limits.

Every default used by the library, the CLI and the web app comes from
:data:`SETTINGS`; each field says what it is and why it has that value.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    """Defaults and hard limits (read-only)."""

    # --- the paper's one-unit setting (section 2.4, Figure 3) ---------------
    steps: int = 50  # T: the paper plots E_50
    x0: float = 0.5  # initial state x_0 used in Figure 3
    target: float = 0.7  # target for sigma(x_T) in Figure 3
    activation: str = "sigmoid"  # sigma of equation (14) in Figure 3
    bifurcation_w: float = 5.0  # w fixed at 5.0 in Figure 4

    # --- the error-surface window shown by default --------------------------
    w_min: float = -2.0  # includes w < 4 (one attractor) ...
    w_max: float = 12.0  # ... and w > 4, where the sigmoid map is bistable
    b_min: float = -8.0  # the wall lies around b ~ -w/2 for x0 = 0.5
    b_max: float = 2.0
    resolution: int = 256  # grid points per axis (web default)

    # --- hard limits enforced by the library API ----------------------------
    max_steps: int = 100_000  # longest unroll T accepted anywhere
    max_grid: int = 2048  # largest grid side accepted (2048 x 2048)
    max_descent_steps: int = 100_000  # longest gradient-descent trajectory
    divergence_bound: float = 1e6  # |w| or |b| beyond this ends a descent as diverged

    # --- clipping defaults ---------------------------------------------------
    clip_threshold: float = 1.0  # tau for norm/value clipping in the UI
    autoclip_percentile: float = 10.0  # p used by AutoClip's paper by default

    # --- run store and background jobs (issue 6) -----------------------------
    # Environment variables override these at run time (see clipviz.runstore
    # and clipviz.jobs): CLIPVIZ_DATA_DIR, CLIPVIZ_REDIS_URL, CLIPVIZ_LOCAL_WORKERS.
    data_dir: str = "./clipviz-data"  # where runs.sqlite lives; relative to the working directory
    db_name: str = "runs.sqlite"  # the SQLite run store inside data_dir
    heartbeat_s: float = 2.0  # a running job refreshes its heartbeat at least this often
    heartbeat_timeout_s: float = 60.0  # no heartbeat for this long -> the run is shown as failed
    metrics_flush_s: float = 0.25  # telemetry rows are written in batches at most this far apart
    cancel_poll_s: float = 0.1  # how often a running job checks its cancel flag (cancel < 1 s)
    local_workers: int = 2  # concurrent runs of the embedded (no-service) job layer
    max_sweep_runs: int = 1000  # largest sweep one request may fan out
    max_metric_rows: int = 1_000_000  # telemetry rows kept per run (the engine's max_updates bound it anyway)


SETTINGS = Settings()

ACTIVATIONS = ("sigmoid", "tanh")
"""Activations of the one-unit model (codes 0 and 1 in the kernels)."""
