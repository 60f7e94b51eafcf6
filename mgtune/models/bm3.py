r"""BM3: Bootstrap latent representations for Multi-Modal recommendation.

Zhou, Zhou, Zhang, Liu, Zhang, Miao, "Bootstrap Latent Representations for Multi-modal
Recommendation", WWW 2023, https://arxiv.org/abs/2207.05969.

No negatives: an online view is pulled towards a dropout-perturbed, gradient-free copy of itself.

.. math::
    [E_u; E_i] = \mathrm{mean}_{l=0..L}(\hat A^l [E^{u}; E^{id}]),\qquad
    e_i \leftarrow e_i + e^{id}_i,\qquad f^m_i = W_m x^m_i + b_m,

.. math::
    \mathcal L = d(p(e_u), \tilde e_i) + d(p(e_i), \tilde e_u)
        + \lambda\, \frac{\|E_u\|_F + \|E_i\|_F}{n_{items}}
        + w_{cl} \sum_m \big[d(p(f^m_i), \tilde e_i) + d(p(f^m_i), \tilde f^m_i)\big]

with :math:`d(a, b) = 1 - \mathrm{mean}\cos(a, b)` over the batch's (user, item) pairs,
:math:`p` one shared linear predictor, :math:`\tilde x = \mathrm{dropout}(x)` with no gradient
(the target view), ``\hat A`` the symmetric-normalised user-item graph, ``L`` = ``n_layers``,
``λ`` = ``reg_weight`` (MMRec's ``EmbLoss`` over the *whole* propagated tables, divided by
``n_items``), ``w_cl`` = ``cl_weight``. The raw feature tables :math:`x^m` are trainable, as in
MMRec. Every modality present is used. Score: :math:`s(u, i) = p(e_u)^\top p(e_i)`.

Deviations from MMRec, none changing what is computed: the graph is a CSR tensor built once; the
feature projections and their dropout targets are computed only for the batch's distinct items
rather than for every item (the loss reads nothing else; a duplicated item still shares one dropout
mask, as it did), and the predictor is applied to the batch's rows only. The YAML's
``feat_embed_dim`` is not a field: MMRec ignores it and uses ``embedding_size`` (the shared
predictor needs both sizes equal). Trained without negative samples (``needs_negatives = False``),
as MMRec's ``use_neg_sampling: False``.

Shapes: ``E^u`` ``(n_users, d)``, ``E^{id}`` ``(n_items, d)``, features ``(n_items, d_m)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from mgtune.data import Batch, Dataset
from mgtune.models._blocks.bootstrap import dropout_target, neg_cosine
from mgtune.models._blocks.feature_tables import trainable_feature_tables
from mgtune.models._blocks.interactions import require_modalities, train_edges
from mgtune.models._blocks.losses import emb_norm_loss
from mgtune.models._blocks.propagation import bipartite_norm_adj, layer_mean
from mgtune.models.base import ModelConfig, Recommender
from mgtune.models.registry import register

__all__ = ["BM3Config", "BM3"]


@dataclass(frozen=True)
class BM3Config(ModelConfig):
    embedding_size: int = 64  # also the projected feature size, as in MMRec
    n_layers: int = 1  # LightGCN layers; grid [1, 2], first value
    dropout: float = 0.3  # dropout of the target views; grid [0.3, 0.5], first value
    reg_weight: float = 0.1  # weight of the embedding-norm regulariser; grid [0.1, 0.01], first value
    cl_weight: float = 2.0  # weight of the feature alignment terms (fixed in the reference)

    def __post_init__(self) -> None:
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.n_layers < 0:
            raise ValueError(f"n_layers must be >= 0, got {self.n_layers}")


@register("bm3")
class BM3(Recommender):
    config_cls = BM3Config
    feature_parts = ("feat_tables",)
    needs_negatives = False
    cfg: BM3Config

    def __init__(self, data: Dataset, cfg: BM3Config, device: torch.device) -> None:
        super().__init__(data, cfg, device)
        feats = require_modalities(data)
        self.norm_adj = bipartite_norm_adj(*train_edges(data, device), self.n_users, self.n_items)

        d = cfg.embedding_size
        self.user_embedding = nn.Embedding(self.n_users, d)
        self.item_id_embedding = nn.Embedding(self.n_items, d)
        self.predictor = nn.Linear(d, d)
        self.feat_tables, self.feat_proj = trainable_feature_tables(feats, d, device)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.xavier_uniform_(self.user_embedding.weight)
        nn.init.xavier_uniform_(self.item_id_embedding.weight)
        for lin in [m for m in self.modules() if isinstance(m, nn.Linear)]:  # predictor, projections
            lin.reset_parameters()  # bias keeps PyTorch's default init, as in MMRec
            nn.init.xavier_normal_(lin.weight)

    def _embeddings(self) -> tuple[Tensor, Tensor]:
        ego = torch.cat([self.user_embedding.weight, self.item_id_embedding.weight])
        all_emb = layer_mean(self.norm_adj, ego, self.cfg.n_layers, symmetric=True)
        user_emb, item_emb = all_emb.split([self.n_users, self.n_items])
        return user_emb, item_emb + self.item_id_embedding.weight

    def loss(self, batch: Batch) -> Tensor:
        cfg = self.cfg
        users, items = batch.users, batch.pos_items
        user_emb, item_emb = self._embeddings()
        user_target = dropout_target(user_emb, cfg.dropout)[users]
        item_target = dropout_target(item_emb, cfg.dropout)[items]
        loss = (1 + neg_cosine(self.predictor(user_emb[users]), item_target)) + (
            1 + neg_cosine(self.predictor(item_emb[items]), user_target)
        )
        loss = loss + cfg.reg_weight * emb_norm_loss(user_emb, item_emb)

        uniq, inverse = torch.unique(items, return_inverse=True)
        align = torch.zeros((), device=user_emb.device)
        for m, table in self.feat_tables.items():
            feat = self.feat_proj[m](table.index_select(0, uniq))  # backward: index_add, fast on CPU
            feat_target = dropout_target(feat, cfg.dropout)[inverse]
            feat_pred = self.predictor(feat)[inverse]
            align = align + (1 + neg_cosine(feat_pred, item_target)) + (1 + neg_cosine(feat_pred, feat_target))
        return loss + cfg.cl_weight * align

    def score(self, users: Tensor) -> Tensor:
        def build() -> tuple[Tensor, Tensor]:
            user_emb, item_emb = self._embeddings()
            return self.predictor(user_emb), self.predictor(item_emb)

        user_emb, item_emb = self.cached("emb", build)
        return user_emb[users] @ item_emb.T
