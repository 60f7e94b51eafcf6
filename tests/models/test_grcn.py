"""GRCN: attention normalised per node, pruned (non-negative) edge weights, text-only data."""

from __future__ import annotations

from pathlib import Path

import torch

from mgtune.data import Batch, Dataset, load_dataset
from mgtune.data.synth import make_synthetic
from mgtune.models import get_model
from mgtune.models.grcn import GRCN


def test_attention_sums_to_one_per_node_and_weights_are_pruned(tiny_dataset: Dataset) -> None:
    model = GRCN.from_dataset(tiny_dataset)
    with torch.no_grad():
        _, alpha = model._content("image")
        sums = torch.zeros(model.n_nodes).index_add_(0, model.graph.rows, alpha)
        has_edges = torch.bincount(model.graph.rows, minlength=model.n_nodes) > 0
        torch.testing.assert_close(sums[has_edges], torch.ones(int(has_edges.sum())))
        rep = model._representation()
    cfg = model.cfg
    assert rep.shape == (model.n_nodes, cfg.embedding_size + 2 * cfg.latent_embedding)
    # both directions of every training interaction, once each
    assert model.graph.nnz == 2 * len({(u, i) for u, i in zip(tiny_dataset.train.users, tiny_dataset.train.items)})


def test_text_only_dataset(tmp_path: Path) -> None:
    folder = make_synthetic(tmp_path, "t", "tiny")
    (folder / "image_feat.npy").unlink()
    data = load_dataset(tmp_path, "t")
    model = get_model("grcn").from_dataset(data)
    model.train()
    n = 32
    batch = Batch(torch.as_tensor(data.train.users[:n]), torch.as_tensor(data.train.items[:n]),
                  torch.randint(data.n_items, (n,)))
    loss = model.loss(batch)
    assert torch.isfinite(loss) and loss.dim() == 0
    model.eval()
    assert model.score(torch.arange(4)).shape == (4, data.n_items)


def test_edge_graph_gradients() -> None:
    """GRCN's sparse kernels (`edge_list.EdgeGraph`) differentiate like their dense versions."""
    from mgtune.models._blocks.edge_list import EdgeGraph

    torch.manual_seed(0)
    graph, slot = EdgeGraph.from_edges(torch.tensor([0, 2, 1, 0, 2]), torch.tensor([1, 0, 3, 1, 2]), 3, 4)
    assert graph.nnz == 4 and slot.tolist() == [0, 2, 1, 0, 3]
    values = torch.rand(graph.nnz, dtype=torch.float64, requires_grad=True)
    x = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    a = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(graph.spmm, (values, x))
    assert torch.autograd.gradcheck(graph.sddmm, (a, x))
    dense = torch.zeros(3, 4, dtype=torch.float64).index_put((graph.rows, graph.cols), values)
    torch.testing.assert_close(graph.spmm(values, x), dense @ x)
    torch.testing.assert_close(graph.sddmm(a, x), (a @ x.T)[graph.rows, graph.cols])
