"""``mgtune train``: one training run into a folder, ``metrics.json`` and ``checkpoint.pt``."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mgtune.checks import check_writable_dir
from mgtune.files import write_json
from mgtune.options import option
from mgtune.store import CHECKPOINT_FILE, METRICS_FILE
from mgtune.training.checkpoint import save_checkpoint
from mgtune.training.config import TrainConfig
from mgtune.training.loop import load_data, train

__all__ = ["TrainOutput", "train_into"]


@dataclass(frozen=True)
class TrainOutput:
    """Where ``mgtune train`` writes, beside its `TrainConfig`."""

    out: str | None = option(None, help="output folder (metrics.json, checkpoint.pt)",
                             default_text="runs/train/MODEL-DATASET-TIMESTAMP")

    def folder(self, cfg: TrainConfig) -> Path:
        return Path(self.out or f"runs/train/{cfg.model}-{cfg.dataset}-{time.strftime('%Y%m%d-%H%M%S')}")


def train_into(cfg: TrainConfig, output: TrainOutput, log: Callable[[str], None]) -> dict[str, Any]:
    """Train ``cfg`` and write its ``metrics.json`` (returned) and best weights into the output folder.

    The folder is checked before training and the dataset before anything is printed or written.
    """
    out = output.folder(cfg)
    check_writable_dir("--out", out)
    data = load_data(cfg)
    log(f"training {cfg.model} on {cfg.dataset} ({'MG' if cfg.mg.enabled else 'no MG'}), output in {out}")
    result = train(cfg, data=data, log=log)
    summary = result.summary()
    save_checkpoint(out / CHECKPOINT_FILE, cfg, result.best_state, result.best_epoch)
    write_json(out / METRICS_FILE, summary)
    return summary
