"""Bad settings, checkpoints, search spaces and study files: one line, exit code 2 (issue 11: 4, 6, 7, 9).

Through `mgtune.cli.main` in-process; each case also checks that nothing was written.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import typing
from pathlib import Path

import pytest
import torch

from mgtune.cli import main
from mgtune.errors import ConfigError
from mgtune.models import get_model, model_names, parse_config
from mgtune.store.results import result_columns
from mgtune.study import load_search_space
from mgtune.study.search_space import find_search_space
from mgtune.training import MGConfig, TrainConfig, metric_names


def _one_error(capsys: pytest.CaptureFixture[str], message: str) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("mgtune: error: ")]
    assert len(errors) == 1 and err[-1] == errors[0] and message in errors[0], err
    return errors[0]


# ---------------------------------------------------------------- train options (4, 7, 9)
@pytest.mark.parametrize("argv, message", [
    (["--flip-ratio", "nan"], "flip_ratio must be a finite number"),
    (["--flip-ratio", "inf"], "flip_ratio must be a finite number"),
    (["--alpha1", "nan"], "alpha1 must be a finite number"),
    (["--alpha1", "0"], "alpha1 must be > 0"),
    (["--lr", "inf"], "learning_rate must be a finite number"),
    (["--lr", "nan"], "learning_rate must be a finite number"),
    (["--lr", "-1"], "learning_rate must be > 0"),
    (["--flip-ratio", "2", "--alpha1", "1"], "needs alpha1 > flip_ratio"),
    (["--flip-ratio", "1"], "needs alpha1 > flip_ratio"),
    (["--seed", "-5"], "seed must be >= 0"),
    (["--seed", str(2**40)], "seed must be >= 0 and <= 4294967295"),
    (["--patience", "-1"], "patience must be >= 0"),
    (["--epochs", "0"], "epochs must be >= 1"),
    (["--flip-interval", "0"], "flip_interval must be >= 1"),
    (["--set", "embedding_size=0"], "embedding_size must be >= 1"),
    (["--set", "embedding_size=100000000"], "embedding_size must be >= 1 and <= 16384"),
    (["--set", "reg_weight=nan"], "reg_weight must be a finite number"),
    (["--set", "reg_weight=-1"], "reg_weight must be >= 0"),
    (["--set", "embedding_size=1e400"], "expects int"),
    (["--epochs", "abc"], "argument --epochs: invalid int value"),
    (["--device", "tpu"], "device must be auto, cpu or cuda"),
])
def test_bad_train_setting_is_one_line(argv: list[str], message: str, tiny_dir: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    with pytest.raises(SystemExit) if "abc" in argv else _no_raise():
        code = main(["train", "--model", "vbpr", "--dataset", "tiny", "--data-dir", str(tiny_dir), "--epochs", "1",
                     "--out", str(out), *argv])
        assert code == 2
    _one_error(capsys, message)
    assert not out.exists()


class _no_raise:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return False


def test_flip_ratio_above_alpha1_is_fine_without_mg() -> None:
    assert not MGConfig(enabled=False, alpha1=1.0, flip_ratio=2.0).enabled


# ---------------------------------------------------------------- every model field, by rule (9)
def _fields(kind: type) -> list[tuple[str, str]]:
    out = []
    for model in model_names():
        cls = get_model(model).config_cls
        hints = typing.get_type_hints(cls)
        out += [(model, f.name) for f in dataclasses.fields(cls) if hints[f.name] is kind]
    return out


@pytest.mark.parametrize("model, name", _fields(int))
def test_every_int_field_refuses_negative_and_huge(model: str, name: str) -> None:
    cls = get_model(model).config_cls
    for bad in ("-1", "1e12"):
        with pytest.raises(ConfigError, match=name):
            parse_config(cls, {name: bad})
    if not name.startswith("n_"):  # a size or a neighbour count
        with pytest.raises(ConfigError, match=f"{name} must be >= 1"):
            parse_config(cls, {name: "0"})


@pytest.mark.parametrize("model, name", _fields(float))
def test_every_float_field_refuses_non_finite(model: str, name: str) -> None:
    cls = get_model(model).config_cls
    for bad in ("nan", "inf", "-inf"):
        with pytest.raises(ConfigError, match=f"{name} must be a finite number"):
            parse_config(cls, {name: bad})


def test_every_default_config_passes() -> None:
    for model in model_names():
        parse_config(get_model(model).config_cls, {})


# ---------------------------------------------------------------- checkpoints (4, 7)
@pytest.fixture(scope="module")
def checkpoint(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ck")
    assert main(["train", "--model", "vbpr", "--dataset", "tiny", "--data-dir", str(tiny_dir), "--epochs", "1",
                 "--device", "cpu", "--out", str(out)]) == 0
    return out / "checkpoint.pt"


@pytest.mark.parametrize("edit, message", [
    (lambda b: {**b, "config": "freedom"}, "training settings must be a mapping"),
    (lambda b: {**b, "config": {**b["config"], "mg": [1, 2]}}, "mg must be a mapping"),
    (lambda b: {**b, "config": {**b["config"], "learning_rate": math.inf}}, "learning_rate must be a finite"),
    (lambda b: {**b, "config": {**b["config"], "seed": -5}}, "seed must be >= 0"),
    (lambda b: {**b, "config": {**b["config"], "model_params": {"embedding_size": 0}}}, "embedding_size must be"),
    (lambda b: {**b, "model": "weights"}, "not a set of named weight tensors"),
    (lambda b: {**b, "model": {k: torch.full_like(v, math.nan) for k, v in b["model"].items()}},
     "hold NaN or infinite values"),
])
def test_bad_checkpoint_is_one_line(edit: typing.Callable[[dict], dict], message: str, checkpoint: Path,
                                    tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blob = torch.load(checkpoint, weights_only=True)
    torch.save(edit(blob), tmp_path / "bad.pt")
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(tmp_path / "bad.pt"), "--device", "cpu"]) == 2
    _one_error(capsys, message)
    assert capsys.readouterr().out == ""  # no metrics printed


def test_train_out_under_a_file_fails_before_training(tiny_dir: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "afile").write_text("x")
    assert main(["train", "--model", "vbpr", "--dataset", "tiny", "--data-dir", str(tiny_dir), "--epochs", "1",
                 "--out", str(tmp_path / "afile" / "sub")]) == 2
    _one_error(capsys, "is a file, not a folder")
    assert "training vbpr" not in capsys.readouterr().err


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_train_out_read_only_fails_before_training(tiny_dir: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o555)
    assert main(["train", "--model", "vbpr", "--dataset", "tiny", "--data-dir", str(tiny_dir), "--epochs", "1",
                 "--out", str(ro / "out")]) == 2
    _one_error(capsys, "cannot write in")


# ---------------------------------------------------------------- JSON (4)
def test_json_never_holds_nan(tmp_path: Path) -> None:
    from mgtune.files import json_text, write_json

    obj = {"a": math.nan, "b": [math.inf, 1.5], "c": {"d": -math.inf}, "e": torch.tensor(math.nan).numpy()[()]}
    assert json.loads(json_text(obj)) == {"a": None, "b": [None, 1.5], "c": {"d": None}, "e": None}
    write_json(tmp_path / "m.json", obj)
    assert "NaN" not in (tmp_path / "m.json").read_text() and "Infinity" not in (tmp_path / "m.json").read_text()


# ---------------------------------------------------------------- search spaces (4, 7, 9)
@pytest.mark.parametrize("text, message", [
    (None, "cannot read as UTF-8 text"),
    ("params:\n  dropout: {type: categorical, choices: [0.5, .nan]}\n", "dropout must be a finite number"),
    ("params:\n  learning_rate: {type: categorical, choices: [.inf]}\n", "learning_rate must be a finite number"),
    ("params:\n  learning_rate: {type: float, low: 1.0e-4, high: .inf}\n", "'high' must be a finite number"),
    ("params:\n  flip_ratio: {type: float, low: 0.1, high: 1.5}\n", "needs alpha1 > flip_ratio"),
    ("params:\n  flip_ratio: {type: categorical, choices: [0.2, 1.0]}\n", "needs alpha1 > flip_ratio"),
    ("params:\n  embedding_size: {type: int, low: 0, high: 64}\n", "embedding_size must be >= 1"),
    ("params:\n  dropout: {type: float, low: 0.5, high: 1.0}\n", "dropout must be >= 0 and < 1"),
    ("params:\n  flip_interval: {type: categorical, choices: [1, 2.5]}\n", "flip_interval must be an integer"),
])
def test_bad_search_space_is_refused(text: str | None, message: str, tmp_path: Path) -> None:
    path = tmp_path / "space.yaml"
    if text is None:
        path.write_bytes(bytes(range(256)) * 4)
    else:
        path.write_text("model: freedom\n" + text)
    with pytest.raises(ConfigError, match=message):
        load_search_space(path)


@pytest.mark.parametrize("argv, message", [
    (["--search-space", "RANDOM"], "cannot read as UTF-8 text"),
    (["--seed", "-5"], "--seed must be >= 0"),
    (["--cpus-per-trial", "inf"], "--cpus-per-trial must be a finite number"),
    (["--gpus-per-trial", "nan"], "--gpus-per-trial must be a finite number"),
    (["--dataset", "../tiny"], "dataset name must be a plain name"),
])
def test_bad_study_option_is_refused_before_ray(argv: list[str], message: str, tiny_dir: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "RANDOM").write_bytes(os.urandom(1024) + b"\xff")
    argv = [str(tmp_path / "RANDOM") if a == "RANDOM" else a for a in argv]
    base = {"--model": "freedom", "--dataset": "tiny", "--data-dir": str(tiny_dir), "--trials": "1",
            "--storage": str(tmp_path / "runs")}
    for key in argv[::2]:
        base.pop(key, None)
    flat = [x for kv in base.items() for x in kv]
    assert main(["run", *flat, *argv]) == 2
    _one_error(capsys, message)
    assert not (tmp_path / "runs").exists()


# ---------------------------------------------------------------- results.csv read once, for report and confirm (6)
def _study(root: Path) -> Path:
    space = load_search_space(find_search_space("freedom"))
    folder = root / "study"
    folder.mkdir(parents=True)
    (folder / "study.json").write_text(json.dumps({
        "model": "freedom", "dataset": "tiny", "mg": True, "metric": "recall@20", "max_epochs": 2, "seed": 0,
        "search_space": space.as_dict(), "finished": "2026-01-01T01:00:00"}))
    (folder / "optuna.db").write_bytes(b"")
    names = metric_names((5, 10, 20, 50))
    with (folder / "results.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=result_columns(space.names, (5, 10, 20, 50)))
        writer.writeheader()
        for tid, valid in (("a", 0.2), ("b", 0.3)):  # b, the last row, is the best
            writer.writerow({"trial_id": tid, "trial_dir": f"trial_{tid}", "status": "completed", "epochs_run": 2,
                             "best_epoch": 1, "seconds": 1.0, **{f"valid_{n}": valid for n in names},
                             **{f"test_{n}": valid for n in names}})
            (folder / f"trial_{tid}").mkdir()
            (folder / f"trial_{tid}" / "params.json").write_text(json.dumps({"dropout": 0.8}))
    return folder


def _cut(study: Path, text_end: typing.Callable[[str], int]) -> None:
    text = (study / "results.csv").read_text()
    (study / "results.csv").write_text(text[: text_end(text)])


@pytest.mark.parametrize("cut, message", [
    (lambda t: t.rindex("0.3") + 2, "truncated"),  # b's last number "0.3" became "0."
    (lambda t: t.rindex("\nb,") + 30, "needs a finite number"),  # b's row ends early
])
@pytest.mark.parametrize("command", ["confirm", "report"])
def test_truncated_results_csv_is_refused_by_confirm_and_report(
        cut: typing.Callable[[str], int], message: str, command: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    study = _study(tmp_path)
    _cut(study, cut)
    argv = [command, str(study), "--out", str(tmp_path / "out")] + (["--seeds", "2"] if command == "confirm" else [])
    assert main(argv) == 2
    _one_error(capsys, f"results.csv: {'' if message == 'truncated' else 'column'}")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_confirm_and_report_read_results_with_one_reader() -> None:
    import inspect

    import mgtune.report.load as load
    import mgtune.store.confirmation as confirmation
    from mgtune.store.results import read_results

    assert "read_results(" in inspect.getsource(load.load_study)
    assert confirmation.read_results is read_results and "read_results(" in inspect.getsource(
        confirmation.select_candidates)


def test_report_out_under_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    study = _study(tmp_path)
    (tmp_path / "afile").write_text("x")
    assert main(["report", str(study), "--out", str(tmp_path / "afile" / "sub")]) == 2
    _one_error(capsys, "is a file, not a folder")


def test_results_reader_accepts_the_writer(tmp_path: Path) -> None:
    from mgtune.store.results import read_results

    frame = read_results(_study(tmp_path) / "results.csv", ["valid_recall@20"])
    assert list(frame["trial_id"]) == ["a", "b"] and frame["valid_recall@20"].tolist() == [0.2, 0.3]


def test_train_config_from_dict_round_trip() -> None:
    cfg = TrainConfig("freedom", "tiny", mg=MGConfig(alpha1=2.0, flip_ratio=0.5), patience=0)
    assert TrainConfig.from_dict(cfg.as_dict()) == cfg
    with pytest.raises(ConfigError, match="missing training setting"):
        TrainConfig.from_dict({"model": "freedom"})


@pytest.mark.parametrize("argv, message", [
    (["--dataset", "demo", "--data-dir", "AFILE"], "is a file, not a folder"),
    (["--dataset", "tiny", "--data-dir", "AFILE"], "dataset folder not found"),
])
def test_data_dir_that_is_a_file(argv: list[str], message: str, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "afile").write_text("x")
    argv = [str(tmp_path / "afile") if a == "AFILE" else a for a in argv]
    assert main(["train", "--model", "vbpr", "--epochs", "1", *argv]) == 2
    _one_error(capsys, message)


def test_confirm_absurd_seed_count_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["confirm", str(_study(tmp_path)), "--seeds", str(10**9), "--out", str(tmp_path / "out")]) == 2
    _one_error(capsys, "--seeds must be <= 10000")


def test_report_statuses_are_the_studys() -> None:
    import mgtune.report.load as load
    import mgtune.store.results as results

    assert load.STATUSES == results.STATUSES and load.FINISHED == results.FINISHED
