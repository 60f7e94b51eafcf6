r"""GRCN: graph-refined convolutional network for multimedia recommendation.

Wei et al., "Graph-Refined Convolutional Network for Multimedia Recommendation with Implicit
Feedback", ACM MM 2020, https://arxiv.org/abs/2111.02036, as in MMRec's ``src/models/grcn.py``.

Nodes are users then items; every training interaction is an edge in both directions. For each
modality :math:`m` a content graph scores every edge by attention between user preferences and
item features (both L2-normalised rows):

.. math::
    x^m = [\mathrm{norm}(P^m);\ \mathrm{norm}(\mathrm{LeakyReLU}(W_m f^m + b_m))],\qquad
    \alpha^m_{j \to i} = \mathrm{softmax}_{j \in N(i)}\big(x^{m\top}_i x^m_j\big),\qquad
    r^m_i = x^m_i + \textstyle\sum_{j \in N(i)} \alpha^m_{j \to i} x^m_j .

The refined edge weight is :math:`w_{j \to i} = \mathrm{ReLU}(\max_m \alpha^m_{j \to i}\, c_{j,m})`
with a learned confidence :math:`c` of the source node (MMRec's ``confid`` mode with hard
pruning), and the id graph runs two sum-aggregations weighted by it, :math:`(A_w)_{ij} = w_{j \to i}`,
on the normalised ids:

.. math::
    x = \mathrm{norm}(E),\quad h_1 = A_w x,\quad h_2 = A_w h_1,\qquad
    e = [x + h_1 + h_2;\ r^{image};\ r^{text}],\qquad s(u, i) = e_u^\top e_i .

Loss, as MMRec computes it (means over all entries of the indexed rows):

.. math::
    L = \mathrm{BPR}(s^+, s^-) + \lambda \Big(\overline{E_{U_b}^2} + \overline{E_{P_b \cup N_b}^2}
        + \overline{(P^{image})^2} + \textstyle\sum_m \overline{(P^m_{U_b})^2}\Big)

The third term, the whole image preference table, is MMRec's addition (the authors' code does not
have it); it is kept because it is what the reference trains.

Deviations from MMRec:

- MMRec's content graph first runs ``n_layers`` (3) "routing" rounds meant to refine the user
  preferences, but its edges there point from users to items, so the users receive nothing and
  each round leaves the (normalised) preferences unchanged. This port skips the rounds, so
  ``n_layers`` is not a setting; the result is the reference's, at lower cost.
- The loss uses ``logsigmoid`` where MMRec takes ``log(sigmoid(.))``, whose sigmoid underflows to 0
  (an infinite loss) once a score difference falls below about -88; the values agree otherwise.
- ``score`` recomputes the representation for each evaluation. MMRec scores with the one stored
  by the last training forward pass, computed before that batch's optimiser step(s).
- A repeated training pair is one edge (MMRec would add it twice). Text without image features
  works; MMRec's text-only branch has a typo (``conetent_rep``) and fails.
- Attention logits and messages are sparse CSR kernels (`edge_list.EdgeGraph`: a sampled dense
  product and CSR products) instead of PyG ``MessagePassing`` subclasses, which gather an
  ``(n_edges, d)`` tensor per step; the attention softmax is PyG's ``softmax``, as in MMRec.

Shapes: ids ``E`` ``(n_users + n_items, embedding_size)``, preferences ``P^m`` ``(n_users,
latent_embedding)``, features ``(n_items, d_m)``, confidences ``(n_users + n_items, n_modalities)``,
``e`` ``(n_users + n_items, embedding_size + n_modalities * latent_embedding)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mgtune.data import Batch, Dataset
from mgtune.models._blocks.edge_list import EdgeGraph
from mgtune.models._blocks.feature_tables import LinearDict
from mgtune.models._blocks.interactions import require_modalities, train_edges
from mgtune.models._blocks.losses import bpr_loss
from mgtune.models.base import ModelConfig, Recommender
from mgtune.models.registry import register

__all__ = ["GRCNConfig", "GRCN"]


@dataclass(frozen=True)
class GRCNConfig(ModelConfig):
    embedding_size: int = 64  # id embedding size
    latent_embedding: int = 64  # size of each modality's preference / feature embedding
    reg_weight: float = 0.1  # grid [0.1, 0.01, 0.001, 1e-4, 1e-5]; the first value (no known best)


@register("grcn")
class GRCN(Recommender):
    config_cls = GRCNConfig
    feature_parts = ("feat_image", "feat_text")
    cfg: GRCNConfig

    def __init__(self, data: Dataset, cfg: GRCNConfig, device: torch.device) -> None:
        super().__init__(data, cfg, device)
        feats = require_modalities(data)
        self.modalities = list(feats)  # image first, then text, as MMRec concatenates them
        users, items = train_edges(data, device)
        user_nodes, item_nodes = users, items + self.n_users
        self.n_nodes = self.n_users + self.n_items
        # the edge j -> i is entry (i, j): rows receive, columns send; both directions of each pair
        self.graph, _ = EdgeGraph.from_edges(
            torch.cat([item_nodes, user_nodes]), torch.cat([user_nodes, item_nodes]), self.n_nodes, self.n_nodes
        )

        for m, f in feats.items():
            # data, not state: kept out of checkpoints
            self.register_buffer(f"feat_{m}", torch.as_tensor(f, device=device), persistent=False)
        self.id_embedding = nn.Parameter(torch.empty(self.n_nodes, cfg.embedding_size))
        self.preference = nn.ParameterDict(
            {m: nn.Parameter(torch.empty(self.n_users, cfg.latent_embedding)) for m in feats}
        )
        self.feat_mlp = LinearDict({m: nn.Linear(f.shape[1], cfg.latent_embedding) for m, f in feats.items()})
        self.confidence = nn.Parameter(torch.empty(self.n_nodes, len(feats)))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.xavier_normal_(self.id_embedding)
        nn.init.xavier_normal_(self.confidence)
        for m in self.modalities:
            nn.init.xavier_normal_(self.preference[m])
            self.feat_mlp[m].reset_parameters()  # MMRec keeps nn.Linear's default bias
            nn.init.xavier_normal_(self.feat_mlp[m].weight)

    def _content(self, m: str) -> tuple[Tensor, Tensor]:
        """Modality ``m``'s node representation ``r^m`` and edge attention ``alpha^m``."""
        # imported here: torch_geometric takes seconds to import, and every CLI call and Ray trial
        # imports all models through the registry
        from torch_geometric.utils import softmax as edge_softmax

        features = F.leaky_relu(self.feat_mlp[m](getattr(self, f"feat_{m}")))
        x = torch.cat([F.normalize(self.preference[m], dim=1), F.normalize(features, dim=1)])
        alpha = edge_softmax(self.graph.sddmm(x, x), self.graph.rows, num_nodes=self.n_nodes)
        return x + self.graph.spmm(alpha, x), alpha

    def _representation(self) -> Tensor:
        content, alphas = zip(*(self._content(m) for m in self.modalities))
        weight = (torch.stack(alphas, dim=1) * self.confidence[self.graph.cols]).max(dim=1).values.relu()
        x = F.normalize(self.id_embedding, dim=1)
        h1 = self.graph.spmm(weight, x)
        h2 = self.graph.spmm(weight, h1)
        return torch.cat([x + h1 + h2, *content], dim=1)

    def loss(self, batch: Batch) -> Tensor:
        assert batch.neg_items is not None
        rep = self._representation()
        pos_nodes, neg_nodes = batch.pos_items + self.n_users, batch.neg_items + self.n_users
        u = rep[batch.users]
        loss = bpr_loss((u * rep[pos_nodes]).sum(1), (u * rep[neg_nodes]).sum(1))
        reg = self.id_embedding[batch.users].pow(2).mean()
        reg = reg + self.id_embedding[torch.cat([pos_nodes, neg_nodes])].pow(2).mean()
        if "image" in self.preference:
            reg = reg + self.preference["image"].pow(2).mean()
        for pref in self.preference.values():
            reg = reg + pref[batch.users].pow(2).mean()
        return loss + self.cfg.reg_weight * reg

    def score(self, users: Tensor) -> Tensor:
        rep = self.cached("rep", self._representation)
        return rep[users] @ rep[self.n_users :].T
