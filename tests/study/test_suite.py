"""A suite (`mgtune run --model a,b --mg both`): several studies at once on one Ray runtime.

The tests marked ``ray`` run the CLI in a subprocess on the tiny preset without text features, on
which MGCN (it needs both modalities) cannot build: the failing model of the suite.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from signals import wait_until

from mgtune.cli import main
from mgtune.errors import ConfigError
from mgtune.models import parse_models
from mgtune.report import load_study
from mgtune.store.suite import SuiteRecord
from mgtune.study.settings import parse_mg
from mgtune.study.suite import plan_studies

ROOT = Path(__file__).parents[2]


# ---------------------------------------------------------------- options, no Ray
def test_mg_option_and_its_alias() -> None:
    assert parse_mg(None, False) == "on" and parse_mg(None, True) == "off" == parse_mg("off", True)
    assert parse_mg("both", False) == "both"
    for mg, no_mg in (("maybe", False), ("both", True), ("on", True)):
        with pytest.raises(ConfigError):
            parse_mg(mg, no_mg)


def test_models_and_the_studies_planned() -> None:
    assert parse_models("FREEDOM, vbpr,freedom") == ["freedom", "vbpr"]
    assert "lattice" in parse_models("all")
    names = [s.name for s in plan_studies(["freedom", "itemknncbf"], "both")]
    assert names == ["freedom-nomg", "freedom", "itemknncbf-nomg"]  # a model that is not trained: no MG study
    assert [s.name for s in plan_studies(["freedom"], "off")] == ["freedom-nomg"]


@pytest.mark.parametrize("args,message", [
    (["--model", "freedom,nope"], "unknown model 'nope'"),
    (["--model", "freedom", "--mg", "maybe"], "--mg must be one of on, off, both"),
    (["--model", "freedom,vbpr", "--mg", "both", "--no-mg"], "--no-mg contradicts --mg both"),
    # a suite's --name follows a study's rule: one folder name, so the suite stays inside --storage
    (["--model", "freedom,vbpr", "--name", "../outside"], "--name '../outside': a suite name is one folder name"),
    (["--model", "freedom", "--mg", "both", "--name", "a/b"], "--name 'a/b': a suite name is one folder name"),
    (["--model", "freedom,vbpr", "--name", ".."], "a suite name is one folder name"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                                          message: str) -> None:
    storage = tmp_path / "runs"
    assert main(["run", *args, "--dataset", "tiny", "--storage", str(storage)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("mgtune: error: ") and message in err
    assert not storage.exists() and not (tmp_path / "outside").exists()


# ---------------------------------------------------------------- end to end, with Ray
def _cli(*args: str, cwd: Path, timeout: int = 600, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mgtune.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, env={**os.environ, "PYTHONPATH": str(ROOT), **env})


@pytest.fixture(scope="module")
def image_only(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir holding the tiny preset without text features, as dataset ``tiny``."""
    root = tmp_path_factory.mktemp("image_only")
    shutil.copytree(tiny_dir / "tiny", root / "tiny")
    (root / "tiny" / "text_feat.npy").unlink()
    return root


