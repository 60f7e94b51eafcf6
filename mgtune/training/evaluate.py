r"""Full-ranking evaluation over all items, on the model's device.

For each user of a split, every item is scored, the user's *training* items are masked out (as in
MMRec: validation items stay rankable when testing, and test items when validating), and the top
``max(topk)`` items are compared with the user's items in the split. With ``n`` the user's number of
relevant items in the split and ``hit_j`` whether the item at rank ``j`` is relevant:

.. math::
    \mathrm{Recall@k} = \frac{\sum_{j\le k} hit_j}{n},\qquad
    \mathrm{Precision@k} = \frac{\sum_{j\le k} hit_j}{k},\qquad
    \mathrm{NDCG@k} = \frac{\sum_{j\le k} hit_j / \log_2(j+1)}{\sum_{j\le \min(n,k)} 1 / \log_2(j+1)},

.. math::
    \mathrm{MAP@k} = \frac{1}{\min(n,k)} \sum_{j\le k} \mathrm{Precision@j}\cdot hit_j,

each averaged over the split's users — MMRec's ``utils/metrics.py`` (``recall_``, ``precision_``,
``ndcg_``, ``map_``), without its rounding to 4 decimals. Users are scored in batches, so no more
than ``batch_size x n_items`` scores exist at once, and the valid and test splits share one scoring
pass over their users. On CUDA the batch also shrinks to what this process's memory share has free
(`users_per_batch`), so a trial on a quarter of a GPU does not run out where a whole-GPU trial would not.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from mgtune.data import Dataset, InteractionIndex, Split
from mgtune.models.base import Recommender
from mgtune.training.config import CUTOFFS, METRICS

__all__ = ["Evaluator", "ranking_metrics", "users_per_batch", "cuda_headroom"]

_SCORE_COPIES = 4
"""Float32 ``(users, n_items)`` buffers alive at once while a batch is scored: the model's scores,
their float copy, top-k's workspace, and one spare for the model's own product."""


def users_per_batch(n_items: int, limit: int, headroom_bytes: int | None) -> int:
    """Users to score at once: ``limit``, or fewer when half of ``headroom_bytes`` cannot hold them.

    ``headroom_bytes`` is the memory this process may still allocate (None: no bound, as on CPU);
    each user costs ``_SCORE_COPIES`` float32 rows of ``n_items``. Never below 1.
    """
    if headroom_bytes is None:
        return max(1, limit)
    per_user = _SCORE_COPIES * 4 * max(n_items, 1)
    return max(1, min(limit, (headroom_bytes // 2) // per_user))


def cuda_headroom(device: torch.device) -> int:
    """Bytes this process may still allocate on ``device``: the device's free memory plus what its own
    allocator holds unused, capped by its memory share (`torch.cuda.set_per_process_memory_fraction`)."""
    free, total = torch.cuda.mem_get_info(device)
    allocated, reserved = torch.cuda.memory_allocated(device), torch.cuda.memory_reserved(device)
    get_fraction = getattr(torch.cuda, "get_per_process_memory_fraction", None)  # torch >= 2.8
    fraction = float(get_fraction(device)) if get_fraction is not None else 1.0
    return max(0, min(free + reserved - allocated, int(fraction * total) - allocated))


def ranking_metrics(hits: Tensor, n_relevant: Tensor, topk: tuple[int, ...]) -> dict[str, Tensor]:
    """Per-user metrics from a ``(users, K)`` hit matrix (rank order) and each user's ``n``.

    Returns ``{"recall@k": (users,) tensor, ...}``; ``K`` must be >= ``max(topk)`` or the list length.
    """
    hits = hits.float()
    n = n_relevant.float().unsqueeze(1)
    width = hits.shape[1]
    ranks = torch.arange(1, width + 1, device=hits.device, dtype=torch.float32)
    cum_hits = hits.cumsum(1)
    discount = 1.0 / torch.log2(ranks + 1.0)
    dcg = (hits * discount).cumsum(1)
    idcg_table = discount.cumsum(0)
    ap_sum = (cum_hits / ranks * hits).cumsum(1)
    out: dict[str, Tensor] = {}
    for k in topk:
        kk = min(k, width)
        col = kk - 1
        denom = torch.minimum(n, torch.tensor(float(k), device=hits.device)).squeeze(1)
        ideal_len = torch.minimum(denom.long(), torch.tensor(width, device=hits.device)).clamp(min=1)
        out[f"recall@{k}"] = cum_hits[:, col] / n.squeeze(1)
        out[f"precision@{k}"] = cum_hits[:, col] / k
        out[f"ndcg@{k}"] = dcg[:, col] / idcg_table[ideal_len - 1]
        out[f"map@{k}"] = ap_sum[:, col] / denom
    return out


@dataclass
class _SplitTargets:
    index: InteractionIndex
    n_relevant: Tensor  # (n_users,), 0 for users not in the split
    n_users: int


class Evaluator:
    """Evaluates a model on named splits; everything it precomputes stays on ``device``."""

    def __init__(
        self, data: Dataset, device: torch.device, topk: tuple[int, ...] = CUTOFFS, batch_size: int = 4096
    ) -> None:
        self.topk = tuple(topk)
        self.batch_size = batch_size
        self.n_items = data.n_items
        self.device = device
        order = np.lexsort((data.train.items, data.train.users))
        counts = np.bincount(data.train.users, minlength=data.n_users)
        self.train_rowptr = torch.as_tensor(np.concatenate([[0], np.cumsum(counts)]), device=device)
        self.train_items = torch.as_tensor(data.train.items[order], device=device)
        self.splits = {name: self._targets(split, data) for name, split in (("valid", data.valid), ("test", data.test))}

    def _targets(self, split: Split, data: Dataset) -> _SplitTargets:
        n_rel = torch.as_tensor(np.bincount(split.users, minlength=data.n_users), device=self.device)
        return _SplitTargets(InteractionIndex(split, data.n_items, self.device), n_rel, int((n_rel > 0).sum()))

    def _headroom(self) -> int | None:
        """Bytes this process may still allocate for scoring; None on CPU (no bound)."""
        return cuda_headroom(self.device) if self.device.type == "cuda" else None

    def _mask_training_items(self, scores: Tensor, users: Tensor) -> None:
        start, end = self.train_rowptr[users], self.train_rowptr[users + 1]
        counts = end - start
        total = int(counts.sum())  # the batch's one host sync here: every repeat below is told its size
        rows = torch.repeat_interleave(torch.arange(len(users), device=self.device), counts, output_size=total)
        offsets = torch.arange(total, device=self.device) - torch.repeat_interleave(
            counts.cumsum(0) - counts, counts, output_size=total
        )
        cols = self.train_items[torch.repeat_interleave(start, counts, output_size=total) + offsets]
        scores[rows, cols] = -torch.inf

    @torch.no_grad()
    def ranked(self, model: Recommender, users: Tensor, k: int) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
        """``(users, items, scores)`` per batch of ``users``: each user's ``min(k, n_items)`` best items, best
        first, and their scores, with the user's training items scored ``-inf`` (so ranked last).

        The one place where users are scored, masked and ranked: `evaluate` counts hits in it, and
        `mgtune.training.recommend` writes it out. Batches are as large as `users_per_batch` allows.
        """
        model.eval()
        batch_size = users_per_batch(self.n_items, self.batch_size, self._headroom())
        width = min(k, self.n_items)
        for start in range(0, len(users), batch_size):
            batch = users[start : start + batch_size]
            scores = model.score(batch).float()
            self._mask_training_items(scores, batch)
            top = scores.topk(width, dim=1)
            yield batch, top.indices, top.values

    @torch.no_grad()
    def evaluate(self, model: Recommender, splits: tuple[str, ...] = ("valid", "test")) -> dict[str, dict[str, float]]:
        """``{"valid": {"recall@20": ...}, "test": {...}}`` for the requested splits."""
        targets = [self.splits[s] for s in splits]
        any_rel = torch.zeros(len(targets[0].n_relevant), dtype=torch.bool, device=self.device)
        for t in targets:
            any_rel |= t.n_relevant > 0
        users_all = torch.nonzero(any_rel).squeeze(1)
        sums = [{f"{m}@{k}": torch.zeros((), dtype=torch.float64, device=self.device)
                 for m in METRICS for k in self.topk} for _ in targets]
        for users, top, _ in self.ranked(model, users_all, max(self.topk)):
            for t, acc in zip(targets, sums, strict=True):
                n_rel = t.n_relevant[users]
                keep = n_rel > 0
                u = users[keep]
                hits = t.index.contains(u.unsqueeze(1), top[keep])
                for key, per_user in ranking_metrics(hits, n_rel[keep], self.topk).items():
                    acc[key] += per_user.sum()
        # one device-to-host copy per split instead of one per metric
        return {
            name: dict(zip(acc, (torch.stack(list(acc.values())) / t.n_users).tolist(), strict=True))
            for name, t, acc in zip(splits, targets, sums, strict=True)
        }
