"""Item-item kNN graphs from content features, without ever holding a dense items x items matrix."""

from __future__ import annotations

import torch
from torch import Tensor

from mgtune.models._blocks.sparse import sparse_matrix

__all__ = ["knn_indices", "sym_norm_knn_adj"]


def knn_indices(features: Tensor, k: int, chunk: int = 2048) -> Tensor:
    """Top-``k`` cosine neighbours of every row (self included, as in MMRec), ``(n, k)`` long.

    Similarities are computed ``chunk`` rows at a time: memory is ``O(chunk * n)``.
    """
    normed = features / features.norm(dim=1, keepdim=True).clamp_min(1e-12)
    out = []
    for start in range(0, len(normed), chunk):
        sim = normed[start : start + chunk] @ normed.T
        out.append(sim.topk(k, dim=1).indices)
    return torch.cat(out)


def sym_norm_knn_adj(knn: Tensor, n: int) -> Tensor:
    r"""The kNN graph normalised as MMRec's ``compute_normalized_laplacian``:
    :math:`w_{ij} = d_i^{-1/2} d_j^{-1/2}` with :math:`d` the row degree (``k`` + 1e-7 for every row).
    """
    rows = torch.arange(n, device=knn.device).repeat_interleave(knn.shape[1])
    cols = knn.reshape(-1)
    deg = torch.bincount(rows, minlength=n).float() + 1e-7
    values = deg[rows].rsqrt() * deg[cols].rsqrt()
    return sparse_matrix(rows, cols, values, (n, n))
