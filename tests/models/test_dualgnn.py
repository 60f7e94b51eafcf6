"""DualGNN and the shared user-user graph: co-interaction top-k, the reference's file format, caching."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from mgtune.data import Dataset, load_dataset
from mgtune.data.synth import make_synthetic
from mgtune.errors import DataFormatError
from mgtune.models import get_model
from mgtune.models._blocks.user_graph import USER_GRAPH_FILE, cooccurrence_topk, user_graph
from mgtune.models.dualgnn import DualGNN


def _dense_cooccurrence(data: Dataset) -> np.ndarray:
    r = np.zeros((data.n_users, data.n_items))
    r[data.train.users, data.train.items] = 1
    co = r @ r.T
    np.fill_diagonal(co, 0)
    return co


@pytest.mark.parametrize("k, max_products", [(40, 20_000_000), (3, 50)])
def test_cooccurrence_topk_matches_dense(tiny_dataset: Dataset, k: int, max_products: int) -> None:
    d = tiny_dataset
    graph = cooccurrence_topk(d.train.users, d.train.items, d.n_users, d.n_items, k, max_products=max_products)
    co = _dense_cooccurrence(d)
    assert graph.neighbours.shape == graph.counts.shape == (d.n_users, k)
    for u in range(d.n_users):
        n = int(graph.n_valid[u])
        assert n == min(int((co[u] > 0).sum()), k)
        nbrs, counts = graph.neighbours[u, :n].numpy(), graph.counts[u, :n].numpy()
        assert len(set(nbrs)) == n and u not in nbrs
        np.testing.assert_allclose(counts, co[u, nbrs])
        np.testing.assert_allclose(np.sort(counts), np.sort(co[u])[::-1][:n][::-1])  # the k largest
        assert (graph.counts[u, n:] == 0).all()


def _copy(tiny_dir: Path, tmp_path: Path) -> Path:
    shutil.copytree(tiny_dir / "tiny", tmp_path / "tiny")
    return tmp_path


def test_reads_the_reference_user_graph_file(tiny_dir: Path, tmp_path: Path) -> None:
    root = _copy(tiny_dir, tmp_path)
    data = load_dataset(root, "tiny")
    # the reference's format: {user: [neighbours sorted by count, counts]}, here a ring of 3 users
    ring = {u: [[(u + 1) % data.n_users, (u + 2) % data.n_users], [5.0, 1.0]] for u in range(data.n_users)}
    np.save(root / "tiny" / USER_GRAPH_FILE, ring, allow_pickle=True)
    model = DualGNN.from_dataset(data)
    graph = model.user_graph.graph
    assert graph.n_valid.tolist() == [2] * data.n_users
    assert graph.neighbours[0, :2].tolist() == [1, 2] and graph.counts[0, :2].tolist() == [5.0, 1.0]
    # padded to k by drawing among the two neighbours; softmax weights sum to 1
    nbrs, weights = model.user_graph.neighbours, model.user_graph.weights
    assert set(nbrs[0].tolist()) <= {1, 2}
    torch.testing.assert_close(weights.sum(1), torch.ones(data.n_users))

    del ring[3]
    np.save(root / "tiny" / USER_GRAPH_FILE, ring, allow_pickle=True)
    with pytest.raises(DataFormatError, match="no entry for 1 of"):
        get_model("dualgnn").from_dataset(load_dataset(root, "tiny"))


def test_built_graph_is_cached_by_dataset_content(tmp_path: Path) -> None:
    make_synthetic(tmp_path, "t", "tiny", seed=0)
    first = user_graph(load_dataset(tmp_path, "t"), 10)
    assert list((tmp_path / "t" / ".mgtune_cache").glob("user-graph-*.pt"))
    make_synthetic(tmp_path, "t", "tiny", seed=1, force=True)  # same folder, new interactions
    data = load_dataset(tmp_path, "t")
    second = user_graph(data, 10)
    expected = cooccurrence_topk(data.train.users, data.train.items, data.n_users, data.n_items, 10)
    assert torch.equal(second.counts, expected.counts) and not torch.equal(second.counts, first.counts)


def test_users_fuse_modalities_by_weighted_sum(tiny_dataset: Dataset) -> None:
    model = get_model("dualgnn").from_dataset(tiny_dataset)
    model.user_graph.weights.zero_()  # switch the user graph off
    model.user_graph.load_state_dict(model.user_graph.state_dict())  # rebuilds the aggregation matrix
    with torch.no_grad():
        user_emb, item_emb = model._embeddings()
        z_img, z_txt = model._views()
    w = model.modality_weight.detach()
    n = tiny_dataset.n_users
    torch.testing.assert_close(user_emb, w[:, :1] * z_img[:n] + w[:, 1:] * z_txt[:n])
    torch.testing.assert_close(item_emb, z_img[n:] + z_txt[n:])
