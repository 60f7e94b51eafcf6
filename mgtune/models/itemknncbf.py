r"""ItemKNNCBF: content-based item kNN, a training-free baseline.

Dacrema, Cremonesi & Jannach, "Are We Really Making Much Progress? A Worrying Analysis of Recent
Neural Recommendation Approaches", RecSys 2019, https://arxiv.org/abs/1907.06902, as in MMRec:
items are compared by their concatenated content features ``f_i = [f_i^{image}; f_i^{text}]``,

.. math::
    s_{ij} = \frac{f_i^\top f_j}{\|f_i\|\,\|f_j\| + \mathrm{shrink}},\qquad
    W_{ij} = s_{ij}\,[j \in \mathrm{top}_k(s_{i\cdot})],\qquad
    \mathrm{score}(u, j) = \sum_{i \in \mathcal{I}_u} W_{ij} = (R W)_{uj}

with ``R`` the training interaction matrix (a repeated interaction counts twice, as in MMRec) and
the top-``k`` taken per row, the item itself included. Nothing is trained (``trainable = False``):
the loop only evaluates.

Deviations from MMRec, none changing what is computed: MMRec builds the dense ``n_items x
n_items`` similarity, scatters its top-k into another dense matrix and precomputes the dense
``n_users x n_items`` product ``R W`` (for Elec, 63k x 63k and 192k x 63k floats). Here the
top-k values and columns are computed a chunk of rows at a time and cached on disk (keyed by the
dataset's content, ``knn_k`` and ``shrink``), and ``score`` forms only the requested users' rows
of ``R W`` by scattering the neighbour lists of their training items: ``O(|I_u| k)`` per user.
MMRec's ``dummy_embeddings`` parameter (there only so its optimiser has something to hold) is
not kept; ``loss`` raises instead of returning 0. With a single modality present, that modality
alone is used (as MMRec does).

Shapes: features ``(n_items, d_image + d_text)``, neighbours ``(n_items, k)``, scores
``(len(users), n_items)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from mgtune.data import Batch, Dataset
from mgtune.models._blocks.cache import cached_tensors
from mgtune.models._blocks.interactions import require_modalities
from mgtune.models._blocks.knn import topk_similarity
from mgtune.models.base import ModelConfig, Recommender
from mgtune.models.registry import register

__all__ = ["ItemKNNCBFConfig", "ItemKNNCBF"]


@dataclass(frozen=True)
class ItemKNNCBFConfig(ModelConfig):
    knn_k: int = 10  # neighbours kept per item (the reference grid has only 10)
    shrink: float = 10.0  # added to the cosine's denominator (the reference grid has only 10)

    def __post_init__(self) -> None:
        if self.knn_k < 1:
            raise ValueError(f"knn_k must be >= 1, got {self.knn_k}")
        if self.shrink < 0:
            raise ValueError(f"shrink must be >= 0, got {self.shrink}")


@register("itemknncbf")
class ItemKNNCBF(Recommender):
    config_cls = ItemKNNCBFConfig
    feature_parts = ("knn_values", "knn_indices")
    cfg: ItemKNNCBFConfig
    trainable = False
    train_rowptr: Tensor  # (n_users + 1,): user u's training items are train_items[rowptr[u]:rowptr[u+1]]
    train_items: Tensor
    knn_values: Tensor  # (n_items, k): row i's top-k similarities, i.e. the non-zeros of W's row i
    knn_indices: Tensor  # (n_items, k): their columns

    def __init__(self, data: Dataset, cfg: ItemKNNCBFConfig, device: torch.device) -> None:
        super().__init__(data, cfg, device)
        feats = require_modalities(data)
        order = np.argsort(data.train.users, kind="stable")
        counts = np.bincount(data.train.users, minlength=self.n_users)
        self.register_buffer("train_rowptr", torch.as_tensor(np.concatenate([[0], np.cumsum(counts)]), device=device),
                             persistent=False)
        self.register_buffer("train_items", torch.as_tensor(data.train.items[order], device=device), persistent=False)
        values, indices = self._neighbours(data, list(feats.values()))
        self.register_buffer("knn_values", values, persistent=False)
        self.register_buffer("knn_indices", indices, persistent=False)
        self.reset_parameters()

    def _neighbours(self, data: Dataset, feats: list[np.ndarray]) -> tuple[Tensor, Tensor]:
        cfg = self.cfg

        def build() -> dict[str, Tensor]:
            raw = np.concatenate(feats, axis=1) if len(feats) > 1 else feats[0]  # image first, as MMRec
            values, indices = topk_similarity(torch.as_tensor(raw, device=self.device), cfg.knn_k, cfg.shrink)
            return {"values": values, "indices": indices}

        key = {"knn_k": cfg.knn_k, "shrink": cfg.shrink,
               "modalities": sorted(data.modalities()), "v": 1}
        t = cached_tensors(data, "itemknncbf-knn", key, build)
        return t["values"].to(self.device), t["indices"].to(self.device)

    def loss(self, batch: Batch) -> Tensor:
        raise NotImplementedError("ItemKNNCBF is not trained (trainable = False); only score() is defined")

    def score(self, users: Tensor) -> Tensor:
        start, end = self.train_rowptr[users], self.train_rowptr[users + 1]
        counts = end - start
        # positions of every requested user's training items in `train_items`
        first = torch.repeat_interleave(start - (counts.cumsum(0) - counts), counts)
        items = self.train_items[first + torch.arange(int(counts.sum()), device=users.device)]
        rows = torch.repeat_interleave(torch.arange(len(users), device=users.device), counts)
        k = self.knn_indices.shape[1]
        scores = torch.zeros(len(users), self.n_items, device=users.device)
        scores.index_put_(
            (rows.repeat_interleave(k), self.knn_indices[items].reshape(-1)),
            self.knn_values[items].reshape(-1),
            accumulate=True,
        )
        return scores
