"""A study's own Ray runtime runs its trial workers at the driver's niceness, or lower when asked (issue 26).

Each study runs the CLI in a subprocess; while its trial trains, ``ps`` (psutil) reads the niceness
of the driver's Ray worker processes, then the study is stopped (SIGTERM, as Ctrl-C).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from mgtune.processes import MAX_NICENESS, TRIAL_NICENESS_ENV

pytestmark = pytest.mark.ray


def _worker_niceness(tiny_dir: Path, storage: Path, env: dict[str, str]) -> tuple[set[int], int]:
    """The niceness of the study's trial and idle workers seen while its trial runs, and how many workers."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "mgtune.cli", "run", "--model", "freedom", "--dataset", "tiny", "--data-dir",
         str(tiny_dir), "--trials", "1", "--max-epochs", "200", "--storage", str(storage), "--name", "nice"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env={**os.environ, **env})
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            workers = [p for p in psutil.Process(proc.pid).children(recursive=True) if _is_worker(p)]
            if any("ImplicitFunc" in _title(p) for p in workers):
                return {p.nice() for p in workers}, len(workers)
            time.sleep(0.2)
        raise AssertionError(f"no trial worker seen; the study said: {proc.communicate()[1][-2000:]}")
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # ends like Ctrl-C: Ray stopped, its workers with it
            proc.communicate(timeout=120)


def _title(p: psutil.Process) -> str:
    try:
        return " ".join(p.cmdline())
    except psutil.Error:
        return ""


def _is_worker(p: psutil.Process) -> bool:
    title = _title(p)
    return title.startswith("ray::") and "Agent" not in title  # the agents run at the raylet's niceness


def test_trial_workers_run_at_the_drivers_niceness_or_lower_when_asked(tiny_dir: Path, tmp_path: Path) -> None:
    own = os.nice(0)
    seen, workers = _worker_niceness(tiny_dir, tmp_path / "a", {TRIAL_NICENESS_ENV: ""})
    assert seen == {own}  # not Ray's default of 15 more
    assert workers == 1  # a one-trial study: its trial's worker, no idle ones started ahead
    lower = min(own + 3, MAX_NICENESS)
    seen, _ = _worker_niceness(tiny_dir, tmp_path / "b", {TRIAL_NICENESS_ENV: str(lower)})
    assert seen == {lower}
