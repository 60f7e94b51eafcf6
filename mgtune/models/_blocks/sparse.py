"""Constant sparse matrices, built once per run as CSR (about 3x faster than COO for ``A @ X`` on CPU),
and their products with dense tensors, differentiable in the dense operand.

Why not plain ``torch.sparse.mm``: it differentiates ``A @ x`` as ``A^T @ grad`` and, for a CSR ``A``,
builds that transpose on every backward call (a sort of all ``nnz`` entries). A graph that never
changes gets its transpose once (`FixedSparse`); a symmetric one is its own (`symmetric_spmm`), which
halves the cost of a forward+backward on CPU (Baby-sized user-item graph: 0.26 s vs 0.53 s per
64-wide product, 1 thread).
"""

from __future__ import annotations

import warnings
from typing import Any, NamedTuple

import torch
from torch import Tensor

__all__ = ["FixedSparse", "sparse_matrix", "fixed_sparse", "spmm", "symmetric_spmm"]

warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")
warnings.filterwarnings("ignore", message="Sparse invariant checks are implicitly disabled")


class FixedSparse(NamedTuple):
    """A constant CSR matrix ``A`` and its transpose, for `spmm`. Shapes: ``(m, n)`` and ``(n, m)``."""

    matrix: Tensor
    transpose: Tensor


def sparse_matrix(rows: Tensor, cols: Tensor, values: Tensor, shape: tuple[int, int]) -> Tensor:
    """A CSR matrix from coordinate lists (duplicates summed)."""
    coo = torch.sparse_coo_tensor(torch.stack([rows, cols]), values, shape, check_invariants=False).coalesce()
    return coo.to_sparse_csr()


def fixed_sparse(rows: Tensor, cols: Tensor, values: Tensor, shape: tuple[int, int]) -> FixedSparse:
    """`sparse_matrix` and its transpose, for a matrix that stays the same for the whole run."""
    return FixedSparse(sparse_matrix(rows, cols, values, shape), sparse_matrix(cols, rows, values, shape[::-1]))


class _ConstantSpmm(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, adj: Tensor, adj_t: Tensor, x: Tensor) -> Tensor:
        ctx.adj_t = adj_t  # a constant graph: kept by reference, never differentiated
        return torch.sparse.mm(adj, x)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[None, None, Tensor]:
        return None, None, torch.sparse.mm(ctx.adj_t, grad)


def spmm(adj: FixedSparse, x: Tensor) -> Tensor:
    """``adj.matrix @ x``, differentiable in ``x`` (the backward uses the prebuilt transpose)."""
    return _ConstantSpmm.apply(adj.matrix, adj.transpose, x)


def symmetric_spmm(adj: Tensor, x: Tensor) -> Tensor:
    """``adj @ x`` for a constant sparse ``adj`` that the caller guarantees symmetric; differentiable in ``x``."""
    return _ConstantSpmm.apply(adj, adj, x)
