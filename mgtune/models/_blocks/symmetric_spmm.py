"""Products with a *symmetric* sparse matrix whose backward pass reuses the matrix itself.

`sparse.spmm` (``torch.sparse.mm``) differentiates ``A @ x`` in ``x`` as ``A^T @ grad`` and, for a CSR
``A``, builds that transpose on every backward call (a sort of all ``nnz`` entries). When ``A`` is
symmetric, ``A^T = A``: skipping the transpose halves the cost of a forward+backward on CPU
(measured on the Baby-sized user-item graph: 0.26 s vs 0.53 s per 64-wide product, 1 thread).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

__all__ = ["symmetric_spmm"]


class _SymmetricSpmm(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, adj: Tensor, x: Tensor) -> Tensor:
        ctx.adj = adj  # a constant graph: kept by reference, never differentiated
        return torch.sparse.mm(adj, x)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[None, Tensor]:
        return None, torch.sparse.mm(ctx.adj, grad)


def symmetric_spmm(adj: Tensor, x: Tensor) -> Tensor:
    """``adj @ x`` for a constant sparse ``adj`` that the caller guarantees symmetric; differentiable in ``x``."""
    return _SymmetricSpmm.apply(adj, x)
