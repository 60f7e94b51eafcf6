"""One contract over the registry (`mgtune.testing.contract`, the checks `mgtune.testing.check_model` runs on
a model of your own): every model builds exactly with the modalities it declares, trains 2 epochs with MG
on and off, reports metrics in [0, 1], and its checkpoint evaluates to the same metrics."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from mgtune.data import Dataset
from mgtune.models import get_model, model_names
from mgtune.models.vbpr import VBPR
from mgtune.testing import check_loss_and_score, check_modalities, check_model, check_training

ALL = model_names()


def test_registry_holds_exactly_the_fourteen_models() -> None:
    assert ALL == [
        "bm3", "dragon", "dualgnn", "freedom", "grcn", "itemknncbf", "lattice", "layergcn", "mgcn", "mmgcn",
        "mvgae", "selfcfed_lgn", "slmrec", "vbpr",
    ]
    for name in ALL:
        assert get_model(name).name == name


@pytest.mark.parametrize("name", ALL)
def test_builds_with_exactly_the_declared_modalities(name: str, tiny_dataset: Dataset) -> None:
    check_modalities(name, tiny_dataset)


@pytest.mark.parametrize("name", ALL)
def test_loss_and_score_shapes(name: str, tiny_dataset: Dataset) -> None:
    check_loss_and_score(name, tiny_dataset)


@pytest.mark.parametrize("mg", [True, False], ids=["mg", "nomg"])
@pytest.mark.parametrize("name", ALL)
def test_trains_two_epochs_and_checkpoint_reproduces(name: str, mg: bool, tiny_dir: Path,
                                                     tiny_dataset: Dataset) -> None:
    check_training(name, tiny_dataset, tiny_dir, mg)


def test_check_model_passes_a_registered_model() -> None:
    check_model(VBPR)


class WrongScores(VBPR):
    """VBPR with a score matrix one item short: the contract must catch it."""

    def score(self, users: torch.Tensor) -> torch.Tensor:
        return super().score(users)[:, :-1]


class UndeclaredNeed(VBPR):
    """VBPR claiming to need no features, while it refuses to build without them."""

    needs_modalities = "none"


@pytest.mark.parametrize("cls, message", [
    (WrongScores, "score must return (len(users), n_items)"),
    (UndeclaredNeed, "declares needs_modalities='none' but refuses to build with no features"),
])
def test_check_model_catches_a_broken_model(cls: type, message: str) -> None:
    with pytest.raises(AssertionError, match=re.escape(message)):
        check_model(cls)
    assert cls.__name__.lower() not in model_names()  # registered for the checks only
