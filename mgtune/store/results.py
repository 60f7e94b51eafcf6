"""``results.csv``: one row per trial, built from what Ray recorded (``progress.csv`` and errors); the
trial statuses; and the one rule that picks the best trial (`select_best`).

Columns, in order: ``trial_id, trial_dir, status, epochs_run, best_epoch, seconds``, one
``param_<name>`` per searched parameter, then ``valid_<metric>@<k>`` and ``test_<metric>@<k>``
for every metric and cutoff, both taken at the best *validation* epoch. ``status`` is
``completed`` (max epochs or the loop's own early stopping), ``early_stopped`` (ASHA),
``budget_stopped`` (cut short when the study's budget ran out), ``diverged`` (non-finite loss) or
``errored``. The best trial is the completed one with the highest *validation* metric, the earlier
trial winning ties; test never selects.

Also the keys of a trial's per-epoch report that this file is built from (`FINAL`, `TRIAL_SECONDS`,
`score_key`): the trainable reports them, Ray writes them to ``progress.csv``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from mgtune.errors import DataFormatError, DivergedError
from mgtune.store.csv_files import check_complete, numeric_column, read_frame, require_columns, write_csv
from mgtune.store.fields import finite_number
from mgtune.store.layout import PROGRESS_FILE
from mgtune.store.metrics import metric_names

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "STATUSES", "FINISHED", "FINAL", "TRIAL_SECONDS", "score_key", "TrialRecord", "result_columns", "trial_row",
    "write_results", "read_results", "read_progress", "select_best", "selectable", "rank_completed",
]

# a trial's status in results.csv; budget_stopped: cut short by the study's budget (results.csv files
# written before it existed call those early_stopped, as they do the trials ASHA stopped)
STATUSES = ("completed", "early_stopped", "budget_stopped", "diverged", "errored")
FINISHED = ("completed", "early_stopped", "budget_stopped")  # the statuses of trials that produced metrics
FINAL = "final"
"""Reported key: true on the trial's last epoch (max_epochs reached or its own early stopping)."""
TRIAL_SECONDS = "trial_seconds"
"""Reported key: the trial's wall time so far, start-up included (and time before a resume)."""

_Row = TypeVar("_Row", bound=Mapping[str, Any])


def score_key(metric: str) -> str:
    """The key Ray, ASHA and Optuna optimise: the best validation ``metric`` so far."""
    return f"best_valid_{metric}"


HEAD = ("trial_id", "trial_dir", "status", "epochs_run", "best_epoch", "seconds")


@dataclass(frozen=True)
class TrialRecord:
    """What Ray kept of one trial: its sampled parameters, per-epoch rows and error, if any."""

    trial_id: str
    trial_dir: str  # relative to the study folder
    params: dict[str, Any]
    progress: pd.DataFrame | None
    error: BaseException | None
    budget_stopped: bool = False  # the study's budget stopped it (`BudgetStopper`), not ASHA


def result_columns(param_names: Sequence[str], topk: Sequence[int]) -> list[str]:
    names = metric_names(tuple(topk))
    return [*HEAD, *(f"param_{p}" for p in param_names), *(f"valid_{n}" for n in names),
            *(f"test_{n}" for n in names)]


def trial_row(rec: TrialRecord, param_names: Sequence[str], topk: Sequence[int]) -> dict[str, Any]:
    row: dict[str, Any] = {"trial_id": rec.trial_id, "trial_dir": rec.trial_dir}
    row.update({f"param_{p}": rec.params.get(p) for p in param_names})
    progress = rec.progress
    if progress is not None and len(progress) and "epoch" in progress:
        # a resumed trial re-reports the epochs after its last checkpoint: keep the later rows
        progress = progress.drop_duplicates("epoch", keep="last").sort_values("epoch")
        last = progress.iloc[-1]
        best = progress[progress["epoch"] == last["best_epoch"]]
        best_row_ = best.iloc[-1] if len(best) else last
        row.update(epochs_run=len(progress), best_epoch=int(last["best_epoch"]),
                   seconds=round(float(last.get(TRIAL_SECONDS, math.nan)), 3))
        for name in metric_names(tuple(topk)):
            for split in ("valid", "test"):
                row[f"{split}_{name}"] = best_row_.get(f"{split}_{name}")
        finished = str(last.get(FINAL, False)).lower() == "true"  # bool, or text from a CSV
    else:
        row.update(epochs_run=0, best_epoch=None, seconds=None)
        finished = False
    if rec.error is not None:
        row["status"] = "diverged" if _is_divergence(rec.error) else "errored"
    else:
        row["status"] = "completed" if finished else "budget_stopped" if rec.budget_stopped else "early_stopped"
    return row


def write_results(path: Path, records: Sequence[TrialRecord], param_names: Sequence[str],
                  topk: Sequence[int]) -> list[dict[str, Any]]:
    """Write ``results.csv`` atomically (temp file + rename); return its rows."""
    rows = sorted((trial_row(r, param_names, topk) for r in records), key=lambda r: r["trial_id"])
    write_csv(path, result_columns(param_names, topk), rows)
    return rows


def _is_divergence(error: BaseException) -> bool:
    # Ray wraps the trial's exception (RayTaskError(DivergedError)); after a restore only its text may survive
    return isinstance(error, DivergedError) or "DivergedError" in f"{type(error).__name__} {error}"


