"""`mgtune report`: paths on stdout, exit 0; bad input is one line on stderr and exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from report_fixtures import mg_trials, write_study

from mgtune.cli import main


def test_report_every_study_under_storage(toy_pair: tuple[Path, Path], runs: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # runs/ and reports/ are the defaults, relative to the working dir
    assert main(["report"]) == 0
    assert capsys.readouterr().out.split() == ["reports/toy.md", "reports/toy.csv", "reports/toy.html"]
    assert "| FREEDOM + MG |" in (tmp_path / "reports" / "toy.md").read_text()


def test_report_given_folders_and_options(toy_pair: tuple[Path, Path], tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "elsewhere"
    assert main(["report", str(toy_pair[0]), "--out", str(out), "--metric", "map@10", "--k", "5,50"]) == 0
    assert capsys.readouterr().out.split() == [str(out / f"toy.{e}") for e in ("md", "csv", "html")]
    md = (out / "toy.md").read_text()
    assert "validation map@10" in md and "| NDCG@50 |" in md and "| FREEDOM |" not in md


def _break_csv(folder: Path) -> None:
    (folder / "results.csv").write_bytes(b'trial_id,trial_dir,status\n"unclosed,\x00\n')


def _no_finished(folder: Path) -> None:
    text = (folder / "results.csv").read_text()
    (folder / "results.csv").write_text(text.replace(",completed,", ",errored,"))


def _not_a_study(folder: Path) -> None:
    (folder / "study.json").unlink()


def _bad_json(folder: Path) -> None:
    (folder / "study.json").write_text(json.dumps([1, 2]))


@pytest.mark.parametrize("breakage, message", [
    (_not_a_study, "not a study folder (no study.json)"),
    (_no_finished, "results.csv: no finished trial"),
    (_break_csv, "results.csv: "),
    (_bad_json, "study.json: expected a JSON object"),
])
def test_bad_input_exits_2_with_one_line(runs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         breakage, message: str) -> None:  # type: ignore[no-untyped-def]
    folder = write_study(runs, "s", mg_trials([("a", "completed", 0.1, 0.1)]))
    breakage(folder)
    assert main(["report", str(folder), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("mgtune: error: ") and message in err
    assert str(folder) in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args, message", [
    (["--k", "5,x"], "cutoffs must be comma-separated positive integers"),
    (["--metric", "auc@5"], "metric must look like recall@20"),
    (["--storage", "nowhere"], "nowhere: no study folders here"),
    (["does-not-exist"], "does-not-exist: no such study folder"),
])
def test_bad_arguments_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                              monkeypatch: pytest.MonkeyPatch, args: list[str], message: str) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    write_study(tmp_path / "runs", "s", mg_trials([("a", "completed", 0.1, 0.1)]))
    assert main(["report", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
