r"""Item-item kNN graphs weighted by cosine similarity, symmetrically normalised (LATTICE, MGCN).

Unlike FREEDOM's binary kNN graph (`mixed_knn_graph`), an edge keeps its similarity:

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
from torch import Tensor

from mgtune.data import Dataset
from mgtune.models._blocks.cache import cached_tensors
from mgtune.models._blocks.knn import cosine_knn_edges
from mgtune.models._blocks.propagation import sym_norm_values
from mgtune.models._blocks.sparse import FixedSparse, fixed_sparse

__all__ = ["similarity_knn_adj"]


def similarity_knn_adj(data: Dataset, modality: str, k: int, device: torch.device) -> FixedSparse:
    """The normalised similarity kNN graph of ``modality``'s raw features, cached on disk.

    Shape: ``(n_items, n_items)`` CSR with ``n_items * k`` entries, and its transpose.
    """
    feats = data.features(modality)

    def build() -> dict[str, Tensor]:
        rows, cols, sim = cosine_knn_edges(torch.as_tensor(feats, device=device), k)
        return {"rows": rows, "cols": cols, "values": sym_norm_values(rows, cols, sim, data.n_items)}

    key = {"modality": modality, "k": k, "v": 1}
    t = cached_tensors(data, "similarity-knn-adj", key, build)
    n = data.n_items
    return fixed_sparse(t["rows"].to(device), t["cols"].to(device), t["values"].to(device), (n, n))
