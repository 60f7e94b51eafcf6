"""What most models read from a dataset first: its training pairs and its feature tables."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from mgtune.data import Dataset

__all__ = ["train_edges", "require_modalities"]


def train_edges(data: Dataset, device: torch.device) -> tuple[Tensor, Tensor]:
    """The training ``(user, item)`` pairs, each pair once, sorted by user then item, on ``device``.

    Shapes: two ``(n_edges,)`` long tensors.
    """
    users = torch.as_tensor(data.train.users, device=device)
    items = torch.as_tensor(data.train.items, device=device)
    key = torch.unique(users * data.n_items + items)
    return key // data.n_items, key % data.n_items


def require_modalities(data: Dataset) -> dict[str, np.ndarray]:
    """``data.modalities()``; with none present, the `DataFormatError` naming the missing file."""
    feats = data.modalities()
    if not feats:
        data.features("image")  # raises
    return feats
