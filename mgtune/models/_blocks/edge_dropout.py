"""Training-time graph perturbations: edge pruning (per epoch) and sparse edge dropout (per batch)."""

from __future__ import annotations

import torch
from torch import Tensor

from mgtune.models._blocks.propagation import bipartite_edge_weights, bipartite_norm_adj

__all__ = ["PrunableGraph", "pruned_edge_ids", "sparse_dropout"]


def pruned_edge_ids(weights: Tensor, dropout: float, degree_sensitive: bool = True) -> Tensor:
    r"""Indices of the ``int(n * (1 - dropout))`` edges kept by one round of pruning.

    ``degree_sensitive`` samples without replacement with probability ∝ ``weights`` (FREEDOM's and
    LayerGCN's degree-sensitive pruning, with ``weights`` = ``1/sqrt(d_u d_i)``, so edges between
    high-degree nodes go first); otherwise the kept edges are a uniform random subset.
    Uses torch's global RNG on ``weights``' device (seeded by the training loop).

    Shapes: ``weights`` ``(n_edges,)`` → ``(n_keep,)`` long.
    """
    n_keep = int(len(weights) * (1.0 - dropout))
    if degree_sensitive:
        return torch.multinomial(weights, n_keep, replacement=False)
    return torch.randperm(len(weights), device=weights.device)[:n_keep]


class PrunableGraph:
    """The training user-item graph, ready for per-epoch edge pruning (FREEDOM, LayerGCN).

    Holds the distinct edges, their weights ``1/sqrt(d_u d_i)`` and the full normalised adjacency
    ``norm_adj`` (used at evaluation). Pass each (user, item) pair once (`interactions.train_edges`).
    Shapes: ``users``, ``items`` ``(n_edges,)``.
    """

    def __init__(self, users: Tensor, items: Tensor, n_users: int, n_items: int) -> None:
        self.users, self.items = users, items
        self.n_users, self.n_items = n_users, n_items
        self.weights = bipartite_edge_weights(users, items, n_users, n_items)
        self.norm_adj = bipartite_norm_adj(users, items, n_users, n_items)

    def pruned(self, dropout: float, degree_sensitive: bool = True) -> Tensor:
        """``norm_adj`` rebuilt from the edges kept by `pruned_edge_ids` (itself when ``dropout`` <= 0)."""
        if dropout <= 0.0:
            return self.norm_adj
        keep = pruned_edge_ids(self.weights, dropout, degree_sensitive)
        return bipartite_norm_adj(self.users[keep], self.items[keep], self.n_users, self.n_items)


def sparse_dropout(adj: Tensor, keep_prob: float) -> Tensor:
    r"""Drop each stored entry of the CSR matrix ``adj`` independently, keeping it with
    probability ``keep_prob``, and scale the survivors by ``1 / keep_prob`` (inverted dropout,
    as BUIR's / MMRec's ``sparse_dropout``). Entries are dropped one by one, so ``A_{ij}`` and
    ``A_{ji}`` of a symmetric matrix are dropped independently, as in the reference.

    The result is built directly in CSR form (row order is preserved by masking), with no sort.
    Shapes: ``adj`` ``(n, m)`` CSR → ``(n, m)`` CSR.
    """
    crow, col, val = adj.crow_indices(), adj.col_indices(), adj.values()
    n_rows = adj.shape[0]
    # kept entries as indices: one host sync per call (the nonzero), where boolean masks would sync three times
    keep = (torch.rand(val.shape, device=val.device) < keep_prob).nonzero().squeeze(1)
    rows = torch.repeat_interleave(torch.arange(n_rows, device=val.device), crow.diff(), output_size=val.numel())
    counts = torch.bincount(rows[keep], minlength=n_rows)
    new_crow = torch.cat([crow.new_zeros(1), counts.cumsum(0)])
    return torch.sparse_csr_tensor(new_crow, col[keep], val[keep] / keep_prob, adj.shape)
