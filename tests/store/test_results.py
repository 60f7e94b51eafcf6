"""results.csv rows from what Ray recorded: statuses, the best validation epoch, resumed duplicates."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest

from mgtune.errors import DivergedError
from mgtune.store import TrialRecord, select_best, write_results
from mgtune.store.results import result_columns, trial_row
from mgtune.training import metric_names

TOPK = (5, 10, 20, 50)


def _progress(valid: list[float], test: list[float], final: bool, epochs: list[int] | None = None) -> pd.DataFrame:
    epochs = epochs if epochs is not None else list(range(len(valid)))
    rows = []
    best, best_epoch = -1.0, -1
    for e, v, t in zip(epochs, valid, test):
        if v > best:
            best, best_epoch = v, e
        row = {"epoch": e, "train_loss": 0.5, "lr": 1e-3, "best_epoch": best_epoch, "final": False,
               "trial_seconds": 1.0 + e}
        row.update({f"valid_{n}": v for n in metric_names(TOPK)})
        row.update({f"test_{n}": t for n in metric_names(TOPK)})
        rows.append(row)
    rows[-1]["final"] = final
    return pd.DataFrame(rows)


def _rec(trial_id: str, progress: pd.DataFrame | None, error: BaseException | None = None) -> TrialRecord:
    return TrialRecord(trial_id, f"trial_{trial_id}", {"dropout": 0.8, "learning_rate": 0.01}, progress, error)


def test_statuses() -> None:
    names = ["dropout", "learning_rate"]
    assert trial_row(_rec("a", _progress([0.1, 0.2], [0.1, 0.1], True)), names, TOPK)["status"] == "completed"
    assert trial_row(_rec("b", _progress([0.1], [0.1], False)), names, TOPK)["status"] == "early_stopped"
    diverged = trial_row(_rec("c", None, DivergedError("training loss became nan at epoch 0")), names, TOPK)
    assert diverged["status"] == "diverged" and diverged["epochs_run"] == 0
    assert trial_row(_rec("d", None, ValueError("boom")), names, TOPK)["status"] == "errored"


def test_a_trial_the_budget_stopped_is_budget_stopped_unless_it_had_finished() -> None:
    names = ["dropout"]

    def cut(progress: pd.DataFrame | None, error: BaseException | None = None) -> str:
        rec = TrialRecord("a", "trial_a", {"dropout": 0.8}, progress, error, budget_stopped=True)
        return str(trial_row(rec, names, TOPK)["status"])

    assert cut(_progress([0.1, 0.2], [0.1, 0.1], False)) == "budget_stopped"
    assert cut(_progress([0.1, 0.2], [0.1, 0.1], True)) == "completed"  # its last epoch was its final one
    assert cut(None, DivergedError("training loss became nan at epoch 1")) == "diverged"


def test_metrics_come_from_the_best_validation_epoch() -> None:
    row = trial_row(_rec("a", _progress([0.1, 0.3, 0.2], [0.9, 0.1, 0.5], True)), ["dropout"], TOPK)
    assert row["best_epoch"] == 1 and row["epochs_run"] == 3
    assert row["valid_recall@20"] == 0.3 and row["test_recall@20"] == 0.1  # test of epoch 1, not its best test
    assert row["seconds"] == 3.0


def test_epochs_replayed_after_a_resume_count_once() -> None:
    # checkpoint after epoch 1, interrupted after epoch 2, resumed: epoch 2 is reported twice
    progress = _progress([0.1, 0.2, 0.25, 0.26, 0.3], [0.0] * 5, True, epochs=[0, 1, 2, 2, 3])
    row = trial_row(_rec("a", progress), [], TOPK)
    assert row["epochs_run"] == 4 and row["best_epoch"] == 3


def test_select_best_uses_validation_and_completed_trials_only() -> None:
    rows = [
        {"trial_id": "a", "status": "completed", "valid_recall@20": 0.2, "test_recall@20": 0.9},
        {"trial_id": "b", "status": "completed", "valid_recall@20": 0.3, "test_recall@20": 0.1},
        {"trial_id": "c", "status": "early_stopped", "valid_recall@20": 0.5, "test_recall@20": 0.5},
        {"trial_id": "d", "status": "diverged", "valid_recall@20": None, "test_recall@20": None},
    ]
    best = select_best(rows, "recall@20")
    assert best is not None and best["trial_id"] == "b"
    assert select_best(rows[2:], "recall@20") is None


def test_write_results_columns_and_rows(tmp_path: Path) -> None:
    records = [_rec("b", _progress([0.1], [0.1], False)), _rec("a", _progress([0.1, 0.2], [0.2, 0.3], True)),
               _rec("c", None, DivergedError("nan"))]
    write_results(tmp_path / "results.csv", records, ["dropout", "learning_rate"], TOPK)
    with (tmp_path / "results.csv").open() as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
        assert reader.fieldnames == result_columns(["dropout", "learning_rate"], TOPK)
    assert reader.fieldnames[:8] == ["trial_id", "trial_dir", "status", "epochs_run", "best_epoch", "seconds",
                                     "param_dropout", "param_learning_rate"]
    assert [r["trial_id"] for r in rows] == ["a", "b", "c"]
    assert [r["status"] for r in rows] == ["completed", "early_stopped", "diverged"]
    assert rows[2]["valid_recall@20"] == "" and float(rows[0]["param_dropout"]) == 0.8
    assert not list(tmp_path.glob(".results.csv*"))  # the temp file was renamed


@pytest.mark.parametrize("value", ["True", True])
def test_final_flag_read_back_from_csv_text(value: object) -> None:
    progress = _progress([0.1], [0.1], True)
    progress["final"] = [value]
    assert trial_row(_rec("a", progress), [], TOPK)["status"] == "completed"


def test_a_replayed_epoch_counts_with_its_later_copy() -> None:
    # first run: epochs 0-2, epoch 2 the best at 0.5; interrupted, resumed from the checkpoint after epoch 1:
    # epoch 2 replayed (now 0.4, still the best) and epoch 3 finishes the trial
    rows = [(0, 0.1, 0), (1, 0.2, 1), (2, 0.5, 2), (2, 0.4, 2), (3, 0.3, 2)]
    progress = pd.DataFrame([{"epoch": e, "best_epoch": b, "final": e == 3, "trial_seconds": 1.0 + e,
                              **{f"valid_{n}": v for n in metric_names(TOPK)},
                              **{f"test_{n}": v / 2 for n in metric_names(TOPK)}} for e, v, b in rows])
    row = trial_row(_rec("a", progress), [], TOPK)
    assert row["epochs_run"] == 4 and row["best_epoch"] == 2 and row["status"] == "completed"
    assert row["valid_recall@20"] == 0.4 and row["test_recall@20"] == 0.2  # the later copy, not the first run's


def test_progress_read_back_keeps_the_later_copy_of_a_replayed_epoch(tmp_path: Path) -> None:
    from mgtune.store.results import read_progress

    (tmp_path / "progress.csv").write_text("epoch,valid_recall@20\n0,0.1\n1,0.5\n1,0.3\n2,0.4\n")
    frame = read_progress(tmp_path, "recall@20")
    assert frame["epoch"].tolist() == [0, 1, 2] and frame["valid_recall@20"].tolist() == [0.1, 0.3, 0.4]
