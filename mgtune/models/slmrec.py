r"""SLMRec: Self-supervised Learning for Multimedia Recommendation (FAC task).

Tao, Liu, Xia, Wang, Yang, Li, Chua, "Self-supervised Learning for Multimedia Recommendation",
IEEE TMM 2022, https://doi.org/10.1109/TMM.2022.3187556 (code: https://github.com/zltao/SLMRec),
in MMRec's version with the "FAC" (fine and coarse) self-supervised task.

Every source -- item ids, image, text -- gets its own LightGCN over the same user-item graph, with
the *same* user embeddings and that source's item representations:

.. math::
    X_s = \mathrm{mean}_{l=0..L}\big(\hat A^l [E^u; I_s]\big),\qquad
    I_{id} = E^i,\quad I_m = W_m\, \bar x^m + b_m\ (\bar x^m \text{ row-L2-normalised features}),

.. math::
    e_u = W_U [x^{id}_u; x^{v}_u; x^{t}_u] + b_U,\qquad
    e_i = W_I [x^{id}_i; x^{v}_i; x^{t}_i] + b_I,\qquad s(u, i) = e_u^\top e_i .

Loss, over a batch of (user, positive item) pairs with in-batch negatives:

.. math::
    \mathcal L = \mathrm{CE}\Big(\frac{\hat e_u \hat e_i^\top}{\tau}\Big)
        + \alpha \Big[\mathrm{CE}\Big(\frac{a_i b_i^\top}{\tau_{ssl}}\Big)
        + \mathrm{CE}\Big(\frac{g(a_i) c_i^\top}{\tau_{ssl}}\Big)\Big]

with :math:`\hat e` L2-normalised, :math:`\mathrm{CE}` the cross-entropy of each row against its
diagonal, :math:`a_i = g_{i}(x^{id}_i)`, :math:`b_i = g_{v}(x^{v}_i)`, :math:`g` = two more linear
maps (``d -> d -> d/2``) and :math:`c_i = g_{t}(x^{t}_i)` (``d -> d/2``) -- the SSL logits are *not*
normalised, as in MMRec. ``τ`` = ``temperature``, ``τ_ssl`` = ``ssl_temp``, ``α`` = ``ssl_alpha``,
``L`` = ``n_layers``; ``\hat A`` is ``D^{-1/2} A D^{-1/2}`` (MMRec's ``adj_type: pre``).
Image features are required; without text features the model is MMRec's two-source ("kwai")
variant (ids + image, image term only).

Deviations from MMRec: the three LightGCNs run as one sparse product over the concatenated
``(n_users + n_items, 3d)`` table (same numbers, one pass). Scores are the raw inner products: MMRec
applies a sigmoid, which cannot change a ranking except by saturating large scores to equal
values (ties), so it is dropped. Bugs not copied: MMRec's ``full_sort_predict`` scores with the
embeddings left over from the last *training* forward (computed before the last optimiser step,
or by the mirrored step's recomputation); here scoring propagates the current parameters. The
``FD``/``FM``/``FD+FM`` tasks, ``mm_fusion_mode: mean``, ``init: normal`` and the other
``adj_type`` values are not ported: in MMRec they crash (a missing ``data.input.dataset`` key,
audio tables that do not exist, a ``3d``-input layer fed ``d`` columns, an undefined
``embedding_item_ID``) or are never selected. The unused audio head ``g_a_iva`` is not created.
The YAML's ``reg`` is in its grid but read nowhere, so it is no field here (nor in the search
space); its ``weight_decay: 1e-4`` is the optimiser's and its ``learning_rate`` grid the trainer's
(training settings, not model ones). Negatives are
never read, so none are sampled (``needs_negatives = False``). Names: ``recdim`` is
``embedding_size``, ``layer_num`` is ``n_layers``, ``temp`` is ``temperature``.

Shapes: ``E^u`` ``(n_users, d)``, ``E^i`` ``(n_items, d)``, features ``(n_items, d_m)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mgtune.data import Batch, Dataset
from mgtune.models._blocks.interactions import train_edges
from mgtune.models._blocks.losses import info_nce
from mgtune.models._blocks.propagation import bipartite_norm_adj, layer_mean
from mgtune.models.base import ModelConfig, Recommender
from mgtune.models.registry import register

__all__ = ["SLMRecConfig", "SLMRec"]


@dataclass(frozen=True)
class SLMRecConfig(ModelConfig):
    embedding_size: int = 64  # MMRec's recdim
    n_layers: int = 3  # LightGCN layers per source; MMRec's layer_num
    temperature: float = 0.2  # of the main InfoNCE; MMRec's temp
    ssl_temp: float = 0.1  # of the FAC losses; grid [0.1, 0.2, 0.5, 1.0], first value
    ssl_alpha: float = 0.01  # weight of the FAC losses; grid [0.01, 0.05, 0.1, 0.5, 1.0], first value

    def __post_init__(self) -> None:
        if self.embedding_size < 2:
            raise ValueError(f"embedding_size must be >= 2, got {self.embedding_size}")
        if self.temperature <= 0 or self.ssl_temp <= 0:
            raise ValueError(f"temperature and ssl_temp must be > 0, got {self.temperature}, {self.ssl_temp}")


def _dot_info_nce(a: Tensor, b: Tensor, temperature: float) -> Tensor:
    """InfoNCE on raw (unnormalised) inner products: row ``j`` of ``a`` should pick row ``j`` of ``b``."""
    logits = a @ b.T / temperature
    return F.cross_entropy(logits, torch.arange(len(a), device=a.device))


@register("slmrec")
class SLMRec(Recommender):
    config_cls = SLMRecConfig
    needs_modalities = "image"
    feature_parts = ("image_feat", "text_feat")
    needs_negatives = False
    cfg: SLMRecConfig

    def __init__(self, data: Dataset, cfg: SLMRecConfig, device: torch.device) -> None:
        super().__init__(data, cfg, device)
        feats = {"image": data.features("image")}  # raises a clear error when absent
        if data.text_feat is not None:
            feats["text"] = data.text_feat
        self.norm_adj = bipartite_norm_adj(*train_edges(data, device), self.n_users, self.n_items)

        d = cfg.embedding_size
        self.modalities = list(feats)
        for m, f in feats.items():  # data, not state: kept out of checkpoints
            self.register_buffer(f"{m}_feat", F.normalize(torch.as_tensor(f, device=device), dim=1), persistent=False)
        self.user_embedding = nn.Embedding(self.n_users, d)
        self.item_embedding = nn.Embedding(self.n_items, d)
        self.feat_proj = nn.ModuleDict({m: nn.Linear(f.shape[1], d) for m, f in feats.items()})
        n_sources = 1 + len(feats)
        self.user_fusion = nn.Linear(n_sources * d, d)
        self.item_fusion = nn.Linear(n_sources * d, d)
        # FAC heads: id <-> image at d, then (id, image) <-> text at d/2
        self.g_i_iv = nn.Linear(d, d)
        self.g_v_iv = nn.Linear(d, d)
        if "text" in feats:
            self.g_iv_iva = nn.Linear(d, d)
            self.g_iva_ivat = nn.Linear(d, d // 2)
            self.g_t_ivat = nn.Linear(d, d // 2)
        self.reset_parameters()

    def _linears(self) -> list[nn.Linear]:
        return [m for m in self.modules() if isinstance(m, nn.Linear)]

    def reset_parameters(self) -> None:
        nn.init.xavier_uniform_(self.user_embedding.weight)
        nn.init.xavier_uniform_(self.item_embedding.weight)
        for lin in self._linears():
            lin.reset_parameters()  # biases keep PyTorch's default init, as in MMRec
            nn.init.xavier_uniform_(lin.weight)

    def _sources(self) -> tuple[Tensor, Tensor]:
        """Per-source propagated embeddings, sources side by side: ``(n_users, S d)``, ``(n_items, S d)``."""
        user = self.user_embedding.weight
        item_sources = [self.item_embedding.weight]
        item_sources += [self.feat_proj[m](getattr(self, f"{m}_feat")) for m in self.modalities]
        ego = torch.cat([user.repeat(1, len(item_sources)), torch.cat(item_sources, 1)])
        out = layer_mean(self.norm_adj, ego, self.cfg.n_layers, symmetric=True)  # one pass for all sources
        user_src, item_src = out.split([self.n_users, self.n_items])
        return user_src, item_src

    def loss(self, batch: Batch) -> Tensor:
        cfg, d = self.cfg, self.cfg.embedding_size
        user_src, item_src = self._sources()
        users, items = batch.users, batch.pos_items
        main = info_nce(self.user_fusion(user_src[users]), self.item_fusion(item_src[items]), cfg.temperature)

        per_item = item_src[items].split(d, dim=1)  # id, image[, text]
        x_i_iv = self.g_i_iv(per_item[0])
        ssl = _dot_info_nce(x_i_iv, self.g_v_iv(per_item[1]), cfg.ssl_temp)
        if "text" in self.modalities:
            x_iva_ivat = self.g_iva_ivat(self.g_iv_iva(x_i_iv))
            ssl = ssl + _dot_info_nce(x_iva_ivat, self.g_t_ivat(per_item[2]), cfg.ssl_temp)
        return main + cfg.ssl_alpha * ssl

    def score(self, users: Tensor) -> Tensor:
        def build() -> tuple[Tensor, Tensor]:
            user_src, item_src = self._sources()
            return self.user_fusion(user_src), self.item_fusion(item_src)

        user_emb, item_emb = self.cached("emb", build)
        return user_emb[users] @ item_emb.T
