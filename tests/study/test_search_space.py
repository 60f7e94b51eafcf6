"""Search-space files: the repository's files load, numbers like 1e-4 are numbers, mistakes are one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from mgtune.cli import main
from mgtune.errors import ConfigError
from mgtune.models import model_names
from mgtune.study import MG_PARAMS, load_search_space
from mgtune.study.search_space import find_search_space
from mgtune.training import TrainConfig

REPO = Path(__file__).resolve().parents[2]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "space.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("path", sorted((REPO / "search_spaces").glob("*.yaml")), ids=lambda p: p.name)
def test_repository_files_load(path: Path) -> None:
    if path.stem not in model_names():
        pytest.skip(f"model {path.stem} is not in the registry yet")
    space = load_search_space(path, path.stem)
    assert space.model == path.stem and space.params


def test_freedom_file_has_mg_part_and_reference_grid() -> None:
    space = load_search_space(find_search_space("freedom"), "freedom")
    d = space.as_dict()
    assert d["flip_interval"] == {"type": "int", "low": 1, "high": 10, "log": False}
    assert d["learning_rate"]["low"] == 1e-4 and isinstance(d["learning_rate"]["low"], float)
    assert d["learning_rate"]["log"] is True
    assert d["dropout"]["choices"] == [0.8, 0.9]
    assert d["reg_weight"]["choices"] == [0.0, 1e-5, 1e-4, 1e-3]


def test_exponent_without_dot_is_a_number(tmp_path: Path) -> None:
    path = _write(tmp_path, "model: freedom\nparams:\n"
                            "  learning_rate: {type: float, low: 1e-4, high: 1E-2, log: true}\n"
                            "  reg_weight: {type: categorical, choices: [0, 1e-5, 5e-3]}\n")
    d = load_search_space(path).as_dict()
    assert d["learning_rate"]["low"] == 1e-4 and d["learning_rate"]["high"] == 1e-2
    assert d["reg_weight"]["choices"] == [0, 1e-5, 5e-3]


def test_no_mg_drops_mg_params_and_keeps_learning_rate() -> None:
    space = load_search_space(find_search_space("freedom")).without_mg()
    assert not set(MG_PARAMS) & set(space.names)
    assert "learning_rate" in space.names


def test_sampled_values_land_in_the_train_config() -> None:
    space = load_search_space(find_search_space("freedom"))
    sampled = {"flip_interval": 7, "flip_ratio": 0.3, "learning_rate": 0.005, "dropout": 0.9, "reg_weight": 0.0}
    cfg = space.apply(TrainConfig(model="freedom", dataset="d"), sampled)
    assert (cfg.mg.flip_interval, cfg.mg.flip_ratio, cfg.learning_rate) == (7, 0.3, 0.005)
    assert cfg.model_params == {"dropout": 0.9, "reg_weight": 0.0}


HEAD = "model: freedom\nparams:\n"
BAD = {
    "unknown parameter": (HEAD + "  dropuot: {type: float, low: 0.1, high: 0.5}\n", "unknown parameter"),
    "low above high": (HEAD + "  flip_ratio: {type: float, low: 0.5, high: 0.1}\n", "low <= high must hold"),
    "empty choices": (HEAD + "  dropout: {type: categorical, choices: []}\n", "non-empty list"),
    "unknown type": (HEAD + "  dropout: {type: uniform, low: 0.1, high: 0.5}\n", "unknown type 'uniform'"),
    "string bound": (HEAD + "  flip_ratio: {type: float, low: abc, high: 0.5}\n", "'low' must be a finite number"),
    "log of zero": (HEAD + "  learning_rate: {type: float, low: 0, high: 0.1, log: true}\n", "log range needs low > 0"),
    "float for int": (HEAD + "  flip_interval: {type: float, low: 1, high: 5}\n", "integer hyperparameter"),
    "invalid value": (HEAD + "  dropout: {type: categorical, choices: [0.5, 1.5]}\n", "value 1.5 is invalid"),
    "extra key": (HEAD + "  dropout: {type: categorical, choices: [0.8], step: 2}\n", "unknown key(s) step"),
    "duplicate key": (HEAD + "  dropout: {type: categorical, choices: [0.8]}\n  dropout: {type: categorical, "
                      "choices: [0.9]}\n", "duplicate key 'dropout'"),
    "not yaml": ("model: freedom\nparams: [unclosed\n", "not valid YAML"),
    "no params": ("model: freedom\n", "'params' must be a non-empty mapping"),
    "other model": ("model: vbpr\nparams:\n  reg_weight: {type: categorical, choices: [0.1]}\n",
                    "the file is for model 'vbpr'"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_file_is_one_line_exit_2(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text, expected = BAD[case]
    path = _write(tmp_path, text)
    code = main(["run", "--model", "freedom", "--dataset", "nowhere", "--data-dir", str(tmp_path),
                 "--storage", str(tmp_path / "runs"), "--search-space", str(path)])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.count("\n") == 0, err
    assert err.startswith("mgtune: error: ") and str(path) in err and expected in err


def test_unknown_model_lists_the_valid_ones(tmp_path: Path) -> None:
    path = _write(tmp_path, "model: nosuchmodel\nparams:\n  a: {type: int, low: 1, high: 2}\n")
    with pytest.raises(ConfigError, match=r"unknown model 'nosuchmodel'; choose one of .*freedom"):
        load_search_space(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="search-space file not found"):
        load_search_space(tmp_path / "nope.yaml")


def test_untrained_model_rejects_mg_keys(tmp_path: Path) -> None:
    if "itemknncbf" not in model_names():
        pytest.skip("itemknncbf is not in the registry")
    path = _write(tmp_path, "model: itemknncbf\nparams:\n  flip_interval: {type: int, low: 1, high: 3}\n")
    with pytest.raises(ConfigError, match="is not trained"):
        load_search_space(path)


@pytest.mark.parametrize("args, expected", [
    (["--trials", "0"], "--trials must be >= 1"),
    (["--grace-epochs", "50", "--max-epochs", "10"], "--grace-epochs must be between 1 and --max-epochs"),
    (["--metric", "recall@7"], "unknown validation metric"),
    (["--gpus-per-trial", "1.5"], "above 1 must be a whole number"),
    (["--storage", "s3://bucket/runs"], "URIs are not supported"),
])
def test_bad_settings_exit_2_before_ray(args: list[str], expected: str, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    base = ["run", "--model", "freedom", "--dataset", "demo", "--data-dir", str(tmp_path)]
    if "--storage" not in args:
        base += ["--storage", str(tmp_path / "runs")]
    assert main(base + args) == 2
    err = capsys.readouterr().err.strip()
    assert expected in err and err.count("\n") == 0


def test_resume_of_missing_study(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--resume", "--name", "nothing", "--storage", str(tmp_path)]) == 2
    assert "nothing to resume" in capsys.readouterr().err


@pytest.mark.parametrize("max_epochs, grace, expected", [(5, None, 5), (100, None, 10), (100, 3, 3)])
def test_default_grace_period_fits_a_short_study(max_epochs: int, grace: int | None, expected: int,
                                                 tmp_path: Path) -> None:
    from mgtune.study.runner import StudySettings, _new_study

    _, meta, _ = _new_study(StudySettings(model="freedom", dataset="demo", max_epochs=max_epochs, grace_epochs=grace,
                                          storage=str(tmp_path)))
    assert meta.grace_epochs == expected
