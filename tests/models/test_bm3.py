"""BM3: trains on (user, positive) pairs only; the feature tables are trainable, row by row."""

from __future__ import annotations

import torch

from mgtune.data import Batch, Dataset
from mgtune.models import get_model


def test_bm3_loss_without_negatives_reaches_only_batch_feature_rows(tiny_dataset: Dataset) -> None:
    torch.manual_seed(0)
    cls = get_model("bm3")
    assert cls.needs_negatives is False
    model = cls.from_dataset(tiny_dataset)
    users = torch.tensor([0, 1, 2, 2])
    items = torch.tensor([3, 5, 7, 7])
    loss = model.loss(Batch(users, items, None))
    assert loss.dim() == 0 and torch.isfinite(loss)
    loss.backward()
    for table in model.feat_tables.values():
        touched = (table.grad.abs().sum(1) > 0).nonzero().flatten()
        assert touched.tolist() == [3, 5, 7]
    assert model.user_embedding.weight.grad is not None

    model.eval()
    scores = model.score(torch.tensor([0, 4]))
    assert scores.shape == (2, tiny_dataset.n_items)
    assert torch.isfinite(scores).all()
