"""Best-weights checkpoints: plain tensors and primitives, loadable with ``weights_only=True``."""

from __future__ import annotations

from pathlib import Path

import torch

from mgtune.errors import ConfigError
from mgtune.files import atomic_open
from mgtune.training.config import TrainConfig

__all__ = ["save_checkpoint", "load_checkpoint"]


def save_checkpoint(path: Path, cfg: TrainConfig, state: dict[str, torch.Tensor], best_epoch: int) -> None:
    """The run's config and best weights, written atomically: a crash never leaves half a file."""
    with atomic_open(path, "wb") as fh:
        torch.save({"config": cfg.as_dict(), "model": state, "best_epoch": best_epoch}, fh)


def load_checkpoint(path: Path, device: torch.device | str = "cpu") -> tuple[TrainConfig, dict[str, torch.Tensor]]:
    """The run's config and best weights, mapped onto ``device`` whatever device saved them (weights-only
    loading: plain tensors and primitives); a clear error for a missing or foreign file."""
    if not path.is_file():
        raise ConfigError(f"{path}: checkpoint not found")
    try:
        blob = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:
        raise ConfigError(f"{path}: not a loadable mgtune checkpoint ({type(exc).__name__})") from None
    if not isinstance(blob, dict) or "config" not in blob or "model" not in blob:
        raise ConfigError(f"{path}: not an mgtune checkpoint (no config/model entries)")
    return TrainConfig.from_dict(blob["config"]), blob["model"]
