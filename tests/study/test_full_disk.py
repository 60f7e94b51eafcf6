"""A disk that fills up under `train`, `report`, a study and a confirmation, and Ray's state cut short.

Through the real CLI, each ends in one ``mgtune: error:`` line and exit 2 naming the folder and what to do,
with no traceback of mgtune's own (Ray's trial workers print theirs: they are Ray's log, not the error);
what was written before stays whole, and after making room the study resumes and the confirmation reruns
to the end. The disks are tmpfs mounts (`disk_faults`, root only: skipped with the reason elsewhere).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from disk_faults import fill, small_disk

from mgtune.cli import main

_ENV = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}


def _mgtune(*args: str, timeout: int = 400, keep_free_mb: str = "0") -> subprocess.CompletedProcess[str]:
    """``mgtune ARGS``; ``keep_free_mb``: `MGTUNE_MIN_FREE_MB` (0: only a refused write stops a run)."""
    return subprocess.run([sys.executable, "-m", "mgtune.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env={**_ENV, "MGTUNE_MIN_FREE_MB": keep_free_mb})


def _refused(proc: subprocess.CompletedProcess[str], *words: str) -> str:
    """The error line of a command the disk stopped: exit 2, its last line, no traceback through mgtune's CLI."""
    assert proc.returncode == 2, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("mgtune: error: ") and all(w in last for w in words), last
    assert "mgtune/cli.py" not in proc.stderr, proc.stderr[-3000:]  # the driver's own traceback
    return last


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def _temps(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.name.endswith(".tmp"))


