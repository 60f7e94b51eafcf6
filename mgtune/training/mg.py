"""Mirror Gradient (Zhong et al., WWW 2024, https://arxiv.org/abs/2402.11262): the one place it lives."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from mgtune.training.config import MGConfig

__all__ = ["mirror_gradient_step", "is_flip_batch"]


def is_flip_batch(batch_idx: int, mg: MGConfig) -> bool:
    """Every ``flip_interval``-th batch of an epoch, batch 0 included, takes the mirrored update."""
    return mg.enabled and batch_idx % mg.flip_interval == 0


def mirror_gradient_step(
    compute_loss: Callable[[], Tensor], optimizer: torch.optim.Optimizer, mg: MGConfig, batch_idx: int
) -> Tensor:
    r"""One training step on a batch, mirrored on flip batches. Returns the first loss, detached.

    On a flip batch, two optimiser steps on the same batch (the loss recomputed in between):

    .. math::
        \theta' = \mathrm{opt}(\theta, \nabla_\theta\, \alpha_1 L(\theta)),\qquad
        \theta'' = \mathrm{opt}(\theta', -\,r\, \nabla_\theta L(\theta'))

    with :math:`\alpha_1` = ``alpha1`` and :math:`r` = ``flip_ratio``. The second, ascending step
    undoes part of the first along sharp directions, which pushes training towards flat minima. Any
    other batch is one ordinary step on :math:`L`. Same semantics as the reference trainer.
    Non-finite losses are not checked here (that would sync the device every batch): the loop
    checks the epoch's summed loss.
    """
    optimizer.zero_grad(set_to_none=True)
    loss = compute_loss()
    if not is_flip_batch(batch_idx, mg):
        loss.backward()
        optimizer.step()
        return loss.detach()
    (mg.alpha1 * loss).backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    (-mg.flip_ratio * compute_loss()).backward()
    optimizer.step()
    return loss.detach()
