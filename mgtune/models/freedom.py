r"""FREEDOM: Freezing and Denoising graph structures for multimodal recommendation.

Zhou & Shen, "A Tale of Two Graphs: Freezing and Denoising Graph Structures for Multimodal
Recommendation", ACM MM 2023, https://arxiv.org/abs/2211.06924.

.. math::
    h_i = (S^{L_m} E^{id})_i,\qquad
    [E_u; E_i] = \mathrm{mean}_{l=0..L}(\hat A^l [E^{u}; E^{id}]),\qquad
    s(u, i) = e_u^\top (e_i + h_i)

``S`` is a frozen item-item kNN graph, ``mm_image_weight * S_img + (1 - mm_image_weight) * S_txt``,
each normalised ``D^{-1/2} A D^{-1/2}``; ``\\hat A`` is the user-item graph, re-sampled every epoch
by degree-sensitive edge pruning (``dropout`` of the edges removed, sampled without replacement with
probability ∝ ``1/sqrt(d_u d_i)``) and the full graph at evaluation. Loss: BPR on the fused
embeddings plus ``reg_weight`` times BPR of the user against each projected raw feature table,
which (as in MMRec) is trainable.

Deviations from MMRec, none changing what is computed: graphs are CSR tensors built once (the kNN
from chunked similarities, cached on disk keyed by the dataset's content); the feature projection
is applied only to the batch's distinct rows instead of every item (`project_rows`); when
``reg_weight == 0`` the feature branch is skipped, since its parameters would receive zero gradients
and Adam would never move them.

Shapes: ``E^u`` is ``(n_users, d)``, ``E^{id}`` is ``(n_items, d)``, image/text features ``(n_items, d_m)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from mgtune.data import Batch, Dataset
from mgtune.models._blocks.edge_dropout import PrunableGraph
from mgtune.models._blocks.feature_tables import project_rows, trainable_feature_tables
from mgtune.models._blocks.interactions import require_modalities, train_edges
from mgtune.models._blocks.losses import bpr_loss
from mgtune.models._blocks.mixed_knn_graph import mixed_knn_adj
from mgtune.models._blocks.propagation import layer_mean
from mgtune.models._blocks.sparse import spmm
from mgtune.models.base import ModelConfig, Recommender
from mgtune.models.registry import register

__all__ = ["FreedomConfig", "Freedom"]


@dataclass(frozen=True)
class FreedomConfig(ModelConfig):
    embedding_size: int = 64
    feat_embed_dim: int = 64
    knn_k: int = 10  # neighbours per item in the frozen item-item graph
    n_mm_layers: int = 1  # propagation steps over the item-item graph
    n_ui_layers: int = 2  # LightGCN layers over the user-item graph
    mm_image_weight: float = 0.1  # image share of the item-item graph; text gets the rest
    dropout: float = 0.8  # share of user-item edges pruned every epoch
    reg_weight: float = 1e-4  # weight of the feature BPR terms

    def __post_init__(self) -> None:
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if not 0.0 <= self.mm_image_weight <= 1.0:
            raise ValueError(f"mm_image_weight must be in [0, 1], got {self.mm_image_weight}")


@register("freedom")
class Freedom(Recommender):
    config_cls = FreedomConfig
    feature_parts = ("mm_adj", "feat_tables")
    cfg: FreedomConfig

    def __init__(self, data: Dataset, cfg: FreedomConfig, device: torch.device) -> None:
        super().__init__(data, cfg, device)
        feats = require_modalities(data)
        self.graph = PrunableGraph(*train_edges(data, device), self.n_users, self.n_items)
        self.masked_adj = self.graph.norm_adj
        self.mm_adj = mixed_knn_adj(data, cfg.knn_k, cfg.mm_image_weight, device)

        self.user_embedding = nn.Embedding(self.n_users, cfg.embedding_size)
        self.item_id_embedding = nn.Embedding(self.n_items, cfg.embedding_size)
        self.feat_tables, self.feat_proj = trainable_feature_tables(feats, cfg.feat_embed_dim, device)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.xavier_uniform_(self.user_embedding.weight)
        nn.init.xavier_uniform_(self.item_id_embedding.weight)
        for proj in self.feat_proj.values():
            proj.reset_parameters()

    def pre_epoch(self, epoch: int) -> None:
        """Degree-sensitive edge pruning: keep ``1 - dropout`` of the edges, re-normalised."""
        self.masked_adj = self.graph.pruned(self.cfg.dropout)

    def _embeddings(self, adj: Tensor) -> tuple[Tensor, Tensor]:
        h = self.item_id_embedding.weight
        for _ in range(self.cfg.n_mm_layers):
            h = spmm(self.mm_adj, h)
        ego = torch.cat([self.user_embedding.weight, self.item_id_embedding.weight])
        all_emb = layer_mean(adj, ego, self.cfg.n_ui_layers, symmetric=True)
        user_emb, item_emb = all_emb.split([self.n_users, self.n_items])
        return user_emb, item_emb + h

    def loss(self, batch: Batch) -> Tensor:
        assert batch.neg_items is not None
        user_emb, item_emb = self._embeddings(self.masked_adj)
        u = user_emb[batch.users]
        loss = bpr_loss((u * item_emb[batch.pos_items]).sum(1), (u * item_emb[batch.neg_items]).sum(1))
        if self.cfg.reg_weight != 0.0:
            n = len(batch.pos_items)
            rows = torch.cat([batch.pos_items, batch.neg_items])
            for m, table in self.feat_tables.items():
                f = project_rows(self.feat_proj[m], table, rows)
                loss = loss + self.cfg.reg_weight * bpr_loss((u * f[:n]).sum(1), (u * f[n:]).sum(1))
        return loss

    def score(self, users: Tensor) -> Tensor:
        user_emb, item_emb = self.cached("emb", lambda: self._embeddings(self.graph.norm_adj))
        return user_emb[users] @ item_emb.T
