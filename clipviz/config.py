"""One place for clipviz's defaults and limits.

Every default used by the library, the CLI and the web app comes from
:data:`SETTINGS`; each field says what it is and why it has that value.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator


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
    # store_dir, heartbeat_timeout_s, local_workers and worker_blas_threads have environment
    # overrides (CLIPVIZ_DATA_DIR, CLIPVIZ_HEARTBEAT_TIMEOUT_S, CLIPVIZ_LOCAL_WORKERS,
    # CLIPVIZ_WORKER_BLAS_THREADS), read by the functions at the end of this module and nowhere
    # else; the other fields have none.  CLIPVIZ_DATABASE_URL (no field) moves the run store
    # from the SQLite file to a PostgreSQL server.
    store_dir: str = "clipviz-data"  # files the app keeps: run store, web cache ($CLIPVIZ_DATA_DIR wins)
    db_name: str = "runs.sqlite"  # the SQLite run store inside store_dir
    sqlite_busy_s: float = 30.0  # a SQLite connection waits this long for another's lock (its busy
    # timeout, and the retries of switching a new file to WAL, which SQLite does not wait for)
    heartbeat_s: float = 2.0  # a running job refreshes its heartbeat at least this often (and at
    # least four times per heartbeat timeout, where that is shorter)
    heartbeat_timeout_s: float = 60.0  # no heartbeat for this long -> the run is shown as failed;
    # each run carries the timeout of the worker that claimed it, so hosts may differ
    metrics_flush_s: float = 0.25  # telemetry rows are written in batches at most this far apart
    metrics_batch_rows: int = 1000  # ... and at most this many rows per batch: a fuller buffer is
    # written at once, in one statement per batch, so many workers cost the store few transactions
    cancel_poll_s: float = 0.1  # how often a running job checks its cancel flag (cancel < 1 s)
    local_workers: int = 2  # concurrent runs of the embedded (no-service) job layer
    runner_idle_s: float = 30.0  # a local runner with nothing queued waits this long for more work
    # before it exits: a sweep that follows another finds its runners warm instead of starting
    # interpreters (a start, not the work, was what kept two runners from scaling as two workers)
    runner_poll_s: float = 0.1  # how often a waiting local runner looks for queued work
    worker_blas_threads: int = 1  # BLAS threads per training job: parallelism comes from workers;
    # OpenBLAS's own threads slow the small matrices of a training run down on a busy machine
    max_sweep_runs: int = 500  # largest sweep one request may fan out (at most max_active_runs)
    max_active_runs: int = 500  # queued + running runs at once, all clients together: more waits
    max_metric_rows: int = 20_000  # telemetry rows kept per run: beyond, one per block of updates
    # (its largest ||g||) plus the evaluations, so a long run's telemetry stays small to store and serve
    max_label_chars: int = 200  # a run's label (the training page's table shows it)

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
    train_max_updates: int = 3000  # a short run; BPTT vs clipping differ clearly by then
    train_eval_every: int = 100  # K: rho(W_rec) and the validation metric every K updates
    train_seed: int = 0  # seed of initialisation and data order
    train_init: str = "default"  # sigmoid N(0, .01^2), tanh N(0, .1^2); or "smart_tanh"
    train_dtype: str = "float64"  # float32 is faster on large models
    train_temporal_variant: str = "6a"  # temporal-order generator: task 6a (8 symbols, markers);
    # "authors": tempOrder.py of pascanur/trainingRNNs (6 symbols), drawn from their RandomState
    temporal_order_valid: int = 1000  # fresh sequences per check: the paper's 1000-in-a-row criterion
    ensemble_max_models: int = 50  # temporal-order runs of one shape that train_many trains
    # together in one kernel call per update (Figure 7's 50 seeds of a length); more form more ensembles
    max_check_sequences: int = 100_000  # largest temporal-order success test (TrainConfig.check_sequences)
    temporal_order_eval_chunk: int = 1000  # sequences of a success test run at once (memory bound;
    # the authors' code evaluates its 10,000 in chunks of 1000, RNN.py:484)
    reproduce_divergence_factor: float = 1.25  # `clipviz reproduce`: a run diverged when a validation
    # score after its best checkpoint is worse than this multiple of the best (or a step was not finite)
    max_hidden: int = 2000  # largest hidden layer accepted
    max_batch: int = 4096  # largest mini-batch accepted
    max_seq_len: int = 10_000  # longest window / temporal-order length accepted
    max_updates: int = 10_000_000  # longest run accepted by the library and the CLI
    web_max_updates: int = 200_000  # longest run accepted from the web (the paper's runs: 100k)
    max_train_memory_fraction: float = 0.5  # a run's estimated arrays may use this share of the RAM
    max_vocab: int = 256  # characters beyond the 255 most frequent map to one 'unknown' symbol
    max_eval_symbols: int = 1_000_000  # evaluation of a text split reads at most this many characters
    eval_lanes: int = 32  # sequences evaluated side by side (songs or text segments)
    data_dir: str = "~/.cache/clipviz/data"  # where `clipviz data fetch` stores data sets ($CLIPVIZ_DATA wins)

    # --- web app ---------------------------------------------------------------
    cache_timeout_s: int = 24 * 3600  # memoised results live a day (they never go stale)
    cache_max_bytes: int = 2 << 30  # the disk cache evicts the least recently stored beyond this
    live_rho_max_hidden: int = 800  # the training page computes a running run's initial rho(W_rec)
    #   itself up to this many hidden units (an eigenvalue problem of that size); larger: at the end
    max_request_bytes: int = 1 << 20  # a request body; the app's own requests are a few KB
    web_max_view_work: int = 1024 * 1024 * 64  # res² x T of one surface view (res 1024 at T 64,
    # 512 at T 256); larger views kept a server busy long enough that a few clients starved /health
    owner_cookie_days: int = 365  # how long a browser keeps the session cookie that owns its runs
    web_heavy_slots: int = 1  # surface computations at once per web process: the kernels use
    # every core already, and the other threads stay free for cheap requests (/health, paths)
    web_heavy_wait_s: float = 0.0  # how long a heavy request waits for a slot before a 503 (the
    # page retries): a waiting request holds a server thread that a cheap one could use
    web_max_runs: int = 200  # runs the training page lists, tracks or cancels at once (newest first)
    json_max_depth: int = 64  # nesting of a request's JSON body; the app's own requests use under 10

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
    dyn_max_work: int = 4_000_000_000  # grid points x steps per basins/sensitivity/orbit call
    dyn_max_sensitivity_points: int = 1 << 20  # b values accepted by the 1-D sensitivity
    dyn_max_units: int = 500  # n-unit model: largest n accepted
    dyn_max_unit_work: float = 2e10  # n^3 x steps cap for jacobian_norms (matrix products + SVDs)
    dyn_max_unit_steps: int = 5000  # n-unit model: longest unroll accepted

    # --- error-surface slices and curvature of real networks (clipviz.landscape; issue 16) ----
    landscape_block: int = 32  # grid points per block of the slice kernel: a block's state and
    # product arrays (3 x units x block) stay in a core's cache; blocks run in parallel
    landscape_max_grid_points: int = 1 << 20  # alphas x betas of one slice (1024 x 1024)
    landscape_max_work: float = 2e12  # grid points x steps x sequences x (units^2 + units x outputs)
    # of one slice: about a minute on two cores
    lanczos_tol: float = 1e-6  # relative accuracy of the top Hessian eigenvalue (eigsh's tol)
    lanczos_maxiter: int = 300  # Lanczos restarts limit (eigsh's maxiter); each costs HVPs
    lanczos_ncv: int = 20  # Lanczos basis size (eigsh's ncv): HVPs per restart
    max_dense_hessian_params: int = 2000  # dense_hessian builds n columns from n HVPs: tests only
    snapshot_max_clipped: int = 4  # snapshots kept where clipping fired (the largest |g|)
    snapshot_max_spikes: int = 4  # ... where |g| > spike_factor x its running median (largest ratios)
    snapshot_max_ordinary: int = 3  # ... of ordinary updates, for comparison
    snapshot_max_each: int = 64  # most snapshots of one kind a policy may ask for: each holds
    # theta, so a record with many of a large model's would be tens of MB
    snapshot_spike_factor: float = 10.0  # |g| this many times its running median is a spike
    snapshot_median_window: int = 100  # updates in the running median of |g|
    snapshot_ordinary_every: int = 100  # ordinary snapshots are taken at multiples of this update
    snapshot_max_run_bytes: int = 16 << 20  # encoded snapshots one run stores in the run store
    # (16 MiB); a run whose snapshots exceed it keeps the ones that fit, clipped and spikes first
    slice_points: int = 41  # grid points per axis of a kept update's slice (training page)
    slice_alpha_span: tuple = (-0.5, 1.5)  # alpha range of the slice, in units of plain BPTT's step
    slice_beta_span: float = 1.0  # beta range +- this, in units of plain BPTT's step length
    slice_rows_per_report: int = 4  # grid rows between two progress reports / cancel checks
    slice_max_active: int = 8  # slices queued or running at once (the page refuses more)
    slice_poll_ms: int = 500  # the training page's refresh of an open slice's progress

    # --- `clipviz reproduce wall` (issue 16 item 5): section 2.4 measured at spikes of |g| ------
    # --scale small trains plain BPTT runs that diverge within their budget, keeps a snapshot at
    # every spike and measures it; --seeds / --max-updates override the runs' seeds and updates
    wall_spike_factor: float = 3.0  # a spike: |g| above this many times its running median (the
    # snapshots' default, 10, leaves a few a run: too few for a distribution)
    wall_median_window: int = 50  # updates in that running median; also tau of the clipped step
    wall_max_spikes: int = 32  # spikes measured per run (the largest ratios; each a Lanczos solve)
    wall_max_ordinary: int = 4  # ordinary updates measured per run, for comparison
    wall_ordinary_every: int = 50  # ... taken at multiples of this update
    wall_seeds: int = 8  # temporal-order runs (seeds 0, 1, ...)
    wall_updates: int = 300  # updates of each temporal-order run: they diverge within 100
    wall_lr: float = 0.5  # temporal order: plain SGD at this lr diverges (loss 1.4 -> ~4)
    wall_seq_len: int = 20  # temporal-order length
    wall_hidden: int = 30  # temporal-order units (tanh)
    wall_init: str = "smart_tanh"  # temporal order: sparse W_rec at spectral radius 0.95
    wall_music_dataset: str = "jsb"  # the music set (skipped with a message where absent)
    wall_music_seeds: int = 4  # music runs
    wall_music_updates: int = 3000  # updates of each music run (one 100-step window each)
    wall_music_lr: float = 0.01  # music: 10x section 4.1's lr, so that BPTT spikes within the budget
    wall_music_hidden: int = 50  # music units (tanh, biases; section 4.1 has 100)
    wall_one_unit_starts: int = 12  # one-unit descents from an n x n grid over the surface window
    wall_one_unit_lr: float = 1.5  # their learning rate (the surface page's default)
    wall_one_unit_steps: int = 100  # their length (the surface page's default)
    wall_one_unit_resolution: int = 256  # grid side of the one-unit surface's curvature measure
    wall_aligned_deg: float = 10.0  # g counts as aligned with the top eigenvector below this angle
    wall_spearman_support: float = 0.5  # the verdict calls "curvature rises with |g|" supported
    # above this rank correlation (a strong monotone relation, not merely a positive one)


SETTINGS = Settings()

# ---------------------------------------------------------------------------
# The environment.  These functions are the only readers of os.environ in the
# package; every path clipviz writes to is derived from them.  They read at call
# time, so a test or a notebook may change a variable and see the effect.
# ---------------------------------------------------------------------------
ENV_DATA_DIR = "CLIPVIZ_DATA_DIR"  # run store, web cache: one folder per deployment
ENV_DATASETS = "CLIPVIZ_DATA"  # data sets: searched first, and where `clipviz data fetch` writes
ENV_REDIS_URL = "CLIPVIZ_REDIS_URL"  # Celery broker and web cache; unset -> embedded, no service
ENV_DATABASE_URL = "CLIPVIZ_DATABASE_URL"  # postgresql://... run store; unset -> the SQLite file
ENV_HEARTBEAT_TIMEOUT = "CLIPVIZ_HEARTBEAT_TIMEOUT_S"  # seconds without a heartbeat before a run
# claimed by this process counts as dead
ENV_LOCAL_WORKERS = "CLIPVIZ_LOCAL_WORKERS"  # concurrent local runners (embedded job layer)
ENV_RUNNER_IDLE = "CLIPVIZ_RUNNER_IDLE_S"  # seconds an idle local runner waits for work before it exits
ENV_BLAS_THREADS = "CLIPVIZ_WORKER_BLAS_THREADS"  # BLAS threads per training job
ENV_ADMIN_TOKEN = "CLIPVIZ_ADMIN_TOKEN"  # a request carrying it may cancel any run; unset: none may
ENV_READ_ONLY = "CLIPVIZ_READ_ONLY"  # 1: the figure pages only, no training page and no runs API
ENV_ALLOWED_ORIGINS = "CLIPVIZ_ALLOWED_ORIGINS"  # other origins (scheme://host:port, comma
# separated) whose pages may send state-changing requests; the app's own origin always may
ENV_THREADING_LAYER = "NUMBA_THREADING_LAYER"  # Numba's own variable; clipviz picks a default
# TBB is both thread-safe (gunicorn --threads: workqueue aborts on concurrent parallel kernels)
# and fork-safe (GNU OpenMP breaks in children forked after a parallel kernel ran).  Where the TBB
# library cannot be loaded (no wheel for the platform, no libtbb12), "threadsafe" lets Numba use
# OpenMP: clipviz forks no process that has run a parallel kernel (runners are fresh interpreters).
DEFAULT_THREADING_LAYER = "safe"
FALLBACK_THREADING_LAYER = "threadsafe"
TBB_LIBRARY = "libtbb.so.12"  # the soname Numba's TBB pool links against (oneTBB 2021.6 or newer)


def _env(name: str) -> str | None:
    """The variable's value with surrounding white space removed; None when unset or empty."""
    raw = os.environ.get(name)
    if raw is None:
        return None
    return raw.strip() or None


