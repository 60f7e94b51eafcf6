"""A projection of some rows of a large feature table, paid once per distinct row."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

__all__ = ["project_rows"]


def project_rows(proj: Callable[[Tensor], Tensor], table: Tensor, rows: Tensor) -> Tensor:
    """``proj(table[rows])``, the same values, with ``proj`` run once per distinct row.

    Why: a batch's positives and negatives repeat items (about 2,750 distinct of 4,096 at baby
    scale), and on a 4,096-wide table the projection and its gradient dominate a CPU step.
    ``index_select`` rather than ``table[...]``: its backward is an ``index_add`` into the dense
    gradient, several times faster on CPU than the accumulating ``index_put`` of advanced indexing.
    Shapes: ``table`` ``(n, d_in)``, ``rows`` ``(b,)``; returns ``(b, d_out)``.
    """
    distinct, where = torch.unique(rows, return_inverse=True)
    return proj(table.index_select(0, distinct))[where]
