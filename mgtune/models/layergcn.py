r"""LayerGCN: layer-refined graph convolution for collaborative filtering.

Zhou, Lin, Zhang, Liu, Wu, Zhang, Miao, "Layer-refined Graph Convolutional Networks for
Recommendation", ICDE 2023, https://arxiv.org/abs/2207.11088. A collaborative-filtering baseline:
no content features.

.. math::
    X^{(0)} = [E^u; E^i],\qquad
    X^{(l)} = \mathrm{diag}\big(\cos(\hat A X^{(l-1)}, X^{(0)})\big)\, \hat A X^{(l-1)},\qquad
    [E_u; E_i] = \sum_{l=1}^{L} X^{(l)}

(each layer's rows are re-weighted by their cosine similarity to the ego embeddings; layer 0 is
not in the sum), ``L`` = ``n_layers``, :math:`s(u, i) = e_u^\top e_i`, and

.. math::
    \mathcal L = \sum_b -\log\sigma(s_{u,i^+} - s_{u,i^-})
        + \lambda \cdot \tfrac12 \big(\|E^u_b\|^2 + \|E^i_{b^+}\|^2 + \|E^i_{b^-}\|^2\big)

(BPR *summed* over the batch, as MMRec does; MMRec's ``L2Loss`` on the batch's ego embeddings;
``λ`` = ``reg_weight``). Before each epoch ``dropout`` of the user-item edges are pruned and the
rest re-normalised ``D^{-1/2} A D^{-1/2}``; epochs alternate between degree-sensitive pruning
(without replacement, probability ∝ ``1/sqrt(d_u d_i)``; even epochs, starting with epoch 0) and
uniform random pruning (odd epochs). Evaluation uses the full graph.

Deviations from MMRec, none changing what is computed: graphs are CSR tensors (products with
them reuse the symmetric matrix in the backward pass); the alternation
follows the epoch number rather than a flag flipped at every call (the same sequence from epoch
0, and a resumed run continues it correctly); the random pruning draws from torch's seeded RNG
instead of Python's ``random``. Not copied: MMRec leaves the training graph undefined until the
first ``pre_epoch_processing`` (a loss before it fails); here it starts as the full graph.

Shapes: ``E^u`` ``(n_users, d)``, ``E^i`` ``(n_items, d)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mgtune.data import Batch, Dataset
from mgtune.models._blocks.edge_dropout import PrunableGraph
from mgtune.models._blocks.interactions import train_edges
from mgtune.models._blocks.losses import bpr_loss, l2_loss
from mgtune.models._blocks.sparse import symmetric_spmm
from mgtune.models.base import ModelConfig, Recommender
from mgtune.models.registry import register

__all__ = ["LayerGCNConfig", "LayerGCN"]


@dataclass(frozen=True)
class LayerGCNConfig(ModelConfig):
    embedding_size: int = 64
    n_layers: int = 4  # refined propagation layers; grid [4]
    reg_weight: float = 1e-2  # weight of the L2 term; grid [1e-2, 1e-3, 1e-4, 1e-5], first value
    dropout: float = 0.0  # share of user-item edges pruned every epoch; grid [0.0, 0.1, 0.2], first value

    def __post_init__(self) -> None:
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {self.n_layers}")


@register("layergcn")
class LayerGCN(Recommender):
    config_cls = LayerGCNConfig
    needs_modalities = "none"
    cfg: LayerGCNConfig

    def __init__(self, data: Dataset, cfg: LayerGCNConfig, device: torch.device) -> None:
        super().__init__(data, cfg, device)
        self.graph = PrunableGraph(*train_edges(data, device), self.n_users, self.n_items)
        self.norm_adj = self.graph.norm_adj
        self.masked_adj = self.norm_adj
        self.user_emb = nn.Parameter(torch.empty(self.n_users, cfg.embedding_size))
        self.item_emb = nn.Parameter(torch.empty(self.n_items, cfg.embedding_size))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.xavier_uniform_(self.user_emb)
        nn.init.xavier_uniform_(self.item_emb)

    def pre_epoch(self, epoch: int) -> None:
        """Prune ``dropout`` of the edges: degree-sensitive on even epochs, uniform on odd ones."""
        self.masked_adj = self.graph.pruned(self.cfg.dropout, degree_sensitive=epoch % 2 == 0)

    def _embeddings(self, adj: Tensor) -> tuple[Tensor, Tensor]:
        ego = torch.cat([self.user_emb, self.item_emb])
        h = ego
        total = torch.zeros_like(ego)
        for _ in range(self.cfg.n_layers):
            h = symmetric_spmm(adj, h)  # both graphs are symmetric: no transpose in backward
            h = F.cosine_similarity(h, ego, dim=-1).unsqueeze(1) * h
            total = total + h
        user_emb, item_emb = total.split([self.n_users, self.n_items])
        return user_emb, item_emb

    def loss(self, batch: Batch) -> Tensor:
        assert batch.neg_items is not None
        user_emb, item_emb = self._embeddings(self.masked_adj)
        u = user_emb[batch.users]
        pos = (u * item_emb[batch.pos_items]).sum(1)
        neg = (u * item_emb[batch.neg_items]).sum(1)
        mf = bpr_loss(pos, neg) * len(pos)  # MMRec sums over the batch instead of averaging
        reg = l2_loss(self.user_emb[batch.users], self.item_emb[batch.pos_items], self.item_emb[batch.neg_items])
        return mf + self.cfg.reg_weight * reg

    def score(self, users: Tensor) -> Tensor:
        user_emb, item_emb = self.cached("emb", lambda: self._embeddings(self.norm_adj))
        return user_emb[users] @ item_emb.T
