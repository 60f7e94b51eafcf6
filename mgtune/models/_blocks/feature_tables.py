"""Raw item features as trainable tables with a projection each, and projecting a batch's rows of them."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import cast

import numpy as np
import torch
from torch import Tensor, nn

__all__ = ["LinearDict", "trainable_feature_tables", "project_rows"]


class LinearDict(nn.ModuleDict):
    """An ``nn.ModuleDict`` of ``nn.Linear`` layers (one per modality), typed as such for mypy.

    The same module tree and state-dict keys as a plain ``nn.ModuleDict``.
    """

    def __getitem__(self, key: str) -> nn.Linear:
        return cast(nn.Linear, super().__getitem__(key))

    def values(self) -> Iterator[nn.Linear]:  # type: ignore[override]
        return (cast(nn.Linear, m) for m in super().values())


def trainable_feature_tables(
    feats: Mapping[str, np.ndarray], out_dim: int, device: torch.device
) -> tuple[nn.ParameterDict, LinearDict]:
    """Each modality's features as a trainable ``(n_items, d_m)`` table, and a ``Linear(d_m, out_dim)``.

    Trainable because MMRec loads them with ``nn.Embedding.from_pretrained(freeze=False)`` in BM3,
    FREEDOM, LATTICE and MGCN, so Adam updates the raw features too.
    """
    tables = nn.ParameterDict({m: nn.Parameter(torch.as_tensor(f, device=device).clone()) for m, f in feats.items()})
    projections = LinearDict({m: nn.Linear(f.shape[1], out_dim) for m, f in feats.items()})
    return tables, projections


def project_rows(proj: Callable[[Tensor], Tensor], table: Tensor, rows: Tensor) -> Tensor:
    """``proj(table[rows])``, the same values, with ``proj`` run once per distinct row.

    Why: a batch's positives and negatives repeat items (about 2,750 distinct of 4,096 at baby
    scale), and on a 4,096-wide table the projection and its gradient dominate a CPU step.
    Both gathers are ``index_select`` rather than ``[...]``: its backward is an ``index_add``, several
    times faster on CPU than the accumulating ``index_put`` of advanced indexing, which under
    deterministic kernels (`training.device.deterministic_on_cpu`) also sorts its indices first.
    Shapes: ``table`` ``(n, d_in)``, ``rows`` ``(b,)``; returns ``(b, d_out)``.
    """
    distinct, where = torch.unique(rows, return_inverse=True)
    return proj(table.index_select(0, distinct)).index_select(0, where)
