"""User-item graph propagation: the normalised bipartite adjacency and LightGCN's layer mean."""

from __future__ import annotations

import torch
from torch import Tensor

from mgtune.models._blocks.sparse import sparse_matrix, symmetric_spmm

__all__ = ["bipartite_norm_adj", "bipartite_edge_weights", "layer_mean"]


def bipartite_edge_weights(users: Tensor, items: Tensor, n_users: int, n_items: int) -> Tensor:
    """``1 / sqrt(deg(u) * deg(i))`` per edge (degrees + 1e-7, as in MMRec)."""
    du = torch.bincount(users, minlength=n_users).float() + 1e-7
    di = torch.bincount(items, minlength=n_items).float() + 1e-7
    return du[users].rsqrt() * di[items].rsqrt()


def bipartite_norm_adj(users: Tensor, items: Tensor, n_users: int, n_items: int) -> Tensor:
    r"""Symmetric normalised adjacency of the user-item graph, ``D^{-1/2} A D^{-1/2}``.

    .. math:: A = \begin{pmatrix} 0 & R \\ R^T & 0 \end{pmatrix},\quad R \in \{0,1\}^{n_users \times n_items}

    Duplicate (user, item) pairs count once. Shape: ``(n_users + n_items, n_users + n_items)``, CSR.
    """
    key = torch.unique(users * n_items + items)
    users, items = key // n_items, key % n_items
    w = bipartite_edge_weights(users, items, n_users, n_items)
    n = n_users + n_items
    rows = torch.cat([users, items + n_users])
    cols = torch.cat([items + n_users, users])
    return sparse_matrix(rows, cols, torch.cat([w, w]), (n, n))


def layer_mean(adj: Tensor, ego: Tensor, n_layers: int, symmetric: bool = False) -> Tensor:
    """LightGCN: the mean of ``ego, A ego, ..., A^L ego`` (layer 0 included).

    ``symmetric=True`` (the caller guarantees ``A = A^T``, as for `bipartite_norm_adj`) lets the
    backward pass reuse ``A`` instead of building its transpose, halving the cost on CPU. Without
    it (a matrix drawn anew each batch, such as SELFCFED_LGN's edge dropout) the backward transposes.
    """
    product = symmetric_spmm if symmetric else torch.sparse.mm
    total = ego
    h = ego
    for _ in range(n_layers):
        h = product(adj, h)
        total = total + h
    return total / (n_layers + 1)
