r"""MMGCN: multi-modal graph convolution network.

Wei et al., "MMGCN: Multi-modal Graph Convolution Network for Personalized Recommendation of
Micro-video", ACM MM 2019, https://arxiv.org/abs/1908.08447, as MMRec runs it.

One branch per modality ``m`` runs over the user-item graph; its input stacks a user preference
table :math:`P_m` over the item features (images projected to ``image_latent_dim`` by a linear map
first, text raw): :math:`x^{(0)} = \mathrm{normalize}([P_m; F_m W_m])`. Each of the ``n_layers``
layers mixes a mean-aggregated graph message with an ID-aware self connection:

.. math::
    h = \phi(\bar A\, x W^c_l),\qquad
    \hat x = \phi(W^s_l x + b^s_l) + E^{id},\qquad
    x \leftarrow \phi(W^g_l [h \,\|\, \hat x] + b^g_l)

with :math:`\phi` = LeakyReLU, :math:`\bar A = D^{-1} A` the mean over a node's user-item
neighbours (no self loops; a node without neighbours gets 0), and :math:`E^{id}` ID embeddings
shared by all branches. Users and items are the mean of the branches' outputs,
:math:`s(u, i) = e_u^\top e_i`, and

.. math::
    L = \mathrm{BPR}(s^+, s^-)
        + \lambda\,\big(\overline{(E^{id}_u)^2 + (E^{id}_i)^2} + \mathrm{mean}(P_{img}^2)\big)

(the ID term averaged over the batch's (user, positive) and (user, negative) pairs; MMRec
regularises the image preferences only).

Deviations from MMRec:

- Bug not copied: MMRec creates :math:`E^{id}` and every :math:`P_m` as plain tensors (not
  ``nn.Parameter``), so its optimiser never updates them: they stay at their random initial values
  and the regulariser, whose only terms they are, has no effect on training. They are trained here,
  as in the paper. ``use_trainable_ids=False`` reproduces MMRec (they are then fixed buffers, saved in
  checkpoints so scores reproduce).
- Kept on purpose although it looks like a slip: MMRec sets ``concate = "False"``, a non-empty string,
  so it *does* concatenate ``[h || x_hat]`` in every layer; ``use_concat=True`` does the same.
- MMRec's ``n_layers: 2`` is read but unused: its branch always runs three layers, so the default
  here is 3. The first layer's gate is Xavier-initialised and the later gates keep PyTorch's default,
  as in MMRec.
- ``score`` propagates with the current parameters; MMRec ranks with the output saved by the last
  training batch's forward pass, i.e. with the parameters from before the last optimiser step.
- The image branch's hidden size (256 in MMRec) is the setting ``image_latent_dim``.
- Duplicate (user, item) training rows count once in the graph (PyG's mean would count them twice).

Shapes: ``P_img`` ``(n_users, image_latent_dim)``, ``P_txt`` ``(n_users, d_text)``,
``E^{id}`` ``(n_users + n_items, d)``, outputs ``(n_users + n_items, d)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mgtune.data import Batch, Dataset
from mgtune.models._blocks.interactions import require_modalities, train_edges
from mgtune.models._blocks.losses import bpr_loss
from mgtune.models._blocks.mean_aggregation import MeanAdjacency, bipartite_mean_adj, mean_aggregate
from mgtune.models.base import ModelConfig, Recommender
from mgtune.models.registry import register

__all__ = ["MMGCNConfig", "MMGCN"]


@dataclass(frozen=True)
class MMGCNConfig(ModelConfig):
    embedding_size: int = 64
    n_layers: int = 3  # graph layers per branch (MMRec always runs 3, whatever its n_layers key says)
    image_latent_dim: int = 256  # image features are projected to this size first; text enters raw
    use_concat: bool = True  # gate on [h || x_hat] (MMRec, via its truthy "False"); else on h, plus x_hat
    use_trainable_ids: bool = True  # False: MMRec's frozen random ID embeddings and preferences
    reg_weight: float = 0.0  # first value of the reference grid (no best value is reported)

    def __post_init__(self) -> None:
        for name in ("embedding_size", "n_layers", "image_latent_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


class _Branch(nn.Module):
    """One modality's stack of MMGCN layers."""

    def __init__(self, n_users: int, feat_dim: int, latent_dim: int | None, cfg: MMGCNConfig) -> None:
        super().__init__()
        in_dim = latent_dim or feat_dim
        d = cfg.embedding_size
        self.use_concat = cfg.use_concat
        self.proj = nn.Linear(feat_dim, latent_dim) if latent_dim else None
        preference = torch.empty(n_users, in_dim)
        if cfg.use_trainable_ids:
            self.preference = nn.Parameter(preference)
        else:
            self.register_buffer("preference", preference)
        dims = [in_dim] + [d] * (cfg.n_layers - 1)
        self.conv = nn.ParameterList([nn.Parameter(torch.empty(k, k)) for k in dims])
        self.skip = nn.ModuleList([nn.Linear(k, d) for k in dims])
        self.gate = nn.ModuleList([nn.Linear(k + d if cfg.use_concat else k, d) for k in dims])

    def reset_parameters(self) -> None:
        nn.init.xavier_normal_(self.preference)
        if self.proj is not None:
            self.proj.reset_parameters()
        for layer, (w, skip, gate) in enumerate(self._layers()):
            nn.init.xavier_normal_(w)
            skip.reset_parameters()
            nn.init.xavier_normal_(skip.weight)
            gate.reset_parameters()
            if layer == 0:
                nn.init.xavier_normal_(gate.weight)

    def _layers(self) -> list[tuple[Tensor, nn.Linear, nn.Linear]]:
        return [(w, cast(nn.Linear, s), cast(nn.Linear, g)) for w, s, g in zip(self.conv, self.skip, self.gate)]

    def forward(self, features: Tensor, graph: MeanAdjacency, id_emb: Tensor) -> Tensor:
        items = self.proj(features) if self.proj is not None else features
        x = F.normalize(torch.cat([self.preference, items]), dim=1)
        for w, skip, gate in self._layers():
            h = F.leaky_relu(mean_aggregate(graph, x @ w))
            x_hat = F.leaky_relu(skip(x)) + id_emb
            x = F.leaky_relu(gate(torch.cat([h, x_hat], 1)) if self.use_concat else gate(h) + x_hat)
        return x


