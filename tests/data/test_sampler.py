from __future__ import annotations

import torch

from mgtune.data import Dataset, TrainSampler


def test_negatives_are_never_training_items(tiny_dataset: Dataset) -> None:
    sampler = TrainSampler(tiny_dataset.train, tiny_dataset.n_items, 64, torch.device("cpu"))
    trained = set(zip(tiny_dataset.train.users.tolist(), tiny_dataset.train.items.tolist()))
    gen = torch.Generator().manual_seed(0)
    seen = 0
    for _ in range(5):
        for b in sampler.epoch(gen):
            assert b.neg_items is not None
            for u, n in zip(b.users.tolist(), b.neg_items.tolist()):
                assert (u, n) not in trained
                seen += 1
    assert seen == 5 * len(tiny_dataset.train)


def test_epoch_covers_every_positive_once(tiny_dataset: Dataset) -> None:
    sampler = TrainSampler(tiny_dataset.train, tiny_dataset.n_items, 100, torch.device("cpu"), with_negatives=False)
    batches = list(sampler.epoch(torch.Generator().manual_seed(1)))
    assert len(batches) == len(sampler)
    assert all(b.neg_items is None for b in batches)
    got = sorted(zip(torch.cat([b.users for b in batches]).tolist(), torch.cat([b.pos_items for b in batches]).tolist()))
    assert got == sorted(zip(tiny_dataset.train.users.tolist(), tiny_dataset.train.items.tolist()))


def test_same_seed_same_batches(tiny_dataset: Dataset) -> None:
    sampler = TrainSampler(tiny_dataset.train, tiny_dataset.n_items, 64, torch.device("cpu"))
    a = [b.neg_items for b in sampler.epoch(torch.Generator().manual_seed(3))]
    b = [b.neg_items for b in sampler.epoch(torch.Generator().manual_seed(3))]
    assert all(torch.equal(x, y) for x, y in zip(a, b))
