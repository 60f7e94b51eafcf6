r"""MVGAE: Multi-modal Variational Graph Auto-Encoder.

Yi & Chen, "Multi-modal Variational Graph Auto-encoder for Recommendation Systems", IEEE TMM 2021,
https://doi.org/10.1109/TMM.2021.3111487 (code: https://github.com/jing-1/MVGAE), as ported to MMRec.

Every modality ``m`` (image, text, and a collaborative "id" branch fed with fixed random item
vectors) has its own graph encoder over all ``n_users + n_items`` nodes of the user-item graph.
Its input is ``x = \mathrm{normalize}([P_m; \mathrm{MLP}_m(F_m)])`` with ``P_m`` fixed random user
vectors; with ``\hat A = D^{-1}(A + I)`` (mean aggregation, self loops) and a graph convolution
``\mathrm{conv}(x) = \mathrm{dropout}(\mathrm{normalize}(\hat A x W + b))``,

.. math::
    x \leftarrow \mathrm{lrelu}(G_l\, \mathrm{lrelu}(\mathrm{conv}_l(x)))\quad (l = 1..L),\qquad
    \mu_m = G_\mu\, \mathrm{lrelu}(\mathrm{conv}_\mu(x)) + \mathrm{lrelu}(W_\mu x),

and the same for :math:`\log\sigma^2_m`. The posteriors are fused by products of Gaussian experts,
first over the content modalities and then with the id branch:

.. math::
    \mathrm{PoE}(\{\mu_k, \sigma^2_k\}):\ \tau_k = 1 / (\sigma^2_k + 10^{-8}),\quad
    \mu = \frac{\sum_k \tau_k \mu_k}{\sum_k \tau_k},\quad \sigma^2 = \frac{1}{\sum_k \tau_k}.

For the fused posterior and each branch's own, ``z = \mu + 0.1\,\epsilon\,\sigma`` (``\log\sigma^2``
clamped at 10), ``\tilde z = \mathrm{sigmoid}(z)``, and with ``B`` the batch of
``(u_b, i_b, n_b)`` triples and ``\beta`` = ``kl_weight``:

.. math::
    s^+_b = \tilde z_{u_b}^\top \tilde z_{i_b},\qquad
    s^-_b = \tilde z_{u_b}^\top \tilde z_{n_b},\qquad
    L = \sum_{\text{4 posteriors}} \Big[ -\sum_{b \in B} \log_2 \sigma(s^+_b - s^-_b)
        + \beta\, \mathrm{KL}(\mu, \sigma^2) \Big],

``KL = -\frac12 \mathrm{mean}_{nodes} \sum_d (1 + \log\sigma^2 - \mu^2 - \sigma^2)``. Scores are
``\mathrm{sigmoid}(\mu_u)^\top \mathrm{sigmoid}(\mu_i)`` of the fused posterior mean.

Deviations from MMRec that compute the same quantities without the reference's costs: mean
aggregation is one product with the symmetric ``A + I`` built once, scaled by ``D^{-1}``
(message passing is linear in ``x``, so the mean of ``x_j W`` is ``(\hat A x) W``; the mu and
logvar heads share one ``\hat A x``), with a duplicated interaction counted once. The
reparametrisation noise is drawn only for the batch's distinct nodes, the only rows of ``z`` the
loss reads (one draw per node, as when sampling all ``n_users + n_items`` rows).
``linear_layer1``/``linear_layer2`` are not built: with ``concate = False`` (MMRec's setting)
their outputs are computed and thrown away. The KL weight is ``kl_weight``: MMRec reads it from
``beta``, the same config key as Mirror Gradient's flip interval, so in the reference its grid
over ``beta`` = [0.01, 0.1, 1] set both at once.

Reference bugs not copied, each of which changes results:
(1) MMRec decodes with ``sigmoid=True``, scoring ``\sigma(\tilde z_u^\top \tilde z_i)``: the dot
product of two 64-d vectors in (0, 1) is about 16, where the sigmoid is flat (slope ~1e-7), so the
ranking loss has no gradient and the model does not learn (MMRec issue #4, "recall is nearly
zero"; on our small synthetic set, recall@20 stayed at random level for 3 epochs). The original
code (jing-1/MVGAE ``recon_loss``) decodes with ``sigmoid=False``, as here.
(2) MMRec indexes the latent table with raw item ids, so its "item" rows are the rows of the users
with those ids (its MMGCN adds ``n_users``; the original's data were already offset); here item
``i`` is node ``n_users + i``.
(3) MMRec scores with the embeddings stored by the last *training* forward pass (dropout on, from
before the last optimiser step); here evaluation recomputes the fused mean in eval mode, once per
evaluation (`cached`).
(4) MMRec needs both image and text features and crashes without either; here any non-empty set
of modalities is fused.
(5) The original scores each user against the hardest of *its own* negatives: a ``(B, K)`` list
per row, ``users.repeat(1, neg_items.size(1))``, a max over ``K``. MMRec's batches carry one
negative per row as a 1-D ``(B,)`` tensor, and it changed ``size(1)`` to ``size(0)`` so that the
shapes broadcast. That contrasts every user with the hardest of *all* the batch's ~2,000
negatives, a pool that often holds the user's own liked items. By default each user meets its own
sampled negative, as in the original with ``K = 1``. ``batch_hardest_negative = True`` gives
MMRec's loss, without its ``B x B x d`` tensor of rows (2048 x 2048 x 64 floats, 1 GiB forward
plus its scatter backward, for each of the four posteriors of every batch): the hardest negative
is found by one ``(B, N)`` product under ``no_grad``, and only the chosen pairs are
differentiated. On the small synthetic preset (20 epochs, defaults, seeds 999 / 1 / 2), test
recall@20 was 0.165 / 0.121 / 0.141 with per-row negatives and 0.065 / 0.083 / 0.086 with
MMRec's (a random ranking scores 0.025; popularity 0.113).
Kept on purpose: the user inputs ``P_m`` and the id branch's item inputs are fixed random tensors
(persistent buffers), not parameters, because neither MMRec nor the original registers them with
the optimiser; the gate of layer 2 and beyond keeps PyTorch's default initialisation (neither code
applies Xavier to it; MMRec has the line commented out); squashing ``z`` with a sigmoid is both codes'
hard-coded "amazon" branch. ``n_layers`` above 2 is an extension (MMRec stops at 2).

Shapes: features ``(n_items, d_m)``, ``P_m`` ``(n_users, dim_latent)``, ``\mu, \log\sigma^2``
``(n_users + n_items, d)`` with ``d`` = ``embedding_size``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mgtune.data import Batch, Dataset
from mgtune.models._blocks.interactions import require_modalities, train_edges
from mgtune.models._blocks.mean_aggregation import MeanAdjacency, bipartite_mean_adj, mean_aggregate
from mgtune.models.base import ModelConfig, Recommender
from mgtune.models.registry import register

__all__ = ["MVGAEConfig", "MVGAE"]

_MAX_LOGVAR = 10.0  # log-variance clamp before exp (MMRec's MAX_LOGVAR)
_NOISE_SCALE = 0.1  # reparametrisation noise is 0.1 * sigma in MMRec
_POE_EPS = 1e-8  # added to each expert's variance
_ID_BRANCH = "id"


@dataclass(frozen=True)
class MVGAEConfig(ModelConfig):
    embedding_size: int = 64  # d: width of mu, logvar and the GCN layers
    dim_latent: int = 128  # width each modality's input is projected to (hard-coded 128 in MMRec)
    n_layers: int = 1  # GCN layers before the mu/logvar heads (MMRec's n_layers: 1)
    # weight of every KL term; the reference's `beta`, grid [0.01, 0.1, 1]: no best value is
    # reported, so the first grid value
    kl_weight: float = 0.01
    dropout: float = 0.1  # after every graph convolution (hard-coded 0.1 in MMRec)
    # True: MMRec's loss, every user against the hardest of all the batch's negatives (bug (5) in
    # the module docstring); False: the original's, every user against its own negative
    batch_hardest_negative: bool = False

    def __post_init__(self) -> None:
        if self.n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {self.n_layers}")
        if self.kl_weight < 0:
            raise ValueError(f"kl_weight must be >= 0, got {self.kl_weight}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


class _MeanConv(nn.Module):
    """MMRec's ``BaseModel`` with ``aggr="mean"``: ``dropout(normalize(mean_nbrs(x W) + b))``.

    ``mean_nbrs(x W) = mean_nbrs(x) W``: `from_aggregated` takes ``mean_nbrs(x)`` computed once
    for several convolutions of the same ``x``.
    """

    def __init__(self, in_dim: int, out_dim: int, dropout: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(in_dim, out_dim))
        self.bias = nn.Parameter(torch.empty(out_dim))
        self.dropout = dropout

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.weight.shape[0])  # PyG's `uniform(in_channels, bias)`
        nn.init.uniform_(self.bias, -bound, bound)
        nn.init.xavier_normal_(self.weight)  # MMRec overwrites PyG's uniform weight init

    def forward(self, graph: MeanAdjacency, x: Tensor) -> Tensor:
        return self._finish(mean_aggregate(graph, x @ self.weight))

    def from_aggregated(self, mean_x: Tensor) -> Tensor:
        return self._finish(mean_x @ self.weight)

    def _finish(self, h: Tensor) -> Tensor:
        h = F.normalize(h + self.bias, dim=-1)
        return F.dropout(h, p=self.dropout, training=self.training)


class _Head(nn.Module):
    """``G lrelu(conv(x)) + lrelu(W x)``: the mu or the logvar of one branch."""

    def __init__(self, dim: int, dropout: float) -> None:
        super().__init__()
        self.conv = _MeanConv(dim, dim, dropout)
        self.gate = nn.Linear(dim, dim)
        self.skip = nn.Linear(dim, dim)

    def reset_parameters(self) -> None:
        self.conv.reset_parameters()
        for lin in (self.gate, self.skip):
            lin.reset_parameters()
            nn.init.xavier_normal_(lin.weight)

    def forward(self, mean_x: Tensor, x: Tensor) -> Tensor:
        return self.gate(F.leaky_relu(self.conv.from_aggregated(mean_x))) + F.leaky_relu(self.skip(x))


class _Encoder(nn.Module):
    """One branch's graph encoder (MMRec's ``GCN``): its Gaussian posterior over all nodes."""

    preference: Tensor

    def __init__(self, n_users: int, in_dim: int, cfg: MVGAEConfig) -> None:
        super().__init__()
        d = cfg.embedding_size
        # fixed random user inputs: never trained in MMRec (see the module docstring)
        self.register_buffer("preference", torch.empty(n_users, cfg.dim_latent))
        self.proj = nn.Linear(in_dim, cfg.dim_latent)
        dims = [cfg.dim_latent] + [d] * cfg.n_layers
        self.convs = nn.ModuleList(_MeanConv(dims[i], d, cfg.dropout) for i in range(cfg.n_layers))
        self.gates = nn.ModuleList(nn.Linear(d, d) for _ in range(cfg.n_layers))
        self.mu = _Head(d, cfg.dropout)
        self.logvar = _Head(d, cfg.dropout)

    def reset_parameters(self) -> None:
        nn.init.xavier_normal_(self.preference)
        self.proj.reset_parameters()
        nn.init.xavier_normal_(self.proj.weight)
        for conv in self.convs:
            assert isinstance(conv, _MeanConv)
            conv.reset_parameters()
        for i, gate in enumerate(self.gates):
            assert isinstance(gate, nn.Linear)
            gate.reset_parameters()
            if i == 0:  # MMRec leaves g_layer2's default init (its xavier line is commented out)
                nn.init.xavier_normal_(gate.weight)
        self.mu.reset_parameters()
        self.logvar.reset_parameters()

    def forward(self, graph: MeanAdjacency, features: Tensor) -> tuple[Tensor, Tensor]:
        x = F.normalize(torch.cat([self.preference, self.proj(features)]), dim=-1)
        for conv, gate in zip(self.convs, self.gates):
            x = F.leaky_relu(gate(F.leaky_relu(conv(graph, x))))
        mean_x = mean_aggregate(graph, x)  # one sparse product shared by both heads
        return self.mu(mean_x, x), self.logvar(mean_x, x)


def _product_of_experts(mus: list[Tensor], logvars: list[Tensor]) -> tuple[Tensor, Tensor]:
    """Mean and log-variance of the product of independent Gaussian experts."""
    precision = [1.0 / (lv.exp() + _POE_EPS) for lv in logvars]
    total = sum(precision[1:], precision[0])
    mu = sum((m * p for m, p in zip(mus[1:], precision[1:])), mus[0] * precision[0]) / total
    return mu, -total.log()


def _kl_to_standard_normal(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, sigma^2) || N(0, I)), summed over dimensions and averaged over nodes."""
    logvar = logvar.clamp(max=_MAX_LOGVAR)
    return -0.5 * (1 + logvar - mu**2 - logvar.exp()).sum(1).mean()


