"""`StudyRecord`: the one reader and writer of study.json; `select_best`: the one rule for the best trial."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mgtune.errors import ConfigError, DataFormatError
from mgtune.files import write_json
from mgtune.store import STUDY_FILE, StudyRecord, select_best
from mgtune.store.results import rank_completed

WRITTEN = {  # a study.json as `mgtune run` writes it, key order included
    "model": "freedom", "dataset": "demo", "mg": True, "metric": "recall@20", "mode": "max", "max_epochs": 12,
    "grace_epochs": 2, "reduction_factor": 3, "trials": 8, "seed": 0,
    "search_space": {"learning_rate": {"type": "float", "low": 0.0001, "high": 0.01, "log": True}},
    "search_space_file": "/x/search_spaces/freedom.yaml", "created": "2026-11-29T10:00:00+0000", "finished": None,
    "mgtune_version": "0.1.0", "data_dir": "/x/datasets", "cpus_per_trial": 1.0, "gpus_per_trial": 0.0,
    "checkpoint_every": 5, "topk": [5, 10, 20, 50], "max_concurrent_trials": 2, "ray_address": "127.0.0.1:6379",
}


def test_a_written_study_json_reads_and_writes_back_byte_for_byte(tmp_path: Path) -> None:
    write_json(tmp_path / STUDY_FILE, WRITTEN)
    before = (tmp_path / STUDY_FILE).read_bytes()
    meta = StudyRecord.read(tmp_path)
    assert (meta.trials, meta.topk, meta.gpus_per_trial) == (8, (5, 10, 20, 50), 0.0)
    meta.write(tmp_path)
    assert (tmp_path / STUDY_FILE).read_bytes() == before


def test_unknown_keys_are_kept_and_missing_optional_keys_default(tmp_path: Path) -> None:
    core = {"model": "vbpr", "dataset": "toy", "mg": False, "metric": "ndcg@10", "max_epochs": 3, "later": [1]}
    (tmp_path / STUDY_FILE).write_text(json.dumps(core))
    meta = StudyRecord.read(tmp_path)
    assert meta.extra == {"later": [1]} and meta.as_dict()["later"] == [1]
    assert (meta.topk, meta.cpus_per_trial, meta.finished) == ((5, 10, 20, 50), 1.0, None)
    with pytest.raises(DataFormatError, match="missing key\\(s\\) seed, search_space"):
        meta.require("seed", "search_space")


@pytest.mark.parametrize("text, message", [
    ("{not json", "not valid JSON"),
    ("[1]", "expected a JSON object, got list"),
    (json.dumps({**WRITTEN, "dataset": None}), "key 'dataset' expects str"),
    (json.dumps({k: v for k, v in WRITTEN.items() if k != "metric"}), "missing key 'metric'"),
    (json.dumps({**WRITTEN, "max_epochs": True}), "key 'max_epochs' expects int"),
    (json.dumps({**WRITTEN, "topk": [5, "x"]}), "key 'topk' expects list of int"),
])
def test_a_bad_study_json_is_one_data_format_error(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / STUDY_FILE).write_text(text)
    with pytest.raises(DataFormatError, match=message):
        StudyRecord.read(tmp_path)


def test_a_folder_that_is_not_a_study_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such study folder"):
        StudyRecord.read(tmp_path / "nothing")
    with pytest.raises(ConfigError, match="not a study folder"):
        StudyRecord.read(tmp_path)


def test_select_best_takes_completed_trials_by_validation_and_the_earlier_of_equals() -> None:
    rows = [
        {"trial_id": "a", "status": "completed", "valid_recall@20": "0.3"},  # text, as csv.DictReader gives
        {"trial_id": "b", "status": "early_stopped", "valid_recall@20": 0.9},
        {"trial_id": "c", "status": "completed", "valid_recall@20": 0.3},
        {"trial_id": "d", "status": "completed", "valid_recall@20": float("nan")},
        {"trial_id": "e", "status": "completed", "valid_recall@20": 0.1},
    ]
    best = select_best(rows, "recall@20")
    assert best is not None and best["trial_id"] == "a"
    assert [r["trial_id"] for r in rank_completed(rows, "recall@20")] == ["a", "c", "e"]
    assert select_best(rows[1:2], "recall@20") is None
