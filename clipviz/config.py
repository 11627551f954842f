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
    store_dir: str = "clipviz-data"  # files the app keeps: run store, web cache ($CLIPVIZ_DATA_DIR wins)
    db_name: str = "runs.sqlite"  # the SQLite run store inside store_dir
    heartbeat_s: float = 2.0  # a running job refreshes its heartbeat at least this often
    heartbeat_timeout_s: float = 60.0  # no heartbeat for this long -> the run is shown as failed
    metrics_flush_s: float = 0.25  # telemetry rows are written in batches at most this far apart
    cancel_poll_s: float = 0.1  # how often a running job checks its cancel flag (cancel < 1 s)
    local_workers: int = 2  # concurrent runs of the embedded (no-service) job layer
    worker_blas_threads: int = 1  # BLAS threads per training job: parallelism comes from workers;
    # OpenBLAS's own threads made a 50-unit run 4-15x slower on a busy 2-core machine
    max_sweep_runs: int = 1000  # largest sweep one request may fan out
    max_metric_rows: int = 1_000_000  # telemetry rows kept per run (the engine's max_updates bound it anyway)

    # --- training engine (clipviz.training; issue 5) ---------------------------
    train_task: str = "temporal_order"  # the cheapest of the paper's three task families
    train_parametrisation: str = "paper"  # equation (2); "standard" is h_t = sigma(W h + U u + b)
    train_activation: str = "tanh"  # the paper's sigmoid/N(0,.01) units learn nothing in a short run
    train_hidden: int = 50  # the paper's temporal-order model has 50 units
    train_lr: float = 0.1  # SGD step; the paper's .001 needs its 100k updates of 1000 sequences
    train_momentum: float = 0.9  # with it a length-20 run solves in hundreds of updates (clipped)
    train_clip: str = "norm"  # Algorithm 1
    train_threshold: float = 1.0  # tau of Algorithm 1 for the temporal-order task (music: 120)
    train_batch: int = 20  # sequences per update (the paper: 1000 for temporal order)
    train_seq_len: int = 20  # temporal-order length / window (music 100, characters 180)
    train_max_updates: int = 3000  # seconds on a laptop; BPTT vs clipping differ clearly by then
    train_eval_every: int = 100  # K: rho(W_rec) and the validation metric every K updates
    train_seed: int = 0  # seed of initialisation and data order
    train_init: str = "default"  # sigmoid N(0, .01^2), tanh N(0, .1^2); or "smart_tanh"
    train_dtype: str = "float64"  # float32 is about twice as fast on large models
    temporal_order_valid: int = 1000  # fresh sequences per check: the paper's 1000-in-a-row criterion
    max_hidden: int = 2000  # largest hidden layer accepted
    max_batch: int = 4096  # largest mini-batch accepted
    max_seq_len: int = 10_000  # longest window / temporal-order length accepted
    max_updates: int = 10_000_000  # longest run accepted
    max_vocab: int = 256  # characters beyond the 255 most frequent map to one 'unknown' symbol
    max_eval_symbols: int = 1_000_000  # evaluation of a text split reads at most this many characters
    eval_lanes: int = 32  # sequences evaluated side by side (songs or text segments)
    data_dir: str = "~/.cache/clipviz/data"  # where `clipviz data fetch` stores data sets ($CLIPVIZ_DATA wins)

    # --- web app ---------------------------------------------------------------
    cache_timeout_s: int = 24 * 3600  # memoised results live a day (they never go stale)
    cache_max_items: int = 5000  # filesystem cache prunes beyond this many entries

    # --- dynamics (clipviz.dynamics, section 2.5) ----------------------------
    basin_steps: int = 200  # T for basins / sensitivity: long enough to settle off the boundary
    basin_tol: float = 1e-3  # x_T within this of an attractor counts as having reached it
    orbit_transient: int = 500  # iterations discarded before the orbit diagram keeps states
    orbit_keep: int = 32  # states kept per (x0, b) in the orbit diagram (shows period 2)
    dyn_max_abs_param: float = 1000.0  # |w|, |b|, |x0| accepted by the dynamics API
    dyn_max_diagram_w: float = 100.0  # |w| accepted by bifurcation_diagram (checked to this size)
    dyn_max_orbit_values: int = 8_000_000  # x0s * bs * keep cap (64 MB of float64)
    dyn_max_branch_points: int = 100_000  # continuation buffer per branch
    dyn_ds_fraction: float = 0.005  # largest arclength step, as a fraction of the window diagonal
    dyn_max_turn: float = 0.05  # radians the branch tangent may turn per step (plot smoothness)
    dyn_max_work: int = 4_000_000_000  # grid points x steps per basins/sensitivity/orbit call (~seconds)
    dyn_max_sensitivity_points: int = 1 << 20  # b values accepted by the 1-D sensitivity
    dyn_max_units: int = 500  # n-unit model: largest n accepted
    dyn_max_unit_work: float = 2e10  # n^3 x steps cap for jacobian_norms (matrix products + SVDs)
    dyn_max_unit_steps: int = 5000  # n-unit model: longest unroll accepted


SETTINGS = Settings()

ACTIVATIONS = ("sigmoid", "tanh")
"""Activations of the one-unit model (codes 0 and 1 in the kernels)."""
