"""Trained models evaluated on spoiled item features (`mgtune.training.perturb`), honestly.

Each model is built afresh from the spoiled `Dataset` (kNN item graphs, feature buffers and cached
projections all come from the spoiled features; the in-memory dataset has no fingerprint, so the
on-disk cache neither serves nor stores it), and only then are the trained weights loaded, except
the parts the model declares as built from features (`Recommender.feature_parts`,
`Recommender.load_trained`). Nothing is trained. ``mgtune robustness`` (`mgtune.study.robustness`)
runs this on a confirmation's runs.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from mgtune.data import Dataset
from mgtune.training.config import TrainConfig
from mgtune.training.device import resolve_device
from mgtune.training.evaluate import Evaluator
from mgtune.training.loop import build_model
from mgtune.training.perturb import Perturbation, perturb

__all__ = ["TrainedRun", "evaluate_runs"]


@dataclass(frozen=True)
class TrainedRun:
    """One confirmation run's trained model: its configuration, arm, seed and best weights."""

    source_trial: str
    arm: str
    seed: int
    config: TrainConfig
    state: dict[str, torch.Tensor] = field(repr=False)
    recorded_test: dict[str, float] = field(default_factory=dict)  # the confirmation's test metrics


def evaluate_runs(data: Dataset, runs: Sequence[TrainedRun], perturbations: Sequence[Perturbation],
                  device: str = "cpu", log: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Test metrics of every run under every perturbation: one row each (no study columns).

    Each model is built from the perturbed dataset and gets the run's weights except its feature
    parts (`Recommender.load_trained`); the evaluator needs only the interactions, which stay. One
    perturbed dataset exists at a time, shared by every run (the arms are compared on the same
    spoiled features); a model configuration's clean build is made once.
    """
    dev = resolve_device(device)
    evaluator = Evaluator(data, dev, runs[0].config.topk, runs[0].config.eval_batch_size)
    clean_builds: dict[str, dict[str, torch.Tensor]] = {}
    for run in runs:
        key = _build_key(run.config)
        if key not in clean_builds:
            clean = build_model(run.config, data, dev)
            clean_builds[key] = {k: v.detach().clone() for k, v in clean.state_dict().items()
                                 if clean.is_feature_part(k)}
    rows: list[tuple[tuple[int, int], dict[str, Any]]] = []  # (run, perturbation) order, row
    for order, p in enumerate(perturbations):
        pdata = perturb(data, p)
        for index, run in enumerate(runs):
            t0 = time.perf_counter()
            torch.manual_seed(run.config.seed)
            model = build_model(run.config, pdata, dev)
            model.load_trained(run.state, clean_builds[_build_key(run.config)])
            test = evaluator.evaluate(model, ("test",))["test"]
            row = {"source_trial": run.source_trial, "arm": run.arm, "seed": run.seed, "kind": p.kind,
                   "modality": p.modality, "level": p.level, "mask_fill": p.fill if p.kind == "mask" else "",
                   "perturb_seed": p.seed, "seconds": round(time.perf_counter() - t0, 4),
                   **{f"test_{k}": v for k, v in test.items()}}
            rows.append(((index, order), row))
            if p.level == 0 and run.recorded_test and log is not None:
                gap = max(abs(test[k] - v) for k, v in run.recorded_test.items() if k in test)
                if gap > 1e-6:
                    log(f"run {run.arm} seed {run.seed}: level 0 differs from the confirmation's test metrics by "
                        f"up to {gap:.2g}")
    return [row for _, row in sorted(rows, key=lambda r: r[0])]  # by run, then perturbation


def _build_key(cfg: TrainConfig) -> str:
    """What a model's build depends on besides the data: its name and hyperparameters."""
    return json.dumps([cfg.model, cfg.model_params], sort_keys=True, default=str)
