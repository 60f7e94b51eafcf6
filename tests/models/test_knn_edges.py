"""`cosine_knn_edges` gathers its pairs a chunk at a time (Elec's 4096-d features would need 2 x 10 GB
at once); the chunks must not change a value or a gradient."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mgtune.models._blocks import knn


def _all_at_once(features: torch.Tensor, k: int) -> torch.Tensor:
    rows = torch.arange(len(features)).repeat_interleave(k)
    cols = knn.knn_indices(features.detach(), k).reshape(-1)
    normed = F.normalize(features, dim=1)
    return (normed[rows] * normed[cols]).sum(1)


def test_chunked_similarities_equal_the_whole_computation(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    x = torch.randn(500, 48)
    monkeypatch.setattr(knn, "_CHUNK_ELEMENTS", 48 * 7)  # 7 pairs a chunk, the last one short
    rows, cols, sim = knn.cosine_knn_edges(x, 5)
    assert torch.equal(rows, torch.arange(500).repeat_interleave(5))
    assert torch.equal(cols, knn.knn_indices(x, 5).reshape(-1)) and torch.equal(sim, _all_at_once(x, 5))
    assert torch.all(cols.view(500, 5)[:, 0] == torch.arange(500))  # every item its own first neighbour

    xg = x.clone().requires_grad_()
    knn.cosine_knn_edges(xg, 5)[2].square().sum().backward()
    chunked = xg.grad
    xg.grad = None
    _all_at_once(xg, 5).square().sum().backward()
    assert chunked is not None and xg.grad is not None
    torch.testing.assert_close(chunked, xg.grad)
