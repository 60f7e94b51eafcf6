r"""SELFCF_ed with a LightGCN encoder: self-supervised collaborative filtering by embedding dropout.

Zhou, Zhang, Liu, Wu, Zhang, Miao, "SelfCF: A Simple Framework for Self-supervised Collaborative
Filtering", ACM TORS 2023, https://arxiv.org/abs/2107.03019 (the "ed" variant: the target view is
the online embedding after dropout). A pure collaborative-filtering baseline: no content features.

.. math::
    [E_u; E_i] = \mathrm{mean}_{l=0..L}(\tilde A^l [E^{u}; E^{i}]),\qquad
    \tilde A = \mathrm{edgedrop}_{\rho}(\hat A),\ \rho \sim U[0, 1) \text{ per batch},

.. math::
    \mathcal L = -\tfrac12 \cos(p(e_u), \tilde e_i) - \tfrac12 \cos(p(e_i), \tilde e_u)
        + \lambda \cdot \tfrac12 \big(\|e_u\|^2 + \|e_i\|^2\big),\qquad
    s(u, i) = p(e_u)^\top e_i + e_u^\top p(e_i)

with cosines averaged and squared norms summed over the batch's (user, item) pairs, :math:`p` a
linear predictor, :math:`\tilde x = \mathrm{dropout}(x)` with no gradient, ``L`` = ``n_layers``,
``λ`` = ``reg_weight`` (MMRec's ``L2Loss`` on the propagated batch rows). During training every
batch propagates over a fresh edge dropout of the normalised graph :math:`\hat A` (BUIR's LightGCN
encoder): a rate :math:`\rho` is drawn uniformly in [0, 1), each stored entry is kept with
probability :math:`1 - \rho` and the survivors are scaled by :math:`1/(1 - \rho)`; evaluation uses
the full graph.

Deviations from MMRec, none changing what is computed: graphs are CSR tensors (the perturbed graph
is masked straight from the CSR form, no re-sort); the drop rate and masks come from torch's
seeded global RNG instead of NumPy's; the two score matrices are summed as one product
``[p(e_u), e_u] [e_i, p(e_i)]^T``. MMRec loads (and asserts the presence of) image/text features
it never uses; this port needs none. Kept as in the reference although unusual: a drop rate close
to 1 in some batches (kept entries then scaled by up to ``1/(1-ρ)``). Trained without negative
samples (``needs_negatives = False``), as MMRec's ``use_neg_sampling: False``.

Checked against the reference fork (Qrange-group/Mirror-Gradient), whose model is MMRec's: from the
same state, batches and random draws both give the same losses (to 4e-9) and gradients (to 2e-8) per
step, and the same metrics after 60 epochs; over seeds their test metrics agree within seed noise
(``benchmarks/selfcfed_lgn_fidelity.md``; issue 22's 4-5% gap was that noise).

Default ``reg_weight`` is 0.0, the reference grid's last value, not its first: the L2 term is
*summed* over the batch rows while the cosine loss is scale-invariant and averaged, so a large
weight shrinks the embeddings towards zero (on the ``small`` synthetic set 0.1 fell below a
random ranking within 20 epochs; 1e-4 peaked at epoch 10, then decayed).

Shapes: ``E^u`` ``(n_users, d)``, ``E^i`` ``(n_items, d)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from mgtune.data import Batch, Dataset
from mgtune.models._blocks.bootstrap import dropout_target, neg_cosine
from mgtune.models._blocks.edge_dropout import sparse_dropout
from mgtune.models._blocks.interactions import train_edges
from mgtune.models._blocks.losses import l2_loss
from mgtune.models._blocks.propagation import bipartite_norm_adj, layer_mean
from mgtune.models.base import ModelConfig, Recommender
from mgtune.models.registry import register

__all__ = ["SelfCFedLGNConfig", "SelfCFedLGN"]


@dataclass(frozen=True)
class SelfCFedLGNConfig(ModelConfig):
    embedding_size: int = 64
    n_layers: int = 1  # LightGCN layers; grid [1, 2], first value
    dropout: float = 0.1  # dropout of the target views; grid [0.1, 0.2, 0.5], first value
    # weight of the L2 term; grid [1e-1 ... 1e-5, 0]. Not the first value: on small1 (20 epochs) 0.1
    # collapsed the embeddings (recall below random) and 1e-4 peaked at epoch 10, then decayed
    reg_weight: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.n_layers < 0:
            raise ValueError(f"n_layers must be >= 0, got {self.n_layers}")


@register("selfcfed_lgn")
class SelfCFedLGN(Recommender):
    config_cls = SelfCFedLGNConfig
    needs_modalities = "none"
    needs_negatives = False
    cfg: SelfCFedLGNConfig

    def __init__(self, data: Dataset, cfg: SelfCFedLGNConfig, device: torch.device) -> None:
        super().__init__(data, cfg, device)
        self.norm_adj = bipartite_norm_adj(*train_edges(data, device), self.n_users, self.n_items)
        d = cfg.embedding_size
        self.user_emb = nn.Parameter(torch.empty(self.n_users, d))
        self.item_emb = nn.Parameter(torch.empty(self.n_items, d))
        self.predictor = nn.Linear(d, d)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.xavier_uniform_(self.user_emb)
        nn.init.xavier_uniform_(self.item_emb)
        self.predictor.reset_parameters()  # PyTorch's default init, as in MMRec

    def _embeddings(self, adj: Tensor) -> tuple[Tensor, Tensor]:
        ego = torch.cat([self.user_emb, self.item_emb])
        user_emb, item_emb = layer_mean(adj, ego, self.cfg.n_layers).split([self.n_users, self.n_items])
        return user_emb, item_emb

    def loss(self, batch: Batch) -> Tensor:
        keep_prob = 1.0 - float(torch.rand(()))  # in (0, 1]
        user_emb, item_emb = self._embeddings(sparse_dropout(self.norm_adj, keep_prob))
        u, i = user_emb[batch.users], item_emb[batch.pos_items]
        u_target, i_target = dropout_target(u, self.cfg.dropout), dropout_target(i, self.cfg.dropout)
        loss = neg_cosine(self.predictor(u), i_target) / 2 + neg_cosine(self.predictor(i), u_target) / 2
        return loss + self.cfg.reg_weight * l2_loss(u, i)

    def score(self, users: Tensor) -> Tensor:
        def build() -> tuple[Tensor, Tensor]:
            user_emb, item_emb = self._embeddings(self.norm_adj)
            return (torch.cat([self.predictor(user_emb), user_emb], 1),
                    torch.cat([item_emb, self.predictor(item_emb)], 1))

        user_side, item_side = self.cached("emb", build)
        return user_side[users] @ item_side.T
