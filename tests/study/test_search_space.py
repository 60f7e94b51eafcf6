"""Search-space files: the repository's files load, numbers like 1e-4 are numbers, mistakes are one line,
warm starts are validated, survive study.json and follow --no-mg."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from mgtune.cli import main
from mgtune.errors import ConfigError
from mgtune.models import get_model, model_names
from mgtune.study import MG_PARAMS, load_search_space, space_from_dict
from mgtune.study.search_space import find_search_space
from mgtune.training import MGConfig, TrainConfig

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
    d = space.as_dict()["params"]
    assert d["flip_interval"] == {"type": "int", "low": 1, "high": 10, "log": False}
    assert d["learning_rate"]["low"] == 1e-4 and isinstance(d["learning_rate"]["low"], float)
    assert d["learning_rate"]["log"] is True
    assert d["dropout"]["choices"] == [0.8, 0.9]
    assert d["reg_weight"]["choices"] == [0.0, 1e-5, 1e-4, 1e-3]


def test_exponent_without_dot_is_a_number(tmp_path: Path) -> None:
    path = _write(tmp_path, "model: freedom\nparams:\n"
                            "  learning_rate: {type: float, low: 1e-4, high: 1E-2, log: true}\n"
                            "  reg_weight: {type: categorical, choices: [0, 1e-5, 5e-3]}\n")
    d = load_search_space(path).as_dict()["params"]
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


# ---------------------------------------------------------------- warm starts
def _reference_defaults(model: str, names: list[str]) -> dict[str, object]:
    """What a plain run of ``model`` uses for each of ``names``: MG's and the training defaults, the
    model config's field defaults (read from the dataclass, not through the search-space code)."""
    train = TrainConfig.for_model(model, "d")
    fields = {f.name: f.default for f in dataclasses.fields(get_model(model).config_cls)}
    mg = {"flip_interval": MGConfig().flip_interval, "flip_ratio": MGConfig().flip_ratio}
    return {n: mg[n] if n in mg else train.learning_rate if n == "learning_rate" else fields[n] for n in names}


@pytest.mark.parametrize("model", model_names())
def test_shipped_start_is_the_models_reference_defaults_and_lies_in_the_space(model: str) -> None:
    space = load_search_space(find_search_space(model), model)
    defaults = _reference_defaults(model, space.names)
    assert defaults.get("flip_interval", 3) == 3 and defaults.get("flip_ratio", 0.2) == 0.2
    assert len(space.start) == 1 and space.start[0] == defaults
    for p in space.params:
        value = space.start[0][p.name]
        if p.type == "categorical":
            assert value in p.choices, (p.name, value)
        else:
            assert p.low <= value <= p.high and type(value) is (int if p.type == "int" else float), (p.name, value)


TWO_STARTS = ("model: freedom\nparams:\n"
              "  flip_interval: {type: int, low: 1, high: 10}\n"
              "  flip_ratio: {type: float, low: 0.05, high: 0.5}\n"
              "  learning_rate: {type: float, low: 1e-4, high: 1e-2, log: true}\n"
              "  reg_weight: {type: categorical, choices: [0.0, 1e-5, 1e-4]}\n"
              "start:\n"
              "  - {flip_interval: 7, flip_ratio: 0.35, learning_rate: 0.00123, reg_weight: 1e-5}\n"
              "  - {flip_interval: 2, flip_ratio: 0.35, learning_rate: 0.0042, reg_weight: 0}\n")


def test_starts_load_with_the_types_their_params_take(tmp_path: Path) -> None:
    space = load_search_space(_write(tmp_path, TWO_STARTS))
    assert space.start == ({"flip_interval": 7, "flip_ratio": 0.35, "learning_rate": 0.00123, "reg_weight": 1e-5},
                           {"flip_interval": 2, "flip_ratio": 0.35, "learning_rate": 0.0042, "reg_weight": 0.0})
    assert type(space.start[1]["reg_weight"]) is float  # the choice 0.0 itself, not the 0 written
    assert type(space.start[0]["flip_interval"]) is int


def test_starts_round_trip_through_study_json(tmp_path: Path) -> None:
    space = load_search_space(_write(tmp_path, TWO_STARTS))
    recorded = json.loads(json.dumps(space.as_dict()))  # what study.json holds
    back = space_from_dict(space.model, recorded, space.source)
    assert back == space and back.start == space.start
    assert [list(map(type, p.values())) for p in back.start] == [list(map(type, p.values())) for p in space.start]
    assert back.as_dict() == space.as_dict()


