"""`benchmarks/study_vs_grid.py` end to end at toy scale: a real grid study and a budgeted study."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.ray
SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "study_vs_grid.py"


def test_grid_then_a_budgeted_study(tiny_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "vbpr.json"
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "--model", "vbpr", "--dataset", "tiny", "--data-dir", str(tiny_dir),
         "--budgets", "0.3", "--seeds", "0", "--max-epochs", "2", "--storage", str(tmp_path / "runs"),
         "--json", str(out), "--markdown", str(tmp_path / "vbpr.md"), "--plot", str(tmp_path / "plot.png")],
        capture_output=True, text=True, timeout=600, env={**os.environ, "RAY_ADDRESS": ""})
    assert run.returncode == 0, run.stderr[-3000:]
    summary = json.loads(out.read_text())
    grid = summary["grid"]
    assert grid["trials"] == 21 and grid["epochs"] == 42  # 7 reg_weight x 3 flip_ratio, 2 epochs each
    assert 0 < grid["spread"] <= 1
    (study,) = summary["studies"]
    assert study["ended_by"] == "epochs" and 13 <= study["spent_epochs"] <= 14  # 30% of 42, one may overshoot
    assert study["fraction"] == pytest.approx(study["best_valid"] / grid["best_valid"])
    # --train-reference (a further study and `mgtune train` processes) is left out here to keep CI in its
    # time; the choice of its configurations is tested below
    assert "spread" in (tmp_path / "vbpr.md").read_text() and (tmp_path / "plot.png").stat().st_size > 0


def test_the_train_reference_takes_configurations_spread_over_the_grid() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("study_vs_grid", SCRIPT)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    starts = mod.grid_space("freedom")["start"]  # 2 dropout x 4 reg_weight x 3 flip_ratio
    picked = mod.spread_over(starts, 4)
    assert [s["dropout"] for s in picked] == [0.8, 0.8, 0.9, 0.9]
    assert len({s["reg_weight"] for s in picked}) == 2 and mod.spread_over(starts, 99) == starts
    assert mod._train_args("freedom", picked[0]) == [
        "--model", "freedom", "--set", "dropout=0.8", "--set", "reg_weight=0.0", "--flip-interval", "3",
        "--flip-ratio", "0.1", "--lr", "0.001"]
