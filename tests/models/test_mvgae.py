"""MVGAE: the hardest-negative loss equals MMRec's (B, B, d) formulation, mean aggregation is PyG's,
single-modality data work, evaluation is deterministic."""

from __future__ import annotations

from pathlib import Path

import torch

from mgtune.data import Batch, Dataset, load_dataset
from mgtune.data.synth import make_synthetic
from mgtune.models import get_model
from mgtune.models._blocks.mean_aggregation import mean_aggregate
from mgtune.models.mvgae import MVGAE, MVGAEConfig


def _reference_recon(z: torch.Tensor, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """MMRec's recon_loss (decoder without the output sigmoid), materialising (B, B, d)."""
    z = torch.sigmoid(z)
    pos_score = (z[users] * z[pos]).sum(1)
    re_users = users.unsqueeze(1).repeat(1, len(neg))
    neg_score = (z[re_users] * z[neg]).sum(-1).max(-1).values
    return -torch.log2(torch.sigmoid(pos_score - neg_score)).sum()


def test_hardest_negative_loss_matches_dense_reference() -> None:
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(120, 16, generator=gen)
    users = torch.randint(50, (40,), generator=gen)
    pos = 50 + torch.randint(70, (40,), generator=gen)
    neg = 50 + torch.randint(70, (40,), generator=gen)  # repeats included
    z1, z2 = z.clone().requires_grad_(), z.clone().requires_grad_()
    expected = _reference_recon(z1, users, pos, neg)
    squashed = torch.sigmoid(z2)
    got = MVGAE._recon_loss(squashed[users], squashed[pos], squashed[torch.unique(neg)])
    expected.backward()
    got.backward()
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(z2.grad, z1.grad)


def test_mean_aggregation_is_mean_over_neighbours_and_self(tiny_dataset: Dataset) -> None:
    model = get_model("mvgae").from_dataset(tiny_dataset)
    assert isinstance(model, MVGAE)
    n = model.n_users + model.n_items
    dense = torch.eye(n)
    dense[tiny_dataset.train.users, tiny_dataset.train.items + model.n_users] = 1.0
    dense[tiny_dataset.train.items + model.n_users, tiny_dataset.train.users] = 1.0
    x = torch.randn(n, 5)
    torch.testing.assert_close(mean_aggregate(model.graph, x), (dense @ x) / dense.sum(1, keepdim=True))


def test_fixed_inputs_are_buffers_and_eval_is_deterministic(tiny_dataset: Dataset) -> None:
    model = get_model("mvgae").from_dataset(tiny_dataset)
    params = {name for name, _ in model.named_parameters()}
    assert not any("preference" in name or "feat_" in name for name in params)
    state = model.state_dict()
    assert "encoders.image.preference" in state and "feat_id" in state
    assert "feat_image" not in state  # data, not model state
    model.eval()
    with torch.no_grad():
        first = model.score(torch.arange(5))
        model.train()
        model.eval()  # drops the evaluation cache
        torch.testing.assert_close(model.score(torch.arange(5)), first)
    assert first.min() >= 0 and first.max() <= MVGAEConfig().embedding_size  # sigmoid(mu)^T sigmoid(mu)


def test_text_only_dataset_trains(tmp_path: Path) -> None:
    folder = make_synthetic(tmp_path, "t", "tiny")
    (folder / "image_feat.npy").unlink()
    data = load_dataset(tmp_path, "t")
    model = get_model("mvgae").from_dataset(data)
    assert isinstance(model, MVGAE)
    assert set(model.encoders.keys()) == {"text", "id"}
    model.train()
    n = 64
    batch = Batch(torch.as_tensor(data.train.users[:n]), torch.as_tensor(data.train.items[:n]),
                  torch.randint(data.n_items, (n,)))
    loss = model.loss(batch)
    assert loss.dim() == 0 and bool(torch.isfinite(loss))
    loss.backward()
    model.eval()
    assert model.score(torch.arange(4)).shape == (4, data.n_items)
