"""ItemKNNCBF: sparse top-k scores equal MMRec's dense R @ W; nothing to train."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mgtune.data import Batch, Dataset
from mgtune.models import get_model
from mgtune.models._blocks import knn
from mgtune.models.itemknncbf import ItemKNNCBF


def _dense_reference(data: Dataset, k: int, shrink: float) -> torch.Tensor:
    feats = torch.cat([torch.as_tensor(data.image_feat), torch.as_tensor(data.text_feat)], 1)
    norm = feats.norm(dim=1, keepdim=True)
    sim = (feats @ feats.T) / (norm * norm.T + shrink)
    top = sim.topk(k, dim=1)
    w = torch.zeros_like(sim).scatter_(1, top.indices, top.values)
    r = torch.zeros(data.n_users, data.n_items)
    r.index_put_((torch.as_tensor(data.train.users), torch.as_tensor(data.train.items)),
                 torch.ones(len(data.train)), accumulate=True)
    return r @ w


@pytest.mark.parametrize("shrink", [0.0, 10.0])
def test_scores_equal_dense_reference(tiny_dataset: Dataset, shrink: float, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(knn, "_CHUNK_ELEMENTS", 7 * tiny_dataset.n_items)  # several chunks
    model = get_model("itemknncbf").from_dataset(tiny_dataset, ItemKNNCBF.config_cls(knn_k=5, shrink=shrink))
    model.eval()
    users = torch.as_tensor(np.unique(tiny_dataset.train.users)[::2])
    torch.testing.assert_close(model.score(users), _dense_reference(tiny_dataset, 5, shrink)[users])


def test_not_trainable(tiny_dataset: Dataset) -> None:
    model = get_model("itemknncbf").from_dataset(tiny_dataset)
    assert model.trainable is False
    assert not list(model.parameters())
    assert model.knn_indices.shape == (tiny_dataset.n_items, 10)
    with pytest.raises(NotImplementedError):
        model.loss(Batch(torch.tensor([0]), torch.tensor([0]), torch.tensor([1])))
