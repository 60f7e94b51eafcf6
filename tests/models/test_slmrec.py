"""SLMRec: image is required, text optional; the fused one-pass propagation equals per-source LightGCNs."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from mgtune.data import Batch, Dataset
from mgtune.errors import DataFormatError
from mgtune.models import get_model
from mgtune.models._blocks.propagation import layer_mean


def test_slmrec_sources_match_separate_lightgcns(tiny_dataset: Dataset) -> None:
    torch.manual_seed(0)
    model = get_model("slmrec").from_dataset(tiny_dataset)
    d = model.cfg.embedding_size
    with torch.no_grad():
        user_src, item_src = model._sources()
        u = model.user_embedding.weight
        items = [model.item_embedding.weight, model.feat_proj["image"](model.image_feat),
                 model.feat_proj["text"](model.text_feat)]
        for s, it in enumerate(items):
            out = layer_mean(model.norm_adj, torch.cat([u, it]), model.cfg.n_layers)
            assert torch.allclose(user_src[:, s * d:(s + 1) * d], out[: model.n_users], atol=1e-5)
            assert torch.allclose(item_src[:, s * d:(s + 1) * d], out[model.n_users:], atol=1e-5)


def test_slmrec_modalities(tiny_dataset: Dataset) -> None:
    cls = get_model("slmrec")
    assert cls.needs_negatives is False
    image_only = dataclasses.replace(tiny_dataset, text_feat=None)
    model = cls.from_dataset(image_only)
    loss = model.loss(Batch(torch.tensor([0, 1, 2]), torch.tensor([3, 4, 5]), None))
    assert loss.dim() == 0 and torch.isfinite(loss)
    model.eval()
    assert model.score(torch.tensor([0])).shape == (1, tiny_dataset.n_items)
    assert "image_feat" not in model.state_dict()  # features are data, not checkpointed state
    with pytest.raises(DataFormatError, match=r"image_feat\.npy"):
        cls.from_dataset(dataclasses.replace(tiny_dataset, image_feat=None))
