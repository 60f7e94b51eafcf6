"""The model contract: what every registered model must do, checked the same way for built-in models
(``tests/models/test_contract.py``) and for yours (`check_model`).

A model builds from a dataset exactly when the item features it declares (`Recommender.needs_modalities`)
are there; its loss on a training batch is a finite 0-dim tensor with gradients; ``score`` gives
finite ``(users, n_items)`` scores; it trains two epochs with Mirror Gradient on and off with finite
losses and metrics in [0, 1]; and its best weights, loaded into a fresh build, evaluate to the same
metrics. Each check raises AssertionError saying what failed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import tempfile
from collections.abc import Iterator
from pathlib import Path

import torch

from mgtune.data import Dataset, TrainSampler, load_dataset, make_synthetic
from mgtune.errors import DataFormatError
from mgtune.models import get_model
from mgtune.models.registry import check_model_class, model_names, register, unregister
from mgtune.training import Evaluator, MGConfig, TrainConfig, build_model, train

__all__ = ["check_model", "check_loss_and_score", "check_modalities", "check_training", "contract_dataset"]

CONTRACT_DATASET = "tiny"
_BUILDS_WITH = {  # Recommender.needs_modalities -> the feature sets (image?, text?) it builds with
    "image or text": {(True, True), (True, False), (False, True)},
    "image and text": {(True, True)},
    "image": {(True, True), (True, False)},
    "text": {(True, True), (False, True)},
    "none": {(True, True), (True, False), (False, True), (False, False)},
}


def contract_dataset(data_dir: str | Path) -> Dataset:
    """The ``tiny`` synthetic preset (about 30 users, 40 items, 8-d features), written to ``data_dir``."""
    make_synthetic(data_dir, CONTRACT_DATASET, "tiny", seed=0)
    return load_dataset(data_dir, CONTRACT_DATASET)


def check_model(cls: type) -> None:
    """Run the whole contract on the model class ``cls`` (registered or not) on a tiny synthetic dataset.

    The registry's own checks first (a `Recommender` with a ``config_cls`` of its own: `ConfigError`
    otherwise); an unregistered class is registered for the checks only. Takes a few seconds for a
    small model.
    """
    name = vars(cls).get("name") or cls.__name__.lower()  # its own registered name, not one it inherits
    check_model_class(name, cls, f"check_model({cls.__name__})")
    with tempfile.TemporaryDirectory(prefix="mgtune-contract-") as tmp, _registered(cls, name) as key:
        data = contract_dataset(tmp)
        check_modalities(key, data)
        check_loss_and_score(key, data)
        for mg in (True, False):
            check_training(key, data, Path(tmp), mg)


@contextlib.contextmanager
def _registered(cls: type, name: str) -> Iterator[str]:
    """``cls``'s registered name, registering it for the duration when it is not yet."""
    key = name.lower()
    if key in model_names() and get_model(key) is cls:
        yield key
        return
    register(key)(cls)
    try:
        yield key
    finally:
        unregister(key)


def check_modalities(name: str, data: Dataset) -> None:
    """``name`` builds with exactly the feature sets its ``needs_modalities`` declares, and says which file is missing
    otherwise (a `DataFormatError`, never another exception)."""
    cls = get_model(name)
    for image in (True, False):
        for text in (True, False):
            part = dataclasses.replace(data, image_feat=data.image_feat if image else None,
                                       text_feat=data.text_feat if text else None)
            expected = (image, text) in _BUILDS_WITH[cls.needs_modalities]
            try:
                build_model(TrainConfig(model=name, dataset=CONTRACT_DATASET, device="cpu"), part, torch.device("cpu"))
                built = True
            except DataFormatError:
                built = False
            shown = "+".join(m for m, on in (("image", image), ("text", text)) if on) or "no features"
            assert built == expected, (f"{name} declares needs_modalities={cls.needs_modalities!r} but "
                                       f"{'builds' if built else 'refuses to build'} with {shown}")


def check_loss_and_score(name: str, data: Dataset) -> None:
    """One training batch's loss (finite, 0-dim, with gradients) and the scores of 7 users (finite, full width)."""
    torch.manual_seed(0)
    model = build_model(TrainConfig(model=name, dataset=CONTRACT_DATASET, device="cpu"), data, torch.device("cpu"))
    model.train()
    model.pre_epoch(0)
    if model.trainable:
        sampler = TrainSampler(data.train, data.n_items, 256, torch.device("cpu"), model.needs_negatives)
        batch = next(sampler.epoch(torch.Generator().manual_seed(0)))
        assert (batch.neg_items is None) == (not model.needs_negatives)
        loss = model.loss(batch)
        assert isinstance(loss, torch.Tensor) and loss.dim() == 0, f"{name}.loss must return a 0-dim tensor"
        assert torch.isfinite(loss), f"{name}.loss is not finite: {float(loss)}"
        loss.backward()
        assert any(p.grad is not None for p in model.parameters()), f"{name}.loss gives no parameter a gradient"
    model.eval()
    with torch.no_grad():
        scores = model.score(torch.arange(7))
    assert tuple(scores.shape) == (7, data.n_items), (
        f"{name}.score must return (len(users), n_items) = (7, {data.n_items}), got {tuple(scores.shape)}")
    assert torch.isfinite(scores).all(), f"{name}.score returns non-finite scores"


def check_training(name: str, data: Dataset, data_dir: Path, mg: bool) -> None:
    """Two epochs with MG on (or off): finite losses, metrics in [0, 1], and the best weights evaluate again
    to the same metrics in a fresh build."""
    cfg = TrainConfig(model=name, dataset=CONTRACT_DATASET, data_dir=str(data_dir), epochs=2, batch_size=512,
                      device="cpu", mg=MGConfig(enabled=mg))
    losses: list[float] = []
    result = train(cfg, data=data, callback=lambda r: losses.append(r.train_loss))
    assert all(math.isfinite(x) for x in losses), f"{name}: training losses {losses}"
    for metrics in (result.valid, result.test):
        assert metrics and all(0.0 <= v <= 1.0 for v in metrics.values()), f"{name}: metrics outside [0, 1]: {metrics}"
    model = build_model(cfg, data, torch.device("cpu"))
    model.load_state_dict(result.best_state)
    again = Evaluator(data, torch.device("cpu"), cfg.topk, cfg.eval_batch_size).evaluate(model)
    for split, expected in (("test", result.test), ("valid", result.valid)):
        for key, value in expected.items():
            assert math.isclose(again[split][key], value, rel_tol=1e-6, abs_tol=1e-12), (
                f"{name}: its best weights, loaded into a fresh build, give {split} {key} {again[split][key]}, "
                f"not {value} (state_dict does not hold everything score uses?)")
