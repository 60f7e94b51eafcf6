"""CUDA runs: every model trains there, checkpoints move between devices, resume and fractional trials.

Marked ``gpu`` and skipped without CUDA; run on a GPU machine with ``pytest -m gpu`` (the study test
also needs Ray: ``benchmarks/gpu_check.sh`` runs all of them in one call). Not yet run on CUDA.
"""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from mgtune.data import load_dataset
from mgtune.models import model_names
from mgtune.training import EpochReport, Evaluator, TrainConfig, build_model, load_checkpoint, save_checkpoint, train

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


def _cfg(tiny_dir: Path, model: str, **kw: object) -> TrainConfig:
    return TrainConfig.for_model(model, "tiny", data_dir=str(tiny_dir), device="cuda", **kw)


@pytest.mark.parametrize("model", model_names())
def test_every_model_trains_one_epoch_on_cuda_with_finite_metrics(tiny_dir: Path, model: str) -> None:
    reports: list[EpochReport] = []
    result = train(_cfg(tiny_dir, model, epochs=1), callback=reports.append)
    assert len(reports) == 1 and math.isfinite(reports[0].train_loss)
    for split in (result.valid, result.test):
        assert split and all(math.isfinite(v) for v in split.values()), split
    assert result.peak_memory_mb > 0  # allocated on the GPU, not the process's resident set
    assert all(t.device.type == "cpu" for t in result.best_state.values())  # checkpoints hold CPU tensors


def test_a_checkpoint_scores_the_same_on_cpu_and_cuda(tiny_dir: Path, tmp_path: Path) -> None:
    cfg = _cfg(tiny_dir, "freedom", epochs=2)
    result = train(cfg)
    save_checkpoint(tmp_path / "checkpoint.pt", cfg, result.best_state, result.best_epoch)
    data = load_dataset(tiny_dir, "tiny")
    metrics = {}
    for name in ("cpu", "cuda"):
        device = torch.device(name)
        saved_cfg, state = load_checkpoint(tmp_path / "checkpoint.pt", device)
        assert all(t.device.type == name for t in state.values())  # mapped onto the run's device
        model = build_model(saved_cfg, data, device)
        model.load_state_dict(state)
        metrics[name] = Evaluator(data, device, saved_cfg.topk, saved_cfg.eval_batch_size).evaluate(model)
    for split, values in metrics["cpu"].items():
        for key, value in values.items():
            assert metrics["cuda"][split][key] == pytest.approx(value, abs=1e-5), (split, key)


def _distance(a: list[EpochReport], b: list[EpochReport]) -> float:
    return max(abs(x.train_loss - y.train_loss) + max(abs(x.valid[k] - y.valid[k]) for k in x.valid)
               for x, y in zip(a, b, strict=True))


def test_a_resumed_cuda_run_continues_as_the_uninterrupted_one(tiny_dir: Path, tmp_path: Path) -> None:
    """FREEDOM prunes edges with the global CUDA generator every epoch, so a resume that forgot the device's
    random state would prune differently. CUDA kernels with atomics may make two uninterrupted runs differ
    by rounding; the resumed run may differ from one of them by no more than that."""
    cfg = _cfg(tiny_dir, "freedom", epochs=4)
    full_a: list[EpochReport] = []
    full_b: list[EpochReport] = []
    train(cfg, callback=full_a.append, snapshot_every=1)
    train(cfg, callback=full_b.append)
    first: list[EpochReport] = []
    train(dataclasses.replace(cfg, epochs=2), callback=first.append, snapshot_every=2)
    assert first[1].state is not None
    torch.save(first[1].state, tmp_path / "state.pt")
    snap = torch.load(tmp_path / "state.pt", map_location="cuda", weights_only=True)
    rest: list[EpochReport] = []
    train(cfg, callback=rest.append, resume=snap, snapshot_every=1)
    assert [r.epoch for r in rest] == [2, 3]
    for resumed, uninterrupted in zip(rest, full_a[2:], strict=True):  # random states: exactly the same
        assert resumed.state is not None and uninterrupted.state is not None
        for key in ("generator", "torch_rng", "cuda_rng"):
            assert torch.equal(resumed.state[key], uninterrupted.state[key]), key
    noise = _distance(full_a, full_b)
    assert _distance(rest, full_a[2:]) <= max(2 * noise, 1e-6), f"two uninterrupted runs differ by {noise}"


_OOM_SCRIPT = """
import sys, types, torch
from mgtune.study import trainable
from mgtune.training import TrainConfig
torch.cuda.set_per_process_memory_fraction(1e-6)  # a share far too small for any model
setup = types.SimpleNamespace(gpus_per_trial=1e-6, checkpoint_every=5)
cfg = TrainConfig.for_model("freedom", "tiny", data_dir=sys.argv[1], device="cuda", epochs=1)
try:
    trainable._train_within_share(setup, cfg, lambda rep: None, None, None)
except trainable.TrialOutOfMemoryError as exc:
    print(exc)
"""


def test_a_real_cuda_out_of_memory_becomes_the_one_line_reason(tiny_dir: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", _OOM_SCRIPT, str(tiny_dir)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().startswith("CUDA out of memory at 1e-06 GPU (0 GiB) for freedom"), proc.stdout


def _spans(study_dir: Path, trial_dirs: list[str]) -> list[tuple[float, float]]:
    spans = []
    for d in trial_dirs:
        p = pd.read_csv(study_dir / d / "progress.csv")
        spans.append((float(p["timestamp"].iloc[0]) - float(p["time_total_s"].iloc[0]), float(p["timestamp"].iloc[-1])))
    return spans


@pytest.mark.ray
def test_four_quarter_gpu_trials_run_at_once(tiny_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("ray")
    from mgtune.study import StudySettings, run_study

    out = run_study(StudySettings(
        model="freedom", dataset="tiny", data_dir=str(tiny_dir), trials=4, max_epochs=6, grace_epochs=6,
        cpus_per_trial=1, gpus_per_trial=0.25, storage=str(tmp_path), name="quarter", checkpoint_every=2,
    ), log=lambda msg: None)
    meta = json.loads((out.study_dir / "study.json").read_text())
    assert meta["max_concurrent_trials"] == 4
    assert [r["status"] for r in out.rows] == ["completed"] * 4  # a trial without CUDA would have errored
    spans = _spans(out.study_dir, [r["trial_dir"] for r in out.rows])
    assert max(a for a, _ in spans) <= min(b for _, b in spans), f"not all four ran at once: {spans}"
