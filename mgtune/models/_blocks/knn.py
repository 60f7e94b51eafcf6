r"""Cosine top-``k`` neighbour search over item features, a chunk of rows at a time, never as a dense
``n x n`` matrix (memory ``O(chunk * n)``). Every item is its own first neighbour, as in MMRec.

One search loop (`_chunked_topk`), three entry points for three needs:

- `knn_indices`: who the neighbours are, :math:`\hat f_i^\top \hat f_j` with rows normalised first
  (MMRec's ``build_sim``). FREEDOM's and DRAGON's binary graphs (`mixed_knn_graph`) use it directly;
- `cosine_knn_edges`: the same neighbours as an edge list whose similarity values carry gradients
  (LATTICE's learned graph) or are kept as edge weights (`similarity_graph`);
- `topk_similarity`: values and indices of the *shrunk* cosine
  :math:`f_i^\top f_j / (\|f_i\|\|f_j\| + \mathrm{shrink})` (ItemKNNCBF).

`knn_indices` and `topk_similarity` cannot share their arithmetic: normalising first and dividing
the raw dot product afterwards round differently, so near-tied neighbours could swap and the
models' results would change. Their chunk sizes stay as they were for the same reason.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["knn_indices", "cosine_knn_edges", "topk_similarity"]

_CHUNK_ELEMENTS = 1 << 26  # `topk_similarity`: ~256 MB of float32 similarities per chunk


def _chunked_topk(
    x: Tensor, k: int, chunk: int, rescale: Callable[[Tensor, slice], None] | None = None
) -> tuple[Tensor, Tensor]:
    """Per row of ``x``, the ``k`` largest entries of ``x x^T`` (after ``rescale(sim, rows)``, which
    may change a chunk's similarities in place) and their columns, ``chunk`` rows at a time.

    Shapes: ``x`` ``(n, d)`` → two ``(n, k)`` tensors, values in descending order.
    """
    values, indices = [], []
    for start in range(0, len(x), chunk):
        rows = slice(start, start + chunk)
        sim = x[rows] @ x.T
        if rescale is not None:
            rescale(sim, rows)
        top = sim.topk(k, dim=1)
        values.append(top.values)
        indices.append(top.indices)
    return torch.cat(values), torch.cat(indices)


def knn_indices(features: Tensor, k: int, chunk: int = 2048) -> Tensor:
    """Top-``k`` cosine neighbours of every row (self included, as in MMRec), ``(n, k)`` long.

    Similarities are computed ``chunk`` rows at a time: memory is ``O(chunk * n)``.
    """
    normed = features / features.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return _chunked_topk(normed, k, chunk)[1]


def cosine_knn_edges(features: Tensor, k: int) -> tuple[Tensor, Tensor, Tensor]:
    """Each row's ``k`` most cosine-similar rows (self included) as ``(rows, cols, similarity)``.

    The neighbour search runs without gradients; the kept similarities are then recomputed from
    ``features``, so they are differentiable (the gradient of the reference's dense top-k values),
    from ``2^26``-element chunks of the gathered pairs: without gradients (a frozen graph of raw
    features) the memory is ``O(n k)`` beyond the features, instead of ``O(n^2)`` for a dense graph.

    Shapes: ``features`` ``(n, d)`` → three ``(n * k,)`` tensors, row-major.
    """
    n, k = len(features), min(k, len(features))
    with torch.no_grad():
        cols = knn_indices(features.detach(), k).reshape(-1)
    rows = torch.arange(n, device=features.device).repeat_interleave(k)
    normed = F.normalize(features, dim=1)
    # the pairs' gathered rows, a chunk at a time: all n * k at once would be 2 x 10 GB at Elec's 4096-d
    step = max(1, _CHUNK_ELEMENTS // max(normed.shape[1], 1))
    sim = [(normed[rows[i:i + step]] * normed[cols[i:i + step]]).sum(1) for i in range(0, len(rows), step)]
    return rows, cols, torch.cat(sim)


def topk_similarity(features: Tensor, k: int, shrink: float = 0.0) -> tuple[Tensor, Tensor]:
    r"""Per row, the ``k`` largest shrunk cosine similarities and their columns (self included).

    .. math:: s_{ij} = \frac{f_i^\top f_j}{\|f_i\|\,\|f_j\| + \mathrm{shrink}}

    With ``shrink = 0`` this is the plain cosine (norms clamped at 1e-12 so zero rows give 0).
    Returns ``(values, indices)``, both ``(n, min(k, n))``, values float, in descending order.
    Memory is ``O(chunk * n)`` with ``chunk * n`` about 2^26.
    """
    n = len(features)
    norms = features.norm(dim=1)
    if shrink == 0.0:
        norms = norms.clamp_min(1e-12)

    def rescale(sim: Tensor, rows: slice) -> None:
        sim /= norms[rows, None] * norms[None, :] + shrink

    return _chunked_topk(features, min(k, n), max(1, _CHUNK_ELEMENTS // max(n, 1)), rescale)
