"""The training function: reproducible on CPU, MG step counts at loop level, divergence, early stopping."""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path

import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

from mgtune.data import load_dataset
from mgtune.data.synth import make_synthetic
from mgtune.errors import DivergedError
from mgtune.models import get_model, model_names
from mgtune.training import EpochReport, MGConfig, TrainConfig, TrainResult, loop, train


def _cfg(tiny_dir: Path, **kw: object) -> TrainConfig:
    base = {"model": "vbpr", "dataset": "tiny", "data_dir": str(tiny_dir), "epochs": 2, "batch_size": 512,
            "device": "cpu"}
    base.update(kw)
    return TrainConfig(**base)  # type: ignore[arg-type]


def test_same_seed_same_metrics(tiny_dir: Path) -> None:
    a = train(_cfg(tiny_dir, model="freedom", seed=7))
    b = train(_cfg(tiny_dir, model="freedom", seed=7))
    assert a.valid == b.valid and a.test == b.test
    c = train(_cfg(tiny_dir, model="freedom", seed=8))
    assert c.valid != a.valid


@pytest.mark.parametrize("model", ["vbpr", "mvgae"])
def test_same_seed_same_weights_where_cpu_kernels_run_threaded(tmp_path: Path, model: str) -> None:
    """On the small preset the backward's row scatters are big enough to run on several threads,
    which, without deterministic kernels, made two runs of one seed differ from the first batch."""
    make_synthetic(tmp_path, "s", "small", seed=0)
    cfg = TrainConfig(model=model, dataset="s", data_dir=str(tmp_path), epochs=2, device="cpu", seed=3)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        a, b = train(cfg), train(cfg)
    finally:
        torch.set_num_threads(threads)
    assert a.best_state.keys() == b.best_state.keys()
    assert all(torch.equal(a.best_state[k], b.best_state[k]) for k in a.best_state)
    assert not torch.are_deterministic_algorithms_enabled()  # the training epoch restored the setting


@pytest.mark.parametrize("mg_on", [True, False])
def test_optimizer_steps_per_epoch(tiny_dir: Path, mg_on: bool) -> None:
    steps = []
    handle = register_optimizer_step_post_hook(lambda *a: steps.append(1))
    try:
        cfg = _cfg(tiny_dir, epochs=1, batch_size=256, mg=MGConfig(enabled=mg_on, flip_interval=3))
        train(cfg)
    finally:
        handle.remove()
    n_batches = -(-len(load_dataset(tiny_dir, "tiny").train) // 256)
    flips = len(range(0, n_batches, 3)) if mg_on else 0
    assert len(steps) == n_batches + flips


def test_callback_reports_every_epoch_and_best_is_by_validation(tiny_dir: Path) -> None:
    seen: list[EpochReport] = []
    result = train(_cfg(tiny_dir, epochs=4), callback=seen.append)
    assert [r.epoch for r in seen] == [0, 1, 2, 3]
    best = max(seen, key=lambda r: r.valid["recall@20"])
    assert result.best_epoch == best.epoch and result.test == best.test
    for r in seen:
        assert all(0.0 <= v <= 1.0 for v in (*r.valid.values(), *r.test.values()))


def test_early_stopping_patience(tiny_dir: Path) -> None:
    result = train(_cfg(tiny_dir, epochs=50, patience=0, learning_rate=1e-6))
    assert result.epochs_run < 50
    assert result.epochs_run == result.best_epoch + 2  # one epoch more than patience without improvement


def test_nan_loss_raises_diverged(tiny_dir: Path) -> None:
    with pytest.raises(DivergedError):
        train(_cfg(tiny_dir, learning_rate=1e30, epochs=3, model_params={"reg_weight": 1e30}))


@pytest.mark.parametrize("model", ["freedom", "selfcfed_lgn"])  # selfcfed_lgn draws from the global CPU RNG per batch
def test_resume_continues_identically(tiny_dir: Path, tmp_path: Path, model: str) -> None:
    """A run resumed from a snapshot (saved and loaded weights-only, as a study trial does) continues
    exactly as the uninterrupted run: same losses and metrics, random states restored."""
    cfg = _cfg(tiny_dir, epochs=4, model=model)
    full: list[EpochReport] = []
    train(cfg, callback=full.append)
    first: list[EpochReport] = []
    train(dataclasses.replace(cfg, epochs=2), callback=first.append, snapshot_every=2)
    assert first[0].state is None and first[1].state is not None
    torch.save(first[1].state, tmp_path / "state.pt")
    snap = torch.load(tmp_path / "state.pt", map_location="cpu", weights_only=True)
    rest: list[EpochReport] = []
    result = train(cfg, callback=rest.append, resume=snap)
    assert [r.epoch for r in rest] == [2, 3]
    for resumed, uninterrupted in zip(rest, full[2:], strict=True):
        assert resumed.train_loss == uninterrupted.train_loss
        assert resumed.valid == uninterrupted.valid and resumed.test == uninterrupted.test
        assert resumed.best_epoch == uninterrupted.best_epoch
    assert result.best_epoch == full[-1].best_epoch


# ---------------------------------------------------------------- subnormal floats flushed to zero
def _train_flush_on_and_off(cfg: TrainConfig, monkeypatch: pytest.MonkeyPatch) -> tuple[TrainResult, TrainResult]:
    on = train(cfg)
    with monkeypatch.context() as m:
        m.setattr(loop, "flush_denormal", contextlib.nullcontext)
        off = train(cfg)
    return on, off


PROVOKE = {"learning_rate": 0.009, "mg": MGConfig(flip_interval=1)}  # a measured subnormal slowdown on CPU


def test_train_runs_with_subnormals_flushed_and_restores_after(tiny_dir: Path) -> None:
    if not torch.set_flush_denormal(False):
        pytest.skip("this CPU cannot flush subnormal floats")
    seen = []
    train(_cfg(tiny_dir, epochs=1), callback=lambda r: seen.append((torch.tensor([1e-39]) * 0.5).item()))
    assert seen == [0.0]  # inside train: flushed
    assert (torch.tensor([1e-39]) * 0.5).item() != 0.0  # after it: as before


@pytest.mark.parametrize("model", [m for m in model_names() if get_model(m).trainable])
def test_flushing_subnormals_changes_no_result_on_tiny(tiny_dir: Path, model: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = TrainConfig.for_model(model, "tiny", data_dir=str(tiny_dir), epochs=3, device="cpu", seed=5, **PROVOKE)
    on, off = _train_flush_on_and_off(cfg, monkeypatch)
    assert (on.valid, on.test, on.best_epoch) == (off.valid, off.test, off.best_epoch)  # exactly


@pytest.mark.parametrize("model", ["freedom", "vbpr"])
def test_flushing_subnormals_changes_no_result_on_small(tmp_path: Path, model: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    make_synthetic(tmp_path, "s", "small", seed=0)
    cfg = TrainConfig.for_model(model, "s", data_dir=str(tmp_path), epochs=2, device="cpu", seed=5, **PROVOKE)
    on, off = _train_flush_on_and_off(cfg, monkeypatch)
    assert (on.valid, on.test, on.best_epoch) == (off.valid, off.test, off.best_epoch)
