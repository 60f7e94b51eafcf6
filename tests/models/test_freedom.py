"""FREEDOM: the frozen item-item kNN graph from features, degree-sensitive pruning of the user-item
graph (full graph at evaluation), and a loss of fused BPR plus the feature BPR terms."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mgtune.data import Batch, Dataset
from mgtune.models.freedom import Freedom, FreedomConfig


def _dense_knn_graph(feats: torch.Tensor, k: int) -> torch.Tensor:
    """MMRec's FREEDOM: 0/1 top-k cosine graph (self included), D^-1/2 A D^-1/2 with row degrees + 1e-7."""
    normed = feats / feats.norm(dim=1, keepdim=True)
    ind = (normed @ normed.T).topk(k, dim=1).indices
    adj = torch.zeros(len(feats), len(feats)).scatter_(1, ind, 1.0)
    d = (adj.sum(1) + 1e-7).pow(-0.5)
    return d[:, None] * adj * d[None, :]


def _batch(data: Dataset, n: int = 64) -> Batch:
    gen = torch.Generator().manual_seed(1)
    return Batch(torch.as_tensor(data.train.users[:n]), torch.as_tensor(data.train.items[:n]),
                 torch.randint(data.n_items, (n,), generator=gen))


def test_frozen_item_graph_mixes_the_modalities_knn_graphs(tiny_dataset: Dataset) -> None:
    cfg = FreedomConfig(knn_k=5, mm_image_weight=0.3)
    model = Freedom.from_dataset(tiny_dataset, cfg)
    expected = 0.3 * _dense_knn_graph(torch.as_tensor(tiny_dataset.image_feat), 5) + 0.7 * _dense_knn_graph(
        torch.as_tensor(tiny_dataset.text_feat), 5
    )
    before = model.mm_adj.matrix.to_dense()
    torch.testing.assert_close(before, expected, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(model.mm_adj.transpose.to_dense(), before.T, atol=0, rtol=0)

    # frozen: no gradient, and a training step and a new epoch leave it as it was
    assert not model.mm_adj.matrix.requires_grad
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    model.train()
    model.pre_epoch(0)
    model.loss(_batch(tiny_dataset)).backward()
    optimizer.step()
    model.pre_epoch(1)
    assert torch.equal(model.mm_adj.matrix.to_dense(), before)

    # and the item side adds S^{L_m} E^id to the LightGCN embedding
    with torch.no_grad():
        _, item_emb = model._embeddings(model.graph.norm_adj)
        ego = torch.cat([model.user_embedding.weight, model.item_id_embedding.weight])
        adj = model.graph.norm_adj.to_dense()
        lightgcn = (ego + adj @ ego + adj @ (adj @ ego)) / 3
        h = before @ model.item_id_embedding.weight
    torch.testing.assert_close(item_emb, lightgcn[tiny_dataset.n_users:] + h, atol=1e-5, rtol=1e-4)


def test_pruning_is_degree_sensitive_and_evaluation_uses_the_full_graph(tiny_dataset: Dataset) -> None:
    model = Freedom.from_dataset(tiny_dataset, FreedomConfig(dropout=0.5))
    graph = model.graph
    n_edges = len(graph.users)
    n_users = tiny_dataset.n_users
    torch.manual_seed(0)
    kept = torch.zeros(n_edges)
    for epoch in range(300):
        model.pre_epoch(epoch)
        dense = model.masked_adj.to_dense()
        on = dense[graph.users, graph.items + n_users] != 0
        kept += on.float()
        if epoch == 0:
            # half the edges, both directions, re-normalised over the kept edges only
            assert int(on.sum()) == int(n_edges * 0.5)
            assert (dense != 0).sum() == 2 * int(n_edges * 0.5)
            torch.testing.assert_close(dense, dense.T)
            u, i = graph.users[on], graph.items[on]
            du = torch.bincount(u, minlength=n_users).float()
            di = torch.bincount(i, minlength=tiny_dataset.n_items).float()
            torch.testing.assert_close(dense[u, i + n_users], (du[u] * di[i]).rsqrt())
    # edges between low-degree nodes (large 1/sqrt(d_u d_i)) survive more often than the others
    order = graph.weights.argsort()
    quarter = n_edges // 4
    light, heavy = kept[order[:quarter]].mean(), kept[order[-quarter:]].mean()
    assert heavy > light + 0.1 * 300, (float(light), float(heavy))

    # evaluation ignores the epoch's pruned graph
    model.eval()
    users = torch.arange(5)
    with torch.no_grad():
        user_emb, item_emb = model._embeddings(graph.norm_adj)
        torch.testing.assert_close(model.score(users), user_emb[users] @ item_emb.T)


def test_loss_is_fused_bpr_plus_feature_bpr_terms(tiny_dataset: Dataset) -> None:
    torch.manual_seed(0)
    model = Freedom.from_dataset(tiny_dataset, FreedomConfig(reg_weight=0.5, dropout=0.0))
    model.train()
    batch = _batch(tiny_dataset)
    with torch.no_grad():
        got = model.loss(batch)
        user_emb, item_emb = model._embeddings(model.graph.norm_adj)
        u = user_emb[batch.users]

        def bpr(pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
            return -F.logsigmoid((u * pos).sum(1) - (u * neg).sum(1)).mean()

        expected = bpr(item_emb[batch.pos_items], item_emb[batch.neg_items])
        for m in ("image", "text"):
            f = model.feat_proj[m](model.feat_tables[m])
            expected = expected + 0.5 * bpr(f[batch.pos_items], f[batch.neg_items])
    torch.testing.assert_close(got, expected)

    # reg_weight 0: the feature branch is skipped, so its parameters get no gradient
    plain = Freedom.from_dataset(tiny_dataset, FreedomConfig(reg_weight=0.0, dropout=0.0))
    plain.train()
    plain.loss(batch).backward()
    assert all(t.grad is None for t in plain.feat_tables.values())
    assert plain.user_embedding.weight.grad is not None
    model.loss(batch).backward()
    assert all(t.grad is not None and float(t.grad.abs().sum()) > 0 for t in model.feat_tables.values())
