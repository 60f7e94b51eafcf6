"""SELFCF_ed (LightGCN): per-batch edge dropout of the graph, no negatives, two-sided scores."""

from __future__ import annotations

import pytest
import torch

from mgtune.data import Batch, Dataset
from mgtune.models import get_model
from mgtune.models._blocks.edge_dropout import sparse_dropout


def test_sparse_dropout_keeps_and_rescales_entries(tiny_dataset: Dataset) -> None:
    model = get_model("selfcfed_lgn").from_dataset(tiny_dataset)
    adj = model.norm_adj
    torch.manual_seed(0)
    assert torch.equal(sparse_dropout(adj, 1.0).to_dense(), adj.to_dense())
    dropped = sparse_dropout(adj, 0.5)
    kept = dropped.to_dense() != 0
    assert 0.4 < kept.sum() / adj.values().numel() < 0.6
    assert torch.allclose(dropped.to_dense()[kept], 2 * adj.to_dense()[kept])


def test_selfcfed_loss_and_score(tiny_dataset: Dataset) -> None:
    torch.manual_seed(0)
    cls = get_model("selfcfed_lgn")
    assert cls.needs_negatives is False
    model = cls.from_dataset(tiny_dataset)
    loss = model.loss(Batch(torch.tensor([0, 1, 2]), torch.tensor([3, 4, 5]), None))
    assert loss.dim() == 0 and torch.isfinite(loss)
    loss.backward()
    assert model.predictor.weight.grad is not None

    model.eval()
    with torch.no_grad():
        users = torch.tensor([0, 7])
        u, i = model._embeddings(model.norm_adj)
        expected = model.predictor(u[users]) @ i.T + u[users] @ model.predictor(i).T
        assert torch.allclose(model.score(users), expected, atol=1e-5)


@pytest.mark.parametrize("n_layers", [1, 2])
def test_selfcfed_layers(tiny_dataset: Dataset, n_layers: int) -> None:
    from mgtune.models import parse_config

    cls = get_model("selfcfed_lgn")
    model = cls.from_dataset(tiny_dataset, parse_config(cls.config_cls, {"n_layers": n_layers}))
    model.eval()
    assert model.score(torch.tensor([1])).shape == (1, tiny_dataset.n_items)
