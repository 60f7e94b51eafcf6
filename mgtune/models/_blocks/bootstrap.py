"""BYOL-style bootstrapping without negatives (SelfCF, BM3): dropout targets and cosine losses."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["dropout_target", "neg_cosine"]


def dropout_target(x: Tensor, p: float) -> Tensor:
    """A gradient-free target view of ``x``: ``dropout(x)`` (always on, scaled by ``1/(1-p)``).

    Shapes: any → same.
    """
    with torch.no_grad():
        return F.dropout(x.detach(), p, training=True)


def neg_cosine(pred: Tensor, target: Tensor) -> Tensor:
    r"""The mean negative cosine similarity of matched rows, :math:`-\mathrm{mean}_b \cos(p_b, z_b)`,
    with no gradient through ``target``.

    Shapes: ``pred``, ``target`` ``(B, d)`` → 0-dim.
    """
    return -F.cosine_similarity(pred, target.detach(), dim=-1).mean()
