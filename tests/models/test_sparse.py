"""Products with constant sparse matrices: the prebuilt transpose gives torch.sparse.mm's values and gradients."""

from __future__ import annotations

import torch

from mgtune.models._blocks.sparse import fixed_sparse, sparse_matrix, spmm, symmetric_spmm


def _coords(n_rows: int, n_cols: int, nnz: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    rows, cols = torch.randint(n_rows, (nnz,), generator=gen), torch.randint(n_cols, (nnz,), generator=gen)
    return rows, cols, torch.rand(nnz, generator=gen)  # duplicates included: summed


def _product_and_grad(product, adj, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[no-untyped-def]
    x = x.clone().requires_grad_()
    out = product(adj, x)
    (out * torch.linspace(-1, 1, out.numel()).reshape(out.shape)).sum().backward()
    assert x.grad is not None
    return out.detach(), x.grad


def test_fixed_sparse_matches_torch_sparse_mm_on_a_rectangular_matrix() -> None:
    rows, cols, vals = _coords(40, 25, 300, seed=0)
    adj = fixed_sparse(rows, cols, vals, (40, 25))
    assert adj.transpose.shape == (25, 40)
    torch.testing.assert_close(adj.transpose.to_dense(), adj.matrix.to_dense().T, rtol=0, atol=0)
    x = torch.randn(25, 8, generator=torch.Generator().manual_seed(1))
    got, got_grad = _product_and_grad(spmm, adj, x)
    want, want_grad = _product_and_grad(torch.sparse.mm, adj.matrix, x)
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    torch.testing.assert_close(got_grad, want_grad)


def test_symmetric_spmm_matches_torch_sparse_mm() -> None:
    rows, cols, vals = _coords(30, 30, 200, seed=2)
    adj = sparse_matrix(torch.cat([rows, cols]), torch.cat([cols, rows]), torch.cat([vals, vals]), (30, 30))
    x = torch.randn(30, 4, generator=torch.Generator().manual_seed(3))
    got, got_grad = _product_and_grad(symmetric_spmm, adj, x)
    want, want_grad = _product_and_grad(torch.sparse.mm, adj, x)
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    torch.testing.assert_close(got_grad, want_grad)