def _env_bounded(name: str, default, lo, hi, parse, what: str):
    """The variable parsed by ``parse`` and checked to lie in [lo, hi]; ``default`` when unset;
    otherwise a ValueError that says what is allowed (``what``: "an integer", ...)."""
    raw = _env(name)
    if raw is None:
        return default
    try:
        value = parse(raw)
    except ValueError:
        value = None
    if value is None or not lo <= value <= hi:
        raise ValueError(f"{name} must be {what} from {lo:g} to {hi:g}, got {raw!r}")
    return value


def _env_int(name: str, default: int, lo: int, hi: int) -> int:
    return _env_bounded(name, default, lo, hi, int, "an integer")


def _env_seconds(name: str, default: float, lo: float, hi: float) -> float:
    return _env_bounded(name, default, lo, hi, float, "a number of seconds")


def data_dir() -> Path:
    """Where clipviz keeps its files (run store, web cache): ``$CLIPVIZ_DATA_DIR`` or
    :attr:`Settings.store_dir`, with ``~`` expanded."""
    return Path(_env(ENV_DATA_DIR) or SETTINGS.store_dir).expanduser()


def store_path() -> Path:
    """The SQLite run store inside :func:`data_dir` (unless :func:`database_url` names another)."""
    return data_dir() / SETTINGS.db_name


