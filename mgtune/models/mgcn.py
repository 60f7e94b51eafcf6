r"""MGCN: multi-view graph convolutional network for multimedia recommendation.

Yu et al., "Multi-View Graph Convolutional Network for Multimedia Recommendation", ACM MM 2023,
https://arxiv.org/abs/2308.03588, as in MMRec's ``src/models/mgcn.py``.

Three views of every node. The user-item view is LightGCN on the symmetric normalised graph
:math:`\hat A = D^{-1/2} A D^{-1/2}`: :math:`C = \mathrm{mean}_{l=0..L}(\hat A^l [E^u; E^{id}])`.
Each modality :math:`m` (image, text) purifies the item ids with its features (the feature tables
are trainable, as in MMRec), propagates them over its frozen similarity graph :math:`\hat S_m`
(`similarity_graph`) and gives users the :math:`\hat R`-weighted sum of their items
(:math:`\hat R` the user-item block of :math:`\hat A`):

.. math::
    \tilde e^m_i = e_i \odot \sigma(G_m(W_m f^m_i + b_m)),\qquad
    V^m_{items} = \hat S_m^{L_m} \tilde E^m,\qquad V^m_{users} = \hat R\, V^m_{items}.

The behaviour-aware fuser splits a common part :math:`c = \sum_m a_m V^m` (attention
:math:`a = \mathrm{softmax}_m(q^\top \tanh(Q V^m + b))`) from modality-specific parts
:math:`(V^m - c) \odot \sigma(P_m C + p_m)`, and the node is

.. math::
    e = C + \tfrac13\big(c + \textstyle\sum_m (V^m - c) \odot \sigma(P_m C + p_m)\big),\qquad s(u, i) = e_u^\top e_i.

Loss, with :math:`S` the side part (the bracket above) and :math:`\tau = 0.2`:

.. math::
    L = \mathrm{BPR}(s^+, s^-) + \lambda_{reg} \tfrac12 (\|U_b\|^2 + \|P_b\|^2 + \|N_b\|^2)/|b|
        + \lambda_{cl} \big(\mathrm{InfoNCE}_\tau(S_{P_b}, C_{P_b}) + \mathrm{InfoNCE}_\tau(S_{U_b}, C_{U_b})\big)

(InfoNCE on cosine similarities with in-batch negatives; ``P_b`` the positive items).

Deviations from MMRec, none changing what is computed: the similarity graphs are built from
chunked similarities and cached on disk keyed by the dataset's content (MMRec forms the dense
``n_items x n_items`` similarity first); evaluation propagates once per evaluation, not once per
batch of users. The L2 term divides by the batch's length, where MMRec divides by the configured
``train_batch_size`` (different only on an epoch's last, shorter batch). A repeated training pair
is one edge of the user-item graph (MMRec's matrix would hold a 2). The reference's
``cl_loss`` is ``cl_weight`` here, BM3's name for the same kind of weight.

Both image and text features are required, as in MMRec. MMRec's ``learning_rate_scheduler:
[0.96, 50]`` for MGCN is a training setting, so it is ``train_defaults`` (``lr_decay=0.96``,
``lr_decay_every=50``), not part of this config.

Shapes: ``E^u`` ``(n_users, d)``, ``E^{id}`` ``(n_items, d)``, features ``(n_items, d_m)``,
every view ``(n_users + n_items, d)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from mgtune.data import Batch, Dataset
from mgtune.models._blocks.feature_tables import trainable_feature_tables
from mgtune.models._blocks.interactions import train_edges
from mgtune.models._blocks.losses import bpr_loss, info_nce, l2_loss
from mgtune.models._blocks.propagation import bipartite_edge_weights, bipartite_norm_adj, layer_mean
from mgtune.models._blocks.similarity_graph import similarity_knn_adj
from mgtune.models._blocks.sparse import fixed_sparse, spmm
from mgtune.models.base import ModelConfig, Recommender
from mgtune.models.registry import register

__all__ = ["MGCNConfig", "MGCN"]

_MODALITIES = ("image", "text")
_CL_TEMPERATURE = 0.2  # fixed in MMRec's calculate_loss


@dataclass(frozen=True)
class MGCNConfig(ModelConfig):
    embedding_size: int = 64
    n_ui_layers: int = 2  # LightGCN layers over the user-item graph
    n_layers: int = 1  # propagation steps over each modality's item-item graph
    knn_k: int = 10  # neighbours per item in the similarity graphs
    reg_weight: float = 1e-4  # weight of the L2 term
    cl_weight: float = 0.01  # the reference's cl_loss; grid [0.001, 0.01, 0.1], 0.01 in the MGCN authors' config

    def __post_init__(self) -> None:
        if self.knn_k < 1:
            raise ValueError(f"knn_k must be >= 1, got {self.knn_k}")


def _gate(d: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d, d), nn.Sigmoid())


@register("mgcn")
class MGCN(Recommender):
    config_cls = MGCNConfig
    needs_modalities = "image and text"
    feature_parts = ("item_adj", "feat_tables")
    # MMRec: learning_rate_scheduler: [0.96, 50]
    train_defaults: ClassVar[dict[str, Any]] = {"lr_decay": 0.96, "lr_decay_every": 50}
    cfg: MGCNConfig

    def __init__(self, data: Dataset, cfg: MGCNConfig, device: torch.device) -> None:
        super().__init__(data, cfg, device)
        feats = {m: data.features(m) for m in _MODALITIES}  # raises naming the missing file
        users, items = train_edges(data, device)
        self.norm_adj = bipartite_norm_adj(users, items, self.n_users, self.n_items)
        self.user_item = fixed_sparse(
            users, items, bipartite_edge_weights(users, items, self.n_users, self.n_items), (self.n_users, self.n_items)
        )
        self.item_adj = {m: similarity_knn_adj(data, m, cfg.knn_k, device) for m in _MODALITIES}

        d = cfg.embedding_size
        self.user_embedding = nn.Embedding(self.n_users, d)
        self.item_id_embedding = nn.Embedding(self.n_items, d)
        self.feat_tables, self.feat_proj = trainable_feature_tables(feats, d, device)
        self.purifier = nn.ModuleDict({m: _gate(d) for m in _MODALITIES})  # behaviour-guided purifier
        self.preference = nn.ModuleDict({m: _gate(d) for m in _MODALITIES})  # user/item preference gates
        self.query_common = nn.Sequential(nn.Linear(d, d), nn.Tanh(), nn.Linear(d, 1, bias=False))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.xavier_uniform_(self.user_embedding.weight)
        nn.init.xavier_uniform_(self.item_id_embedding.weight)
        for module in (self.feat_proj, self.purifier, self.preference, self.query_common):
            for layer in module.modules():
                if isinstance(layer, nn.Linear):
                    layer.reset_parameters()

    def _views(self) -> tuple[Tensor, Tensor]:
        """The user-item view ``C`` and the side view ``S``, both ``(n_users + n_items, d)``."""
        ids = self.item_id_embedding.weight
        ego = torch.cat([self.user_embedding.weight, ids])
        content = layer_mean(self.norm_adj, ego, self.cfg.n_ui_layers, symmetric=True)
        modal = []
        for m in _MODALITIES:
            h = ids * self.purifier[m](self.feat_proj[m](self.feat_tables[m]))
            for _ in range(self.cfg.n_layers):
                h = spmm(self.item_adj[m], h)
            modal.append(torch.cat([spmm(self.user_item, h), h]))
        att = torch.softmax(torch.cat([self.query_common(v) for v in modal], dim=1), dim=1)
        common = att[:, :1] * modal[0] + att[:, 1:] * modal[1]
        side = common
        for m, v in zip(_MODALITIES, modal):
            side = side + self.preference[m](content) * (v - common)
        return content, side / 3

    def loss(self, batch: Batch) -> Tensor:
        assert batch.neg_items is not None
        content, side = self._views()
        user_emb, item_emb = (content + side).split([self.n_users, self.n_items])
        u, pos, neg = user_emb[batch.users], item_emb[batch.pos_items], item_emb[batch.neg_items]
        loss = bpr_loss((u * pos).sum(1), (u * neg).sum(1))
        loss = loss + self.cfg.reg_weight * l2_loss(u, pos, neg) / len(batch.users)
        if self.cfg.cl_weight != 0.0:
            item_rows = batch.pos_items + self.n_users
            cl = info_nce(side[item_rows], content[item_rows], _CL_TEMPERATURE)
            cl = cl + info_nce(side[batch.users], content[batch.users], _CL_TEMPERATURE)
            loss = loss + self.cfg.cl_weight * cl
        return loss

    def _embeddings(self) -> tuple[Tensor, Tensor]:
        content, side = self._views()
        user_emb, item_emb = (content + side).split([self.n_users, self.n_items])
        return user_emb, item_emb

    def score(self, users: Tensor) -> Tensor:
        user_emb, item_emb = self.cached("emb", self._embeddings)
        return user_emb[users] @ item_emb.T
