"""Stopping a study from outside, and resuming what a hard-killed driver left.

One study on the default private runtime: SIGTERM stops it like Ctrl-C (exit 130, the resume hint,
nothing on stdout). Then the leftovers of a ``kill -9`` of the driver are added (an Optuna trial left
``RUNNING`` and a trial folder holding only TensorBoard events, both unknown to Ray's saved state), and
``--resume`` marks the trial failed, removes the folder and finishes the study, printing only JSON.
And two runs started at once on one name: one is refused before its Ray starts, the other stopped by SIGTERM.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from signals import signal_when

pytestmark = pytest.mark.ray


def _cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "mgtune.cli", "run", *args]


def test_sigterm_then_resume_after_a_hard_kill(tiny_dir: Path, tmp_path: Path) -> None:
    import optuna

    err = tmp_path / "first.err"
    env = {**os.environ, "RAY_ADDRESS": ""}
    with err.open("w") as fh:
        first = subprocess.Popen(
            _cmd("--model", "freedom", "--dataset", "tiny", "--data-dir", str(tiny_dir), "--trials", "2",
                 "--concurrency", "1", "--max-epochs", "6", "--grace-epochs", "6", "--checkpoint-every", "1",
                 "--storage", str(tmp_path), "--name", "s"),
            stdout=subprocess.PIPE, stderr=fh, text=True, env=env)
    folder = tmp_path / "s"
    out = signal_when(first, lambda: bool(list(folder.glob("trial_*/checkpoint_*"))), err, timeout=180)
    text = err.read_text()
    assert first.returncode == 130, text[-3000:]
    assert f"continue it with: mgtune run --resume --name s --storage {tmp_path}" in text
    assert out == ""

    # what a driver killed between Ray's state snapshots leaves behind
    storage = f"sqlite:///{folder / 'optuna.db'}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    stale = optuna.load_study(study_name="mgtune", storage=storage).ask().number
    orphan = folder / "trial_deadbeef"
    orphan.mkdir(mode=0o700)
    (orphan / "events.out.tfevents.1.host.1.0").write_bytes(b"")

    second = subprocess.run(_cmd("--resume", "--name", "s", "--storage", str(tmp_path)), capture_output=True,
                            text=True, timeout=240, env=env)
    assert second.returncode == 0, second.stderr[-3000:]
    assert json.loads(second.stdout)["best_trial"]  # stdout: the JSON and nothing else
    trials = optuna.load_study(study_name="mgtune", storage=storage).trials
    assert trials[stale].state == optuna.trial.TrialState.FAIL
    assert not any(t.state == optuna.trial.TrialState.RUNNING for t in trials)
    assert not orphan.exists()
    rows = list(csv.DictReader((folder / "results.csv").open()))
    assert len(rows) == 2 and {r["status"] for r in rows} == {"completed"}, rows


def test_two_runs_started_at_once_on_one_name_one_is_refused_before_ray(tiny_dir: Path, tmp_path: Path) -> None:
    """Both check the name at the same moment; the folder's lock lets one through, and the other exits 2 at once
    naming it (before, both ran into one folder and results.csv lacked one run's trials)."""
    argv = _cmd("--model", "vbpr", "--dataset", "tiny", "--data-dir", str(tiny_dir), "--trials", "2",
                "--max-epochs", "300", "--grace-epochs", "300", "--storage", str(tmp_path), "--name", "same")
    env = {**os.environ, "RAY_ADDRESS": ""}
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for _ in range(2)]
    try:
        deadline = time.monotonic() + 120
        while all(p.poll() is None for p in procs):
            assert time.monotonic() < deadline, "neither run was refused"
            time.sleep(0.1)
        loser = next(p for p in procs if p.poll() is not None)
        winner = next(p for p in procs if p is not loser)
        _, err = loser.communicate()
        assert loser.returncode == 2 and err.strip().splitlines() == [
            f"mgtune: error: {tmp_path / 'same'}: in use by another mgtune study (pid {winner.pid} on "
            f"{socket.gethostname()}); wait for it to end or pick another --name"], err
        assert "Ray" not in err and winner.poll() is None  # refused before its Ray started; the other runs on
        while not list((tmp_path / "same").glob("trial_*/progress.csv")):
            assert winner.poll() is None and time.monotonic() < deadline + 120
            time.sleep(0.2)
        winner.send_signal(signal.SIGTERM)
        _, err = winner.communicate(timeout=120)
        assert winner.returncode == 130, err[-3000:]
        assert f"continue it with: mgtune run --resume --name same --storage {tmp_path}" in err
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