def test_study_json_from_before_warm_starts_reads_as_no_starts() -> None:
    space = load_search_space(find_search_space("freedom"))
    old = space_from_dict("freedom", space.as_dict()["params"], "study.json")
    assert old.params == space.params and old.start == ()


def test_no_mg_drops_mg_keys_from_starts_and_merges_what_becomes_equal(tmp_path: Path) -> None:
    text = TWO_STARTS + "  - {flip_interval: 3, flip_ratio: 0.1, learning_rate: 0.00123, reg_weight: 1e-5}\n"
    space = load_search_space(_write(tmp_path, text))
    assert len(space.start) == 3
    nomg = space.without_mg()
    assert nomg.start == ({"learning_rate": 0.00123, "reg_weight": 1e-5}, {"learning_rate": 0.0042, "reg_weight": 0.0})
    assert space_from_dict(nomg.model, nomg.as_dict(), nomg.source) == nomg


START_HEAD = ("model: freedom\nparams:\n  flip_interval: {type: int, low: 1, high: 10}\n"
              "  learning_rate: {type: float, low: 1e-4, high: 1e-2, log: true}\n"
              "  dropout: {type: categorical, choices: [0.8, 0.9]}\nstart:\n")
BAD_STARTS = {
    "not a list": ("model: freedom\nparams:\n  dropout: {type: categorical, choices: [0.8]}\nstart: {dropout: 0.8}\n",
                   "'start' must be a list of mappings"),
    "entry not a mapping": (START_HEAD + "  - 0.8\n", "start entry 1: expected a mapping"),
    "unknown parameter": (START_HEAD + "  - {flip_interval: 3, learning_rate: 1e-3, dropout: 0.8, reg_weight: 0}\n",
                          "start entry 1: unknown parameter(s) reg_weight"),
    "missing parameter": (START_HEAD + "  - {flip_interval: 3, dropout: 0.8}\n", "no value for learning_rate"),
    "above the range": (START_HEAD + "  - {flip_interval: 11, learning_rate: 1e-3, dropout: 0.8}\n",
                        "flip_interval = 11 is outside [1, 10]"),
    "below a log range": (START_HEAD + "  - {flip_interval: 3, learning_rate: 1e-5, dropout: 0.8}\n",
                          "learning_rate = 1e-05 is outside"),
    "float for an int": (START_HEAD + "  - {flip_interval: 3.0, learning_rate: 1e-3, dropout: 0.8}\n",
                         "flip_interval = 3.0 is not an integer"),
    "bool for an int": (START_HEAD + "  - {flip_interval: true, learning_rate: 1e-3, dropout: 0.8}\n",
                        "flip_interval = True is not an integer"),
    "string for a float": (START_HEAD + "  - {flip_interval: 3, learning_rate: fast, dropout: 0.8}\n",
                           "learning_rate = 'fast' is not a number"),
    "not a choice": (START_HEAD + "  - {flip_interval: 3, learning_rate: 1e-3, dropout: 0.5}\n",
                     "dropout = 0.5 is not one of the choices [0.8, 0.9]"),
    "second entry bad": (START_HEAD + "  - {flip_interval: 3, learning_rate: 1e-3, dropout: 0.8}\n"
                         "  - {flip_interval: 0, learning_rate: 1e-3, dropout: 0.8}\n", "start entry 2: flip_interval"),
    "repeated entry": (START_HEAD + "  - {flip_interval: 3, learning_rate: 1e-3, dropout: 0.8}\n"
                       "  - {flip_interval: 3, learning_rate: 0.001, dropout: 0.8}\n",
                       "start entry 2: repeats entry 1"),
    "unknown top-level key": (START_HEAD.replace("start:", "starts:") + "  - {}\n", "unknown top-level key(s) starts"),
}


@pytest.mark.parametrize("case", sorted(BAD_STARTS))
def test_bad_start_is_one_config_error_naming_the_file(case: str, tmp_path: Path) -> None:
    text, expected = BAD_STARTS[case]
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_search_space(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(str(path)) and expected in message, message


def test_bad_start_in_study_json_names_that_file() -> None:
    space = load_search_space(find_search_space("freedom")).as_dict()
    space["start"] = [{**space["start"][0], "dropout": 0.5}]
    with pytest.raises(ConfigError, match=r"^/x/study.json: start entry 1: dropout = 0.5 is not one of"):
        space_from_dict("freedom", space, "/x/study.json")


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
