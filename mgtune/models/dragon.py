r"""DRAGON: dual representations of users and items via homogeneous graphs.

Zhou et al., "Enhancing Dyadic Relations with Homogeneous Graphs for Multimodal Recommendation",
ECAI 2023, https://arxiv.org/abs/2301.12097, as MMRec runs it.

Every modality ``m`` has its own encoder over the user-item graph (`_blocks.modality_gcn`):
:math:`Z_m = \sum_{l=0}^{L} \hat A^l X_m` with ``X_m`` the normalised [user preferences; projected
item features]. Views are fused by *attentive concatenation*, then users aggregate their neighbours
on the user co-interaction graph (`_blocks.user_graph`, re-sampled every epoch) and items theirs on
the frozen multimodal item kNN graph ``S`` (`_blocks.mixed_knn_graph`):

.. math::
    z_u = [\alpha_{u,v} Z_v[u] \,\|\, \alpha_{u,t} Z_t[u]],\qquad z_i = [Z_v[i] \,\|\, Z_t[i]],

.. math::
    e_u = z_u + \sum_{j=1}^{k} \mathrm{softmax}(c_{u,\cdot})_j\, z_{n_{u,j}},\qquad
    e_i = z_i + (S^{L_m} z_{items})_i,\qquad s(u, i) = e_u^\top e_i

trained with :math:`-\mathrm{mean}\log_2\sigma(s^+ - s^-) + \lambda(\sum_m \mathrm{mean}(P_m[b]^2)
+ \mathrm{mean}(\alpha^2))`. ``alpha`` starts as a softmax over modalities of Xavier-normal values and
is then trained freely, as in MMRec. With one modality, ``z`` is that modality's view.

Deviations from MMRec:

- Dead code left out: the per-modality "dropped" item edges (``edge_index_dropv``/``dropt``) are built
  but never used by MMRec's encoder; ``image_embedding``/``text_embedding`` (trainable copies of the
  features) and ``image_trs``/``text_trs`` are created but never used in the forward pass, so
  ``feat_embed_dim`` has no effect and is not a setting here. ``weight_i`` is not in DRAGON's loss.
- The item graph is cached keyed by the dataset's content, ``knn_k`` and ``mm_image_weight``;
  MMRec's file ``mm_adj_{knn_k}.pt`` ignores ``mm_image_weight`` and the data, so it can be stale.
- The user graph is read from ``user_graph_dict.npy`` as MMRec does when the dataset folder has one,
  otherwise built from the training interactions (MMRec requires running its preprocessing script);
  either way it is cached, and sparse (MMRec's script holds a dense users x users matrix). Users with
  fewer than ``k`` neighbours are padded by drawing uniformly among their neighbours (MMRec draws from
  the growing padded list); the epoch's draw is a buffer, so a checkpoint restores its graph.
- Hard-coded sizes become settings with MMRec's values: the latent size per modality (64,
  ``embedding_size``), the user-item propagation depth (2; the ``n_layers: 2`` of MMRec's yaml is
  never read), the neighbours per user (40). MMRec's ``aggr_mode`` grid has the single value ``add``,
  which is what is implemented.
- With one modality there is no ``alpha`` (MMRec keeps the unused table and its L2 term).
- Duplicate (user, item) training rows count once in the graph.

Shapes: ``P_m`` ``(n_users, d)``, ``alpha`` ``(n_users, 2)``, features ``(n_items, d_m)``,
``e_u``/``e_i`` ``(·, 2d)`` with two modalities, ``(·, d)`` with one.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from mgtune.data import Dataset
from mgtune.models._blocks.mixed_knn_graph import mixed_knn_adj
from mgtune.models._blocks.modality_gcn import ModalityGCNRecommender
from mgtune.models._blocks.sparse import spmm
from mgtune.models.base import ModelConfig
from mgtune.models.registry import register

__all__ = ["DRAGONConfig", "DRAGON"]


@dataclass(frozen=True)
class DRAGONConfig(ModelConfig):
    embedding_size: int = 64  # latent size of every modality encoder (MMRec hard-codes 64)
    n_layers: int = 2  # propagation steps over the user-item graph (MMRec hard-codes 2)
    n_mm_layers: int = 1  # propagation steps over the item-item graph
    knn_k: int = 10  # neighbours per item in the frozen item-item graph
    mm_image_weight: float = 0.1  # image share of the item-item graph; text gets the rest
    user_graph_k: int = 40  # neighbours per user on the co-interaction graph (MMRec's self.k)
    reg_weight: float = 0.1  # first value of the reference grid (no best value is reported)

    def __post_init__(self) -> None:
        for name in ("embedding_size", "knn_k", "user_graph_k"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("n_layers", "n_mm_layers"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0.0 <= self.mm_image_weight <= 1.0:
            raise ValueError(f"mm_image_weight must be in [0, 1], got {self.mm_image_weight}")


@register("dragon")
class DRAGON(ModalityGCNRecommender):
    config_cls = DRAGONConfig
    feature_parts = (*ModalityGCNRecommender.feature_parts, "mm_adj")
    cfg: DRAGONConfig

    def __init__(self, data: Dataset, cfg: DRAGONConfig, device: torch.device) -> None:
        super().__init__(data, cfg, device)
        self.mm_adj = mixed_knn_adj(data, cfg.knn_k, cfg.mm_image_weight, device)
        self.reset_parameters()

    def _embeddings(self) -> tuple[Tensor, Tensor]:
        views = self._views()
        if self.modality_weight is None:
            user = views[0][: self.n_users]
        else:  # attentive concatenation
            user = torch.cat([w.unsqueeze(1) * z[: self.n_users] for w, z in zip(self.modality_weight.T, views)], 1)
        items = torch.cat([z[self.n_users :] for z in views], 1)
        h = items
        for _ in range(self.cfg.n_mm_layers):
            h = spmm(self.mm_adj, h)
        return user + self.user_graph(user), items + h
