"""The shared losses (`mgtune.models._blocks.losses`), each against its formula written out on small tensors."""

from __future__ import annotations

import math

import pytest
import torch

from mgtune.models._blocks.losses import bpr_loss, bpr_loss_eps, emb_norm_loss, info_nce, l2_loss

POS = torch.tensor([2.0, 0.5, -1.0], dtype=torch.float64)
NEG = torch.tensor([1.0, 1.5, -1.0], dtype=torch.float64)


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def test_bpr_loss() -> None:
    expected = -sum(math.log(_sigmoid(p - n)) for p, n in zip(POS.tolist(), NEG.tolist())) / 3
    assert bpr_loss(POS, NEG).item() == pytest.approx(expected, rel=1e-12)


def test_bpr_loss_with_mmrecs_gamma() -> None:
    gamma = 0.25  # large enough to change the value visibly
    expected = -sum(math.log(gamma + _sigmoid(p - n)) for p, n in zip(POS.tolist(), NEG.tolist())) / 3
    assert bpr_loss_eps(POS, NEG, gamma).item() == pytest.approx(expected, rel=1e-12)
    assert bpr_loss_eps(POS, NEG).item() == pytest.approx(bpr_loss(POS, NEG).item(), rel=1e-8)  # gamma 1e-10


def test_emb_norm_loss_is_the_sum_of_norms_over_the_batch_size() -> None:
    a = torch.tensor([[3.0, 4.0], [0.0, 0.0]])  # Frobenius norm 5
    b = torch.tensor([[1.0, 0.0], [0.0, 1.0]])  # sqrt(2); batch of 2 rows
    assert emb_norm_loss(a, b).item() == pytest.approx((5 + math.sqrt(2)) / 2)


def test_l2_loss_is_half_the_sum_of_squares() -> None:
    assert l2_loss(torch.tensor([1.0, 2.0]), torch.tensor([[3.0]])).item() == pytest.approx(0.5 * (1 + 4 + 9))


def test_info_nce_against_its_formula() -> None:
    a = torch.tensor([[1.0, 0.0], [0.6, 0.8]], dtype=torch.float64)
    b = torch.tensor([[2.0, 0.0], [0.0, 3.0]], dtype=torch.float64)  # cosine: rows (1,0), (0,1)
    t = 0.5
    sims = [[1.0, 0.0], [0.6, 0.8]]  # cos(a_i, b_j)
    expected = sum(math.log(sum(math.exp(s / t) for s in row)) - row[i] / t for i, row in enumerate(sims)) / 2
    assert info_nce(a, b, t).item() == pytest.approx(expected, rel=1e-12)