@pytest.fixture(scope="module")
def suite(image_only: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    work = tmp_path_factory.mktemp("suite")
    # the trials here last seconds: at the command's own priority they can end before a later study's driver
    # has imported torch on 2 cores; Ray's old worker niceness keeps the overlap test about scheduling
    proc = _cli("run", "--model", "freedom,vbpr,mgcn", "--mg", "both", "--dataset", "tiny", "--data-dir",
                str(image_only), "--trials", "2", "--max-epochs", "2", "--confirm", "2", "--storage", "runs",
                "--name", "s", cwd=work, MGTUNE_TRIAL_NICENESS="15")
    return proc, work / "runs" / "s"


def _trial_spans(study: Path) -> list[tuple[float, float]]:
    """(start, end) of each trial, in seconds since the epoch, from its progress.csv."""
    spans = []
    for path in study.glob("trial_*/progress.csv"):
        rows = list(csv.DictReader(path.open()))
        end = float(rows[-1]["timestamp"])
        spans.append((end - float(rows[-1]["trial_seconds"]), end))
    return spans


@pytest.mark.ray
def test_suite_leaves_single_studies_confirmed_a_report_and_names_the_failed_model(suite: tuple[Any, Path]) -> None:
    proc, folder = suite
    assert proc.returncode == 3, proc.stderr[-3000:]  # a study failed; the others' results are written
    record = SuiteRecord.read(folder)
    states = {s.name: (s.state, s.reason) for s in record.studies}
    finished = ["freedom-nomg", "freedom", "vbpr-nomg", "vbpr"]
    assert [n for n, (state, _) in states.items() if state == "finished"] == finished
    for name in ("mgcn-nomg", "mgcn"):
        state, reason = states[name]
        assert state == "failed" and "text features" in reason and "\n" not in reason
        assert f"{name:<20} failed (all 2 trials failed:" in proc.stderr  # in the summary
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["exit_code"] == 3 and len(summary["studies"]) == 6
    for name in finished:  # each a single study: its folder, Optuna study and results.csv
        study = load_study(folder / name, "recall@20", (5, 10, 20, 50))
        assert study.mg == (not name.endswith("-nomg")) and len(study.trials) == 2 and study.finished
        assert (folder / name / "optuna.db").is_file() and (folder / "logs" / f"{name}.log").is_file()
    md = (folder / "report" / "tiny.md").read_text()
    for label in ("FREEDOM", "FREEDOM + MG", "VBPR", "VBPR + MG", "Gain", "MG − no MG [95% CI]", "Verdict"):
        assert f"| {label} |" in md
    # --confirm 2: each finished MG study confirmed over 2 seeds, with and without MG, with its card
    assert {s.name for s in record.studies if s.confirmed} == {"freedom", "vbpr"}
    for model in ("freedom", "vbpr"):
        assert (folder / "cards" / f"{model}-tiny-card.md").is_file()
        rows = list(csv.DictReader((folder / model / "confirm" / "results.csv").open()))
        assert sorted((r["seed"], r["arm"]) for r in rows) == [("0", "mg"), ("0", "nomg"), ("1", "mg"), ("1", "nomg")]
    # one progress line per study as trials end, not a line per trial event
    assert "epoch" not in proc.stderr and "started" not in proc.stderr


@pytest.mark.ray
def test_the_studies_ran_at_the_same_time(suite: tuple[Any, Path]) -> None:
    _, folder = suite
    spans = {name: _trial_spans(folder / name) for name in ("freedom-nomg", "freedom", "vbpr-nomg", "vbpr")}
    # no study waited for another to finish: every study's first trial started before any study's last ended
    first_starts = [min(s for s, _ in v) for v in spans.values()]
    last_ends = [max(e for _, e in v) for v in spans.values()]
    assert max(first_starts) < min(last_ends), spans


@pytest.mark.ray
def test_report_reads_the_suite_folder(suite: tuple[Any, Path], tmp_path: Path) -> None:
    _, folder = suite
    assert main(["report", str(folder), "--out", str(tmp_path)]) == 0
    assert "The paper's table" in (tmp_path / "tiny.md").read_text()


EPOCHS = 30


def _final(folder: Path) -> dict[str, bytes]:
    """study/trial -> progress.csv bytes of every trial whose last reported epoch was its final one."""
    out = {}
    for path in folder.glob("*/trial_*/progress.csv"):
        rows = list(csv.DictReader(path.open()))
        if rows and rows[-1].get("final") == "True":
            out[f"{path.parent.parent.name}/{path.parent.name}"] = path.read_bytes()
    return out


@pytest.mark.ray
def test_resume_of_an_interrupted_suite_reruns_no_finished_trial(tiny_dir: Path, tmp_path: Path) -> None:
    args = ["--storage", "runs", "--name", "r"]
    err_file = tmp_path / "first.err"
    with err_file.open("w") as err:
        first = subprocess.Popen(
            [sys.executable, "-m", "mgtune.cli", "run", "--model", "freedom", "--mg", "both", "--dataset", "tiny",
             "--data-dir", str(tiny_dir), "--trials", "6", "--max-epochs", str(EPOCHS), "--grace-epochs",
             str(EPOCHS), "--checkpoint-every", "1", *args],
            stdout=subprocess.DEVNULL, stderr=err, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)},
            # Ctrl-C as at a terminal: a SIGINT that this test process ignores (as a background job does)
            # would be ignored by the suite too, which then finishes instead of being interrupted
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    folder = tmp_path / "runs" / "r"
    deadline = time.monotonic() + 400
    # interrupt once a trial has finished; six trials a study, so several are still to come (a tiny
    # trial takes about 2 s, and with two or three the studies could end before the interrupt took)
    while not _final(folder):
        assert first.poll() is None, err_file.read_text()[-3000:]
        assert time.monotonic() < deadline, err_file.read_text()[-3000:]
        time.sleep(0.2)
    first.send_signal(signal.SIGINT)
    assert first.wait(timeout=300) == 130, err_file.read_text()[-3000:]
    assert "--resume --name r" in err_file.read_text()
    assert {s.state for s in SuiteRecord.read(folder).studies} <= {"interrupted", "finished"}
    finished = _final(folder)  # trials may have finished while the studies were stopping

    second = _cli("run", "--resume", *args, cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    assert {s.state for s in SuiteRecord.read(folder).studies} == {"finished"}
    for name, progress in finished.items():  # not re-run: not one more row
        assert (folder / name / "progress.csv").read_bytes() == progress, name
    for study in ("freedom", "freedom-nomg"):
        rows = list(csv.DictReader((folder / study / "results.csv").open()))
        assert len(rows) == 6 and {r["status"] for r in rows} == {"completed"}


@pytest.mark.ray
def test_kill_9_of_the_suite_ends_its_studies_at_once_and_resume_finishes_them(tiny_dir: Path,
                                                                               tmp_path: Path) -> None:
    """A suite's studies die with it (issue 23), even by ``kill -9``, which gives the suite no chance to stop
    them: each study ends within seconds (not after Ray's minute of reconnecting to the runtime that died
    with the suite), its log's last line says how to continue the suite, and ``--resume`` finishes every trial."""
    import psutil

    err_file = tmp_path / "first.err"
    with err_file.open("w") as err:
        first = subprocess.Popen(
            [sys.executable, "-m", "mgtune.cli", "run", "--model", "freedom", "--mg", "both", "--dataset", "tiny",
             "--data-dir", str(tiny_dir), "--trials", "2", "--max-epochs", str(EPOCHS), "--grace-epochs",
             str(EPOCHS), "--checkpoint-every", str(EPOCHS), "--storage", "runs", "--name", "k"],
            stdout=subprocess.DEVNULL, stderr=err, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)})
    # no checkpoint before the kill (the trials start over on resume): after a hard kill, Ray's last saved
    # state can name a checkpoint that keeping one per trial has since deleted, and Ray cannot restore that
    # trial (a gap of Ray's checkpoint pruning, not of the suite; epochs of milliseconds here widen it)
    folder = tmp_path / "runs" / "k"

    def both_training() -> bool:
        return len(list(folder.glob("*/trial_*/progress.csv"))) >= 2

    wait_until(first, both_training, err_file, timeout=300)
    studies = [p for p in psutil.Process(first.pid).children() if "mgtune.cli" in " ".join(p.cmdline())]
    assert len(studies) == 2
    first.kill()
    first.wait()
    _, alive = psutil.wait_procs(studies, timeout=20)
    assert not alive, [p.cmdline() for p in alive]
    resume = f"mgtune run --resume --name k --storage {folder.parent}"
    for name in ("freedom", "freedom-nomg"):
        last = (folder / "logs" / f"{name}.log").read_text().strip().splitlines()[-1]
        assert last.startswith("mgtune: error: the suite that started this study") and last.endswith(resume), last

    second = _cli("run", "--resume", "--storage", "runs", "--name", "k", cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    for name in ("freedom", "freedom-nomg"):
        rows = list(csv.DictReader((folder / name / "results.csv").open()))
        assert len(rows) == 2 and {r["status"] for r in rows} == {"completed"}, rows
