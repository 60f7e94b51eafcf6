"""``results.csv``: one row per trial, built from what Ray recorded (``progress.csv`` and errors).

Columns, in order: ``trial_id, trial_dir, status, epochs_run, best_epoch, seconds``, one
``param_<name>`` per searched parameter, then ``valid_<metric>@<k>`` and ``test_<metric>@<k>``
for every metric and cutoff, both taken at the best *validation* epoch. ``status`` is
``completed`` (max epochs or the loop's own early stopping), ``early_stopped`` (ASHA),
``diverged`` (non-finite loss) or ``errored``.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mgtune.errors import DivergedError
from mgtune.files import atomic_open
from mgtune.study.record import STATUSES
from mgtune.study.trainable import FINAL, TRIAL_SECONDS
from mgtune.training import metric_names

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["STATUSES", "TrialRecord", "result_columns", "trial_row", "write_results"]
HEAD = ("trial_id", "trial_dir", "status", "epochs_run", "best_epoch", "seconds")


@dataclass(frozen=True)
class TrialRecord:
    """What Ray kept of one trial: its sampled parameters, per-epoch rows and error, if any."""

    trial_id: str
    trial_dir: str  # relative to the study folder
    params: dict[str, Any]
    progress: pd.DataFrame | None
    error: BaseException | None


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
        row["status"] = "completed" if finished else "early_stopped"
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
