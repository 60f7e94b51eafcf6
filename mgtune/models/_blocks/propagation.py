"""Graph normalisation and propagation: :math:`D^{-1/2} A D^{-1/2}` of any graph (`sym_norm_values`),
the user-item graph built from it, and LightGCN's layer mean."""

from __future__ import annotations

import torch
from torch import Tensor

from mgtune.models._blocks.sparse import sparse_matrix, symmetric_spmm

__all__ = [
    "BINARY_EPS", "sym_norm_values", "binary_sym_norm_values", "bipartite_edges", "bipartite_norm_adj",
    "bipartite_edge_weights", "layer_mean",
]

BINARY_EPS = 1e-7
"""MMRec adds this to the degrees of its 0/1 graphs (``get_norm_adj_mat``, FREEDOM's
``compute_normalized_laplacian``) instead of mapping empty rows to 0."""


def sym_norm_values(rows: Tensor, cols: Tensor, values: Tensor, n: int, eps: float = 0.0) -> Tensor:
    r"""Entry values of :math:`D^{-1/2} A D^{-1/2}`, :math:`d_i = \epsilon + \sum_j A_{ij}` (the weighted row sum).

    The one normalisation of every graph here; the two references' variants are the two ``eps``:

    - ``eps = 0``: MMRec's ``compute_normalized_laplacian`` (LATTICE) and ``get_sparse_laplacian(...,
      "sym")`` (MGCN) for weighted graphs: a row whose sum is 0 gets weight 0 (their ``inf`` → 0); a
      negative row sum gives NaN, as in MMRec;
    - ``eps = BINARY_EPS`` with ``values`` all ones: MMRec's 0/1 graphs (user-item, FREEDOM's kNN).

    Differentiable in ``values``, also through ``d``. The entries are not merged: pass each once.
    Shapes: ``(n_edges,)`` each → ``(n_edges,)``.
    """
    deg = values.new_zeros(n).index_add(0, rows, values)
    if eps:
        deg = deg + eps
    inv_sqrt = torch.where(deg == 0, torch.zeros_like(deg), deg.masked_fill(deg == 0, 1.0).pow(-0.5))
    return inv_sqrt[rows] * values * inv_sqrt[cols]


def bipartite_edges(users: Tensor, items: Tensor, n_users: int) -> tuple[Tensor, Tensor]:
    """``(rows, cols)`` of both directions of every user-item edge: the user -> item entries first.

    Nodes are users ``0..n_users-1`` then items ``n_users..``. Shapes: ``(n_edges,)`` each → ``(2 n_edges,)``.
    """
    return torch.cat([users, items + n_users]), torch.cat([items + n_users, users])


def binary_sym_norm_values(rows: Tensor, cols: Tensor, n: int) -> Tensor:
    """`sym_norm_values` of the 0/1 graph with these entries, degrees + `BINARY_EPS`, as MMRec's 0/1 graphs."""
    return sym_norm_values(rows, cols, torch.ones(len(rows), device=rows.device), n, eps=BINARY_EPS)


def bipartite_edge_weights(users: Tensor, items: Tensor, n_users: int, n_items: int) -> Tensor:
    """``1 / sqrt(deg(u) * deg(i))`` per edge (degrees + 1e-7, as in MMRec): the user -> item
    entries of `bipartite_norm_adj` (pass each pair once)."""
    return binary_sym_norm_values(*bipartite_edges(users, items, n_users), n_users + n_items)[: len(users)]


def bipartite_norm_adj(users: Tensor, items: Tensor, n_users: int, n_items: int) -> Tensor:
    r"""Symmetric normalised adjacency of the user-item graph, ``D^{-1/2} A D^{-1/2}``.

    .. math:: A = \begin{pmatrix} 0 & R \\ R^T & 0 \end{pmatrix},\quad R \in \{0,1\}^{n_users \times n_items}

    Duplicate (user, item) pairs count once. Shape: ``(n_users + n_items, n_users + n_items)``, CSR.
    """
    key = torch.unique(users * n_items + items)
    n = n_users + n_items
    rows, cols = bipartite_edges(key // n_items, key % n_items, n_users)
    return sparse_matrix(rows, cols, binary_sym_norm_values(rows, cols, n), (n, n))


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
