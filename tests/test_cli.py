"""`mgtune data synth`, `train`, `eval` from the command line; bad input -> one line, exit code 2."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from mgtune.cli import main


def _copy(tiny_dir: Path, tmp_path: Path) -> Path:
    shutil.copytree(tiny_dir / "tiny", tmp_path / "tiny", ignore=shutil.ignore_patterns(".mgtune_cache"))
    return tmp_path / "tiny"


def _rewrite_inter(folder: Path, edit: Callable[[list[str]], list[str]]) -> None:
    f = folder / "tiny.inter"
    f.write_text("\n".join(edit(f.read_text().splitlines())) + "\n")


def _set_row(lines: list[str], row: int, col: int, value: str) -> list[str]:
    cells = lines[row].split("\t")
    cells[col] = value
    lines[row] = "\t".join(cells)
    return lines


BAD_INPUTS: dict[str, tuple[Callable[[Path], None], str]] = {
    "missing folder": (lambda d: shutil.rmtree(d), "dataset folder not found"),
    "missing inter": (lambda d: (d / "tiny.inter").unlink(), "tiny.inter: interaction file not found"),
    "missing column": (lambda d: _rewrite_inter(d, lambda ls: [ls[0].replace("x_label", "label"), *ls[1:]]),
                       "missing column(s) x_label"),
    "non-integer id": (lambda d: _rewrite_inter(d, lambda ls: _set_row(ls, 3, 1, "abc")),
                       "column itemID must hold integers"),
    "fractional id": (lambda d: _rewrite_inter(d, lambda ls: _set_row(ls, 3, 0, "1.5")),
                      "column userID must hold integers"),
    "negative id": (lambda d: _rewrite_inter(d, lambda ls: _set_row(ls, 3, 0, "-4")), "negative id -4"),
    "bad label": (lambda d: _rewrite_inter(d, lambda ls: _set_row(ls, 2, 2, "7")), "x_label must be 0, 1 or 2"),
    "empty test split": (lambda d: _rewrite_inter(d, lambda ls: [ls[0], *(x for x in ls[1:] if not x.endswith("\t2"))]),
                         "the test split (x_label=2) is empty"),
    "few feature rows": (lambda d: np.save(d / "image_feat.npy", np.load(d / "image_feat.npy")[:10]),
                         "image_feat.npy: 10 feature rows but the interactions name"),
    "nan features": (lambda d: np.save(d / "text_feat.npy", np.full((200, 4), np.nan, dtype=np.float32)),
                     "text_feat.npy: contains NaN or infinite values"),
    "unreadable npy": (lambda d: (d / "image_feat.npy").write_bytes(b"not a numpy file"),
                       "image_feat.npy: unreadable .npy file"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_dataset_is_one_line_exit_2(case: str, tiny_dir: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    folder = _copy(tiny_dir, tmp_path)
    corrupt, message = BAD_INPUTS[case]
    corrupt(folder)
    code = main(["train", "--model", "vbpr", "--dataset", "tiny", "--data-dir", str(tmp_path), "--epochs", "1",
                 "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("mgtune: error: ") and message in err[0], err
    assert not (tmp_path / "out").exists()


def test_amazon_dataset_not_found_says_how_to_get_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--model", "freedom", "--dataset", "baby", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "Google Drive" in err and str(tmp_path / "baby") in err


def test_missing_modality_is_named(tiny_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = _copy(tiny_dir, tmp_path)
    (folder / "image_feat.npy").unlink()
    (folder / "text_feat.npy").unlink()
    assert main(["train", "--model", "vbpr", "--dataset", "tiny", "--data-dir", str(tmp_path), "--epochs", "1"]) == 2
    assert "image_feat.npy: missing, and this model needs image features" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--set", "nonsense=1"], "unknown hyperparameter 'nonsense'"),
    (["--set", "dropout=abc"], "expects float"),
    (["--model", "nope"], "unknown model 'nope'"),
    (["--metric", "recall@7"], "unknown validation metric"),
])
def test_bad_settings(argv: list[str], message: str, tiny_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["train", "--model", "freedom", "--dataset", "tiny", "--data-dir", str(tiny_dir), "--epochs", "1"]
    assert main(base + argv) == 2
    assert message in capsys.readouterr().err


def test_real_process_exit_code_and_no_traceback(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "mgtune.cli", "train", "--model", "vbpr", "--dataset", "nope",
                           "--data-dir", str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1


def test_train_then_eval_reproduces_test_metrics(tiny_dir: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert main(["train", "--model", "freedom", "--dataset", "tiny", "--data-dir", str(tiny_dir), "--epochs", "3",
                 "--device", "cpu", "--out", str(out)]) == 0
    trained = json.loads(capsys.readouterr().out)
    assert {"model", "dataset", "best_epoch", "epochs_run", "valid", "test", "config"} <= set(trained)
    assert json.loads((out / "metrics.json").read_text()) == trained
    assert main(["eval", "--checkpoint", str(out / "checkpoint.pt"), "--device", "cpu"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["test"] == pytest.approx(trained["test"])
    assert evaluated["valid"] == pytest.approx(trained["valid"])


def test_synth_is_deterministic(tmp_path: Path) -> None:
    for name in ("a", "b"):
        argv = ["data", "synth", "--preset", "tiny", "--name", name, "--seed", "3", "--data-dir", str(tmp_path)]
        assert main(argv) == 0
    assert (tmp_path / "a/a.inter").read_bytes() == (tmp_path / "b/b.inter").read_bytes()
    assert np.array_equal(np.load(tmp_path / "a/image_feat.npy"), np.load(tmp_path / "b/image_feat.npy"))


def test_synth_offers_every_preset() -> None:
    from mgtune.cli import build_parser
    from mgtune.data.synth import PRESETS

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    synth = sub.choices["data"]._actions[-1].choices["synth"]  # type: ignore[union-attr]
    preset = next(a for a in synth._actions if a.dest == "preset")
    assert list(preset.choices) == list(PRESETS)