def web_cache_dir() -> Path:
    """The web app's filesystem cache inside :func:`data_dir`."""
    return data_dir() / "web-cache"


def dataset_dir() -> Path | None:
    """``$CLIPVIZ_DATA`` (expanded), the first place data sets are looked for; None when unset."""
    raw = _env(ENV_DATASETS)
    return Path(raw).expanduser() if raw else None


def download_dir() -> Path:
    """Where ``clipviz data fetch`` stores data sets: ``$CLIPVIZ_DATA`` or :attr:`Settings.data_dir`."""
    return dataset_dir() or Path(SETTINGS.data_dir).expanduser()


def redis_url() -> str | None:
    """``$CLIPVIZ_REDIS_URL`` (None when unset or empty)."""
    return _env(ENV_REDIS_URL)


def database_url() -> str | None:
    """``$CLIPVIZ_DATABASE_URL`` (None when unset or empty: the SQLite file of :func:`store_path`).

    A ``postgresql://`` URL puts the run store on that PostgreSQL server; ``sqlite:///rel/path``
    or ``sqlite:////abs/path`` names a SQLite file.  Anything else is refused here, before a process starts to use it.
    """
    url = _env(ENV_DATABASE_URL)
    if url is not None and not url.startswith(("postgresql://", "postgres://", "sqlite:///")):
        raise ValueError(f"{ENV_DATABASE_URL} must be a postgresql:// (or sqlite:///) URL, got "
                         f"one starting {url.split(':', 1)[0]!r}")
    return url