@register("mvgae")
class MVGAE(Recommender):
    config_cls = MVGAEConfig
    feature_parts = ("feat_image", "feat_text")
    cfg: MVGAEConfig

    def __init__(self, data: Dataset, cfg: MVGAEConfig, device: torch.device) -> None:
        super().__init__(data, cfg, device)
        feats = require_modalities(data)
        self.modalities = list(feats)
        for m, f in feats.items():
            self.register_buffer(f"feat_{m}", torch.as_tensor(f, device=device), persistent=False)
        # the id branch's item inputs: fixed random vectors, as in MMRec
        self.register_buffer(f"feat_{_ID_BRANCH}", torch.empty(self.n_items, cfg.embedding_size, device=device))
        self.graph = bipartite_mean_adj(*train_edges(data, device), self.n_users, self.n_items)
        in_dims = {m: f.shape[1] for m, f in feats.items()} | {_ID_BRANCH: cfg.embedding_size}
        self.encoders = nn.ModuleDict({m: _Encoder(self.n_users, d, cfg) for m, d in in_dims.items()})
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.xavier_normal_(self.get_buffer(f"feat_{_ID_BRANCH}"))
        for enc in self.encoders.values():
            assert isinstance(enc, _Encoder)
            enc.reset_parameters()

    def _posteriors(self) -> dict[str, tuple[Tensor, Tensor]]:
        """Every branch's ``(mu, logvar)`` and the fused one under ``"fused"``."""
        out = {m: enc(self.graph, self.get_buffer(f"feat_{m}")) for m, enc in self.encoders.items()}
        mus = [out[m][0] for m in self.modalities]
        logvars = [out[m][1] for m in self.modalities]
        mu, logvar = (mus[0], logvars[0]) if len(mus) == 1 else _product_of_experts(mus, logvars)
        out["fused"] = _product_of_experts([mu, out[_ID_BRANCH][0]], [logvar, out[_ID_BRANCH][1]])
        return out

    def _sample(self, mu: Tensor, logvar: Tensor) -> Tensor:
        if not self.training:
            return mu
        return mu + torch.randn_like(logvar) * _NOISE_SCALE * (0.5 * logvar.clamp(max=_MAX_LOGVAR)).exp()

    @staticmethod
    def _recon_loss(zu: Tensor, zp: Tensor, zn: Tensor, hardest_of_all: bool) -> Tensor:
        """Ranking loss of squashed rows ``(B, d)``: each user against its own negative, or with
        ``hardest_of_all`` against the hardest of all rows of ``zn`` (which may then be ``(N, d)``)."""
        if hardest_of_all:
            # found by one (B, N) product without autograd; then only the chosen pairs are
            # differentiated. Same value and gradient as MMRec's max over a (B, B, d) tensor: a
            # max sends its gradient to its argmax, and a negative drawn twice is one row of z.
            with torch.no_grad():
                hardest = (zu @ zn.T).argmax(1)
            zn = zn[hardest]
        return -F.logsigmoid((zu * zp).sum(1) - (zu * zn).sum(1)).sum() / math.log(2.0)

    def loss(self, batch: Batch) -> Tensor:
        assert batch.neg_items is not None
        b = len(batch.users)
        # z is needed only at the batch's distinct nodes: sample the noise there alone (one draw
        # per node, as when sampling every node) instead of for all n_users + n_items rows.
        nodes = torch.cat([batch.users, batch.pos_items + self.n_users, batch.neg_items + self.n_users])
        rows, where = torch.unique(nodes, return_inverse=True)
        at_user, at_pos, at_neg = where[:b], where[b : 2 * b], where[2 * b :]
        total = torch.zeros((), device=batch.users.device)
        for mu, logvar in self._posteriors().values():
            z = torch.sigmoid(self._sample(mu[rows], logvar[rows]))
            total = total + self._recon_loss(z[at_user], z[at_pos], z[at_neg], self.cfg.batch_hardest_negative)
            total = total + self.cfg.kl_weight * _kl_to_standard_normal(mu, logvar)
        return total

    def score(self, users: Tensor) -> Tensor:
        emb = self.cached("emb", lambda: torch.sigmoid(self._posteriors()["fused"][0]))
        return emb[users] @ emb[self.n_users :].T
