"""The ranking metrics every record names: ``recall@20`` and the like, at the cutoffs ``CUTOFFS``.

Defined here, below training, because the files a run leaves (``results.csv``, ``study.json``) are
named by them and reading those files must not import torch; `mgtune.training` re-exports them.
"""

from __future__ import annotations

__all__ = ["METRICS", "CUTOFFS", "metric_names"]

METRICS = ("recall", "precision", "map", "ndcg")
CUTOFFS = (5, 10, 20, 50)  # the cutoffs k of every metric@k recorded, unless a config says otherwise


def metric_names(topk: tuple[int, ...]) -> list[str]:
    """Keys like ``recall@20`` for every metric and cutoff."""
    return [f"{m}@{k}" for m in METRICS for k in topk]