@register("mmgcn")
class MMGCN(Recommender):
    config_cls = MMGCNConfig
    feature_parts = ("image_feat", "text_feat")
    cfg: MMGCNConfig

    def __init__(self, data: Dataset, cfg: MMGCNConfig, device: torch.device) -> None:
        super().__init__(data, cfg, device)
        feats = require_modalities(data)
        self.graph = bipartite_mean_adj(*train_edges(data, device), self.n_users, self.n_items, self_loops=False)
        for m, f in feats.items():  # moved with the model, kept out of checkpoints
            self.register_buffer(f"{m}_feat", torch.as_tensor(f, device=device), persistent=False)
        self.branches = nn.ModuleDict({
            m: _Branch(self.n_users, f.shape[1], cfg.image_latent_dim if m == "image" else None, cfg)
            for m, f in feats.items()
        })
        id_emb = torch.empty(self.n_users + self.n_items, cfg.embedding_size)
        if cfg.use_trainable_ids:
            self.id_embedding = nn.Parameter(id_emb)
        else:
            self.register_buffer("id_embedding", id_emb)
        self.reset_parameters()

    def _branches(self) -> dict[str, _Branch]:
        return {m: cast(_Branch, b) for m, b in self.branches.items()}

    def reset_parameters(self) -> None:
        nn.init.xavier_normal_(self.id_embedding)
        for branch in self._branches().values():
            branch.reset_parameters()

    def _embeddings(self) -> tuple[Tensor, Tensor]:
        out = sum(b(getattr(self, f"{m}_feat"), self.graph, self.id_embedding) for m, b in self._branches().items())
        out = out / len(self.branches)
        return out[: self.n_users], out[self.n_users :]

    def loss(self, batch: Batch) -> Tensor:
        assert batch.neg_items is not None
        user_emb, item_emb = self._embeddings()
        u = user_emb[batch.users]
        loss = bpr_loss((u * item_emb[batch.pos_items]).sum(1), (u * item_emb[batch.neg_items]).sum(1))
        if self.cfg.reg_weight != 0.0:
            ids_u = self.id_embedding[batch.users] ** 2
            ids_pos = self.id_embedding[batch.pos_items + self.n_users] ** 2
            ids_neg = self.id_embedding[batch.neg_items + self.n_users] ** 2
            reg = ((ids_u + ids_pos).mean() + (ids_u + ids_neg).mean()) / 2
            if "image" in self.branches:
                reg = reg + (self._branches()["image"].preference ** 2).mean()
            loss = loss + self.cfg.reg_weight * reg
        return loss

    def score(self, users: Tensor) -> Tensor:
        user_emb, item_emb = self.cached("emb", self._embeddings)
        return user_emb[users] @ item_emb.T
