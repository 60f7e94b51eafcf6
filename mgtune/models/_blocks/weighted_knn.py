"""Weighted top-k similarity neighbourhoods: the neighbours *and* their similarity values.

`knn.knn_indices` keeps only who the neighbours are; models that weight edges by similarity
(ItemKNNCBF's scores, LATTICE-style weighted kNN graphs) need the values too, and ItemKNNCBF
shrinks the cosine towards zero for rows of small norm. As in `knn`, similarities are computed a
chunk of rows at a time, never as a dense ``n x n`` matrix.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["topk_similarity"]

_CHUNK_ELEMENTS = 1 << 26  # ~256 MB of float32 similarities per chunk


def topk_similarity(features: Tensor, k: int, shrink: float = 0.0) -> tuple[Tensor, Tensor]:
    r"""Per row, the ``k`` largest shrunk cosine similarities and their columns (self included).

    .. math:: s_{ij} = \frac{f_i^\top f_j}{\|f_i\|\,\|f_j\| + \mathrm{shrink}}

    With ``shrink = 0`` this is the plain cosine (norms clamped at 1e-12 so zero rows give 0).
    Returns ``(values, indices)``, both ``(n, min(k, n))``, values float, in descending order.
    Memory is ``O(chunk * n)`` with ``chunk * n`` about 2^26.
    """
    n = len(features)
    k = min(k, n)
    norms = features.norm(dim=1)
    if shrink == 0.0:
        norms = norms.clamp_min(1e-12)
    chunk = max(1, _CHUNK_ELEMENTS // max(n, 1))
    values, indices = [], []
    for start in range(0, n, chunk):
        rows = slice(start, start + chunk)
        sim = features[rows] @ features.T
        sim /= norms[rows, None] * norms[None, :] + shrink
        top = sim.topk(k, dim=1)
        values.append(top.values)
        indices.append(top.indices)
    return torch.cat(values), torch.cat(indices)
