r"""The frozen item-item graph of FREEDOM and DRAGON: per-modality kNN graphs, mixed by weight.

.. math::
    S = w\, \hat A_{img} + (1 - w)\, \hat A_{txt},\qquad
    \hat A_m = D^{-1/2} A_m D^{-1/2},\quad (A_m)_{ij} = [j \in \mathrm{top}_k(i)]

with :math:`\mathrm{top}_k` the ``k`` most cosine-similar items on modality ``m``'s raw features
(self included) and :math:`w` = ``image_weight``; with one modality present, :math:`S` is its graph.
Built once from chunked similarities (`knn`) and cached on disk keyed by the dataset's content,
``k`` and the weights, so a changed dataset or setting never reads a stale graph (MMRec names the
file ``mm_adj_{k}.pt`` for DRAGON, so changing ``mm_image_weight`` silently reuses an old graph).
"""

from __future__ import annotations

import torch
from torch import Tensor

from mgtune.data import Dataset
from mgtune.models._blocks.cache import cached_tensors
from mgtune.models._blocks.interactions import require_modalities
from mgtune.models._blocks.knn import knn_indices
from mgtune.models._blocks.propagation import binary_sym_norm_values
from mgtune.models._blocks.sparse import FixedSparse, fixed_sparse, sparse_matrix

__all__ = ["mixed_knn_adj"]


def _sym_norm_knn_adj(knn: Tensor, n: int) -> Tensor:
    r"""The kNN graph normalised as MMRec's ``compute_normalized_laplacian`` (FREEDOM):
    :math:`w_{ij} = d_i^{-1/2} d_j^{-1/2}` with :math:`d` the row degree (``k`` + 1e-7 for every row).
    Shapes: ``knn`` ``(n, k)`` → ``(n, n)`` CSR.
    """
    rows = torch.arange(n, device=knn.device).repeat_interleave(knn.shape[1])
    cols = knn.reshape(-1)
    return sparse_matrix(rows, cols, binary_sym_norm_values(rows, cols, n), (n, n))


def mixed_knn_adj(data: Dataset, k: int, image_weight: float, device: torch.device) -> FixedSparse:
    """:math:`S` for ``data``'s present modalities, and its transpose. Shape: ``(n_items, n_items)`` CSR."""
    feats = require_modalities(data)
    weights = {"image": image_weight, "text": 1.0 - image_weight} if len(feats) > 1 else dict.fromkeys(feats, 1.0)

    def build() -> dict[str, Tensor]:
        rows, cols, vals = [], [], []
        for m, f in feats.items():
            adj = _sym_norm_knn_adj(knn_indices(torch.as_tensor(f, device=device), k), data.n_items).to_sparse_coo()
            rows.append(adj.indices()[0])
            cols.append(adj.indices()[1])
            vals.append(adj.values() * weights[m])
        return {"rows": torch.cat(rows), "cols": torch.cat(cols), "values": torch.cat(vals)}

    key = {"k": k, "weights": weights, "v": 1}
    t = cached_tensors(data, "mixed-knn-adj", key, build)
    n = data.n_items
    return fixed_sparse(t["rows"].to(device), t["cols"].to(device), t["values"].to(device), (n, n))
