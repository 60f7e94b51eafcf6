"""``mgtune eval``: a saved checkpoint's weights checked, loaded into its model and evaluated on a dataset."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from mgtune.data import ensure_demo, load_dataset
from mgtune.errors import ConfigError
from mgtune.options import option
from mgtune.training.checkpoint import load_checkpoint
from mgtune.training.device import resolve_device
from mgtune.training.evaluate import Evaluator
from mgtune.training.loop import build_model

__all__ = ["EvalSettings", "check_weights", "evaluate_checkpoint"]


@dataclass(frozen=True)
class EvalSettings:
    """``mgtune eval``."""

    checkpoint: str = option(help="a checkpoint: checkpoint.pt of mgtune train, or weights.pt of a confirmation run")
    dataset: str | None = option(None, help="dataset to evaluate on", default_text="the checkpoint's")
    data_dir: str | None = option(None, help="the folder of dataset folders", default_text="the checkpoint's")
    device: str = option("auto", help="auto, cpu or cuda")


def check_weights(path: str | Path, state: Any) -> None:
    """A checkpoint's weights: named tensors, all finite (a diverged run's NaNs would score nonsense)."""
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConfigError(f"{path}: the checkpoint's model entry is not a set of named weight tensors")
    bad = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise ConfigError(f"{path}: {len(bad)} weight tensor(s) hold NaN or infinite values (first: {bad[0]}); "
                          "the run diverged, so there is nothing to evaluate")


def evaluate_checkpoint(s: EvalSettings) -> dict[str, Any]:
    """Validation and test metrics of the checkpoint's model, with its config (what ``mgtune eval`` prints)."""
    cfg, state = load_checkpoint(Path(s.checkpoint))
    check_weights(s.checkpoint, state)
    cfg = dataclasses.replace(cfg, dataset=s.dataset or cfg.dataset,
                              data_dir=str(Path(s.data_dir).resolve()) if s.data_dir else cfg.data_dir,
                              device=s.device)
    ensure_demo(cfg.data_dir, cfg.dataset)
    data = load_dataset(cfg.data_dir, cfg.dataset)
    device = resolve_device(cfg.device)
    model = build_model(cfg, data, device)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise ConfigError(f"{s.checkpoint}: weights do not fit {cfg.model} on {cfg.dataset} ({first})") from None
    metrics = Evaluator(data, device, cfg.topk, cfg.eval_batch_size).evaluate(model)
    return {"model": cfg.model, "dataset": cfg.dataset, "valid": metrics["valid"], "test": metrics["test"],
            "config": cfg.as_dict()}
