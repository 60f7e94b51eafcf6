"""``mgtune eval``: a saved checkpoint's weights checked, loaded into its model and evaluated on a dataset."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from mgtune.data import Dataset, ensure_demo, load_dataset
from mgtune.errors import ConfigError
from mgtune.models import Recommender, load_model_module
from mgtune.models.model_files import model_module_option
from mgtune.options import option
from mgtune.training.checkpoint import load_checkpoint
from mgtune.training.config import TrainConfig
from mgtune.training.device import resolve_device
from mgtune.training.evaluate import Evaluator
from mgtune.training.loop import build_model

__all__ = ["EvalSettings", "TrainedModel", "check_weights", "load_trained", "evaluate_checkpoint"]


@dataclass(frozen=True)
class EvalSettings:
    """``mgtune eval``."""

    checkpoint: str = option(help="a checkpoint: checkpoint.pt of mgtune train, or weights.pt of a study trial or a "
                             "confirmation run")
    dataset: str | None = option(None, help="dataset to evaluate on", default_text="the checkpoint's")
    data_dir: str | None = option(None, help="the folder of dataset folders", default_text="the checkpoint's")
    device: str = option("auto", help="auto, cpu or cuda")
    model_module: str | None = model_module_option()

    def __post_init__(self) -> None:
        load_model_module(self.model_module)


def check_weights(path: str | Path, state: Any) -> None:
    """A checkpoint's weights: named tensors, all finite (a diverged run's NaNs would score nonsense)."""
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConfigError(f"{path}: the checkpoint's model entry is not a set of named weight tensors")
    bad = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise ConfigError(f"{path}: {len(bad)} weight tensor(s) hold NaN or infinite values (first: {bad[0]}); "
                          "the run diverged, so there is nothing to evaluate")


@dataclass(frozen=True)
class TrainedModel:
    """A checkpoint's model, loaded with its weights on ``device``, and the dataset it is used on."""

    config: TrainConfig
    data: Dataset
    model: Recommender
    device: torch.device


def load_trained(checkpoint: str | Path, dataset: str | None = None, data_dir: str | None = None,
                 device: str = "auto") -> TrainedModel:
    """The checkpoint's weights checked and loaded into its model, built for ``dataset`` (default: the
    checkpoint's) in ``data_dir`` (default: the checkpoint's); a one-line error for weights that do not fit."""
    cfg, state = load_checkpoint(Path(checkpoint))
    check_weights(checkpoint, state)
    cfg = dataclasses.replace(cfg, dataset=dataset or cfg.dataset,
                              data_dir=str(Path(data_dir).resolve()) if data_dir else cfg.data_dir, device=device)
    ensure_demo(cfg.data_dir, cfg.dataset)
    data = load_dataset(cfg.data_dir, cfg.dataset)
    dev = resolve_device(cfg.device)
    model = build_model(cfg, data, dev)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise ConfigError(f"{checkpoint}: weights do not fit {cfg.model} on {cfg.dataset} ({first})") from None
    return TrainedModel(cfg, data, model, dev)


def evaluate_checkpoint(s: EvalSettings) -> dict[str, Any]:
    """Validation and test metrics of the checkpoint's model, with its config (what ``mgtune eval`` prints)."""
    trained = load_trained(s.checkpoint, s.dataset, s.data_dir, s.device)
    cfg = trained.config
    metrics = Evaluator(trained.data, trained.device, cfg.topk, cfg.eval_batch_size).evaluate(trained.model)
    return {"model": cfg.model, "dataset": cfg.dataset, "valid": metrics["valid"], "test": metrics["test"],
            "config": cfg.as_dict()}
