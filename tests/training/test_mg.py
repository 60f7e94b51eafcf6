"""Mirror Gradient: two optimiser steps on every flip_interval-th batch, one otherwise."""

from __future__ import annotations

import pytest
import torch

from mgtune.training import MGConfig, mirror_gradient_step


class CountingSGD(torch.optim.SGD):
    def __init__(self, params, lr: float) -> None:
        super().__init__(params, lr=lr)
        self.steps = 0

    def step(self, closure=None):
        self.steps += 1
        return super().step(closure)


@pytest.mark.parametrize("interval", [1, 3, 4])
def test_step_counts(interval: int) -> None:
    w = torch.nn.Parameter(torch.ones(2))
    opt = CountingSGD([w], lr=0.1)
    mg = MGConfig(flip_interval=interval)
    for batch_idx in range(12):
        before = opt.steps
        mirror_gradient_step(lambda: (w**2).sum(), opt, mg, batch_idx)
        expected = 2 if batch_idx % interval == 0 else 1
        assert opt.steps - before == expected, batch_idx


def test_no_mg_is_always_one_step() -> None:
    w = torch.nn.Parameter(torch.ones(2))
    opt = CountingSGD([w], lr=0.1)
    for batch_idx in range(9):
        mirror_gradient_step(lambda: (w**2).sum(), opt, MGConfig(enabled=False), batch_idx)
    assert opt.steps == 9


def test_flip_batch_math() -> None:
    # loss = w^2, SGD lr: first step w1 = w0 - lr * alpha1 * 2 w0; second w2 = w1 + lr * r * 2 w1
    w = torch.nn.Parameter(torch.tensor([1.0]))
    opt = torch.optim.SGD([w], lr=0.1)
    loss = mirror_gradient_step(lambda: (w**2).sum(), opt, MGConfig(alpha1=1.0, flip_ratio=0.5), 0)
    w1 = 1.0 - 0.1 * 2.0
    assert loss.item() == pytest.approx(1.0)
    assert w.item() == pytest.approx(w1 + 0.1 * 0.5 * 2 * w1)


@pytest.mark.parametrize("alpha1", [0.6, 1.5, 3.0])
def test_flip_batch_scales_the_first_step_by_alpha1(alpha1: float) -> None:
    # loss = w^2 (gradient 2w), SGD lr 0.1: w1 = w0 - lr * alpha1 * 2 w0, then w2 = w1 + lr * r * 2 w1
    w = torch.nn.Parameter(torch.tensor([1.0]))
    opt = torch.optim.SGD([w], lr=0.1)
    mirror_gradient_step(lambda: (w**2).sum(), opt, MGConfig(alpha1=alpha1, flip_ratio=0.5), 0)
    w1 = 1.0 - 0.1 * alpha1 * 2.0
    assert w.item() == pytest.approx(w1 + 0.1 * 0.5 * 2.0 * w1, rel=1e-6)


def test_alpha1_leaves_other_batches_alone() -> None:
    w = torch.nn.Parameter(torch.tensor([1.0]))
    opt = torch.optim.SGD([w], lr=0.1)
    mirror_gradient_step(lambda: (w**2).sum(), opt, MGConfig(alpha1=3.0, flip_ratio=0.5, flip_interval=2), 1)
    assert w.item() == pytest.approx(1.0 - 0.1 * 2.0)  # one plain step on L, alpha1 not applied
