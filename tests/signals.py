"""Stopping a real mgtune process from outside, for the tests of every long command: wait until it has
reached the point under test, then signal it as a scheduler or a shell would."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def wait_until(proc: subprocess.Popen[Any], ready: Callable[[], bool], err: Path, timeout: float) -> None:
    """Return once ``ready()`` holds; ``proc`` ending first, or ``timeout`` seconds passing, fails the test with
    the end of ``err`` (its stderr)."""
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, err.read_text()[-3000:]
        assert time.monotonic() < deadline, err.read_text()[-3000:]
        time.sleep(0.1)


def signal_when(proc: subprocess.Popen[Any], ready: Callable[[], bool], err: Path, timeout: float,
                signum: int = signal.SIGTERM) -> str:
    """Send ``signum`` to ``proc`` once ``ready()`` holds (`wait_until`); its stdout after it ended."""
    try:
        wait_until(proc, ready, err, timeout)
        proc.send_signal(signum)
        out, _ = proc.communicate(timeout=120)
        return out
    finally:
        if proc.poll() is None:
            proc.kill()
