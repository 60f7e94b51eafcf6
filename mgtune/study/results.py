"""``results.csv``: one row per trial, built from what Ray recorded (``progress.csv`` and errors).

Columns, in order: ``trial_id, trial_dir, status, epochs_run, best_epoch, seconds``, one
``param_<name>`` per searched parameter, then ``valid_<metric>@<k>`` and ``test_<metric>@<k>``
for every metric and cutoff, both taken at the best *validation* epoch. ``status`` is
``completed`` (max epochs or the loop's own early stopping), ``early_stopped`` (ASHA),
``budget_stopped`` (cut short when the study's budget ran out), ``diverged`` (non-finite loss) or
``errored``.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mgtune.errors import DataFormatError, DivergedError
from mgtune.files import atomic_open
from mgtune.study.record import FINISHED, STATUSES
from mgtune.study.trainable import FINAL, TRIAL_SECONDS
from mgtune.training import metric_names

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "STATUSES", "FINISHED", "TrialRecord", "result_columns", "trial_row", "write_results", "read_results", "read_csv",
    "numeric_column", "require_columns",
]

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
    columns = result_columns(param_names, topk)
    rows = sorted((trial_row(r, param_names, topk) for r in records), key=lambda r: r["trial_id"])
    with atomic_open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows({k: ("" if v is None else v) for k, v in row.items()} for row in rows)
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
    frame = read_csv(path)
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
    # Failed trials may leave counters and metrics empty; finished ones may not.
    frame["epochs_run"] = numeric_column(path, frame, "epochs_run", finished).fillna(0)
    frame["seconds"] = numeric_column(path, frame, "seconds").fillna(0.0)  # informative only: may be empty
    frame["best_epoch"] = numeric_column(path, frame, "best_epoch", finished)
    for col in needed:
        frame[col] = numeric_column(path, frame, col, completed if col.startswith("test_") else finished)
    with path.open("rb") as fh:  # a writer always ends the last row; a file cut inside it may still parse
        fh.seek(-1, 2)
        if fh.read(1) not in (b"\n", b"\r"):
            raise DataFormatError(f"{path}: truncated (its last row does not end with a newline)")
    return frame


def read_csv(path: Path) -> pd.DataFrame:
    """A CSV file of a study folder; unreadable or empty files are a `DataFormatError`."""
    import pandas as pd

    if not path.is_file():
        raise DataFormatError(f"{path}: missing")
    try:
        frame = pd.read_csv(path, dtype={"trial_id": str, "trial_dir": str, "status": str})
    except pd.errors.EmptyDataError:
        raise DataFormatError(f"{path}: empty file") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataFormatError(f"{path}: not a readable CSV ({first})") from None
    return frame


def require_columns(path: Path, frame: pd.DataFrame, columns: Iterable[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataFormatError(f"{path}: missing column(s) {', '.join(missing)}")


def numeric_column(path: Path, frame: pd.DataFrame, col: str, required: pd.Series | None = None) -> pd.Series:
    """``frame[col]`` as floats; a non-number, or an empty cell where ``required``, is an error."""
    import numpy as np
    import pandas as pd

    values = pd.to_numeric(frame[col], errors="coerce").astype(float)
    present = frame[col].notna() if required is None else frame[col].notna() | required
    bad = (values.isna() & present) | np.isinf(values)
    if bad.any():
        row = int(bad.to_numpy().nonzero()[0][0])
        raise DataFormatError(f"{path}: column {col} needs a finite number in data row {row + 1}, "
                              f"got {frame[col].iloc[row]!r}")
    return values
