r"""LATTICE: mining latent item-item structures for multimedia recommendation.

Zhang et al., "Mining Latent Structures for Multimedia Recommendation", ACM MM 2021,
https://arxiv.org/abs/2104.09036, as in MMRec's ``src/models/lattice.py``.

Every modality :math:`m` gives a frozen graph :math:`\hat S_m` (the normalised cosine kNN graph of
the raw features, `similarity_graph`) and a learned one, the kNN graph of the projected features
:math:`\tilde f_m = W_m f_m + b_m` (the feature tables :math:`f_m` are trainable, as in MMRec).
With :math:`w = \mathrm{softmax}(\omega)` over the two modalities (image first):

.. math::
    S = (1 - \lambda)\, \mathrm{norm}\big(\textstyle\sum_m w_m A_k(\tilde f_m)\big)
        + \lambda \textstyle\sum_m w_m \hat S_m,\qquad
    h = S^{L_i} E^{id}

(:math:`A_k(x)` keeps each row's ``knn_k`` largest cosine similarities, self included, as
weights; one modality: no :math:`w`). Users and items then go through the collaborative model ``cf_model``
on :math:`\hat A = D^{-1}(A + I)`, the row-normalised user-item graph with self loops:
``lightgcn`` averages :math:`\hat A^l [E^u; E^{id}]` over :math:`l = 0..L`, ``ngcf`` stacks NGCF
layers (leaky-ReLU of a GC and a bi-interaction transform, message dropout, each layer's output
L2-normalised before the mean), ``mf`` uses the embeddings as they are. The item is
:math:`e_i + h_i / \|h_i\|`, the score :math:`e_u^\top e_i`, and the loss

.. math:: L = \mathrm{BPR}(s^+, s^-) + \lambda_{reg}\, \tfrac12 (\|U_b\|^2 + \|P_b\|^2 + \|N_b\|^2) / |b|.

The learned graph is rebuilt once per epoch, on its first batch; only that batch's gradient
reaches :math:`W_m`, :math:`b_m`, :math:`f_m` and :math:`\omega` through the graph, the other
batches use it detached. Evaluation rebuilds it from the current parameters.

Deviations from MMRec:

- No dense ``n_items x n_items`` matrix: graphs are kNN edge lists and CSR tensors, neighbours
  come from chunked similarities, and only the ``n_items * k`` kept similarities are formed (with
  gradients). MMRec rebuilds the dense learned graph in every ``full_sort_predict`` call, i.e.
  for every batch of evaluated users; here it is built once per evaluation (`Recommender.cached`),
  which computes the same scores. The frozen graphs are cached on disk keyed by the dataset's content.
- MMRec trains under torch 1.13, whose ``optimizer.zero_grad()`` leaves zero gradients in place:
  after their first gradient, the graph learner's parameters (:math:`W_m, b_m, f_m, \omega`) keep
  being moved by Adam's momentum in every batch although only one batch per epoch gives them a
  gradient. mgtune's loop clears gradients to ``None`` (Adam then skips a parameter), so on the
  other batches the loss adds ``0 *`` their sum: their gradient is an explicit zero and Adam moves
  them exactly as in the reference.
- The L2 term divides by the batch's length; MMRec divides by the configured ``train_batch_size``,
  which differs only on an epoch's last, shorter batch.
- A repeated training pair is one edge of the user-item graph (MMRec's matrix would hold a 2).

MMRec's ``learning_rate_scheduler: [0.96, 50]`` for LATTICE is a training setting, so it is
``train_defaults`` (``lr_decay=0.96``, ``lr_decay_every=50``), not part of this config.

Shapes: ``E^u`` ``(n_users, d)``, ``E^{id}`` ``(n_items, d)``, features ``(n_items, d_m)``,
projections ``(n_items, feat_embed_dim)``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mgtune.data import Batch, Dataset
from mgtune.models._blocks.edge_list import EdgeGraph
from mgtune.models._blocks.feature_tables import trainable_feature_tables
from mgtune.models._blocks.interactions import require_modalities, train_edges
from mgtune.models._blocks.knn import cosine_knn_edges
from mgtune.models._blocks.losses import bpr_loss, l2_loss
from mgtune.models._blocks.mean_aggregation import bipartite_mean_adj, mean_aggregate
from mgtune.models._blocks.propagation import sym_norm_values
from mgtune.models._blocks.similarity_graph import similarity_knn_adj
from mgtune.models.base import ModelConfig, Recommender
from mgtune.models.registry import register

__all__ = ["LatticeConfig", "Lattice"]

_CF_MODELS = ("lightgcn", "ngcf", "mf")
_MODAL_SLOT = {"image": 0, "text": 1}  # index into the softmax modality weights


@dataclass(frozen=True)
class LatticeConfig(ModelConfig):
    embedding_size: int = 64
    feat_embed_dim: int = 64  # size of the projected features the learned graph is built from
    weight_size: tuple[int, ...] = (64, 64)  # one entry per user-item layer (NGCF: their output sizes)
    knn_k: int = 10  # neighbours per item in the frozen and the learned graphs
    lambda_coeff: float = 0.9  # share of the frozen graph in the item graph
    n_layers: int = 1  # propagation steps over the item graph
    cf_model: str = "lightgcn"  # collaborative model: lightgcn, ngcf or mf
    mess_dropout: tuple[float, ...] = (0.1, 0.1)  # NGCF's message dropout per layer
    reg_weight: float = 1e-5  # grid [0, 1e-5, 1e-4, 1e-3]; 1e-5 is the LATTICE authors' default (regs[0])

    def __post_init__(self) -> None:
        if self.cf_model not in _CF_MODELS:
            raise ValueError(f"cf_model must be one of {', '.join(_CF_MODELS)}, got {self.cf_model!r}")
        if not 0.0 <= self.lambda_coeff <= 1.0:
            raise ValueError(f"lambda_coeff must be in [0, 1], got {self.lambda_coeff}")
        if self.knn_k < 1:
            raise ValueError(f"knn_k must be >= 1, got {self.knn_k}")
        if self.cf_model == "ngcf":
            if any(w != self.embedding_size for w in self.weight_size):
                raise ValueError(
                    f"ngcf averages its layers, so every weight_size must equal embedding_size "
                    f"({self.embedding_size}), got {self.weight_size}"
                )
            if len(self.mess_dropout) != len(self.weight_size):
                raise ValueError(
                    f"mess_dropout needs one rate per layer ({len(self.weight_size)}), got {self.mess_dropout}"
                )


@register("lattice")
class Lattice(Recommender):
    config_cls = LatticeConfig
    feature_parts = ("frozen_edges", "feat_tables")
    # MMRec: learning_rate_scheduler: [0.96, 50]
    train_defaults: ClassVar[dict[str, Any]] = {"lr_decay": 0.96, "lr_decay_every": 50}
    cfg: LatticeConfig

    def __init__(self, data: Dataset, cfg: LatticeConfig, device: torch.device) -> None:
        super().__init__(data, cfg, device)
        feats = require_modalities(data)
        users, items = train_edges(data, device)
        self.norm_adj = bipartite_mean_adj(users, items, self.n_users, self.n_items)
        self.frozen_edges: dict[str, tuple[Tensor, Tensor, Tensor]] = {}
        for m in feats:
            coo = similarity_knn_adj(data, m, cfg.knn_k, device).matrix.to_sparse_coo()
            self.frozen_edges[m] = (coo.indices()[0], coo.indices()[1], coo.values())

        d = cfg.embedding_size
        self.user_embedding = nn.Embedding(self.n_users, d)
        self.item_id_embedding = nn.Embedding(self.n_items, d)
        self.feat_tables, self.feat_proj = trainable_feature_tables(feats, cfg.feat_embed_dim, device)
        self.modal_weight = nn.Parameter(torch.empty(2))
        if cfg.cf_model == "ngcf":
            sizes = [d, *cfg.weight_size]
            self.gc_linear = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(sizes))
            self.bi_linear = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(sizes))
            self.mess_dropout = nn.ModuleList(nn.Dropout(p) for p in cfg.mess_dropout)
        # this epoch's item graph, detached; None: rebuild it (with gradients) on the next training batch
        self._item_adj: tuple[EdgeGraph, Tensor] | None = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.xavier_uniform_(self.user_embedding.weight)
        nn.init.xavier_uniform_(self.item_id_embedding.weight)
        for proj in self.feat_proj.values():
            proj.reset_parameters()
        with torch.no_grad():
            self.modal_weight.fill_(0.5)
        if self.cfg.cf_model == "ngcf":
            for layer in [*self.gc_linear, *self.bi_linear]:
                layer.reset_parameters()
        self._item_adj = None

    def pre_epoch(self, epoch: int) -> None:
        self._item_adj = None

    def _item_graph_edges(self) -> tuple[Tensor, Tensor, Tensor]:
        """The item graph ``S`` as an edge list, differentiable in the learner's parameters."""
        lam = self.cfg.lambda_coeff
        weight = F.softmax(self.modal_weight, dim=0)
        single = len(self.feat_tables) == 1
        learned, frozen = [], []
        for m, table in self.feat_tables.items():
            w = 1.0 if single else weight[_MODAL_SLOT[m]]
            rows, cols, sim = cosine_knn_edges(self.feat_proj[m](table), self.cfg.knn_k)
            learned.append((rows, cols, w * sim))
            f_rows, f_cols, f_vals = self.frozen_edges[m]
            frozen.append((f_rows, f_cols, lam * w * f_vals))
        rows = torch.cat([e[0] for e in learned])
        cols = torch.cat([e[1] for e in learned])
        vals = (1.0 - lam) * sym_norm_values(rows, cols, torch.cat([e[2] for e in learned]), self.n_items)
        return (
            torch.cat([rows, *(e[0] for e in frozen)]),
            torch.cat([cols, *(e[1] for e in frozen)]),
            torch.cat([vals, *(e[2] for e in frozen)]),
        )

    def _graph_learner_params(self) -> list[nn.Parameter]:
        return [*self.feat_tables.values(), *self.feat_proj.parameters(), self.modal_weight]

    def _item_graph_view(self) -> Tensor:
        """``h = S^{L_i} E^{id}``; on an epoch's first training batch ``S`` carries gradients."""
        if self.training and self._item_adj is not None:
            graph, values = self._item_adj
        else:
            rows, cols, vals = self._item_graph_edges()
            graph, slot = EdgeGraph.from_edges(rows, cols, self.n_items, self.n_items)
            values = vals.new_zeros(graph.nnz).index_add(0, slot, vals)
            if self.training:
                self._item_adj = (graph, values.detach())
        h = self.item_id_embedding.weight
        for _ in range(self.cfg.n_layers):
            h = graph.spmm(values, h)
        return h

    def _cf_embeddings(self) -> tuple[Tensor, Tensor]:
        user, item = self.user_embedding.weight, self.item_id_embedding.weight
        if self.cfg.cf_model == "mf":
            return user, item
        ego = torch.cat([user, item])
        layers = [ego]
        for i in range(len(self.cfg.weight_size)):
            side = mean_aggregate(self.norm_adj, ego)
            if self.cfg.cf_model == "lightgcn":
                ego = side
                layers.append(ego)
            else:
                ego = F.leaky_relu(self.gc_linear[i](side)) + F.leaky_relu(self.bi_linear[i](ego * side))
                ego = self.mess_dropout[i](ego)
                layers.append(F.normalize(ego, dim=1))
        all_emb = torch.stack(layers).mean(0)
        user_emb, item_emb = all_emb.split([self.n_users, self.n_items])
        return user_emb, item_emb

    def _embeddings(self) -> tuple[Tensor, Tensor]:
        h = self._item_graph_view()
        user_emb, item_emb = self._cf_embeddings()
        return user_emb, item_emb + F.normalize(h, dim=1)

    def loss(self, batch: Batch) -> Tensor:
        assert batch.neg_items is not None
        rebuilt = self._item_adj is None
        user_emb, item_emb = self._embeddings()
        u, pos, neg = user_emb[batch.users], item_emb[batch.pos_items], item_emb[batch.neg_items]
        loss = bpr_loss((u * pos).sum(1), (u * neg).sum(1))
        loss = loss + self.cfg.reg_weight * l2_loss(u, pos, neg) / len(batch.users)
        if not rebuilt:  # zero gradients, so Adam keeps moving them as in MMRec (see the docstring)
            loss = loss + 0.0 * sum(p.sum() for p in self._graph_learner_params())
        return loss

    def score(self, users: Tensor) -> Tensor:
        user_emb, item_emb = self.cached("emb", self._embeddings)
        return user_emb[users] @ item_emb.T

