"""clipviz.config is the one reader of the environment, and every path comes from it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from clipviz import config

PKG = Path(config.__file__).resolve().parent
ENV_READ = re.compile(r"\bos\.environ\b|\bgetenv\b|\benviron\.get\b")


def test_no_module_but_config_reads_the_environment():
    readers = []
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG).as_posix()
        # config reads it (and gives the benchmarks the environments of their child processes)
        if rel == "config.py":
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if ENV_READ.search(line):
                readers.append(f"{rel}:{n}: {line.strip()}")
    assert readers == []


def test_a_home_relative_data_dir_puts_store_and_cache_in_one_place(tmp_path, monkeypatch):
    """CLIPVIZ_DATA_DIR='~/x' once put the cache under the home folder and the run store in a
    literal ./~/x folder: each module had its own data_dir()."""
    from clipviz import runstore
    from clipviz.web import cache

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("CLIPVIZ_DATA_DIR", "~/x")
    monkeypatch.delenv("CLIPVIZ_REDIS_URL", raising=False)
    assert config.data_dir() == tmp_path / "x"
    assert runstore.default_path() == tmp_path / "x" / "runs.sqlite"
    assert Path(cache.cache_config()["CACHE_DIR"]) == tmp_path / "x" / "web-cache"


def test_unset_and_empty_variables_mean_the_defaults(monkeypatch):
    for name in (config.ENV_DATA_DIR, config.ENV_REDIS_URL, config.ENV_LOCAL_WORKERS):
        monkeypatch.setenv(name, "  ")
    assert config.data_dir() == Path(config.SETTINGS.store_dir)
    assert config.redis_url() is None
    assert config.local_workers() == config.SETTINGS.local_workers


@pytest.mark.parametrize("raw", ["0", "65", "two", "1.5"])
def test_bad_worker_counts_say_what_is_allowed(monkeypatch, raw):
    monkeypatch.setenv(config.ENV_LOCAL_WORKERS, raw)
    with pytest.raises(ValueError, match=r"CLIPVIZ_LOCAL_WORKERS must be an integer from 1 to 64"):
        config.local_workers()


@pytest.mark.parametrize("raw", ["-1", "3601", "soon", "nan"])
def test_a_bad_runner_wait_says_what_is_allowed(monkeypatch, raw):
    monkeypatch.setenv(config.ENV_RUNNER_IDLE, raw)
    with pytest.raises(ValueError, match=r"CLIPVIZ_RUNNER_IDLE_S must be a number of seconds from 0 to 3600"):
        config.runner_idle_s()


def test_the_runner_wait_defaults_to_the_setting_and_reads_the_variable(monkeypatch):
    monkeypatch.delenv(config.ENV_RUNNER_IDLE, raising=False)
    assert config.runner_idle_s() == config.SETTINGS.runner_idle_s
    monkeypatch.setenv(config.ENV_RUNNER_IDLE, " 2.5 ")
    assert config.runner_idle_s() == 2.5


def test_datasets_are_looked_for_first_where_clipviz_data_says(tmp_path, monkeypatch):
    from clipviz import datasets

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv(config.ENV_DATASETS, "~/sets")
    assert datasets.data_dirs()[0] == tmp_path / "sets"
    assert datasets.download_dir() == tmp_path / "sets"
