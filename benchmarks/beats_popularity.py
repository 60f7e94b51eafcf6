"""Sanity check: do trained models beat a popularity ranking (and a random one) on test recall@20?

Usage: python benchmarks/beats_popularity.py --dataset s1 [--data-dir datasets] [--models freedom,vbpr | all]
                                             [--epochs 200] [--pop-skew 1.6]

With ``--pop-skew`` a ``small``-shaped dataset is first generated with that (steeper) popularity
skew, to check that models do not merely learn popularity.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from mgtune.data import Dataset, load_dataset
from mgtune.data.synth import PRESETS, synthesize, write_dataset
from mgtune.models import model_names
from mgtune.models.base import ModelConfig, Recommender
from mgtune.training import Evaluator, TrainConfig, train


class Popularity(Recommender):
    """Every user gets items ranked by training-interaction count."""

    def __init__(self, data: Dataset) -> None:
        super().__init__(data, ModelConfig(), torch.device("cpu"))
        self.counts = torch.as_tensor(np.bincount(data.train.items, minlength=data.n_items), dtype=torch.float32)

    def score(self, users: Tensor) -> Tensor:
        return self.counts.expand(len(users), -1).clone()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="s1")
    p.add_argument("--data-dir", default="datasets")
    p.add_argument("--models", default="freedom,vbpr", help="comma-separated, or 'all'")
    p.add_argument("--epochs", type=int, default=200)
    p.add_argument("--pop-skew", type=float, help="generate a small-shaped dataset with this skew first")
    args = p.parse_args()
    if args.pop_skew is not None:
        preset = dataclasses.replace(PRESETS["small"], pop_skew=args.pop_skew)
        write_dataset(Path(args.data_dir) / args.dataset, args.dataset, *synthesize(preset, seed=1))
    data = load_dataset(args.data_dir, args.dataset)
    pop = Evaluator(data, torch.device("cpu")).evaluate(Popularity(data))["test"]["recall@20"]
    print(f"{'popularity':<12} test recall@20 {pop:.4f}")
    random = 20 / data.n_items
    print(f"{'random':<12} test recall@20 {random:.4f} (expected)")
    ok = True
    for name in model_names() if args.models == "all" else args.models.split(","):
        r = train(TrainConfig.for_model(name, args.dataset, data_dir=args.data_dir, epochs=args.epochs,
                              device="cpu"), data=data)
        beats = r.test["recall@20"] > pop
        ok &= beats
        print(f"{name:<12} test recall@20 {r.test['recall@20']:.4f} = {r.test['recall@20'] / random:.1f}x random "
              f"(best epoch {r.best_epoch}, "
              f"{r.epochs_run} run, {r.seconds_per_epoch:.2f} s/epoch) "
              f"{'beats' if beats else 'DOES NOT beat'} popularity")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
