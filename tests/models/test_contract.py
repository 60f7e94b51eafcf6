"""One contract over the registry: every model builds, trains 2 epochs with MG on and off, reports
metrics in [0, 1], and its checkpoint evaluates to the same metrics."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mgtune.data import Dataset, TrainSampler
from mgtune.models import get_model, model_names
from mgtune.training import Evaluator, MGConfig, TrainConfig, build_model, train

ALL = model_names()


def test_registry_holds_exactly_the_fourteen_models() -> None:
    assert ALL == [
        "bm3", "dragon", "dualgnn", "freedom", "grcn", "itemknncbf", "lattice", "layergcn", "mgcn", "mmgcn",
        "mvgae", "selfcfed_lgn", "slmrec", "vbpr",
    ]
    for name in ALL:
        assert get_model(name).name == name


@pytest.mark.parametrize("name", ALL)
def test_loss_and_score_shapes(name: str, tiny_dataset: Dataset) -> None:
    torch.manual_seed(0)
    cfg = TrainConfig(model=name, dataset="tiny", device="cpu")
    model = build_model(cfg, tiny_dataset, torch.device("cpu"))
    model.train()
    model.pre_epoch(0)
    if model.trainable:
        sampler = TrainSampler(tiny_dataset.train, tiny_dataset.n_items, 256, torch.device("cpu"),
                               model.needs_negatives)
        batch = next(sampler.epoch(torch.Generator().manual_seed(0)))
        assert (batch.neg_items is None) == (not model.needs_negatives)
        loss = model.loss(batch)
        assert loss.dim() == 0 and torch.isfinite(loss)
        loss.backward()
        assert any(p.grad is not None for p in model.parameters())
    model.eval()
    with torch.no_grad():
        scores = model.score(torch.arange(7))
    assert scores.shape == (7, tiny_dataset.n_items)
    assert torch.isfinite(scores).all()


@pytest.mark.parametrize("mg", [True, False], ids=["mg", "nomg"])
@pytest.mark.parametrize("name", ALL)
def test_trains_two_epochs_and_checkpoint_reproduces(
    name: str, mg: bool, tiny_dir: Path, tiny_dataset: Dataset
) -> None:
    cfg = TrainConfig(model=name, dataset="tiny", data_dir=str(tiny_dir), epochs=2, batch_size=512, device="cpu",
                      mg=MGConfig(enabled=mg))
    losses: list[float] = []
    result = train(cfg, data=tiny_dataset, callback=lambda r: losses.append(r.train_loss))
    assert all(torch.isfinite(torch.tensor(x)) for x in losses)
    for split in (result.valid, result.test):
        assert split and all(0.0 <= v <= 1.0 for v in split.values())
    model = build_model(cfg, tiny_dataset, torch.device("cpu"))
    model.load_state_dict(result.best_state)
    again = Evaluator(tiny_dataset, torch.device("cpu"), cfg.topk, cfg.eval_batch_size).evaluate(model)
    assert again["test"] == pytest.approx(result.test)
    assert again["valid"] == pytest.approx(result.valid)
