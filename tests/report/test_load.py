"""Reading and validating study folders: each problem is one `MgtuneError` naming the file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from report_fixtures import mg_trials, write_study

from mgtune.errors import ConfigError, DataFormatError
from mgtune.report import find_studies, load_study, parse_cutoffs, parse_metric

KS = (5, 10, 20)


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_study(tmp_path_factory.mktemp("runs"), "s", mg_trials([
        ("a", "completed", 0.2, 0.2), ("b", "early_stopped", 0.1, 0.1), ("c", "errored", 0, 0),
    ]))


@pytest.fixture
def copy(good: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(good, tmp_path / "s"))


def test_parse_metric_and_cutoffs() -> None:
    assert parse_metric("ndcg@10") == ("ndcg", 10)
    assert parse_cutoffs(" 5, 10,10 ,20") == (5, 10, 20)
    for bad in ("recall", "hits@10", "recall@0", "recall@x"):
        with pytest.raises(ConfigError, match="metric must look like"):
            parse_metric(bad)
    for bad in ("", "5,a", "0", "-5"):
        with pytest.raises(ConfigError, match="cutoffs"):
            parse_cutoffs(bad)


def test_loads_a_good_study(good: Path) -> None:
    study = load_study(good, "recall@20", KS)
    assert (study.model, study.dataset, study.mg, study.metric, study.max_epochs) == ("freedom", "toy", True,
                                                                                       "recall@20", 6)
    assert study.params == ("flip_interval", "flip_ratio", "learning_rate", "dropout")
    assert list(study.trials["status"]) == ["completed", "early_stopped", "errored"]
    assert study.trials["epochs_run"].tolist() == [6, 2, 1]
    progress = study.progress("trial_a", "recall@20")
    assert progress["valid_recall@20"].max() == pytest.approx(0.2)


def test_find_studies(good: Path, tmp_path: Path) -> None:
    assert find_studies(good.parent) == [good]
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no study folders"):
        find_studies(tmp_path / "empty")


def _rewrite(path: Path, edit) -> None:  # type: ignore[no-untyped-def]
    path.write_text(edit(path.read_text()))


@pytest.mark.parametrize("breakage, error, message", [
    (lambda d: shutil.rmtree(d), ConfigError, "no such study folder"),
    (lambda d: (d / "study.json").unlink(), ConfigError, "not a study folder"),
    (lambda d: (d / "study.json").write_text("{not json"), DataFormatError, "study.json: not valid JSON"),
    (lambda d: (d / "study.json").write_text(json.dumps({"model": "freedom"})), DataFormatError,
     "study.json: missing key 'dataset'"),
    (lambda d: _rewrite(d / "study.json", lambda t: t.replace('"mg": true', '"mg": "yes"')), DataFormatError,
     "key 'mg' expects bool"),
    (lambda d: (d / "results.csv").unlink(), DataFormatError, "results.csv: missing"),
    (lambda d: (d / "optuna.db").unlink(), DataFormatError, "optuna.db: missing"),
    (lambda d: (d / "results.csv").write_text(""), DataFormatError, "results.csv: empty file"),
    (lambda d: (d / "results.csv").write_bytes(b"\x00\xff\xfe garbage\n\x01,\x02\n"), DataFormatError,
     "results.csv"),
    (lambda d: _rewrite(d / "results.csv", lambda t: t[: t.index("\n") + 30]),
     DataFormatError, "results.csv: column .* needs a finite number in data row 1"),
    (lambda d: _rewrite(d / "results.csv", lambda t: t.replace("trial_id,trial_dir", "trial_dir,trial_id")),
     DataFormatError, "first columns must be"),
    (lambda d: _rewrite(d / "results.csv", lambda t: t.replace("test_ndcg@20", "test_ndcg@21")),
     DataFormatError, "missing column.*test_ndcg@20"),
    (lambda d: _rewrite(d / "results.csv", lambda t: t.replace("early_stopped", "stopped")),
     DataFormatError, "unknown status 'stopped'"),
    (lambda d: _rewrite(d / "results.csv", lambda t: t.replace(",completed,6,", ",completed,six,")),
     DataFormatError, "column epochs_run needs a finite number in data row 1, got 'six'"),
    (lambda d: _rewrite(d / "results.csv", lambda t: t.replace("completed", "diverged").replace(
        "early_stopped", "errored")), DataFormatError, "no finished trial"),
    (lambda d: _rewrite(d / "results.csv", lambda t: t.split("\n")[0] + "\n"), DataFormatError, "no trials"),
], ids=["no-folder", "no-study-json", "bad-json", "missing-key", "bad-type", "no-results", "no-optuna-db",
        "empty-csv", "binary-csv", "truncated-csv", "column-order", "missing-metric", "bad-status",
        "non-numeric", "no-finished-trial", "header-only"])
def test_bad_study_folders(copy: Path, breakage, error: type[Exception], message: str) -> None:  # type: ignore[no-untyped-def]
    breakage(copy)
    with pytest.raises(error, match=message) as info:
        load_study(copy, "recall@20", KS)
    assert "\n" not in str(info.value)


def test_missing_progress_names_the_file(copy: Path) -> None:
    (copy / "trial_a" / "progress.csv").unlink()
    study = load_study(copy, "recall@20", KS)
    with pytest.raises(DataFormatError, match=r"trial_a/progress.csv: missing"):
        study.progress("trial_a", "recall@20")


def test_results_written_before_budget_stopped_existed_still_read(tmp_path: Path) -> None:
    """A budget-ended study recorded before ``budget_stopped``: its cut trials say ``early_stopped`` and its
    budget record names no trial; it reads as before, and its stopped trials still compete for best."""
    from mgtune.report.tables import group_studies
    from mgtune.store.results import read_results

    old = write_study(tmp_path, "old", mg_trials([("a", "completed", 0.2, 0.2), ("b", "early_stopped", 0.3, 0.3)]),
                      ended_by="epochs", budget_epochs=8)
    (old / "budget.jsonl").write_text('{"epochs": 8, "seconds": 42.0}\n')
    header = (old / "results.csv").read_text().splitlines()[0]
    assert header.startswith("trial_id,trial_dir,status,epochs_run,best_epoch,seconds,")  # the format it kept
    assert list(read_results(old / "results.csv", ["valid_recall@20"])["status"]) == ["completed", "early_stopped"]
    study = load_study(old, "recall@20", KS)
    assert study.ended_by == "epochs" and study.wall_seconds == 42.0
    (group,) = group_studies([study], "recall@20", KS)
    assert group.best is not None and (group.best.trial_id, group.best.status) == ("b", "early_stopped")
    assert group.count("budget_stopped") == 0
