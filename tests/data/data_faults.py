"""Helpers of the data layer's fault tests: a guard against hangs, one error line, a folder's state (small
disks are in `disk_faults`)."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

import mgtune

N_ITEMS = 30


def write_log(path: Path, n_users: int = 40) -> pd.DataFrame:
    """A raw interactions log (user u has 5 + u % 21 distinct items of 30) written by ``path``'s suffix."""
    rng = np.random.default_rng(0)
    rows = []
    for u in range(n_users):
        for i in rng.choice(N_ITEMS, size=5 + u % 21, replace=False):
            rows.append((f"user{u}", f"item{i:02d}", float(rng.integers(1, 6)), 1_000 + len(rows)))
    log = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
    if path.suffix == ".parquet":
        log.to_parquet(path)
    else:
        log.to_csv(path, sep="\t" if path.suffix in (".tsv", ".inter") else ",", index=False)
    return log


def item_ids() -> list[str]:
    return [f"item{i:02d}" for i in range(N_ITEMS)]


@contextmanager
def no_hang(seconds: int = 60) -> Iterator[None]:
    """Fail instead of hanging: SIGALRM interrupts a blocked open() (of a FIFO, say) with TimeoutError."""

    def expire(signum: int, frame: object) -> None:
        raise TimeoutError(f"still blocked after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def one_error(err: str) -> str:
    """The only line of ``err`` (stderr), which must be one ``mgtune: error: ...`` line."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mgtune: error: "), lines
    return lines[0].removeprefix("mgtune: error: ")


def state(folder: Path) -> dict[str, str]:
    """Every entry under ``folder`` (hidden ones too) with a hash of its bytes, links and special files named."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = str(path.relative_to(folder))
            if path.is_symlink():
                out[rel] = f"link:{os.readlink(path)}"
            elif path.is_file():
                out[rel] = hashlib.blake2b(path.read_bytes(), digest_size=8).hexdigest()
            elif not path.is_dir():
                out[rel] = "special"
    return out


def cli_env() -> dict[str, str]:
    """The environment of a fresh Python that imports the mgtune these tests import."""
    root = str(Path(mgtune.__file__).resolve().parents[1])
    return {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}


def run_cli(*argv: str, code: str = "", timeout: int = 180) -> subprocess.CompletedProcess[str]:
    """``mgtune ARGV`` in a fresh Python (``code`` runs first, e.g. to inject a fault), its output captured."""
    script = f"import sys\n{code}\nfrom mgtune.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    return subprocess.run([sys.executable, "-c", script, *argv], capture_output=True, text=True, timeout=timeout,
                          env=cli_env())
