"""Every model declares what it builds from item features (`Recommender.feature_parts`), completely:
perturbing the features changes each declared part, and nothing undeclared; `load_trained` takes
every other entry from the trained weights and rebuilds the declared ones."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import Tensor, nn

from mgtune.data import Dataset
from mgtune.models import Recommender, model_names
from mgtune.training import TrainConfig, build_model
from mgtune.training.perturb import Perturbation, perturb

ALL = model_names()


def _tensors(obj: Any, prefix: str, out: dict[str, Tensor]) -> None:
    """Every tensor reachable from ``obj`` (tuples, lists, dicts, named tuples), by dotted path."""
    if isinstance(obj, Tensor):
        out[prefix] = obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            _tensors(v, f"{prefix}.{k}", out)
    elif isinstance(obj, (tuple, list)):
        for i, v in enumerate(obj):
            _tensors(v, f"{prefix}.{i}", out)
    elif hasattr(obj, "__dict__") and not isinstance(obj, (nn.Module, type)) and "mgtune" in type(obj).__module__:
        _tensors(vars(obj), prefix, out)


def parts(model: Recommender) -> dict[str, Tensor]:
    """Parameters, all buffers (non-persistent ones too) and tensors held in plain attributes."""
    out: dict[str, Tensor] = {**dict(model.named_parameters()), **dict(model.named_buffers())}
    for mod_name, module in model.named_modules():
        for attr, value in vars(module).items():
            if attr.startswith("_") and attr != "_adj":
                continue
            _tensors(value, f"{mod_name}.{attr}" if mod_name else attr, out)
    return out


def _same(a: Tensor, b: Tensor) -> bool:
    if a.layout != torch.strided:
        a, b = a.to_dense(), b.to_dense()
    return a.shape == b.shape and torch.equal(a, b)


def _build(name: str, data: Dataset) -> Recommender:
    torch.manual_seed(0)
    return build_model(TrainConfig(model=name, dataset="tiny", device="cpu"), data, torch.device("cpu"))


@pytest.fixture(scope="module")
def noisy(tiny_dataset: Dataset) -> Dataset:
    return perturb(tiny_dataset, Perturbation("gaussian", 1.0, "both", seed=3))


@pytest.mark.parametrize("name", ALL)
def test_declared_parts_are_exactly_what_features_change(name: str, tiny_dataset: Dataset, noisy: Dataset) -> None:
    clean, spoiled = parts(_build(name, tiny_dataset)), parts(_build(name, noisy))
    model = _build(name, tiny_dataset)
    changed = {k for k in clean if k in spoiled and not _same(clean[k], spoiled[k])}
    changed |= set(clean) ^ set(spoiled)
    undeclared = sorted(k for k in changed if not model.is_feature_part(k))
    assert not undeclared, f"{name}: built from features but not in feature_parts: {undeclared}"
    for part in model.feature_parts:
        assert any(k == part or k.startswith(f"{part}.") for k in changed), f"{name}: {part} does not change"


@pytest.mark.parametrize("name", ALL)
def test_load_trained_keeps_rebuilt_parts_and_takes_the_rest(name: str, tiny_dataset: Dataset,
                                                              noisy: Dataset) -> None:
    clean_model = _build(name, tiny_dataset)
    clean_state = clean_model.state_dict()
    # "trained" weights: every trainable parameter moved; buffers as built
    trainable = {k for k, p in clean_model.named_parameters() if p.requires_grad}
    trained = {k: v + 0.5 if k in trainable else v.clone() for k, v in clean_state.items()}
    model = _build(name, noisy)
    built = {k: v.clone() for k, v in model.state_dict().items()}
    model.load_trained(trained, clean_state)
    for k, v in model.state_dict().items():
        if not model.is_feature_part(k):
            assert torch.equal(v, trained[k]), k
        elif k in trainable:  # a trained feature table: shifted by the change in the features
            assert torch.allclose(v, trained[k] + built[k] - clean_state[k], atol=1e-5), k
        else:
            assert torch.equal(v, built[k]), k
    # unchanged features: exactly the trained weights
    again = _build(name, tiny_dataset)
    again.load_trained(trained, clean_state)
    assert all(torch.equal(v, trained[k]) for k, v in again.state_dict().items())
