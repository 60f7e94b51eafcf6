"""MMGCN: mean aggregation without self loops, trainable vs MMRec's frozen ID tables, layer options."""

from __future__ import annotations

import torch

from mgtune.data import Dataset, TrainSampler
from mgtune.models import parse_config
from mgtune.models._blocks.mean_aggregation import mean_aggregate
from mgtune.models.mmgcn import MMGCN, MMGCNConfig


def _batch_loss(model: MMGCN, data: Dataset) -> torch.Tensor:
    sampler = TrainSampler(data.train, data.n_items, 256, torch.device("cpu"))
    return model.loss(next(sampler.epoch(torch.Generator().manual_seed(0))))


def test_mean_aggregation_has_no_self_loops(tiny_dataset: Dataset) -> None:
    model = MMGCN.from_dataset(tiny_dataset)
    n = tiny_dataset.n_users + tiny_dataset.n_items
    eye = torch.eye(n)
    mean = mean_aggregate(model.graph, eye)  # the matrix D^-1 A itself
    assert (mean.diagonal() == 0).all()
    has_edges = torch.zeros(n, dtype=torch.bool)
    has_edges[torch.as_tensor(tiny_dataset.train.users)] = True
    has_edges[torch.as_tensor(tiny_dataset.train.items) + tiny_dataset.n_users] = True
    torch.testing.assert_close(mean.sum(1), has_edges.float())  # rows average; isolated nodes get 0


def test_ids_and_preferences_train_unless_frozen_as_in_mmrec(tiny_dataset: Dataset) -> None:
    model = MMGCN.from_dataset(tiny_dataset, parse_config(MMGCNConfig, {"reg_weight": 0.1}))
    _batch_loss(model, tiny_dataset).backward()
    assert model.id_embedding.grad is not None and model.branches["image"].preference.grad is not None

    frozen = MMGCN.from_dataset(tiny_dataset, parse_config(MMGCNConfig, {"use_trainable_ids": False}))
    names = {name for name, _ in frozen.named_parameters()}
    assert "id_embedding" not in names and not any(name.endswith("preference") for name in names)
    assert "id_embedding" in frozen.state_dict()  # saved, so a checkpoint scores the same


def test_layer_count_and_gate_options(tiny_dataset: Dataset) -> None:
    cfg = parse_config(MMGCNConfig, {"n_layers": 2, "use_concat": False, "image_latent_dim": 16})
    model = MMGCN.from_dataset(tiny_dataset, cfg)
    branch = model.branches["image"]
    assert len(branch.conv) == 2 and branch.gate[0].in_features == 16
    loss = _batch_loss(model, tiny_dataset)
    assert torch.isfinite(loss)
