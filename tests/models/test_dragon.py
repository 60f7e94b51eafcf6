"""DRAGON: attentive concatenation, the mixed item kNN graph, and a checkpointed user-graph sample."""

from __future__ import annotations

from pathlib import Path

import torch

from mgtune.data import Dataset, load_dataset
from mgtune.data.synth import make_synthetic
from mgtune.models import get_model, parse_config
from mgtune.models.dragon import DRAGON, DRAGONConfig


def test_item_graph_mixes_the_modalities_knn_graphs(tiny_dataset: Dataset) -> None:
    model = DRAGON.from_dataset(tiny_dataset)
    cfg, n = model.cfg, tiny_dataset.n_items
    dense = model.mm_adj.matrix.to_dense()
    assert dense.shape == (n, n)
    assert int((dense != 0).sum(1).max()) <= 2 * cfg.knn_k
    # every row: k entries of 1/k from the image graph (weight w), k from text (1 - w)
    torch.testing.assert_close(dense.sum(1), torch.ones(n), atol=1e-5, rtol=0)
    assert (dense.diagonal() > 0).all()  # each item is its own nearest neighbour


def test_attentive_concatenation_doubles_the_width(tiny_dataset: Dataset) -> None:
    model = get_model("dragon").from_dataset(tiny_dataset)
    with torch.no_grad():
        user_emb, item_emb = model._embeddings()
    d = model.cfg.embedding_size
    assert user_emb.shape == (tiny_dataset.n_users, 2 * d) and item_emb.shape == (tiny_dataset.n_items, 2 * d)


def test_single_modality(tmp_path: Path) -> None:
    folder = make_synthetic(tmp_path, "t", "tiny")
    (folder / "image_feat.npy").unlink()
    data = load_dataset(tmp_path, "t")
    model = DRAGON.from_dataset(data, parse_config(DRAGONConfig, {"embedding_size": 8}))
    assert model.modality_weight is None
    model.eval()
    with torch.no_grad():
        assert model.score(torch.arange(3)).shape == (3, data.n_items)


def test_checkpoint_restores_the_epochs_user_graph(tiny_dataset: Dataset) -> None:
    torch.manual_seed(0)
    model = get_model("dragon").from_dataset(tiny_dataset)
    for epoch in range(3):
        model.pre_epoch(epoch)
    model.eval()
    users = torch.arange(tiny_dataset.n_users)
    with torch.no_grad():
        expected = model.score(users)
    other = get_model("dragon").from_dataset(tiny_dataset)  # draws its own sample
    other.load_state_dict(model.state_dict())
    other.eval()
    with torch.no_grad():
        torch.testing.assert_close(other.score(users), expected)
