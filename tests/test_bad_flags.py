"""Bad input to the options of `train --batch-size`, `--model-module`, `recommend` and a search space's
``batch_size``: one line on stderr, exit code 2, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest

from mgtune.cli import main
from mgtune.errors import ConfigError
from mgtune.study.search_space import space_from_dict


def _code(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:  # argparse's own refusals (a value that is not a number)
        return int(exc.code or 0)


@pytest.fixture(scope="module")
def checkpoint(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ckpt")
    assert main(["train", "--model", "vbpr", "--dataset", "tiny", "--data-dir", str(tiny_dir), "--epochs", "1",
                 "--out", str(out)]) == 0
    return out / "checkpoint.pt"


CASES = {  # command, options (TMP: the test's folder, CKPT: a good checkpoint, TINY: the data), message
    "batch size 0": ("train", ["--batch-size", "0"], "batch_size must be >= 1"),
    "batch size huge": ("train", ["--batch-size", str(10**12)], "batch_size must be >= 1 and <= 1000000000"),
    "batch size text": ("train", ["--batch-size", "big"], "argument --batch-size: invalid int value: 'big'"),
    "batch size by --set": ("train", ["--set", "batch_size=64"], "--set batch_size=64: batch_size is a training "
                            "setting, not a model hyperparameter; use --batch-size"),
    "lr by --set": ("train", ["--set", "learning_rate=0.1"], "use --lr"),
    "model file missing": ("train", ["--model-module", "TMP/none.py"], "--model-module TMP/none.py: file not found"),
    "model file not python": ("train", ["--model-module", "TMP/m.txt"], "expected a Python file ending in .py"),
    "eval model file missing": ("eval", ["--checkpoint", "CKPT", "--model-module", "TMP/none.py"], "file not found"),
    "run model file missing": ("run", ["--model-module", "TMP/none.py", "--model", "freedom", "--dataset", "tiny",
                                       "--storage", "TMP/runs"], "--model-module TMP/none.py: file not found"),
    "recommend nothing": ("recommend", ["--out", "TMP/r.csv"], "exactly one of --checkpoint FILE or --study DIR"),
    "recommend both": ("recommend", ["--out", "TMP/r.csv", "--checkpoint", "CKPT", "--study", "TMP"],
                       "exactly one of --checkpoint FILE or --study DIR"),
    "recommend no out": ("recommend", ["--checkpoint", "CKPT"], "the following arguments are required: --out"),
    "recommend k 0": ("recommend", ["--checkpoint", "CKPT", "--out", "TMP/r.csv", "--k", "0"], "--k must be >= 1"),
    "recommend k text": ("recommend", ["--checkpoint", "CKPT", "--out", "TMP/r.csv", "--k", "x"],
                         "argument --k: invalid int value: 'x'"),
    "recommend k huge": ("recommend", ["--checkpoint", "CKPT", "--out", "TMP/r.csv", "--k", str(10**9)],
                         "--k must be >= 1 and <= 100000"),
    "recommend out format": ("recommend", ["--checkpoint", "CKPT", "--out", "TMP/r.json"],
                             "--out TMP/r.json: the suffix says the format: use .csv or .parquet"),
    "recommend out under a file": ("recommend", ["--checkpoint", "CKPT", "--out", "TMP/afile/r.csv"],
                                   "is a file, not a folder"),
    "recommend users missing": ("recommend", ["--checkpoint", "CKPT", "--out", "TMP/r.csv", "--users",
                                              "TMP/none.txt"], "--users TMP/none.txt: file not found"),
    "recommend users unknown": ("recommend", ["--checkpoint", "CKPT", "--out", "TMP/r.csv", "--users", "TMP/u.txt"],
                                "user 'nobody' is not in the dataset (1 of 2 unknown; ids are internal, 0..299 "
                                "(the dataset has no id map))"),
    "recommend users empty": ("recommend", ["--checkpoint", "CKPT", "--out", "TMP/r.csv", "--users",
                                            "TMP/empty.txt"], "no user ids (one per line)"),
    "recommend checkpoint missing": ("recommend", ["--checkpoint", "TMP/none.pt", "--out", "TMP/r.csv"],
                                     "none.pt: checkpoint not found"),
    "recommend study not a study": ("recommend", ["--study", "TMP", "--out", "TMP/r.csv"], "study.json"),
    "recommend device": ("recommend", ["--checkpoint", "CKPT", "--out", "TMP/r.csv", "--device", "tpu"],
                         "--device must be auto, cpu or cuda"),
    "recommend model file": ("recommend", ["--checkpoint", "CKPT", "--out", "TMP/r.csv", "--model-module",
                                           "TMP/m.txt"], "expected a Python file ending in .py"),
    "recommend dataset": ("recommend", ["--checkpoint", "CKPT", "--out", "TMP/r.csv", "--dataset", "nope"],
                          "dataset folder not found"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_option_is_one_line_exit_2(case: str, checkpoint: Path, tiny_dir: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    command, argv, message = CASES[case]
    (tmp_path / "m.txt").write_text("x = 1\n")
    (tmp_path / "afile").write_text("")
    (tmp_path / "u.txt").write_text("3\nnobody\n")
    (tmp_path / "empty.txt").write_text("\n\n")
    before = sorted(tmp_path.iterdir())
    fill = {"TMP": str(tmp_path), "CKPT": str(checkpoint)}

    def filled(a: str) -> str:
        for key, value in fill.items():
            a = a.replace(key, value)
        return a

    base = {"train": ["--model", "vbpr", "--dataset", "tiny", "--data-dir", str(tiny_dir), "--epochs", "1",
                      "--out", str(tmp_path / "out")],
            "run": ["--data-dir", str(tiny_dir), "--trials", "1"]}.get(command, [])
    assert _code([command, *base, *map(filled, argv)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mgtune: error: ") and filled(message) in err[0], err
    assert sorted(tmp_path.iterdir()) == before  # nothing written (no output, no study folder)


@pytest.mark.parametrize("spec, message", [
    ({"type": "float", "low": 256, "high": 4096}, "is an integer hyperparameter; use type int"),
    ({"type": "int", "low": 0, "high": 4096}, "value 0 is invalid (batch_size must be >= 1"),
    ({"type": "categorical", "choices": [512, 0]}, "value 0 is invalid"),
])
def test_bad_batch_size_in_a_search_space(spec: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match="parameter 'batch_size'") as err:
        space_from_dict("freedom", {"params": {"batch_size": spec}}, "space.yaml")
    assert message in str(err.value)


def test_batch_size_is_searched_and_warm_started() -> None:
    from mgtune.training import TrainConfig

    space = space_from_dict("vbpr", {"params": {"batch_size": {"type": "categorical", "choices": [256, 1024]},
                                                "learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2}},
                                     "start": [{"batch_size": 1024, "learning_rate": 1e-3}]}, "space.yaml")
    assert space.start == ({"batch_size": 1024, "learning_rate": 1e-3},)
    cfg = space.apply(TrainConfig(model="vbpr", dataset="d"), {"batch_size": 256, "learning_rate": 0.002})
    assert cfg.batch_size == 256 and cfg.learning_rate == 0.002 and cfg.model_params == {}
    assert space.without_mg().names == ["batch_size", "learning_rate"]
    with pytest.raises(ConfigError, match="start entry 1: batch_size = 512 is not one of the choices"):
        space_from_dict("vbpr", {"params": {"batch_size": {"type": "categorical", "choices": [256]}},
                                 "start": [{"batch_size": 512}]}, "space.yaml")
