"""The evaluator ranks all items, masks training items only, and averages over the split's users."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor

from mgtune.data import Dataset, Split
from mgtune.models.base import ModelConfig, Recommender
from mgtune.training import evaluate
from mgtune.training.evaluate import Evaluator, cuda_headroom, users_per_batch


class FixedScores(Recommender):
    """Scores every user's items by a fixed table (not registered)."""

    def __init__(self, data: Dataset, table: Tensor) -> None:
        super().__init__(data, ModelConfig(), torch.device("cpu"))
        self.table = table

    def score(self, users: Tensor) -> Tensor:
        return self.table[users].clone()


def _dataset() -> Dataset:
    # user 0 trained on items 0, 1; valid item 2; test item 3.  user 1 trained on 4; valid 0; test 1, 2.
    s = lambda u, i: Split(np.array(u), np.array(i))  # noqa: E731
    return Dataset("hand", Path("."), 2, 6, s([0, 0, 1], [0, 1, 4]), s([0, 1], [2, 0]), s([0, 1, 1], [3, 1, 2]))


def test_training_items_are_masked_and_other_splits_stay_rankable() -> None:
    data = _dataset()
    # user 0 likes its training items most, then test item 3, then valid item 2
    table = torch.tensor([[9.0, 8.0, 5.0, 6.0, 0.0, 0.0], [0.0, 3.0, 2.0, 0.0, 9.0, 0.0]])
    ev = Evaluator(data, torch.device("cpu"), topk=(1, 2))
    m = ev.evaluate(FixedScores(data, table))
    # user 0 valid: ranking after masking 0,1 is [3, 2, ...] -> valid item 2 at rank 2
    # user 1 valid: ranking after masking 4 is [1, 2, 0, ...] -> valid item 0 at rank 3
    assert m["valid"]["recall@1"] == pytest.approx(0.0)
    assert m["valid"]["recall@2"] == pytest.approx((1.0 + 0.0) / 2)
    # test: user 0 item 3 at rank 1; user 1 items 1, 2 at ranks 1, 2
    assert m["test"]["recall@1"] == pytest.approx((1.0 + 0.5) / 2)
    assert m["test"]["precision@2"] == pytest.approx((0.5 + 1.0) / 2)
    assert m["test"]["ndcg@2"] == pytest.approx(1.0)


def test_masking_never_ranks_a_training_item(tiny_dataset: Dataset) -> None:
    ev = Evaluator(tiny_dataset, torch.device("cpu"), topk=(5,))
    scores = torch.rand(tiny_dataset.n_users, tiny_dataset.n_items)
    scores[tiny_dataset.train.users, tiny_dataset.train.items] = 1e6  # training items look best
    users = torch.arange(tiny_dataset.n_users)
    ev._mask_training_items(scores, users)
    top = scores.topk(5, dim=1).indices
    trained = set(zip(tiny_dataset.train.users.tolist(), tiny_dataset.train.items.tolist()))
    assert not any((u, i) in trained for u in range(len(top)) for i in top[u].tolist())


def test_batched_evaluation_equals_one_batch(tiny_dataset: Dataset) -> None:
    table = torch.randn(tiny_dataset.n_users, tiny_dataset.n_items, generator=torch.Generator().manual_seed(0))
    model = FixedScores(tiny_dataset, table)
    one = Evaluator(tiny_dataset, torch.device("cpu"), batch_size=10_000).evaluate(model)
    many = Evaluator(tiny_dataset, torch.device("cpu"), batch_size=7).evaluate(model)
    for split in ("valid", "test"):
        for key, value in one[split].items():
            assert many[split][key] == pytest.approx(value)


def test_users_per_batch_fits_half_the_headroom() -> None:
    per_user = 4 * 4 * 7050  # four float32 rows of baby's 7,050 items
    assert users_per_batch(7050, 4096, None) == 4096  # CPU: the configured batch
    assert users_per_batch(7050, 4096, 139 * 2**30) == 4096  # a whole H200: the configured batch fits
    assert users_per_batch(7050, 4096, 30 * 2**20) == (15 * 2**20) // per_user == 139  # a nearly full share
    assert users_per_batch(7050, 4096, 0) == 1  # never zero


def test_cuda_headroom_is_capped_by_the_memory_share(monkeypatch: pytest.MonkeyPatch) -> None:
    gib = 2**30
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (100 * gib, 140 * gib))
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device=None: 5 * gib)
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device=None: 6 * gib)
    monkeypatch.setattr(torch.cuda, "get_per_process_memory_fraction", lambda device=None: 0.25, raising=False)
    assert cuda_headroom(torch.device("cuda", 0)) == 35 * gib - 5 * gib  # the share, not the free device
    monkeypatch.setattr(torch.cuda, "get_per_process_memory_fraction", lambda device=None: 1.0, raising=False)
    assert cuda_headroom(torch.device("cuda", 0)) == 101 * gib  # free + held unused by this process


def test_small_headroom_scores_in_smaller_batches_with_the_same_metrics(
    tiny_dataset: Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = torch.randn(tiny_dataset.n_users, tiny_dataset.n_items, generator=torch.Generator().manual_seed(0))
    model = FixedScores(tiny_dataset, table)
    sizes: list[int] = []
    real_score = model.score

    def score(users: torch.Tensor) -> torch.Tensor:
        sizes.append(len(users))
        return real_score(users)

    monkeypatch.setattr(model, "score", score)
    ev = Evaluator(tiny_dataset, torch.device("cpu"), batch_size=4096)
    whole = ev.evaluate(model)
    assert max(sizes) > 8
    sizes.clear()
    room_for_four = 2 * 4 * evaluate._SCORE_COPIES * 4 * tiny_dataset.n_items  # half of it holds four users
    monkeypatch.setattr(ev, "_headroom", lambda: room_for_four)
    share = ev.evaluate(model)
    assert set(sizes[:-1]) == {4} and sizes[-1] <= 4
    for split in whole:
        for key, value in whole[split].items():
            assert share[split][key] == pytest.approx(value, rel=1e-6)  # float32 per-batch sums
