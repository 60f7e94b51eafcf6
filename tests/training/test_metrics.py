"""Every metric against hand-computed rankings (MMRec's definitions)."""

from __future__ import annotations

import math

import pytest
import torch

from mgtune.training.evaluate import ranking_metrics


def _dcg(hits: list[int]) -> float:
    return sum(h / math.log2(j + 2) for j, h in enumerate(hits))


def test_single_user_by_hand() -> None:
    # ranking: hit, miss, hit, miss, miss; the user has 3 relevant items
    hits = torch.tensor([[1, 0, 1, 0, 0]])
    m = ranking_metrics(hits, torch.tensor([3]), (1, 3, 5))
    assert m["recall@1"].item() == pytest.approx(1 / 3)
    assert m["recall@5"].item() == pytest.approx(2 / 3)
    assert m["precision@3"].item() == pytest.approx(2 / 3)
    assert m["precision@5"].item() == pytest.approx(2 / 5)
    # NDCG@5: DCG = 1/log2(2) + 1/log2(4); ideal has min(3, 5) = 3 hits
    assert m["ndcg@5"].item() == pytest.approx(_dcg([1, 0, 1]) / _dcg([1, 1, 1]))
    # NDCG@1: the ideal has min(3, 1) = 1 hit
    assert m["ndcg@1"].item() == pytest.approx(1.0)
    # MAP@5 = (P@1 * 1 + P@3 * 1) / min(3, 5) = (1 + 2/3) / 3
    assert m["map@5"].item() == pytest.approx((1 + 2 / 3) / 3)
    # MAP@3 = (1 + 2/3) / min(3, 3)
    assert m["map@3"].item() == pytest.approx((1 + 2 / 3) / 3)
    assert m["map@1"].item() == pytest.approx(1.0)


def test_user_with_fewer_relevant_than_k() -> None:
    hits = torch.tensor([[0, 1, 0, 0]])
    m = ranking_metrics(hits, torch.tensor([1]), (4,))
    assert m["recall@4"].item() == pytest.approx(1.0)
    assert m["precision@4"].item() == pytest.approx(0.25)
    assert m["ndcg@4"].item() == pytest.approx((1 / math.log2(3)) / 1.0)
    assert m["map@4"].item() == pytest.approx(0.5)  # P@2 * 1 / min(1, 4)


def test_no_hits_is_zero_and_batch_is_per_user() -> None:
    hits = torch.tensor([[0, 0, 0], [1, 1, 1]])
    m = ranking_metrics(hits, torch.tensor([2, 3]), (3,))
    assert m["recall@3"].tolist() == pytest.approx([0.0, 1.0])
    assert m["ndcg@3"].tolist() == pytest.approx([0.0, 1.0])
    assert m["map@3"].tolist() == pytest.approx([0.0, 1.0])
