from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import torch

from mgtune.data import Dataset, TrainSampler


def test_negatives_are_never_training_items(tiny_dataset: Dataset) -> None:
    sampler = TrainSampler(tiny_dataset.train, tiny_dataset.n_items, 64, torch.device("cpu"))
    trained = set(zip(tiny_dataset.train.users.tolist(), tiny_dataset.train.items.tolist(), strict=True))
    gen = torch.Generator().manual_seed(0)
    seen = 0
    for _ in range(5):
        for b in sampler.epoch(gen):
            assert b.neg_items is not None
            for u, n in zip(b.users.tolist(), b.neg_items.tolist(), strict=True):
                assert (u, n) not in trained
                seen += 1
    assert seen == 5 * len(tiny_dataset.train)


def test_epoch_covers_every_positive_once(tiny_dataset: Dataset) -> None:
    sampler = TrainSampler(tiny_dataset.train, tiny_dataset.n_items, 100, torch.device("cpu"), with_negatives=False)
    batches = list(sampler.epoch(torch.Generator().manual_seed(1)))
    assert len(batches) == len(sampler)
    assert all(b.neg_items is None for b in batches)
    users, items = torch.cat([b.users for b in batches]).tolist(), torch.cat([b.pos_items for b in batches]).tolist()
    got = sorted(zip(users, items, strict=True))
    assert got == sorted(zip(tiny_dataset.train.users.tolist(), tiny_dataset.train.items.tolist(), strict=True))


def test_same_seed_same_batches(tiny_dataset: Dataset) -> None:
    sampler = TrainSampler(tiny_dataset.train, tiny_dataset.n_items, 64, torch.device("cpu"))
    a = [b.neg_items for b in sampler.epoch(torch.Generator().manual_seed(3))]
    b = [b.neg_items for b in sampler.epoch(torch.Generator().manual_seed(3))]
    assert len(a) == len(sampler)
    assert all(x is not None and y is not None and torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_the_samplers_own_generator_is_on_its_device(tiny_dataset: Dataset) -> None:
    sampler = TrainSampler(tiny_dataset.train, tiny_dataset.n_items, 64, torch.device("cpu"))
    gen = sampler.generator(5)
    assert gen.device == sampler.device == sampler.users.device
    assert gen.initial_seed() == 5


@pytest.mark.parametrize("other", [torch.device("cuda", 0), torch.device("meta")])
def test_a_generator_of_another_device_is_refused_before_any_draw(
    tiny_dataset: Dataset, other: torch.device, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The contract that makes CUDA training work: a CPU generator on a CUDA sampler (or the reverse) fails
    at once with a clear message, instead of PyTorch's 'Expected a 'cuda' device type for generator'."""
    sampler = TrainSampler(tiny_dataset.train, tiny_dataset.n_items, 64, torch.device("cpu"))
    foreign: Any = SimpleNamespace(device=other)  # no CUDA needed: only the device is looked at
    drawn: list[str] = []
    monkeypatch.setattr(torch, "randperm", lambda *a, **k: drawn.append("randperm"))
    monkeypatch.setattr(torch, "randint", lambda *a, **k: drawn.append("randint"))
    message = f"TrainSampler on cpu draws only from a generator of that device, got one on {other}"
    with pytest.raises(ValueError, match=message):
        next(sampler.epoch(foreign))
    with pytest.raises(ValueError, match="generator of that device"):
        sampler.sample_negatives(sampler.users, foreign)
    assert drawn == []


def test_every_draw_uses_the_given_generator_of_the_samplers_device(
    tiny_dataset: Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No draw falls back to the global RNG (generator=None) or to a generator of another device."""
    sampler = TrainSampler(tiny_dataset.train, tiny_dataset.n_items, 64, torch.device("cpu"))
    gen = sampler.generator(0)
    seen: list[torch.Generator | None] = []
    for name in ("randperm", "randint"):
        real = getattr(torch, name)

        def spy(*args: Any, _real: Any = real, **kwargs: Any) -> torch.Tensor:
            seen.append(kwargs.get("generator"))
            return _real(*args, **kwargs)

        monkeypatch.setattr(torch, name, spy)
    batches = list(sampler.epoch(gen))
    assert len(batches) == len(sampler) and len(seen) >= 2  # the order and at least one round of negatives
    assert all(g is gen and g.device == sampler.device for g in seen)
