"""Training batches with uniform negative sampling, entirely on the model's device.

Every draw (the epoch's order, the negatives) comes from a ``torch.Generator`` of the sampler's own
device, passed in explicitly: PyTorch rejects a CPU generator for a CUDA draw, and a draw from the
global RNG would make the batch order depend on whatever else consumed it. `TrainSampler.generator`
makes one; a generator of another device is refused before anything is drawn.

A negative is drawn uniformly from the items seen in training (as MMRec does) and redrawn while it
is one of the user's training items. Membership is a `searchsorted` over the sorted keys
``user * n_items + item``: no Python per row, no pandas, no host round trip per batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from mgtune.data.dataset import Split

__all__ = ["Batch", "TrainSampler", "InteractionIndex"]


@dataclass(frozen=True)
class Batch:
    """One training batch. ``neg_items`` is None for models trained without negatives."""

    users: Tensor
    pos_items: Tensor
    neg_items: Tensor | None = None


class InteractionIndex:
    """Sorted ``user * n_items + item`` keys of one split, for vectorised membership tests."""

    def __init__(self, split: Split, n_items: int, device: torch.device) -> None:
        keys = torch.as_tensor(split.users * n_items + split.items, device=device)
        self.keys = torch.unique(keys)  # sorted
        self.n_items = n_items

    def contains(self, users: Tensor, items: Tensor) -> Tensor:
        """Boolean tensor shaped like ``items``: is (user, item) in the split?"""
        query = users * self.n_items + items
        idx = torch.searchsorted(self.keys, query).clamp_(max=len(self.keys) - 1)
        return self.keys[idx] == query


class TrainSampler:
    """Shuffled training batches of ``batch_size`` (user, positive[, negative]) triples."""

    def __init__(
        self, train: Split, n_items: int, batch_size: int, device: torch.device, with_negatives: bool = True
    ) -> None:
        self.users = torch.as_tensor(train.users, device=device)
        self.items = torch.as_tensor(train.items, device=device)
        self.index = InteractionIndex(train, n_items, device)
        self.pool = torch.as_tensor(np.unique(train.items), device=device)
        self.batch_size = batch_size
        self.with_negatives = with_negatives
        self.device = self.users.device  # normalised: "cuda" becomes "cuda:<current>", as a generator's device is

    def generator(self, seed: int) -> torch.Generator:
        """A generator of this sampler's device, seeded: the only kind `epoch` and `sample_negatives` accept."""
        return torch.Generator(device=self.device).manual_seed(seed)

    def _check(self, generator: torch.Generator) -> None:
        if generator.device != self.device:
            raise ValueError(f"TrainSampler on {self.device} draws only from a generator of that device, "
                             f"got one on {generator.device} (make it with TrainSampler.generator(seed))")

    def __len__(self) -> int:
        return -(-len(self.users) // self.batch_size)

    def sample_negatives(self, users: Tensor, generator: torch.Generator) -> Tensor:
        """One uniform negative per user, never one of that user's training items."""
        self._check(generator)
        neg = self.pool[torch.randint(len(self.pool), users.shape, device=self.device, generator=generator)]
        bad = self.index.contains(users, neg)
        while bool(bad.any()):  # a few rounds at most: rejections shrink geometrically
            redraw = torch.randint(len(self.pool), (int(bad.sum()),), device=self.device, generator=generator)
            neg[bad] = self.pool[redraw]
            bad[bad.clone()] = self.index.contains(users[bad], neg[bad])
        return neg

    def epoch(self, generator: torch.Generator) -> Iterator[Batch]:
        """Yield one epoch of batches; negatives for the whole epoch are drawn in one go."""
        self._check(generator)
        order = torch.randperm(len(self.users), device=self.device, generator=generator)
        users, items = self.users[order], self.items[order]
        negs = self.sample_negatives(users, generator) if self.with_negatives else None
        for start in range(0, len(users), self.batch_size):
            sl = slice(start, start + self.batch_size)
            yield Batch(users[sl], items[sl], None if negs is None else negs[sl])
