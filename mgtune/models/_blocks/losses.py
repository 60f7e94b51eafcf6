"""Ranking losses and embedding regularisers shared by the models."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["bpr_loss", "bpr_loss_eps", "emb_norm_loss", "l2_loss", "info_nce"]


def bpr_loss(pos: Tensor, neg: Tensor) -> Tensor:
    r"""BPR, :math:`-\mathrm{mean}\,\log\sigma(s^+ - s^-)` (computed as ``logsigmoid``)."""
    return -F.logsigmoid(pos - neg).mean()


def bpr_loss_eps(pos: Tensor, neg: Tensor, gamma: float = 1e-10) -> Tensor:
    r"""MMRec's ``BPRLoss``: :math:`-\mathrm{mean}\,\log(\gamma + \sigma(s^+ - s^-))`."""
    return -torch.log(gamma + torch.sigmoid(pos - neg)).mean()


def emb_norm_loss(*embs: Tensor) -> Tensor:
    """MMRec's ``EmbLoss``: the sum of each matrix's Frobenius norm, divided by the batch size."""
    return sum(torch.linalg.norm(e) for e in embs) / embs[-1].shape[0]


def l2_loss(*embs: Tensor) -> Tensor:
    """MMRec's ``L2Loss``: half the sum of squares."""
    return sum((e**2).sum() for e in embs) * 0.5  # type: ignore[return-value]


def info_nce(a: Tensor, b: Tensor, temperature: float) -> Tensor:
    """InfoNCE between matched rows of ``a`` and ``b`` (cosine similarity, in-batch negatives)."""
    a, b = F.normalize(a, dim=1), F.normalize(b, dim=1)
    pos = (a * b).sum(dim=1) / temperature
    all_ = a @ b.T / temperature
    return (torch.logsumexp(all_, dim=1) - pos).mean()
