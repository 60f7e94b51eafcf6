"""MVGAE: its per-row loss equals the original code's, its batch-hardest loss MMRec's (B, B, d)
formulation, mean aggregation is PyG's, single-modality data work, evaluation is deterministic."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mgtune.data import Batch, Dataset, load_dataset
from mgtune.data.synth import make_synthetic
from mgtune.models import get_model
from mgtune.models._blocks.mean_aggregation import mean_aggregate
from mgtune.models.mvgae import MVGAE, MVGAEConfig


def _reference_recon(z: torch.Tensor, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """Both references' recon_loss (decoder without the output sigmoid), written as they index:
    ``neg`` of shape (B, K) is the original's own-negatives list; MMRec passes a 1-D (B,) tensor,
    which broadcasts every user against all of them through a (B, B, d) tensor."""
    z = torch.sigmoid(z)
    pos_score = (z[users] * z[pos]).sum(1)
    re_users = users.unsqueeze(1).repeat(1, neg.shape[-1])
    neg_score = (z[re_users] * z[neg]).sum(-1).max(-1).values
    return -torch.log2(torch.sigmoid(pos_score - neg_score)).sum()


@pytest.mark.parametrize("hardest_of_all", [False, True])
def test_recon_loss_matches_reference(hardest_of_all: bool) -> None:
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(120, 16, generator=gen)
    users = torch.randint(50, (40,), generator=gen)
    pos = 50 + torch.randint(70, (40,), generator=gen)
    neg = 50 + torch.randint(70, (40,), generator=gen)  # repeats included
    z1, z2 = z.clone().requires_grad_(), z.clone().requires_grad_()
    expected = _reference_recon(z1, users, pos, neg if hardest_of_all else neg.unsqueeze(1))
    squashed = torch.sigmoid(z2)
    # as `MVGAE.loss` calls it: one negative row per batch row, repeats kept, in both modes
    got = MVGAE._recon_loss(squashed[users], squashed[pos], squashed[neg], hardest_of_all)
    expected.backward()
    got.backward()
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(z2.grad, z1.grad)


@pytest.mark.parametrize("hardest_of_all", [False, True])
def test_loss_sums_the_reference_terms_over_four_posteriors(tiny_dataset: Dataset, hardest_of_all: bool) -> None:
    """In eval mode (z = mu, no dropout) the whole loss is the reference's four recon + KL terms,
    with each row's own negative by default and the batch's hardest with the option."""
    cfg = MVGAEConfig(kl_weight=0.1, batch_hardest_negative=hardest_of_all)
    model = MVGAE.from_dataset(tiny_dataset, cfg)
    model.eval()
    n = 64
    users = torch.as_tensor(tiny_dataset.train.users[:n])
    pos = torch.as_tensor(tiny_dataset.train.items[:n])
    neg = torch.randint(tiny_dataset.n_items, (n,), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        got = model.loss(Batch(users, pos, neg))
        ref_neg = neg + model.n_users if hardest_of_all else (neg + model.n_users).unsqueeze(1)
        expected = sum(
            _reference_recon(mu, users, pos + model.n_users, ref_neg)
            - 0.1 * 0.5 * (1 + logvar - mu**2 - logvar.exp()).sum(1).mean()
            for mu, logvar in model._posteriors().values()
        )
    torch.testing.assert_close(got, expected)


def test_mean_aggregation_is_mean_over_neighbours_and_self(tiny_dataset: Dataset) -> None:
    model = MVGAE.from_dataset(tiny_dataset)
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
    model = MVGAE.from_dataset(data)
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
