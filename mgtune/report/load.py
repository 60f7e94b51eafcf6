"""Read and validate study folders, through `mgtune.store` (the only reader of what a run leaves).

A study folder holds ``study.json``, ``results.csv`` (one row per trial), ``optuna.db`` and one
folder per trial with ``progress.csv`` (`mgtune.store.layout`). Everything here only reads; each
problem becomes one line naming the file and what is wrong with it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pandas as pd

from mgtune.errors import ConfigError, DataFormatError
from mgtune.store import (
    BUDGET_FILE,
    FINISHED,
    OPTUNA_FILE,
    RESULTS_FILE,
    STATUSES,
    STUDY_FILE,
    StudyRecord,
    read_results,
    read_spent,
)
from mgtune.store.results import read_progress

__all__ = [
    "METRIC_ABBREV", "STATUSES", "FINISHED", "Study", "load_study", "find_studies", "parse_metric",
    "parse_cutoffs",
]

# Display names of the ranking metrics, in the seed's column order (REC, PREC, MAP, NDCG).
METRIC_ABBREV = {"recall": "REC", "precision": "PREC", "map": "MAP", "ndcg": "NDCG"}
_METRIC_RE = re.compile(r"^([a-z]+)@(\d+)$")


def parse_metric(metric: str) -> tuple[str, int]:
    """``"recall@20"`` -> ``("recall", 20)``; anything else is a `ConfigError`."""
    match = _METRIC_RE.match(metric)
    if not match or match.group(1) not in METRIC_ABBREV or int(match.group(2)) < 1:
        raise ConfigError(
            f"metric must look like recall@20 with one of {', '.join(METRIC_ABBREV)}, got {metric!r}"
        )
    return match.group(1), int(match.group(2))


def parse_cutoffs(text: str) -> tuple[int, ...]:
    """``"5,10,20"`` -> ``(5, 10, 20)``: distinct positive integers, in the given order."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise ConfigError(f"cutoffs must be comma-separated positive integers such as 5,10,20, got {text!r}")
    return tuple(dict.fromkeys(int(p) for p in parts))


@dataclass(frozen=True, eq=False)
class Study:
    """One validated study folder. ``trials`` is results.csv with numeric columns as numbers."""

    path: Path
    model: str
    dataset: str
    mg: bool
    metric: str  # the metric the study itself optimised (Optuna's objective)
    max_epochs: int
    finished: str | None  # ISO time, or None while the study is running or was interrupted
    trials: pd.DataFrame = field(repr=False)
    params: tuple[str, ...] = ()  # sampled parameter names, without the ``param_`` prefix
    ended_by: str | None = None  # "epochs" or "time": its budget ended it (`mgtune.store.budget`)
    wall_seconds: float | None = None  # from start to end (`_wall_seconds`); None while unknown

    @property
    def trial_seconds(self) -> float:
        """Its trials' own seconds added up: more than the wall time when trials ran side by side."""
        return float(self.trials["seconds"].sum())

    @property
    def name(self) -> str:
        return self.path.resolve().name  # also for "." or "runs/x/.."

    @property
    def optuna_db(self) -> Path:
        return self.path / OPTUNA_FILE

    def progress(self, trial_dir: str, metric: str) -> pd.DataFrame:
        """Per-epoch rows of one trial: at least ``epoch`` and ``valid_<metric>``, sorted by epoch."""
        return read_progress(self.path / trial_dir, metric)


def find_studies(storage: str | Path) -> list[Path]:
    """Every study folder (one holding ``study.json``) directly under ``storage``, sorted by name."""
    root = Path(storage)
    found = sorted(p.parent for p in root.glob(f"*/{STUDY_FILE}")) if root.is_dir() else []
    if not found:
        raise ConfigError(f"{root}: no study folders here (a study folder holds a study.json)")
    return found


def load_study(path: str | Path, metric: str, ks: Sequence[int]) -> Study:
    """Read and check ``path``; the columns needed for ``metric`` and cutoffs ``ks`` must exist.

    ``results.csv`` goes through `mgtune.store.results.read_results`, the reader `mgtune confirm` uses too.
    """
    path = Path(path)
    info = StudyRecord.read(path)  # ConfigError if the folder is not a study, DataFormatError if study.json is bad
    results = path / RESULTS_FILE
    if not results.is_file():
        raise DataFormatError(f"{results}: missing; the study has not recorded any trial yet")
    if not (path / OPTUNA_FILE).is_file():
        raise DataFormatError(f"{path / OPTUNA_FILE}: missing; every study folder keeps its Optuna storage")
    needed = [f"valid_{metric}"] + [f"test_{m}@{k}" for k in ks for m in METRIC_ABBREV]
    trials = read_results(results, needed)
    params = tuple(c.removeprefix("param_") for c in trials.columns if c.startswith("param_"))
    return Study(path, info.model, info.dataset, info.mg, info.metric, info.max_epochs, info.finished, trials, params,
                 info.ended_by if info.ended_by in ("epochs", "time") else None, _wall_seconds(path, info))


def _wall_seconds(path: Path, info: StudyRecord) -> float | None:
    """A study's wall time: what its budget record counted (exact across ``--resume``), else ``study.json``'s
    ``created`` to ``finished`` (a pause before a resume included); None for a study without either."""
    if (path / BUDGET_FILE).is_file():
        return read_spent(path).seconds
    if info.created is None or info.finished is None:
        return None
    try:
        seconds = (datetime.fromisoformat(info.finished) - datetime.fromisoformat(info.created)).total_seconds()
    except (ValueError, TypeError):  # not ISO times, or one with a time zone and one without
        return None
    return seconds if seconds >= 0 else None