def heartbeat_timeout_s() -> float:
    """Seconds a run claimed by this process may go without a heartbeat before any reader marks
    it failed: ``$CLIPVIZ_HEARTBEAT_TIMEOUT_S`` or :attr:`Settings.heartbeat_timeout_s`."""
    return _env_seconds(ENV_HEARTBEAT_TIMEOUT, SETTINGS.heartbeat_timeout_s, 0.5, 86400)


def local_workers() -> int:
    """Concurrent runs of the embedded job layer: ``$CLIPVIZ_LOCAL_WORKERS`` or the setting."""
    return _env_int(ENV_LOCAL_WORKERS, SETTINGS.local_workers, 1, 64)


def runner_idle_s() -> float:
    """Seconds an idle local runner waits for queued work before it exits:
    ``$CLIPVIZ_RUNNER_IDLE_S`` or :attr:`Settings.runner_idle_s` (0: it exits at once)."""
    return _env_seconds(ENV_RUNNER_IDLE, SETTINGS.runner_idle_s, 0, 3600)


def blas_threads() -> int:
    """BLAS threads per training job: ``$CLIPVIZ_WORKER_BLAS_THREADS`` or the setting."""
    return _env_int(ENV_BLAS_THREADS, SETTINGS.worker_blas_threads, 1, 256)


