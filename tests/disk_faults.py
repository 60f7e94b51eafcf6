"""Disks that refuse writes, for the fault tests of every layer: a small tmpfs, a read-only bind, a ballast.

Mounting needs root (CI runs as root); where it is refused the test skips and says why.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

__all__ = ["small_disk", "read_only_bind", "fill"]


@contextmanager
def small_disk(folder: Path, size: str = "2m", read_only: bool = False) -> Iterator[Path]:
    """``folder`` as a fresh tmpfs of ``size`` (root only; skips with the reason where mount is refused)."""
    folder.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs at {folder}: {done.stderr.strip() or done.returncode}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


@contextmanager
def read_only_bind(source: Path, folder: Path) -> Iterator[Path]:
    """``source`` bound read-only at ``folder`` (root only; skips with the reason where mount is refused)."""
    folder.mkdir(parents=True, exist_ok=True)
    for argv in (["mount", "--bind", str(source), str(folder)], ["mount", "-o", "remount,bind,ro", str(folder)]):
        done = subprocess.run(argv, capture_output=True, text=True)
        if done.returncode != 0:
            subprocess.run(["umount", "-l", str(folder)], check=False, capture_output=True)
            pytest.skip(f"cannot bind {source} read-only at {folder}: {done.stderr.strip() or done.returncode}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(disk: Path, leave: int) -> Path:
    """A ballast file on ``disk`` that leaves ``leave`` bytes free (remove it to make room again)."""
    st = os.statvfs(disk)
    free = st.f_bavail * st.f_frsize
    ballast = disk / "ballast"
    with ballast.open("ab") as fh:
        fh.write(b"\0" * max(0, free - leave))
    return ballast
