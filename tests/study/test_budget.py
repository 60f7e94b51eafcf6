"""Study budgets: ``--budget-epochs`` and ``--time-budget``.

Real studies on a local Ray runtime: one ended by its epochs (no trial starts after, results and
report still written, the printed best says the budget ended it), one ended by its time, and one
interrupted and resumed, which keeps both limits and what it had spent. Bad budgets are one-line
errors with exit code 2, before Ray starts.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mgtune.errors import ConfigError, DataFormatError
from mgtune.store import BUDGET_FILE, Budget, Spent, format_duration, parse_duration, read_spent


def _run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mgtune.cli", "run", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "RAY_ADDRESS": ""})


def _tiny(tiny_dir: Path, storage: Path, name: str) -> list[str]:
    return ["--model", "vbpr", "--dataset", "tiny", "--data-dir", str(tiny_dir), "--storage", str(storage),
            "--name", name, "--concurrency", "1"]


# ---------------------------------------------------------------- parsing and accounting
@pytest.mark.parametrize(("text", "seconds"), [("90", 90.0), ("90s", 90.0), ("45m", 2700.0), ("2h", 7200.0),
                                               ("1h30m", 5400.0), ("1.5d", 129600.0), (" 2H ", 7200.0)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["soon", "", "2x", "h", "1h 30", "-1h", "-5", "0", "0s", "nan", "inf", "2h-3m"])
def test_bad_durations_are_one_line_errors(text: str) -> None:
    with pytest.raises(ConfigError, match="--time-budget") as info:
        parse_duration(text)
    assert "\n" not in str(info.value)


def test_budget_ends_by_the_first_limit_reached() -> None:
    budget = Budget(epochs=10, seconds=60.0)
    assert budget.ended_by(Spent(9, 59.0)) is None
    assert budget.ended_by(Spent(10, 1.0)) == "epochs"
    assert budget.ended_by(Spent(3, 60.0)) == "time"
    assert not Budget() and Budget(epochs=1) and Budget(seconds=1.0)
    assert Budget(epochs=400, seconds=7200).describe(Spent(120, 720)) == "budget 120/400 epochs, 12m00s/2h00m"
    assert format_duration(65) == "1m05s" and format_duration(7) == "7s"
    with pytest.raises(ConfigError, match="--budget-epochs must be >= 1, got -3"):
        Budget(epochs=-3)


def test_spent_round_trips_and_bad_records_name_the_file(tmp_path: Path) -> None:
    assert read_spent(tmp_path) == Spent()  # no file: nothing spent
    Spent(7, 12.5).write(tmp_path)
    assert read_spent(tmp_path) == Spent(7, 12.5)
    Spent(7, 12.5, ("a_00001",)).write(tmp_path)
    assert read_spent(tmp_path) == Spent(7, 12.5, ("a_00001",))
    (tmp_path / BUDGET_FILE).write_text('{"epochs": 3, "seconds": 2.5}\n')  # written before budgets named trials
    assert read_spent(tmp_path) == Spent(3, 2.5, ())
    (tmp_path / BUDGET_FILE).write_text('{"epochs": 3, "seconds": 2.5, "stopped": "a_00001"}')
    with pytest.raises(DataFormatError, match="'stopped' must be a list of trial ids"):
        read_spent(tmp_path)
    (tmp_path / BUDGET_FILE).write_text('{"epochs": -1, "seconds": 3}')
    with pytest.raises(DataFormatError, match=BUDGET_FILE):
        read_spent(tmp_path)
    (tmp_path / BUDGET_FILE).write_text("[1, 2]")
    with pytest.raises(DataFormatError, match="not a budget record"):
        read_spent(tmp_path)


def test_the_budget_stopper_names_the_trials_it_cut(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    from mgtune.study._ray_parts import BudgetStopper
    from mgtune.study.trainable import FINAL

    stopper = BudgetStopper(Budget(epochs=4), str(tmp_path))
    assert not stopper("a", {"epoch": 0}) and not stopper("b", {"epoch": 0}) and not stopper("a", {"epoch": 1})
    assert stopper("a", {"epoch": 2, FINAL: True})  # the 4th epoch, but a's last: a finished, nothing was cut
    assert stopper("b", {"epoch": 1})  # b is running: the budget cuts it
    assert read_spent(tmp_path) == Spent(5, read_spent(tmp_path).seconds, ("b",))
    resumed = BudgetStopper(Budget(epochs=4), str(tmp_path))  # --resume: a new session reads what was recorded
    assert resumed("c", {"epoch": 0}) and resumed.spent().stopped == ("b", "c")


@pytest.mark.parametrize(("flags", "message"), [
    (["--time-budget", "soon"], "--time-budget 'soon': expected a duration such as 90s, 45m, 2h or 1h30m"),
    (["--time-budget=-2h"], "--time-budget '-2h'"),
    (["--budget-epochs", "-5"], "--budget-epochs must be >= 1, got -5"),
    (["--budget-epochs", "0"], "--budget-epochs must be >= 1, got 0"),
])
def test_a_bad_budget_is_one_line_and_exit_2(tiny_dir: Path, tmp_path: Path, flags: list[str],
                                             message: str) -> None:
    out = _run(*_tiny(tiny_dir, tmp_path, "bad"), *flags, timeout=120)
    assert out.returncode == 2, out.stderr
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr, out.stderr
    assert message in out.stderr
    assert not (tmp_path / "bad").exists()  # refused before anything was written


# ---------------------------------------------------------------- real studies
@pytest.mark.ray
def test_an_epoch_budget_stops_new_trials_and_still_writes_results(tiny_dir: Path, tmp_path: Path) -> None:
    out = _run(*_tiny(tiny_dir, tmp_path, "b"), "--max-epochs", "3", "--grace-epochs", "3", "--budget-epochs", "5")
    assert out.returncode == 0, out.stderr[-3000:]
    folder = tmp_path / "b"
    # one trial at a time: the first trains its 3 epochs, the second stops after 2, when 5 are spent
    assert read_spent(folder).epochs == 5
    rows = list(csv.DictReader((folder / "results.csv").open()))
    assert len(rows) == 2 and sorted(int(r["epochs_run"]) for r in rows) == [2, 3], rows
    # the second trial was cut by the budget, not stopped by ASHA (grace = max epochs: ASHA stops none)
    statuses = {int(r["epochs_run"]): r["status"] for r in rows}
    assert statuses == {3: "completed", 2: "budget_stopped"}, rows
    cut = next(r["trial_id"] for r in rows if r["status"] == "budget_stopped")
    assert read_spent(folder).stopped == (cut,)
    assert f"{cut}  stopped by the budget after 2 epoch(s)" in out.stderr
    assert len(list(folder.glob("trial_*"))) == 2  # no trial started once the budget was spent
    meta = json.loads((folder / "study.json").read_text())
    assert meta["budget_epochs"] == 5 and meta["ended_by"] == "epochs" and meta["finished"]
    best = json.loads(out.stdout)
    assert best["ended_by"] == "budget (epochs)" and best["best_trial"] in {r["trial_id"] for r in rows}
    assert "the budget ended the study: 5 epochs" in out.stderr
    assert "[1 done, budget 3/5 epochs, best recall@20" in out.stderr  # the progress line
    report = next((folder / "report").glob("*.md")).read_text()
    assert "budget" in report.lower()
    # the report's trials table counts it as cut by the budget (columns: trials, completed, stopped by ASHA,
    # cut by the budget, diverged, errored, epochs)
    assert "| Cut by the budget |" in report and "| VBPR + MG | 2 | 1 | 0 | 1 | 0 | 0 | 5 |" in report, report


@pytest.mark.ray
def test_a_time_budget_ends_the_study(tiny_dir: Path, tmp_path: Path) -> None:
    out = _run(*_tiny(tiny_dir, tmp_path, "t"), "--max-epochs", "40", "--grace-epochs", "40", "--time-budget", "12s")
    assert out.returncode == 0, out.stderr[-3000:]
    folder = tmp_path / "t"
    assert json.loads((folder / "study.json").read_text())["ended_by"] == "time"
    assert read_spent(folder).seconds >= 12.0
    assert (folder / "results.csv").is_file() and json.loads(out.stdout)["ended_by"] == "budget (time)"


@pytest.mark.ray
def test_budgets_survive_resume(tiny_dir: Path, tmp_path: Path) -> None:
    args = [*_tiny(tiny_dir, tmp_path, "r"), "--max-epochs", "4", "--grace-epochs", "4", "--checkpoint-every", "1",
            "--budget-epochs", "7", "--time-budget", "1h"]
    err = tmp_path / "first.err"
    with err.open("w") as fh:
        first = subprocess.Popen([sys.executable, "-m", "mgtune.cli", "run", *args], stdout=subprocess.PIPE,
                                 stderr=fh, text=True, env={**os.environ, "RAY_ADDRESS": ""})
    folder = tmp_path / "r"
    try:
        deadline = time.monotonic() + 180
        while read_spent(folder).epochs < 2:
            assert first.poll() is None, err.read_text()[-3000:]
            assert time.monotonic() < deadline, err.read_text()[-3000:]
            time.sleep(0.1)
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 130, err.read_text()[-3000:]
    before = read_spent(folder)
    assert 2 <= before.epochs < 7

    changed = _run("--resume", "--name", "r", "--storage", str(tmp_path), "--budget-epochs", "99", timeout=120)
    assert changed.returncode == 2 and "cannot change it on --resume" in changed.stderr, changed.stderr

    second = _run("--resume", "--name", "r", "--storage", str(tmp_path))
    assert second.returncode == 0, second.stderr[-3000:]
    meta = json.loads((folder / "study.json").read_text())
    assert (meta["budget_epochs"], meta["time_budget_s"], meta["ended_by"]) == (7, 3600.0, "epochs")
    after = read_spent(folder)
    assert after.epochs == 7 and after.seconds > before.seconds  # went on from what it had spent
    assert sum(int(r["epochs_run"]) for r in csv.DictReader((folder / "results.csv").open())) <= 7


def test_a_budgeted_study_chooses_among_every_trial_with_metrics() -> None:
    from mgtune.store import select_best

    rows = [{"trial_id": "done", "status": "completed", "valid_recall@20": 0.30},
            {"trial_id": "cut", "status": "early_stopped", "valid_recall@20": 0.50},
            {"trial_id": "bad", "status": "errored", "valid_recall@20": 0.90}]
    assert select_best(rows, "recall@20")["trial_id"] == "done"  # type: ignore[index]
    assert select_best(rows, "recall@20", budget_ended=True)["trial_id"] == "cut"  # type: ignore[index]
    assert select_best(rows[1:], "recall@20") is None
    # a study recorded since budgets name their trials: the cut trial is budget_stopped, and competes too
    rows += [{"trial_id": "by budget", "status": "budget_stopped", "valid_recall@20": 0.60}]
    assert select_best(rows, "recall@20")["trial_id"] == "done"  # type: ignore[index]
    assert select_best(rows, "recall@20", budget_ended=True)["trial_id"] == "by budget"  # type: ignore[index]