def test_train_on_a_full_disk_is_one_line_and_leaves_no_half_checkpoint(
        tiny_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with small_disk(tmp_path / "disk", "1m") as disk:
        fill(disk, leave=4096)  # the checkpoint is written after training, and does not fit
        assert main(["train", "--model", "vbpr", "--dataset", "tiny", "--data-dir", str(tiny_dir), "--epochs", "2",
                     "--out", str(disk / "t")]) == 2
        assert capsys.readouterr().err.strip().splitlines()[-1] == (
            f"mgtune: error: {disk / 't' / 'checkpoint.pt'}: cannot write: the disk is full (ENOSPC); "
            "nothing was written")
        assert sorted(p.name for p in (disk / "t").iterdir()) == []  # neither a half file nor a temp file


@pytest.mark.parametrize("value", ["lots", "-1", "nan", "inf"])
def test_a_bad_free_space_setting_is_one_line(tiny_dir: Path, tmp_path: Path, value: str,
                                              monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("MGTUNE_MIN_FREE_MB", value)
    code = main(["run", "--model", "vbpr", "--dataset", "tiny", "--data-dir", str(tiny_dir), "--trials", "1",
                 "--storage", str(tmp_path), "--name", "s"])
    assert code == 2 and capsys.readouterr().err.strip().splitlines() == [
        f"mgtune: error: MGTUNE_MIN_FREE_MB={value!r}: expected a number of megabytes >= 0"]
    assert not (tmp_path / "s").exists()


def test_a_study_does_not_start_without_the_room_it_keeps(tiny_dir: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("MGTUNE_MIN_FREE_MB", "8")
    with small_disk(tmp_path / "disk", "4m") as disk:
        assert main(["run", "--model", "vbpr", "--dataset", "tiny", "--data-dir", str(tiny_dir), "--trials", "1",
                     "--storage", str(disk), "--name", "s"]) == 2
        (line,) = capsys.readouterr().err.strip().splitlines()
        assert line.startswith(f"mgtune: error: {disk / 's'}: the disk is nearly full: ") and line.endswith(
            "MB free, below the 8 MB a run keeps free (MGTUNE_MIN_FREE_MB); nothing was started"), line
        assert sorted(p.name for p in disk.iterdir()) == []


@pytest.fixture(scope="module")
def full_disk_study(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """A study on a 16 MB disk that filled up under it: stopped in one line by the free space it keeps
    (Ray's state saved whole), then, with room made, resumed to the end. (disk, study folder); the disk
    stays mounted for the module's tests."""
    with small_disk(tmp_path_factory.mktemp("full") / "disk", "16m") as disk:
        storage = disk / "runs"
        ballast = fill(disk, leave=1200 * 1024)  # a tiny study writes ~1 MB and keeps 1 MB free here
        study = ["--model", "vbpr", "--dataset", "tiny", "--data-dir", str(tiny_dir), "--trials", "4",
                 "--max-epochs", "2", "--grace-epochs", "1", "--storage", str(storage), "--name", "s"]
        proc = _mgtune("run", *study, keep_free_mb="1")
        line = _refused(proc, f"{storage / 's'}: the disk is nearly full:", "below the 1 MB a run keeps free",
                        f"the study stopped: make room, then continue it with: mgtune run --resume --name s "
                        f"--storage {storage}")
        assert "stopping the trials while Ray can still save its state" in proc.stderr
        assert not (storage / "s" / "results.csv").exists(), line  # never a results.csv short of trials
        ballast.unlink()
        resumed = _mgtune("run", "--resume", "--name", "s", "--storage", str(storage), keep_free_mb="1")
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        yield disk, storage / "s"


@pytest.mark.ray
def test_a_study_stopped_by_a_full_disk_resumes_with_every_trial(full_disk_study: tuple[Path, Path]) -> None:
    _, study = full_disk_study
    rows = _rows(study / "results.csv")
    assert len(rows) == 4 and {r["status"] for r in rows} <= {"completed", "early_stopped"}, rows


@pytest.mark.ray
def test_report_on_a_full_disk_keeps_every_old_page(full_disk_study: tuple[Path, Path],
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    disk, study = full_disk_study
    out = disk / "report"
    assert main(["report", str(study), "--out", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert len(before) == 3
    capsys.readouterr()
    ballast = fill(disk, leave=0)
    try:
        assert main(["report", str(study), "--out", str(out), "--k", "10"]) == 2  # pages that would differ
    finally:
        ballast.unlink()
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("mgtune: error: ") and "cannot write: the disk is full (ENOSPC)" in line, line
    assert "every report page is as it was" in line
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before and not _temps(out)


@pytest.mark.ray
def test_a_confirmation_the_disk_stopped_is_one_line_and_runs_again(full_disk_study: tuple[Path, Path],
                                                                      tmp_path: Path) -> None:
    """Stopped by the free space it keeps, like the study; it says to run it again (not --resume: a disk
    that filled up anyway may have cut Ray's state short), which keeps its finished runs."""
    disk, study = full_disk_study
    confirm = ["confirm", str(study), "--seeds", "2", "--out", str(tmp_path / "cards")]
    ballast = fill(disk, leave=1200 * 1024)  # a confirmation of 2 seeds x 2 arms writes ~1 MB
    try:
        proc = _mgtune(*confirm, keep_free_mb="1")
    finally:
        ballast.unlink()
    line = _refused(proc, f"{study / 'confirm'}: the disk is nearly full:",
                    "the confirmation stopped: make room, then run it again (its finished runs are kept): "
                    f"mgtune confirm {study} --seeds 2 --top 1")
    assert "--resume" not in line
    again = _mgtune(*confirm, keep_free_mb="1")
    assert again.returncode == 0, again.stderr[-3000:]
    runs = _rows(study / "confirm" / "results.csv")
    assert sorted((r["seed"], r["arm"], r["status"]) for r in runs) == [
        (seed, arm, "completed") for seed in ("0", "1") for arm in ("mg", "nomg")]


def _cut(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.mark.ray
@pytest.mark.parametrize("damaged", ["tuner.pkl", "experiment_state-*.json", "searcher-state-*.pkl",
                                     "experiment_state-*.json:not json", "tuner.pkl:empty"])
def test_a_damaged_ray_state_is_refused_on_resume_before_ray_starts(full_disk_study: tuple[Path, Path],
                                                                    tmp_path: Path, damaged: str,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """Ray, given a cut-short experiment state, starts over and a resume rewrote results.csv without the
    trials that had run; now the resume is refused and the study's files stay as they were."""
    study = tmp_path / "s"
    shutil.copytree(full_disk_study[1], study, ignore=shutil.ignore_patterns("confirm"))
    pattern, _, how = damaged.partition(":")
    target = sorted(study.glob(pattern))[-1]  # Ray reads the newest
    if how == "not json":
        target.write_text(json.dumps(["not", "Ray's"]))
    elif how == "empty":
        target.write_bytes(b"")
    else:
        _cut(target)
    results = (study / "results.csv").read_bytes()
    assert main(["run", "--resume", "--name", "s", "--storage", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [  # refused before Ray started: nothing else printed
        f"mgtune: error: {target}: Ray's saved state is damaged (cut short, or not what Ray writes); the study "
        "cannot be resumed; its trials and results are kept (a new --name searches on)"]
    assert (study / "results.csv").read_bytes() == results
