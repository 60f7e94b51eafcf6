"""`mgtune train`'s own behaviour: progress lines, the early-stopping line, and an interrupted run that keeps
its best epoch (a real process and a real signal)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mgtune.training import TrainConfig
from mgtune.training.checkpoint_eval import EvalSettings, evaluate_checkpoint
from mgtune.training.train_run import TrainOutput, train_into


def test_epoch_lines_show_the_metric_and_ndcg_and_early_stopping_says_so(tiny_dir: Path, tmp_path: Path) -> None:
    lines: list[str] = []
    cfg = TrainConfig(model="vbpr", dataset="tiny", data_dir=str(tiny_dir), epochs=200, patience=0, device="cpu",
                      valid_metric="precision@10")
    summary = train_into(cfg, TrainOutput(out=str(tmp_path / "out")), lines.append)
    epochs = [ln for ln in lines if ln.startswith("epoch ")]
    assert len(epochs) == summary["epochs_run"] < 200
    assert all(re.search(r"valid precision@10 \d\.\d{4} ndcg@10 \d\.\d{4}  test precision@10 \d\.\d{4} "
                         r"ndcg@10 \d\.\d{4}", ln) for ln in epochs), epochs[0]
    stops = [ln for ln in lines if "early stopping" in ln]
    assert stops == [f"early stopping at epoch {summary['epochs_run'] - 1}: valid precision@10 not better for 1 "
                     f"epoch(s) (patience 0); best epoch {summary['best_epoch']}"]
    assert "interrupted" not in summary


def test_ndcg_as_the_metric_is_shown_once(tiny_dir: Path, tmp_path: Path) -> None:
    lines: list[str] = []
    cfg = TrainConfig(model="vbpr", dataset="tiny", data_dir=str(tiny_dir), epochs=1, device="cpu",
                      valid_metric="ndcg@20")
    train_into(cfg, TrainOutput(out=str(tmp_path / "out")), lines.append)
    (line,) = [ln for ln in lines if ln.startswith("epoch ")]
    assert line.count("ndcg@20") == 2 and "recall" not in line  # once for valid, once for test


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_an_interrupted_train_writes_its_best_epoch_and_exits_130(sig: signal.Signals, tiny_dir: Path,
                                                                   tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "mgtune.cli", "train", "--model", "vbpr", "--dataset", "tiny",
                             "--data-dir", str(tiny_dir), "--epochs", "100000", "--patience", "100000", "--device",
                             "cpu", "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stderr is not None
    seen = []
    deadline = time.monotonic() + 240
    for line in proc.stderr:  # wait until three epochs ended, then stop it
        seen.append(line)
        if line.startswith("epoch    2") or time.monotonic() > deadline:
            break
    proc.send_signal(sig)
    stdout, rest = proc.communicate(timeout=120)
    err = "".join(seen) + rest
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["interrupted"] is True and json.loads(stdout) == metrics
    assert metrics["epochs_run"] >= 3 and 0 <= metrics["best_epoch"] < metrics["epochs_run"]
    assert f"interrupted after {metrics['epochs_run']} epoch(s): wrote the best epoch so far" in err
    again = evaluate_checkpoint(EvalSettings(checkpoint=str(out / "checkpoint.pt"), device="cpu"))
    assert again["test"] == pytest.approx(metrics["test"]) and again["valid"] == pytest.approx(metrics["valid"])