def admin_token() -> str | None:
    """``$CLIPVIZ_ADMIN_TOKEN`` (None when unset or empty: no request is admin)."""
    return _env(ENV_ADMIN_TOKEN)


def read_only() -> bool:
    """``$CLIPVIZ_READ_ONLY`` is 1/true/yes/on: serve the figure pages, hide training."""
    raw = _env(ENV_READ_ONLY)
    if raw is None or raw.lower() in ("0", "false", "no", "off"):
        return False
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    raise ValueError(f"{ENV_READ_ONLY} must be 1 or 0 (true/false, yes/no, on/off), got {raw!r}")


def allowed_origins() -> tuple[str, ...]:
    """``$CLIPVIZ_ALLOWED_ORIGINS`` as a tuple of ``scheme://host[:port]`` (lower case)."""
    raw = _env(ENV_ALLOWED_ORIGINS) or ""
    return tuple(o.strip().rstrip("/").lower() for o in raw.split(",") if o.strip())


def memory_bytes() -> int:
    """This machine's physical memory in bytes (0 where the system does not say)."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, OSError, ValueError):
        return 0


def threading_layer() -> str | None:
    """The user's ``$NUMBA_THREADING_LAYER``, or None when clipviz is to choose
    (:func:`clipviz.numba_setup.select_threading_layer`)."""
    return _env(ENV_THREADING_LAYER)


def child_env(*, path_first: str | os.PathLike | None = None, unset: tuple[str, ...] = (),
              **values: str) -> dict[str, str]:
    """The environment of a child process clipviz starts (a runner, a benchmark's server or
    worker): this process's, with ``values`` set, ``unset`` removed, and ``path_first`` put
    first on ``PYTHONPATH`` (so the child imports that checkout's clipviz)."""
    env = dict(os.environ, **values)
    for name in unset:
        env.pop(name, None)
    if path_first is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(path_first), env.get("PYTHONPATH")]))
    return env


@contextlib.contextmanager
def environment(**values: str | None) -> Iterator[None]:
    """Set variables (None: unset them) for a ``with`` block, then put back what was there (a
    benchmark points this process at a scratch store, for example)."""
    def put(pairs):
        for k, v in pairs.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v

    saved = {k: os.environ.get(k) for k in values}
    try:
        put(values)
        yield
    finally:
        put(saved)


def set_threading_layer(layer: str) -> None:
    """Make ``layer`` Numba's layer in the processes this one starts (they read the variable)."""
    os.environ[ENV_THREADING_LAYER] = layer


ACTIVATIONS = ("sigmoid", "tanh")
"""Activations of the one-unit model (codes 0 and 1 in the kernels)."""
