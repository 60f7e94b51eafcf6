"""`mgtune run` end to end on the tiny preset: real Ray, Optuna and TensorBoard files.

Every study runs the CLI in a subprocess, as a user would. Marked ``ray``: the first study starts
its own local Ray runtime (the default); the others attach to one head node started for this module.
"""

from __future__ import annotations

import csv
import json
import os
import pickle
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mgtune.store.results import result_columns
from mgtune.study import load_search_space
from mgtune.study.search_space import find_search_space

pytestmark = pytest.mark.ray

TOPK = (5, 10, 20, 50)
CONTRACT_KEYS = {"model", "dataset", "mg", "metric", "mode", "max_epochs", "grace_epochs", "reduction_factor",
                 "trials", "seed", "search_space", "search_space_file", "created", "finished", "mgtune_version"}


def _cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "mgtune.cli", "run", *args]


def _run(*args: str, env: dict[str, str] | None = None, timeout: int = 400) -> subprocess.CompletedProcess[str]:
    return subprocess.run(_cmd(*args), capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def _rows(study: Path) -> list[dict[str, str]]:
    with (study / "results.csv").open() as fh:
        return list(csv.DictReader(fh))


def _header(study: Path) -> list[str]:
    with (study / "results.csv").open() as fh:
        return next(csv.reader(fh))


def _optuna_trials(study: Path) -> list[Any]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.load_study(study_name="mgtune", storage=f"sqlite:///{study / 'optuna.db'}").trials


def _scalars(trial_dir: Path) -> dict[str, list[int]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(trial_dir))
    acc.Reload()
    return {tag: [e.step for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def _hparams_tags(trial_dir: Path) -> list[str]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(trial_dir))
    acc.Reload()
    return sorted(acc.PluginTagToContent("hparams"))


# ---------------------------------------------------------------- the acceptance study, smaller
@pytest.fixture(scope="module")
def study(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    storage = tmp_path_factory.mktemp("runs")
    proc = _run("--model", "freedom", "--dataset", "tiny", "--data-dir", str(tiny_dir), "--trials", "6",
                "--max-epochs", "4", "--grace-epochs", "1", "--reduction-factor", "2", "--checkpoint-every", "1",
                "--storage", str(storage), "--name", "acc")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc, storage / "acc"


def test_results_csv_has_every_trial_and_the_contract_columns(study: tuple[Any, Path]) -> None:
    _, folder = study
    space = load_search_space(find_search_space("freedom"))
    assert _header(folder) == result_columns(space.names, TOPK)
    rows = _rows(folder)
    assert len(rows) == 6
    assert {r["status"] for r in rows} <= {"completed", "early_stopped"}
    for r in rows:
        assert (folder / r["trial_dir"]).is_dir()
        epochs = int(r["epochs_run"])
        assert epochs == 4 if r["status"] == "completed" else 1 <= epochs < 4
        assert float(r["valid_recall@20"]) >= 0 and float(r["test_ndcg@50"]) >= 0
        params = json.loads((folder / r["trial_dir"] / "params.json").read_text())
        assert set(params) == set(space.names)
        assert all(float(r[f"param_{k}"]) == pytest.approx(float(v)) for k, v in params.items())


def test_asha_stopped_some_trials_and_optuna_was_told_pruned(study: tuple[Any, Path]) -> None:
    _, folder = study
    rows = _rows(folder)
    stopped = [r for r in rows if r["status"] == "early_stopped"]
    assert stopped, "ASHA stopped no trial"
    states = sorted(t.state.name for t in _optuna_trials(folder))
    assert states.count("PRUNED") == len(stopped)
    assert states.count("COMPLETE") == len(rows) - len(stopped)
    # a pruned trial's value is its stopping epoch's score, its one intermediate value: the per-epoch
    # scores are not written to optuna.db (PrunedAwareOptunaSearch.on_trial_result)
    pruned = [t for t in _optuna_trials(folder) if t.state.name == "PRUNED"]
    assert all(len(t.intermediate_values) == 1 and t.value is not None for t in pruned)
    assert sorted(round(t.value, 5) for t in pruned) == sorted(round(float(r["valid_recall@20"]), 5) for r in stopped)


def test_best_configuration_is_chosen_by_validation(study: tuple[Any, Path]) -> None:
    proc, folder = study
    best = json.loads(proc.stdout)
    completed = [r for r in _rows(folder) if r["status"] == "completed"]
    top = max(completed, key=lambda r: float(r["valid_recall@20"]))
    assert best["best_trial"] == top["trial_id"]
    assert best["valid_recall@20"] == pytest.approx(float(top["valid_recall@20"]))


def test_event_files_hold_per_epoch_scalars_for_every_trial(study: tuple[Any, Path]) -> None:
    _, folder = study
    for r in _rows(folder):
        trial_dir = folder / r["trial_dir"]
        events = list(trial_dir.glob("events.out.tfevents.*"))
        assert len(events) == 1, events  # ours only: Ray's automatic TensorBoard logger is off
        scalars = _scalars(trial_dir)
        epochs = list(range(int(r["epochs_run"])))
        for tag in ("train/loss", "lr", "valid/recall@20", "test/recall@20", "valid/ndcg@50", "best/valid/recall@20"):
            assert scalars[tag] == epochs, (r["trial_dir"], tag)
        hparams = _hparams_tags(trial_dir)
        assert "_hparams_/session_start_info" in hparams
        assert ("_hparams_/session_end_info" in hparams) == (r["status"] == "completed")
    assert not list(folder.glob("events.out.tfevents.*"))


def test_study_json_and_progress_csv_follow_the_contract(study: tuple[Any, Path]) -> None:
    _, folder = study
    meta = json.loads((folder / "study.json").read_text())
    assert set(meta) >= CONTRACT_KEYS
    assert meta["finished"] and meta["mg"] is True and meta["trials"] == 6 and meta["metric"] == "recall@20"
    assert set(meta["search_space"]["params"]) == {"flip_interval", "flip_ratio", "learning_rate", "dropout",
                                                   "reg_weight"}
    assert meta["search_space"]["start"] == [dict(p) for p in load_search_space(find_search_space("freedom")).start]
    for r in _rows(folder):
        with (folder / r["trial_dir"] / "progress.csv").open() as fh:
            header = next(csv.reader(fh))
        assert {"epoch", "train_loss", "lr", "valid_recall@20", "test_map@5"} <= set(header)
        # best + latest checkpoint kept, never more
        assert len(list((folder / r["trial_dir"]).glob("checkpoint_*"))) <= 2


# ---------------------------------------------------------------- a running cluster: attach (+ --no-mg); the
# failing-trial and resume studies below use the same head, which saves starting a Ray runtime for each
# The head and every driver share a token made for this module (not ~/.ray/auth_token); a driver given
# an address must opt in to token auth explicitly.
AUTH = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}


def _attach(head: tuple[str, Path, Any]) -> list[str]:
    return ["--address", head[0]]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def ray_head() -> Iterator[tuple[str, Path, subprocess.Popen[bytes]]]:
    """A Ray head on 127.0.0.1 in its own process group and temp dir; stopped (only it) afterwards.

    ``ray stop`` would stop every Ray runtime on the machine, so the head runs with ``--block``
    and its process group gets SIGTERM, which ends the processes it started.
    """
    temp_dir = Path(tempfile.mkdtemp(prefix="mgr", dir="/tmp"))  # short: Ray's socket paths have a length limit
    port = _free_port()
    log = temp_dir / "head.log"
    env = {**os.environ, **AUTH}
    with log.open("wb") as fh:
        head = subprocess.Popen(
            ["ray", "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port), "--num-cpus", "2",
             "--include-dashboard", "false", "--temp-dir", str(temp_dir), "--block"],
            stdout=fh, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 180
        while b"Ray runtime started" not in log.read_bytes():
            assert head.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "ray head did not start"
            time.sleep(1)
        yield f"127.0.0.1:{port}", temp_dir, head
    finally:
        if head.poll() is None:
            os.killpg(head.pid, signal.SIGTERM)
            try:
                head.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(head.pid, signal.SIGKILL)
                head.wait()


def test_attach_to_a_running_cluster_with_no_mg(ray_head: tuple[str, Path, Any], tiny_dir: Path,
                                                tmp_path: Path) -> None:
    address, temp_dir, head = ray_head
    refused = _run("--model", "freedom", "--dataset", "tiny", "--data-dir", str(tiny_dir), "--gpus-per-trial", "1",
                   "--address", address, "--storage", str(tmp_path), env=AUTH)
    assert refused.returncode == 2 and "no trial could start" in refused.stderr  # never a study that pends forever
    assert not list(tmp_path.iterdir())
    proc = _run("--model", "freedom", "--dataset", "tiny", "--data-dir", str(tiny_dir), "--trials", "2",
                "--max-epochs", "2", "--grace-epochs", "1", "--no-mg", "--address", address,
                "--storage", str(tmp_path), "--name", "attached", env=AUTH)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"attached to the Ray cluster at {address}" in proc.stderr
    folder = tmp_path / "attached"
    rows = _rows(folder)
    # the trials ran on that cluster: their working directories live in its temp dir
    ran_there = {p.name for p in temp_dir.glob("session_*/artifacts/*/attached/working_dirs/trial_*")}
    assert ran_there == {r["trial_dir"] for r in rows} and len(rows) == 2
    assert head.poll() is None, "the study must leave an attached cluster running"
    # --no-mg: no MG parameter sampled, recorded or searched
    meta = json.loads((folder / "study.json").read_text())
    assert meta["mg"] is False and not {"flip_interval", "flip_ratio"} & set(meta["search_space"]["params"])
    assert meta["search_space"]["start"] and all(set(p) == {"learning_rate", "dropout", "reg_weight"}
                                                 for p in meta["search_space"]["start"])
    assert not [c for c in _header(folder) if c.startswith("param_flip")]
    assert "param_learning_rate" in _header(folder)
    for r in rows:
        params = json.loads((folder / r["trial_dir"] / "params.json").read_text())
        assert not {"flip_interval", "flip_ratio"} & set(params)
    assert all(not {"flip_interval", "flip_ratio"} & set(t.params) for t in _optuna_trials(folder))


# ---------------------------------------------------------------- warm starts
def test_start_configurations_are_the_first_trials_with_exactly_their_values(
        ray_head: tuple[str, Path, Any], tiny_dir: Path, tmp_path: Path) -> None:
    space = tmp_path / "warm.yaml"
    space.write_text("model: freedom\nparams:\n"
                     "  flip_interval: {type: int, low: 1, high: 10}\n"
                     "  learning_rate: {type: float, low: 1e-4, high: 1e-2, log: true}\n"
                     "  reg_weight: {type: categorical, choices: [0.0, 1e-5, 1e-4]}\n"
                     "start:\n"
                     "  - {flip_interval: 7, learning_rate: 0.00123, reg_weight: 1e-5}\n"
                     "  - {flip_interval: 2, learning_rate: 0.0042, reg_weight: 0.0}\n")
    starts = [{"flip_interval": 7, "learning_rate": 0.00123, "reg_weight": 1e-5},
              {"flip_interval": 2, "learning_rate": 0.0042, "reg_weight": 0.0}]
    proc = _run("--model", "freedom", "--dataset", "tiny", "--data-dir", str(tiny_dir), "--trials", "3",
                "--max-epochs", "1", "--grace-epochs", "1", "--search-space", str(space), "--seed", "0",
                "--storage", str(tmp_path), "--name", "warm", *_attach(ray_head), env=AUTH)
    assert proc.returncode == 0, proc.stderr[-3000:]
    folder = tmp_path / "warm"
    trials = sorted(_optuna_trials(folder), key=lambda t: t.number)
    assert [t.params for t in trials[:2]] == starts
    assert trials[2].params not in starts  # sampled: TPE's seeded draw, not a third copy
    # Ray's trial ids are random: its searcher's saved state says which Optuna trial each one was
    (state_file,) = folder.glob("searcher-state-*.pkl")
    with state_file.open("rb") as fh:
        number = {trial_id: t.number for trial_id, t in pickle.load(fh)["_ot_trials"].items()}
    rows = sorted(_rows(folder), key=lambda r: number[r["trial_id"]])
    assert [number[r["trial_id"]] for r in rows] == [0, 1, 2]
    for row, start in zip(rows, starts):
        assert int(row["param_flip_interval"]) == start["flip_interval"]
        assert float(row["param_learning_rate"]) == start["learning_rate"]  # exact, not approximately
        assert float(row["param_reg_weight"]) == start["reg_weight"]
        params = json.loads((folder / row["trial_dir"] / "params.json").read_text())
        assert params == start and type(params["flip_interval"]) is int


# ---------------------------------------------------------------- a failing trial
def test_diverging_trial_is_recorded_and_the_study_completes(ray_head: tuple[str, Path, Any], tiny_dir: Path,
                                                            tmp_path: Path) -> None:
    space = tmp_path / "nan.yaml"
    space.write_text("model: freedom\nparams:\n  learning_rate: {type: categorical, choices: [1e-3, 1e+30]}\n")
    # seed 0 samples 1e+30 for two of the three trials; such a step size makes the loss NaN by epoch 1
    proc = _run("--model", "freedom", "--dataset", "tiny", "--data-dir", str(tiny_dir), "--trials", "3",
                "--max-epochs", "3", "--grace-epochs", "3", "--search-space", str(space), "--seed", "0",
                "--storage", str(tmp_path), "--name", "nan", *_attach(ray_head), env=AUTH)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = _rows(tmp_path / "nan")
    assert len(rows) == 3
    by_status = {s: [r for r in rows if r["status"] == s] for s in ("diverged", "completed")}
    assert by_status["diverged"] and by_status["completed"], [r["status"] for r in rows]
    assert all(float(r["param_learning_rate"]) == 1e30 for r in by_status["diverged"])
    assert all(float(r["param_learning_rate"]) == 1e-3 for r in by_status["completed"])
    assert "failed" in proc.stderr and "DivergedError" in proc.stderr
    states = [t.state.name for t in _optuna_trials(tmp_path / "nan")]
    assert states.count("FAIL") == len(by_status["diverged"])
    for r in by_status["diverged"]:  # an error of the trial itself is not retried (only a lost node is)
        epochs = [row["epoch"] for row in csv.DictReader((tmp_path / "nan" / r["trial_dir"] / "progress.csv").open())]
        assert len(epochs) == len(set(epochs)), epochs


# ---------------------------------------------------------------- interrupt and --resume
def _progress(folder: Path) -> dict[str, list[dict[str, str]]]:
    """Trial folder name -> rows of its progress.csv (which Ray's driver writes as it takes each result)."""
    return {p.parent.name: list(csv.DictReader(p.open())) for p in folder.glob("trial_*/progress.csv")}


def _final_trials(folder: Path) -> dict[str, bytes]:
    """Trial folder -> progress.csv bytes, for trials whose last reported epoch was their final one."""
    return {name: (folder / name / "progress.csv").read_bytes()
            for name, rows in _progress(folder).items() if rows and rows[-1].get("final") == "True"}


def _checkpointed_unfinished(folder: Path) -> set[str]:
    """Trials with a checkpoint the driver has taken (a row naming it) that have not finished."""
    return {name for name, rows in _progress(folder).items()
            if rows and rows[-1].get("final") != "True" and any(r.get("checkpoint_dir_name") for r in rows)}


EPOCHS = 30


def test_interrupted_study_resumes_without_rerunning_finished_trials(ray_head: tuple[str, Path, Any], tiny_dir: Path,
                                                                    tmp_path: Path) -> None:
    err_file = tmp_path / "first.err"
    with err_file.open("w") as err:
        first = subprocess.Popen(
            # one trial at a time, each long enough that the second is surely caught between checkpoints
            _cmd("--model", "freedom", "--dataset", "tiny", "--data-dir", str(tiny_dir), "--trials", "2",
                 "--concurrency", "1", "--max-epochs", str(EPOCHS), "--grace-epochs", str(EPOCHS),
                 "--checkpoint-every", "1", "--storage", str(tmp_path), "--name", "resumed", *_attach(ray_head)),
            stdout=subprocess.DEVNULL, stderr=err, env={**os.environ, **AUTH},
        )
    folder = tmp_path / "resumed"
    deadline = time.monotonic() + 300
    # interrupt once one trial finished and another has a checkpoint but is not finished
    while True:
        assert first.poll() is None, err_file.read_text()[-3000:]
        assert time.monotonic() < deadline, err_file.read_text()[-3000:]
        in_flight = _checkpointed_unfinished(folder)
        if _final_trials(folder) and in_flight:
            break
        time.sleep(0.1)
    first.send_signal(signal.SIGINT)
    assert first.wait(timeout=180) == 130, err_file.read_text()[-3000:]
    assert "--resume" in err_file.read_text()
    assert not (folder / "results.csv").exists()
    assert json.loads((folder / "study.json").read_text())["finished"] is None
    finished = _final_trials(folder)  # trials may have finished while the driver was stopping

    second = _run("--resume", "--name", "resumed", "--storage", str(tmp_path), *_attach(ray_head), env=AUTH)
    assert second.returncode == 0, second.stderr[-3000:]
    rows = _rows(folder)
    assert len(rows) == 2 and {r["status"] for r in rows} == {"completed"}
    assert {r["trial_dir"] for r in rows} == {d.name for d in folder.glob("trial_*")}
    assert len(_optuna_trials(folder)) == 2
    for name, progress in finished.items():  # not re-run: not one more row
        assert (folder / name / "progress.csv").read_bytes() == progress, name
    for name in in_flight - set(finished):  # continued from its checkpoint, not from epoch 0
        epochs = [int(r["epoch"]) for r in csv.DictReader((folder / name / "progress.csv").open())]
        assert epochs.count(0) == 1 and sorted(set(epochs)) == list(range(EPOCHS)), (name, epochs)
    assert re.search(r"resuming study", second.stderr)
