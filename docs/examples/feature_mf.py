"""FeatureMF: matrix factorisation whose item vectors add a learnt projection of the item features.

A complete model of one's own for mgtune (docs/adding-a-model.md walks through it). Use it with
``--model-module docs/examples/feature_mf.py --model feature_mf``; ``tests/models/test_plugins.py``
runs `mgtune.testing.check_model` on it.

Score: :math:`s(u, i) = e_u^\\top (e_i + W x_i)`, trained with BPR and an L2 penalty on the batch's
vectors. Shapes: ``e_u`` ``(n_users, d)``, ``e_i`` ``(n_items, d)``, ``x_i`` ``(n_items, d_features)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mgtune.data import Batch, Dataset
from mgtune.models import ModelConfig, Recommender, register


@dataclass(frozen=True)
class FeatureMFConfig(ModelConfig):
    """The hyperparameters: ``--set embedding_size=32``, or a search space's params."""

    embedding_size: int = 64
    reg_weight: float = 1e-4


@register("feature_mf")
class FeatureMF(Recommender):
    config_cls = FeatureMFConfig
    needs_modalities = "image or text"  # what `mgtune models` shows; check_model checks it
    feature_parts = ("item_feat",)  # built from the features: mgtune robustness rebuilds it from spoiled ones
    cfg: FeatureMFConfig

    def __init__(self, data: Dataset, cfg: FeatureMFConfig, device: torch.device) -> None:
        super().__init__(data, cfg, device)
        feats = list(data.modalities().values())
        if not feats:
            data.features("image")  # raises the one-line error naming the missing file
        self.register_buffer("item_feat", torch.as_tensor(np.concatenate(feats, axis=1), device=device))
        d = cfg.embedding_size
        self.user_emb = nn.Parameter(torch.empty(self.n_users, d))
        self.item_emb = nn.Parameter(torch.empty(self.n_items, d))
        self.project = nn.Linear(self.item_feat.shape[1], d, bias=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.xavier_uniform_(self.user_emb)
        nn.init.xavier_uniform_(self.item_emb)
        nn.init.xavier_uniform_(self.project.weight)

    def _items(self, items: Tensor) -> Tensor:
        return self.item_emb[items] + self.project(self.item_feat[items])

    def loss(self, batch: Batch) -> Tensor:
        assert batch.neg_items is not None  # needs_negatives is True (the default)
        u, pos, neg = self.user_emb[batch.users], self._items(batch.pos_items), self._items(batch.neg_items)
        bpr = -F.logsigmoid((u * pos).sum(1) - (u * neg).sum(1)).mean()
        return bpr + self.cfg.reg_weight * (u.square().sum() + pos.square().sum() + neg.square().sum()) / len(u)

    def score(self, users: Tensor) -> Tensor:
        items = self.cached("items", lambda: self.item_emb + self.project(self.item_feat))  # once per evaluation
        return self.user_emb[users] @ items.T