# ---------------------------------------------------------------- reading results.csv back
def read_results(path: Path, needed: Sequence[str]) -> pd.DataFrame:
    """``results.csv`` read and checked: the one reader of `mgtune report` and `mgtune confirm`.

    ``needed`` are the metric columns the caller uses (``valid_recall@20``...). Numeric columns
    come back as floats; a finished trial with an empty counter or metric, an unknown status, a
    duplicate trial id or a file cut short (no newline after its last row) is a `DataFormatError`
    naming the file, never a silently different trial.
    """
    frame = read_frame(path, ("trial_id", "trial_dir", "status"))
    if tuple(frame.columns[: len(HEAD)]) != HEAD:
        got = ", ".join(map(str, frame.columns[:6]))
        raise DataFormatError(f"{path}: the first columns must be {', '.join(HEAD)}; got {got}")
    require_columns(path, frame, needed)
    if frame.empty:
        raise DataFormatError(f"{path}: no trials")
    unknown = sorted(set(frame["status"].fillna("<empty>")) - set(STATUSES))
    if unknown:
        raise DataFormatError(f"{path}: unknown status {unknown[0]!r}; expected one of {', '.join(STATUSES)}")
    if frame["trial_id"].isna().any() or frame["trial_id"].duplicated().any():
        raise DataFormatError(f"{path}: trial_id must be present and unique in every row")
    finished = frame["status"].isin(FINISHED)
    if not finished.any():
        raise DataFormatError(f"{path}: no finished trial (all {len(frame)} diverged or errored)")
    completed = frame["status"] == "completed"
    if frame.loc[finished, "trial_dir"].isna().any():
        raise DataFormatError(f"{path}: a finished trial has an empty trial_dir")
    for number, name in enumerate(frame["trial_dir"], start=1):
        check_trial_dir(path, name, number)
    # Failed trials may leave counters and metrics empty; finished ones may not.
    frame["epochs_run"] = numeric_column(path, frame, "epochs_run", finished).fillna(0)
    frame["seconds"] = numeric_column(path, frame, "seconds").fillna(0.0)  # informative only: may be empty
    frame["best_epoch"] = numeric_column(path, frame, "best_epoch", finished)
    for col in needed:
        frame[col] = numeric_column(path, frame, col, completed if col.startswith("test_") else finished)
    check_complete(path)  # a writer always ends the last row; a file cut inside it may still parse
    return frame


def check_trial_dir(path: Path, name: object, row: int) -> None:
    """`DataFormatError` unless ``name`` (a ``trial_dir`` cell of ``path``) is one folder beside ``path``.

    Every reader follows the cell (to a trial's weights, parameters, progress); one that is absolute,
    climbs out with ``..`` or is a link would make a report or a recommendation out of another folder's files.
    """
    if not isinstance(name, str) or not name:
        return  # empty: a failed trial's; a finished one's is refused above
    if name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise DataFormatError(f"{path}: data row {row}: trial_dir must be a folder inside the study folder, "
                              f"got {name!r}")
    if (path.parent / name).is_symlink():
        raise DataFormatError(f"{path}: data row {row}: trial_dir {name!r} is a symbolic link; not followed")


def read_progress(trial_dir: Path, metric: str) -> pd.DataFrame:
    """A trial's per-epoch rows (Ray's ``progress.csv``): at least ``epoch`` and ``valid_<metric>``, sorted
    by epoch. A resumed trial re-reports the epochs after its last checkpoint: the later rows count."""
    path = trial_dir / PROGRESS_FILE
    frame = read_frame(path)  # a running trial's file may be mid-row: not checked complete
    require_columns(path, frame, ["epoch", f"valid_{metric}"])
    for col in ("epoch", f"valid_{metric}"):
        frame[col] = numeric_column(path, frame, col, frame[col].notna())
    return frame.drop_duplicates("epoch", keep="last").sort_values("epoch")


# ---------------------------------------------------------------- the best trial
def rank_completed(rows: Iterable[_Row], metric: str, statuses: tuple[str, ...] = ("completed",)) -> list[_Row]:
    """The completed trials (or those of ``statuses``) with a finite validation ``metric``, best first;
    ties keep the rows' order."""
    key = f"valid_{metric}"
    done = [r for r in rows if r.get("status") in statuses and finite_number(r.get(key)) is not None]
    return sorted(done, key=lambda r: -float(r[key]))  # stable: the earlier trial wins ties


def select_best(rows: Iterable[_Row], metric: str, budget_ended: bool = False) -> _Row | None:
    """The completed trial with the best *validation* ``metric`` (test never selects), or None.

    In a study its budget ended (``budget_ended``), the trials running at the end were cut short by the
    budget, not judged worse, so every trial with metrics competes (completed or stopped early, by ASHA
    or by the budget): the best validation value any of them reached, whose checkpoint is kept.
    """
    ranked = rank_completed(rows, metric, selectable(budget_ended))
    return ranked[0] if ranked else None


def selectable(budget_ended: bool = False) -> tuple[str, ...]:
    """The statuses `select_best` chooses among: ``completed``, or in a study its budget ended every finished one."""
    return FINISHED if budget_ended else ("completed",)
