"""A trial that runs out of its CUDA memory share fails with one line naming the share and the model (no GPU needed)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import torch

from mgtune.study import trainable
from mgtune.study.trainable import TrialOutOfMemoryError, out_of_memory_reason
from mgtune.training import TrainConfig


def test_reason_names_the_share_in_gib_and_the_model() -> None:
    assert out_of_memory_reason(0.25, 140 * 2**30, "freedom") == "CUDA out of memory at 0.25 GPU (35 GiB) for freedom"
    assert out_of_memory_reason(1.0, 80 * 2**30, "vbpr") == "CUDA out of memory at 1 GPU (80 GiB) for vbpr"


def test_out_of_memory_in_training_becomes_a_one_line_trial_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def oom(*args: Any, **kwargs: Any) -> None:
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB ...\nmany lines")

    monkeypatch.setattr(trainable, "train", oom)
    monkeypatch.setattr(trainable, "resolve_device", lambda name: torch.device("cuda", 0))
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device: SimpleNamespace(total_memory=140 * 2**30))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    setup: Any = SimpleNamespace(gpus_per_trial=0.25, checkpoint_every=5)
    cfg = TrainConfig(model="freedom", dataset="d", device="cuda")
    with pytest.raises(TrialOutOfMemoryError) as info:
        trainable._train_within_share(setup, cfg, lambda rep: None, None, None)  # type: ignore[arg-type]
    assert str(info.value) == "CUDA out of memory at 0.25 GPU (35 GiB) for freedom"
    assert info.value.__context__ is None  # raised after the except block: the failed step's tensors are freed


def test_other_errors_pass_through(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trainable, "train", lambda *a, **k: (_ for _ in ()).throw(ValueError("bug")))
    setup: Any = SimpleNamespace(gpus_per_trial=0.25, checkpoint_every=5)
    with pytest.raises(ValueError, match="bug"):
        trainable._train_within_share(setup, TrainConfig(model="vbpr", dataset="d"), lambda rep: None, None, None)  # type: ignore[arg-type]
