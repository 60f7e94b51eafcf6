r"""DualGNN: a dual graph neural network for multimedia recommendation.

Wang et al., "DualGNN: Dual Graph Neural Network for Multimedia Recommendation", IEEE Transactions
on Multimedia 2021, https://ieeexplore.ieee.org/abstract/document/9662655, as MMRec runs it.

Every modality ``m`` has its own encoder over the user-item graph (`_blocks.modality_gcn`):
:math:`Z_m = \sum_{l=0}^{L} \hat A^l X_m` with ``X_m`` the normalised [user preferences; projected
item features]. Users fuse their modality views with learnt per-user weights, then aggregate their
neighbours on the user co-interaction graph (`_blocks.user_graph`, re-sampled every epoch):

.. math::
    z_u = \sum_m \alpha_{u,m}\, Z_m[u],\qquad
    e_u = z_u + \sum_{j=1}^{k} \mathrm{softmax}(c_{u,\cdot})_j\, z_{n_{u,j}},\qquad
    e_i = \sum_m Z_m[i],\qquad s(u, i) = e_u^\top e_i

trained with :math:`-\mathrm{mean}\log_2\sigma(s^+ - s^-) + \lambda(\sum_m \mathrm{mean}(P_m[b]^2)
+ \mathrm{mean}(\alpha^2))`. ``alpha`` starts as a softmax over modalities of Xavier-normal values and
is then trained freely (not re-normalised), as in MMRec.

Deviations from MMRec:

- Bug not copied: MMRec's ``representation += t_rep`` adds in place into the tensor that is also
  its image view, so its users get :math:`\alpha_{u,v}(Z_v + Z_t) + \alpha_{u,t} Z_t`; we use the
  weighted sum the model describes, :math:`\alpha_{u,v} Z_v + \alpha_{u,t} Z_t`. Items are unaffected.
- ``score`` propagates with the current parameters; MMRec ranks with ``result_embed`` saved by the
  last training batch's forward pass, i.e. with the parameters from before the last optimiser step.
- Dead code left out: the per-modality "dropped" item edges (``edge_index_dropv``/``dropt``) are built
  but never used by MMRec's encoder; ``weight_i`` only enters the loss through its own L2 term, so it
  cannot change any score (the reported loss is lower by that term, ``reg_weight * mean(weight_i^2)``).
- The user graph is read from ``user_graph_dict.npy`` as MMRec does when the dataset folder has one,
  otherwise built from the training interactions (MMRec requires running its preprocessing script);
  either way it is cached, and sparse (MMRec's script holds a dense users x users matrix). Users with
  fewer than ``k`` neighbours are padded by drawing uniformly among their neighbours (MMRec draws from
  the growing padded list); the epoch's draw is a buffer, so a checkpoint restores its graph.
- Hard-coded sizes become settings with MMRec's values: the latent size (64, ``embedding_size``), the
  propagation depth (2; the ``n_layers: 2`` of MMRec's yaml is never read), the neighbours per user
  (40). MMRec's ``aggr_mode`` grid has the single value ``add``, which is what is implemented.
- With one modality there is no ``alpha`` (MMRec keeps the unused table and its L2 term).
- Duplicate (user, item) training rows count once in the graph.

Shapes: ``P_m`` ``(n_users, d)``, ``alpha`` ``(n_users, 2)``, features ``(n_items, d_m)``,
``e_u``/``e_i`` ``(·, d)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from mgtune.data import Dataset
from mgtune.models._blocks.modality_gcn import ModalityGCNRecommender
from mgtune.models.base import ModelConfig
from mgtune.models.registry import register

__all__ = ["DualGNNConfig", "DualGNN"]


@dataclass(frozen=True)
class DualGNNConfig(ModelConfig):
    embedding_size: int = 64  # latent size of every modality encoder (MMRec hard-codes 64)
    n_layers: int = 2  # propagation steps over the user-item graph (MMRec hard-codes 2)
    user_graph_k: int = 40  # neighbours per user on the co-interaction graph (MMRec's self.k)
    reg_weight: float = 0.1  # first value of the reference grid (no best value is reported)

    def __post_init__(self) -> None:
        for name in ("embedding_size", "user_graph_k"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.n_layers < 0:
            raise ValueError(f"n_layers must be >= 0, got {self.n_layers}")


@register("dualgnn")
class DualGNN(ModalityGCNRecommender):
    config_cls = DualGNNConfig
    cfg: DualGNNConfig

    def __init__(self, data: Dataset, cfg: DualGNNConfig, device: torch.device) -> None:
        super().__init__(data, cfg, device)
        self.reset_parameters()

    def _embeddings(self) -> tuple[Tensor, Tensor]:
        views = self._views()
        if self.modality_weight is None:
            user = views[0][: self.n_users]
        else:
            user = sum(w.unsqueeze(1) * z[: self.n_users] for w, z in zip(self.modality_weight.T, views))
        items = sum(z[self.n_users :] for z in views)
        return user + self.user_graph(user), items  # type: ignore[return-value]
