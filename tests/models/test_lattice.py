"""LATTICE: the item graph equals MMRec's dense construction; only an epoch's first batch learns it."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mgtune.data import Batch, Dataset
from mgtune.models import get_model, parse_config
from mgtune.models.lattice import Lattice


def _dense_knn_norm(feats: torch.Tensor, k: int) -> torch.Tensor:
    """MMRec's build_sim -> build_knn_neighbourhood -> compute_normalized_laplacian, densely."""
    normed = feats / feats.norm(dim=1, keepdim=True)
    sim = normed @ normed.T
    val, ind = sim.topk(k, dim=1)
    return torch.zeros_like(sim).scatter_(1, ind, val)


def _sym_norm(adj: torch.Tensor) -> torch.Tensor:
    d = adj.sum(1).pow(-0.5)
    d[torch.isinf(d)] = 0.0
    return d[:, None] * adj * d[None, :]


def _batch(data: Dataset, n: int = 64) -> Batch:
    users = torch.as_tensor(data.train.users[:n])
    return Batch(users, torch.as_tensor(data.train.items[:n]), torch.randint(data.n_items, (n,)))


def test_item_graph_matches_dense_reference(tiny_dataset: Dataset) -> None:
    torch.manual_seed(0)
    model = Lattice.from_dataset(tiny_dataset)
    with torch.no_grad():
        model.modal_weight.copy_(torch.tensor([0.2, 0.9]))
    k, lam = model.cfg.knn_k, model.cfg.lambda_coeff
    w = F.softmax(model.modal_weight.detach(), 0)
    with torch.no_grad():
        learned = sum(
            w[j] * _dense_knn_norm(model.feat_proj[m](model.feat_tables[m]), k) for j, m in enumerate(("image", "text"))
        )
        frozen = sum(
            w[j] * _sym_norm(_dense_knn_norm(torch.as_tensor(tiny_dataset.features(m)), k))
            for j, m in enumerate(("image", "text"))
        )
        expected = (1 - lam) * _sym_norm(learned) + lam * frozen
        rows, cols, vals = model._item_graph_edges()
    n = tiny_dataset.n_items
    got = torch.zeros(n, n).index_put_((rows, cols), vals, accumulate=True)
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-5)


def test_user_item_graph_is_row_normalised_with_self_loops(tiny_dataset: Dataset) -> None:
    model = get_model("lattice").from_dataset(tiny_dataset)
    dense = model.norm_adj.inv_deg * model.norm_adj.adj.to_dense()
    torch.testing.assert_close(dense.sum(1), torch.ones(len(dense)))
    assert bool((dense.diagonal() > 0).all())


def test_graph_learner_gets_gradient_on_first_batch_of_epoch_only(tiny_dataset: Dataset) -> None:
    model = get_model("lattice").from_dataset(tiny_dataset)
    model.train()
    model.pre_epoch(0)
    grads = []
    for _ in range(2):
        model.zero_grad(set_to_none=True)
        model.loss(_batch(tiny_dataset)).backward()
        grads.append(model.feat_proj["image"].weight.grad)
    assert grads[0] is not None and float(grads[0].abs().sum()) > 0
    # later batches: an explicit zero gradient (Adam momentum keeps moving it, as in MMRec)
    assert grads[1] is not None and float(grads[1].abs().sum()) == 0.0
    model.pre_epoch(1)
    model.zero_grad(set_to_none=True)
    model.loss(_batch(tiny_dataset)).backward()
    assert float(model.feat_proj["image"].weight.grad.abs().sum()) > 0


def test_other_cf_models_train(tiny_dataset: Dataset) -> None:
    for cf in ("ngcf", "mf"):
        cls = get_model("lattice")
        model = cls.from_dataset(tiny_dataset, parse_config(cls.config_cls, {"cf_model": cf}))
        model.train()
        loss = model.loss(_batch(tiny_dataset))
        assert torch.isfinite(loss) and loss.dim() == 0
        model.eval()
        assert model.score(torch.arange(3)).shape == (3, tiny_dataset.n_items)
