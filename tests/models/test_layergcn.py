"""LayerGCN: per-epoch pruning alternates degree-sensitive and random; layer-refined propagation."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mgtune.data import Batch, Dataset
from mgtune.models import get_model, parse_config


def test_layergcn_pruning_keeps_a_symmetric_share(tiny_dataset: Dataset) -> None:
    cls = get_model("layergcn")
    model = cls.from_dataset(tiny_dataset, parse_config(cls.config_cls, {"dropout": 0.2}))
    n_edges = len(model.graph.weights)
    assert model.norm_adj.values().numel() == 2 * n_edges
    torch.manual_seed(0)
    for epoch in (0, 1):
        model.pre_epoch(epoch)
        dense = model.masked_adj.to_dense()
        assert (dense != 0).sum() == 2 * int(n_edges * 0.8)
        assert torch.allclose(dense, dense.T)


def test_layergcn_propagation_and_loss(tiny_dataset: Dataset) -> None:
    torch.manual_seed(0)
    model = get_model("layergcn").from_dataset(tiny_dataset)
    model.pre_epoch(0)
    # layer-refined propagation written out densely: layer 0 is not in the sum
    adj = model.norm_adj.to_dense()
    ego = torch.cat([model.user_emb, model.item_emb]).detach()
    h, total = ego, torch.zeros_like(ego)
    for _ in range(model.cfg.n_layers):
        h = adj @ h
        h = F.cosine_similarity(h, ego, dim=-1).unsqueeze(1) * h
        total = total + h
    user_emb, item_emb = model._embeddings(model.norm_adj)
    assert torch.allclose(torch.cat([user_emb, item_emb]), total, atol=1e-6)

    batch = Batch(torch.tensor([0, 1]), torch.tensor([2, 3]), torch.tensor([4, 5]))
    loss = model.loss(batch)
    assert loss.dim() == 0 and torch.isfinite(loss)
    loss.backward()
    assert model.user_emb.grad is not None


def _kept_weight(model: object, weights: dict[tuple[int, int], float], n_users: int) -> float:
    """The mean ``1/sqrt(d_u d_i)`` weight of the user-item edges left in ``model.masked_adj``."""
    adj = model.masked_adj.to_sparse_coo().coalesce()  # type: ignore[attr-defined]
    rows, cols = adj.indices()
    kept = [weights[(int(u), int(c) - n_users)] for u, c in zip(rows, cols) if u < n_users]
    return sum(kept) / len(kept)


def test_layergcn_prunes_by_degree_on_even_epochs_and_uniformly_on_odd_ones(tiny_dataset: Dataset) -> None:
    cls = get_model("layergcn")
    model = cls.from_dataset(tiny_dataset, parse_config(cls.config_cls, {"dropout": 0.5}))
    graph = model.graph
    weights = {(int(u), int(i)): float(w) for u, i, w in zip(graph.users, graph.items, graph.weights)}
    overall = sum(weights.values()) / len(weights)
    spread = float(torch.tensor(list(weights.values())).std()) / len(weights) ** 0.5
    torch.manual_seed(0)
    even, odd = [], []
    for epoch in range(20):
        model.pre_epoch(epoch)
        (even if epoch % 2 == 0 else odd).append(_kept_weight(model, weights, tiny_dataset.n_users))
    # degree-sensitive pruning keeps edges with probability ~ their weight: the kept edges weigh more
    # than the average edge; a uniform subset weighs the average, within its sampling noise
    assert min(even) > overall + 2 * spread
    assert abs(sum(odd) / len(odd) - overall) < 2 * spread
    assert min(even) > max(odd)
