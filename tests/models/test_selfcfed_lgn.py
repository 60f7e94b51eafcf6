"""SELFCF_ed (LightGCN): per-batch edge dropout of the graph, no negatives, two-sided scores."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mgtune.data import Batch, Dataset
from mgtune.models import get_model
from mgtune.models._blocks.edge_dropout import sparse_dropout
from mgtune.models.selfcfed_lgn import SelfCFedLGN, SelfCFedLGNConfig


def test_sparse_dropout_keeps_and_rescales_entries(tiny_dataset: Dataset) -> None:
    model = SelfCFedLGN.from_dataset(tiny_dataset)
    adj = model.norm_adj
    torch.manual_seed(0)
    assert torch.equal(sparse_dropout(adj, 1.0).to_dense(), adj.to_dense())
    dropped = sparse_dropout(adj, 0.5)
    kept = dropped.to_dense() != 0
    assert 0.4 < kept.sum() / adj.values().numel() < 0.6
    assert torch.allclose(dropped.to_dense()[kept], 2 * adj.to_dense()[kept])


def test_selfcfed_loss_and_score(tiny_dataset: Dataset) -> None:
    torch.manual_seed(0)
    assert get_model("selfcfed_lgn") is SelfCFedLGN and SelfCFedLGN.needs_negatives is False
    model = SelfCFedLGN.from_dataset(tiny_dataset)
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


def _dense_layer_mean(model: SelfCFedLGN, n_layers: int) -> torch.Tensor:
    adj = model.norm_adj.to_dense()
    h = torch.cat([model.user_emb, model.item_emb]).detach()
    layers = [h]
    for _ in range(n_layers):
        h = adj @ h
        layers.append(h)
    return torch.stack(layers).mean(0)


@pytest.mark.parametrize("n_layers", [0, 1, 3])
def test_selfcfed_propagates_n_layers(tiny_dataset: Dataset, n_layers: int) -> None:
    torch.manual_seed(0)
    model = SelfCFedLGN.from_dataset(tiny_dataset, SelfCFedLGNConfig(n_layers=n_layers))
    with torch.no_grad():
        user_emb, item_emb = model._embeddings(model.norm_adj)
    torch.testing.assert_close(torch.cat([user_emb, item_emb]), _dense_layer_mean(model, n_layers))


def test_selfcfed_scores_change_with_n_layers_for_the_same_weights(tiny_dataset: Dataset) -> None:
    torch.manual_seed(0)
    one = SelfCFedLGN.from_dataset(tiny_dataset, SelfCFedLGNConfig(n_layers=1))
    three = SelfCFedLGN.from_dataset(tiny_dataset, SelfCFedLGNConfig(n_layers=3))
    three.load_state_dict(one.state_dict())
    one.eval()
    three.eval()
    users = torch.arange(10)
    with torch.no_grad():
        s1, s3 = one.score(users), three.score(users)
    assert s1.shape == s3.shape == (10, tiny_dataset.n_items)
    assert (s1 - s3).abs().max() > 1e-3


def _reference_loss(model: SelfCFedLGN, batch: Batch, seed: int) -> torch.Tensor:
    """MMRec's SELFCFED_LGN loss written out densely, with mgtune's draws after ``manual_seed(seed)``:
    the drop rate, one uniform per stored graph entry (CSR order), then the user and the item dropout."""
    cfg = model.cfg
    torch.manual_seed(seed)
    rho = float(torch.rand(()))
    adj = model.norm_adj
    keep = torch.rand(adj.values().shape) < 1.0 - rho
    rows = torch.repeat_interleave(torch.arange(adj.shape[0]), adj.crow_indices().diff())
    a_hat = torch.zeros(adj.shape)
    a_hat[rows[keep], adj.col_indices()[keep]] = adj.values()[keep] / (1.0 - rho)
    h = torch.cat([model.user_emb, model.item_emb])
    layers = [h]
    for _ in range(cfg.n_layers):
        h = a_hat @ h
        layers.append(h)
    user_emb, item_emb = torch.stack(layers).mean(0).split([model.n_users, model.n_items])
    u, i = user_emb[batch.users], item_emb[batch.pos_items]
    with torch.no_grad():
        u_target, i_target = F.dropout(u, cfg.dropout), F.dropout(i, cfg.dropout)
    p_u, p_i = model.predictor(u), model.predictor(i)
    cos = -F.cosine_similarity(p_u, i_target).mean() / 2 - F.cosine_similarity(p_i, u_target).mean() / 2
    return cos + cfg.reg_weight * 0.5 * ((u**2).sum() + (i**2).sum())


def test_selfcfed_loss_is_the_references_formula(tiny_dataset: Dataset) -> None:
    """The loss MMRec's SELFCFED_LGN computes (benchmarks/selfcfed_lgn_fidelity.md): cosines between the
    predictor of each side and the other side's dropout target, L2 on the propagated rows before the
    predictor, LightGCN's mean over layers 0..L; and the same gradients."""
    torch.manual_seed(0)
    model = SelfCFedLGN.from_dataset(tiny_dataset, SelfCFedLGNConfig(n_layers=2, dropout=0.2, reg_weight=0.01))
    batch = Batch(torch.arange(0, 60, 2), torch.as_tensor(tiny_dataset.train.items[:30]), None)
    for seed in (1, 2, 3):
        expected = _reference_loss(model, batch, seed)
        expected_grads = torch.autograd.grad(expected, list(model.parameters()))
        torch.manual_seed(seed)
        got = model.loss(batch)
        grads = torch.autograd.grad(got, list(model.parameters()))
        torch.testing.assert_close(got, expected)
        for g, e in zip(grads, expected_grads, strict=True):
            torch.testing.assert_close(g, e, rtol=1e-4, atol=1e-6)
