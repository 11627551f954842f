"""A child process for the end-to-end tests (Redis, Celery workers, gunicorn): in a session of its
own, its output in a log file, ended for sure by :meth:`Process.stop`."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path


class Process:
    """A child in a session of its own, with its log in a file; :meth:`stop` ends it for sure."""

    stop_timeout = 20.0  #: seconds a SIGTERM may take before the SIGKILL

    def __init__(self, cmd: list[str], env: dict, cwd: Path, log: Path) -> None:
        cwd.mkdir(parents=True, exist_ok=True)
        self.log = log
        self.proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=open(log, "wb"),
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def wait_for_log(self, marker: bytes, timeout: float, what: str) -> None:
        """Until ``marker`` is in the log (AssertionError with the log's end if the process exits
        or ``timeout`` passes first)."""
        deadline = time.monotonic() + timeout
        while marker not in self.log.read_bytes():
            assert self.proc.poll() is None, self.tail()
            assert time.monotonic() < deadline, f"{what} not ready:\n{self.tail()}"
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL the whole process group at once (a Celery worker and its pool child)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                self.kill()
