"""Best-weights checkpoints: plain tensors and primitives, loadable with ``weights_only=True``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from mgtune.errors import ConfigError
from mgtune.files import atomic_open
from mgtune.training.config import TrainConfig

__all__ = ["save_checkpoint", "load_checkpoint", "atomic_torch_save"]


def atomic_torch_save(obj: Any, path: Path) -> None:
    """``torch.save`` through a temp file and rename: a crash never leaves half a file."""
    with atomic_open(path, "wb") as fh:
        torch.save(obj, fh)


def save_checkpoint(path: Path, cfg: TrainConfig, state: dict[str, torch.Tensor], best_epoch: int) -> None:
    atomic_torch_save({"config": cfg.as_dict(), "model": state, "best_epoch": best_epoch}, path)


def load_checkpoint(path: Path) -> tuple[TrainConfig, dict[str, torch.Tensor]]:
    """The run's config and best weights; a clear error for a missing or foreign file."""
    if not path.is_file():
        raise ConfigError(f"{path}: checkpoint not found")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ConfigError(f"{path}: not a loadable mgtune checkpoint ({type(exc).__name__})") from None
    if not isinstance(blob, dict) or "config" not in blob or "model" not in blob:
        raise ConfigError(f"{path}: not an mgtune checkpoint (no config/model entries)")
    return TrainConfig.from_dict(blob["config"]), blob["model"]
