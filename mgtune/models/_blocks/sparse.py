"""Sparse matrices built once per run, stored as CSR (about 3x faster than COO for A @ X on CPU)."""

from __future__ import annotations

import warnings

import torch
from torch import Tensor

__all__ = ["sparse_matrix", "spmm"]

warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")
warnings.filterwarnings("ignore", message="Sparse invariant checks are implicitly disabled")


def sparse_matrix(rows: Tensor, cols: Tensor, values: Tensor, shape: tuple[int, int]) -> Tensor:
    """A CSR matrix from coordinate lists (duplicates summed)."""
    coo = torch.sparse_coo_tensor(torch.stack([rows, cols]), values, shape, check_invariants=False).coalesce()
    return coo.to_sparse_csr()


def spmm(adj: Tensor, x: Tensor) -> Tensor:
    """``adj @ x`` for a sparse ``adj``, differentiable in ``x``."""
    return torch.sparse.mm(adj, x)
