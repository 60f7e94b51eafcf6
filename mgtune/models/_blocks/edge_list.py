"""Graphs held as edge lists ``(rows, cols, values)`` whose values carry gradients.

A CSR product (`sparse.spmm`) is differentiable only in the dense operand. Models that learn edge
weights (LATTICE's learned item graph, GRCN's attention-weighted user-item graph) need the gradient
to reach the values too; a gather and an ``index_add`` give it at ``O(n_edges * d)`` memory and,
on CPU, run several times faster than ``torch.sparse.mm`` on a COO matrix with ``requires_grad``
values.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["edge_spmm", "sym_norm_edge_values"]


def edge_spmm(rows: Tensor, cols: Tensor, values: Tensor, x: Tensor, n_rows: int) -> Tensor:
    r"""``A @ x`` for :math:`A_{rc} = \sum` of the ``values`` listed at ``(r, c)``; differentiable in
    ``values`` and ``x``.

    Shapes: ``rows``, ``cols``, ``values`` ``(n_edges,)``; ``x`` ``(n_cols, d)`` → ``(n_rows, d)``.
    """
    return x.new_zeros(n_rows, x.shape[1]).index_add(0, rows, values.unsqueeze(1) * x[cols])


def sym_norm_edge_values(rows: Tensor, cols: Tensor, values: Tensor, n: int) -> Tensor:
    r"""Values of :math:`D^{-1/2} A D^{-1/2}` with :math:`d_i = \sum_j A_{ij}` (the weighted row sum).

    This is MMRec's ``compute_normalized_laplacian`` (LATTICE) and ``get_sparse_laplacian(...,
    "sym")`` (MGCN) without the dense matrix: a row whose sum is 0 gets weight 0 (their ``inf``
    → 0). A negative row sum gives NaN, as in MMRec. Differentiable in ``values``, also through ``d``.

    Shapes: ``(n_edges,)`` each → ``(n_edges,)``.
    """
    deg = values.new_zeros(n).index_add(0, rows, values)
    inv_sqrt = torch.where(deg == 0, torch.zeros_like(deg), deg.masked_fill(deg == 0, 1.0).pow(-0.5))
    return inv_sqrt[rows] * values * inv_sqrt[cols]
