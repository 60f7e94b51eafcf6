r"""Item-item kNN graphs weighted by cosine similarity, symmetrically normalised (LATTICE, MGCN).

Unlike FREEDOM's binary kNN graph (`knn.sym_norm_knn_adj`), an edge keeps its similarity:

.. math::
    A_{ij} = s_{ij}\,[j \in \mathrm{top}_k(i)],\qquad
    \hat A = D^{-1/2} A D^{-1/2},\quad d_i = \sum_j A_{ij},

with :math:`s` the cosine similarity and every item its own first neighbour — MMRec's
``build_sim`` → ``build_knn_neighbourhood`` → ``compute_normalized_laplacian`` (LATTICE) and
``build_knn_normalized_graph(..., is_sparse=True, norm_type="sym")`` (MGCN), which agree. MMRec
builds a dense ``n_items x n_items`` matrix for it; here the neighbours come from chunked
similarities and only the ``n_items * k`` kept values are ever formed.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from mgtune.data import Dataset
from mgtune.models._blocks.cache import cached_tensors
from mgtune.models._blocks.edge_list import sym_norm_edge_values
from mgtune.models._blocks.knn import knn_indices
from mgtune.models._blocks.sparse import FixedSparse, fixed_sparse

__all__ = ["cosine_knn_edges", "similarity_knn_adj"]


def cosine_knn_edges(features: Tensor, k: int) -> tuple[Tensor, Tensor, Tensor]:
    """Each row's ``k`` most cosine-similar rows (self included) as ``(rows, cols, similarity)``.

    The neighbour search runs without gradients; the kept similarities are then recomputed from
    ``features``, so they are differentiable (the gradient of the reference's dense top-k values)
    at ``O(n k d)`` memory instead of ``O(n^2)``.

    Shapes: ``features`` ``(n, d)`` → three ``(n * k,)`` tensors, row-major.
    """
    n, k = len(features), min(k, len(features))
    with torch.no_grad():
        cols = knn_indices(features.detach(), k).reshape(-1)
    rows = torch.arange(n, device=features.device).repeat_interleave(k)
    normed = F.normalize(features, dim=1)
    return rows, cols, (normed[rows] * normed[cols]).sum(1)


def similarity_knn_adj(data: Dataset, modality: str, k: int, device: torch.device) -> FixedSparse:
    """The normalised similarity kNN graph of ``modality``'s raw features, cached on disk.

    Shape: ``(n_items, n_items)`` CSR with ``n_items * k`` entries, and its transpose.
    """
    feats = data.features(modality)

    def build() -> dict[str, Tensor]:
        rows, cols, sim = cosine_knn_edges(torch.as_tensor(feats, device=device), k)
        return {"rows": rows, "cols": cols, "values": sym_norm_edge_values(rows, cols, sim, data.n_items)}

    key = {"modality": modality, "k": k, "v": 1}
    t = cached_tensors(data, "similarity-knn-adj", key, build)
    n = data.n_items
    return fixed_sparse(t["rows"].to(device), t["cols"].to(device), t["values"].to(device), (n, n))
