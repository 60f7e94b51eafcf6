r"""DualGNN's and DRAGON's shared parts: per-modality encoders, user graph, loss, model skeleton.

For modality ``m`` with raw item features :math:`F_m`, a trainable user preference table
:math:`P_m` stands in for user features:

.. math::
    X_m = \mathrm{normalize}\big([P_m;\ W_2\,\mathrm{LeakyReLU}(W_1 F_m + b_1) + b_2]\big),\qquad
    Z_m = \sum_{l=0}^{L} \hat A^l X_m

with :math:`\hat A = D^{-1/2} A D^{-1/2}` the user-item graph without self loops (MMRec's
``Base_gcn`` with ``aggr="add"``; the reference runs ``L = 2``) and :math:`W_1` of width ``4d``.
Both models train with

.. math::
    L = -\mathrm{mean}\,\log_2 \sigma(s^+ - s^-)
        + \lambda\,\big(\textstyle\sum_m \mathrm{mean}(P_m[b]^2) + \mathrm{mean}(W_u^2)\big)

(note the base-2 logarithm of the reference), ``b`` the batch's users and :math:`W_u` the models'
per-user modality weights.

`ModalityGCNRecommender` holds everything else the two share (the encoders, the per-user
modality weights :math:`W_u`, the epoch-sampled user graph, loss and scoring); a subclass only says
how the views :math:`Z_m` become user and item embeddings.

Shapes: ``P_m`` ``(n_users, d)``, ``F_m`` ``(n_items, d_m)``, ``Z_m`` ``(n_users + n_items, d)``,
``W_u`` ``(n_users, 2)``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import ClassVar, Protocol, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mgtune.data import Batch, Dataset
from mgtune.models._blocks.interactions import require_modalities, train_edges
from mgtune.models._blocks.losses import bpr_loss
from mgtune.models._blocks.propagation import bipartite_norm_adj, layer_mean
from mgtune.models._blocks.user_graph import UserGraphAggregation, user_graph
from mgtune.models.base import ModelConfig, Recommender

__all__ = ["ModalityGCN", "ModalityGCNRecommender"]


class ModalityGCN(nn.Module):
    """:math:`Z_m` of the module docstring for one modality (``norm_adj`` must be symmetric)."""

    def __init__(self, n_users: int, feat_dim: int, dim: int, n_layers: int) -> None:
        super().__init__()
        self.n_layers = n_layers
        self.preference = nn.Parameter(torch.empty(n_users, dim))
        self.mlp = nn.Linear(feat_dim, 4 * dim)
        self.mlp_out = nn.Linear(4 * dim, dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.xavier_normal_(self.preference)
        self.mlp.reset_parameters()
        self.mlp_out.reset_parameters()

    def forward(self, features: Tensor, norm_adj: Tensor) -> Tensor:
        items = self.mlp_out(F.leaky_relu(self.mlp(features)))
        x = F.normalize(torch.cat([self.preference, items]), dim=1)
        return layer_mean(norm_adj, x, self.n_layers, symmetric=True) * (self.n_layers + 1)


def _log2_bpr_loss(pos: Tensor, neg: Tensor) -> Tensor:
    r""":math:`-\mathrm{mean}\,\log_2\sigma(s^+ - s^-)`, the BPR of DualGNN and DRAGON (``logsigmoid``, so finite)."""
    return bpr_loss(pos, neg) / math.log(2.0)


def _preference_reg(encoders: Iterable[ModalityGCN], users: Tensor, modality_weights: Tensor | None) -> Tensor:
    r"""The bracket of the module docstring's regulariser (without :math:`\lambda`); ``modality_weights``
    is :math:`W_u`, None when the model has none (a single modality)."""
    reg = sum((enc.preference[users] ** 2).mean() for enc in encoders)
    if modality_weights is not None:
        reg = reg + (modality_weights**2).mean()
    return reg  # type: ignore[return-value]


class _Settings(Protocol):
    embedding_size: int
    n_layers: int
    user_graph_k: int
    reg_weight: float


class ModalityGCNRecommender(Recommender):
    """The skeleton of DualGNN and DRAGON; subclasses implement `_embeddings` from `_views`.

    Their config must have ``embedding_size``, ``n_layers``, ``user_graph_k`` and ``reg_weight``.
    """

    feature_parts: ClassVar[tuple[str, ...]] = ("image_feat", "text_feat")

    def __init__(self, data: Dataset, cfg: ModelConfig, device: torch.device) -> None:
        super().__init__(data, cfg, device)
        settings: _Settings = cfg  # type: ignore[assignment]
        feats = require_modalities(data)
        self.norm_adj = bipartite_norm_adj(*train_edges(data, device), self.n_users, self.n_items)
        for m, f in feats.items():  # moved with the model, kept out of checkpoints
            self.register_buffer(f"{m}_feat", torch.as_tensor(f, device=device), persistent=False)
        self.encoders = nn.ModuleDict({
            m: ModalityGCN(self.n_users, f.shape[1], settings.embedding_size, settings.n_layers)
            for m, f in feats.items()
        })
        # per-user modality weights W_u; only meaningful with two modalities
        self.modality_weight = nn.Parameter(torch.empty(self.n_users, 2)) if len(feats) > 1 else None
        self.user_graph = UserGraphAggregation(user_graph(data, settings.user_graph_k), device)
        self.reg_weight = settings.reg_weight

    def _encoders(self) -> dict[str, ModalityGCN]:
        return {m: cast(ModalityGCN, enc) for m, enc in self.encoders.items()}

    def reset_parameters(self) -> None:
        for enc in self._encoders().values():
            enc.reset_parameters()
        if self.modality_weight is not None:  # MMRec: softmax over modalities of Xavier-normal values
            with torch.no_grad():
                self.modality_weight.copy_(nn.init.xavier_normal_(torch.empty(self.n_users, 2)).softmax(dim=1))

    def pre_epoch(self, epoch: int) -> None:
        """Re-draw the padding of users with fewer than ``user_graph_k`` neighbours."""
        self.user_graph.resample()

    def _views(self) -> list[Tensor]:
        """:math:`Z_m` of every modality (image first), each ``(n_users + n_items, d)``."""
        return [enc(getattr(self, f"{m}_feat"), self.norm_adj) for m, enc in self._encoders().items()]

    def _embeddings(self) -> tuple[Tensor, Tensor]:
        """Final ``(user_emb, item_emb)``, ``(n_users, d')`` and ``(n_items, d')``."""
        raise NotImplementedError

    def loss(self, batch: Batch) -> Tensor:
        assert batch.neg_items is not None
        user_emb, item_emb = self._embeddings()
        u = user_emb[batch.users]
        mf = _log2_bpr_loss((u * item_emb[batch.pos_items]).sum(1), (u * item_emb[batch.neg_items]).sum(1))
        return mf + self.reg_weight * _preference_reg(self._encoders().values(), batch.users, self.modality_weight)

    def score(self, users: Tensor) -> Tensor:
        user_emb, item_emb = self.cached("emb", self._embeddings)
        return user_emb[users] @ item_emb.T
