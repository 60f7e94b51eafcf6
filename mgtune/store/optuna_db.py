"""What a study's ``optuna.db`` says about its progress, read with SQLite alone (no Optuna import).

Optuna writes the file (the study "mgtune"); a running study writes it while this reads, so the
connection is read-only and waits at most a second for a lock. A trial has *ended* once it was
told to Optuna: ``COMPLETE``, ``PRUNED`` (stopped by ASHA or the budget) or ``FAIL``; one still
``RUNNING`` after the driver stopped was interrupted.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

from mgtune.store.layout import OPTUNA_FILE

__all__ = ["trial_progress", "ended_trials"]

_ENDED = "('COMPLETE', 'PRUNED', 'FAIL')"


def _connect(study_dir: Path) -> contextlib.closing[sqlite3.Connection]:
    return contextlib.closing(sqlite3.connect(f"file:{study_dir / OPTUNA_FILE}?mode=ro", uri=True, timeout=1))


def trial_progress(study_dir: Path) -> tuple[int, float | None]:
    """Trials ended and the best value of the completed ones (0, None before the file exists);
    `sqlite3.Error` while the file cannot be read."""
    if not (study_dir / OPTUNA_FILE).is_file():
        return 0, None
    with _connect(study_dir) as con:
        done = con.execute(f"SELECT COUNT(*) FROM trials WHERE state IN {_ENDED}").fetchone()[0]
        best = con.execute("SELECT MAX(v.value) FROM trial_values v JOIN trials t ON v.trial_id = t.trial_id "
                           "WHERE t.state = 'COMPLETE'").fetchone()[0]
    return int(done), None if best is None else float(best)


def ended_trials(study_dir: Path) -> int:
    """How many of the study's trials have ended (see the module's docstring)."""
    return trial_progress(study_dir)[0]
