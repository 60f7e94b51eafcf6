"""MGCN: its weighted similarity graphs, its user-item block, and its need for both modalities."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mgtune.data import Dataset, load_dataset
from mgtune.data.synth import make_synthetic
from mgtune.errors import DataFormatError
from mgtune.models import get_model
from mgtune.models.mgcn import MGCN


def test_similarity_graph_matches_dense_reference(tiny_dataset: Dataset) -> None:
    model = MGCN.from_dataset(tiny_dataset)
    k = model.cfg.knn_k
    for m in ("image", "text"):
        feats = torch.as_tensor(tiny_dataset.features(m))
        normed = feats / feats.norm(dim=1, keepdim=True)
        sim = normed @ normed.T
        val, ind = sim.topk(k, dim=1)
        adj = torch.zeros_like(sim).scatter_(1, ind, val)
        d = adj.sum(1).pow(-0.5)
        expected = d[:, None] * adj * d[None, :]
        got = model.item_adj[m].matrix.to_dense()
        assert int((got != 0).sum(1).max()) == k
        torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-5)


def test_user_item_block_is_the_normalised_adjacency_block(tiny_dataset: Dataset) -> None:
    model = get_model("mgcn").from_dataset(tiny_dataset)
    n_users = tiny_dataset.n_users
    torch.testing.assert_close(model.user_item.matrix.to_dense(), model.norm_adj.to_dense()[:n_users, n_users:])


@pytest.mark.parametrize("missing", ["image", "text"])
def test_needs_both_modalities(tmp_path: Path, missing: str) -> None:
    folder = make_synthetic(tmp_path, "t", "tiny")
    (folder / f"{missing}_feat.npy").unlink()
    with pytest.raises(DataFormatError, match=f"{missing}_feat.npy"):
        get_model("mgcn").from_dataset(load_dataset(tmp_path, "t"))
