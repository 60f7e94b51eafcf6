"""Mean neighbour aggregation over the user-item graph (PyG ``MessagePassing(aggr="mean")``).

MMGCN-family convolutions (MMRec's MMGCN and MVGAE) aggregate with ``aggr="mean"``, MVGAE after
``add_self_loops``: node ``v`` gets the mean of its neighbours' (and its own) messages. The message
is linear in ``x`` (``x_j W``), so that is a sparse product with :math:`D^{-1}(A + I)` (or
:math:`D^{-1}A`). It is held as the symmetric 0/1 matrix plus the inverse degrees, so the
backward pass reuses the matrix (`symmetric_spmm`) instead of transposing a CSR matrix each step.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from mgtune.models._blocks.propagation import bipartite_edges
from mgtune.models._blocks.sparse import sparse_matrix, symmetric_spmm

__all__ = ["MeanAdjacency", "bipartite_mean_adj", "mean_aggregate"]


class MeanAdjacency(NamedTuple):
    """:math:`D^{-1}(A + I)` as ``adj`` = :math:`A + I` (CSR, symmetric) and ``inv_deg`` ``(n, 1)``."""

    adj: Tensor
    inv_deg: Tensor


def bipartite_mean_adj(
    users: Tensor, items: Tensor, n_users: int, n_items: int, self_loops: bool = True
) -> MeanAdjacency:
    r"""The user-item graph for mean aggregation, with self loops by default.

    Nodes are users ``0..n_users-1`` then items ``n_users..n_users+n_items-1``; every interaction
    is an edge in both directions (pass each pair once: `interactions.train_edges`). With
    ``self_loops`` every node also gets a self loop (PyG's ``remove_self_loops`` +
    ``add_self_loops``, as MMRec's MVGAE), so no degree is zero; without, a node with no edges
    gets a zero row (PyG's mean over nothing).
    Shapes: ``adj`` ``(n_users + n_items, n_users + n_items)``, ``inv_deg`` ``(n_users + n_items, 1)``.
    """
    n = n_users + n_items
    row, col = bipartite_edges(users, items, n_users)
    if self_loops:
        loop = torch.arange(n, device=users.device)
        row, col = torch.cat([row, loop]), torch.cat([col, loop])
    deg = torch.bincount(row, minlength=n).float()
    inv_deg = torch.where(deg > 0, deg.clamp_min(1.0).reciprocal(), torch.zeros_like(deg)).unsqueeze(1)
    return MeanAdjacency(sparse_matrix(row, col, torch.ones_like(row, dtype=torch.float32), (n, n)), inv_deg)


def mean_aggregate(graph: MeanAdjacency, x: Tensor) -> Tensor:
    """Row ``v``: the mean of ``x`` over ``v``'s neighbours and ``v`` itself. Differentiable in ``x``."""
    return graph.inv_deg * symmetric_spmm(graph.adj, x)
