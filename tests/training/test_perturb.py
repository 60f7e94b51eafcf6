"""Test-time feature perturbations: level 0 is the identity, swap at share 1 is a permutation of
the rows, noise never leaves a clean row, and a spoiled dataset is never cached."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mgtune.data import Dataset
from mgtune.errors import ConfigError
from mgtune.models import get_model
from mgtune.models._blocks.mixed_knn_graph import mixed_knn_adj
from mgtune.training.perturb import KINDS, Perturbation, perturb


@pytest.mark.parametrize("kind", KINDS)
def test_level_zero_is_the_clean_features(kind: str, tiny_dataset: Dataset) -> None:
    out = perturb(tiny_dataset, Perturbation(kind, 0.0, "both", seed=1))
    assert tiny_dataset.image_feat is not None and tiny_dataset.text_feat is not None
    assert np.array_equal(out.image_feat, tiny_dataset.image_feat)
    assert np.array_equal(out.text_feat, tiny_dataset.text_feat)
    assert out.fingerprint == ""  # in memory: the on-disk cache neither serves nor stores it


def test_swap_at_share_one_is_a_permutation_of_the_rows(tiny_dataset: Dataset) -> None:
    p = Perturbation("swap", 1.0, "both", seed=7)
    out = perturb(tiny_dataset, p)
    clean = tiny_dataset.image_feat
    assert clean is not None and out.image_feat is not None and out.text_feat is not None
    # every row is some clean row, each clean row used once: find the permutation and check it
    perm = np.array([int(np.flatnonzero((clean == row).all(1))[0]) for row in out.image_feat])
    assert sorted(perm) == list(range(tiny_dataset.n_items))
    assert (perm != np.arange(tiny_dataset.n_items)).all()  # every item got another item's features
    assert tiny_dataset.text_feat is not None
    assert np.array_equal(out.text_feat, tiny_dataset.text_feat[perm])  # both modalities move together
    assert np.array_equal(perturb(tiny_dataset, p).image_feat, out.image_feat)  # the seed fixes it


def test_mask_and_modality(tiny_dataset: Dataset) -> None:
    out = perturb(tiny_dataset, Perturbation("mask", 0.5, "image", seed=0, fill="mean"))
    assert out.image_feat is not None and tiny_dataset.image_feat is not None
    hit = ~(out.image_feat == tiny_dataset.image_feat).all(1)
    assert hit.sum() == round(0.5 * tiny_dataset.n_items)
    assert np.allclose(out.image_feat[hit], tiny_dataset.image_feat.mean(0))
    assert out.text_feat is tiny_dataset.text_feat  # the other modality untouched
    zero = perturb(tiny_dataset, Perturbation("mask", 1.0, "text", seed=0))
    assert zero.text_feat is not None and not zero.text_feat.any()


def test_gaussian_touches_every_row_and_rebuilds_freedoms_item_graph(tiny_dataset: Dataset) -> None:
    noisy = perturb(tiny_dataset, Perturbation("gaussian", 1.0, "both", seed=0))
    for clean, spoiled in ((tiny_dataset.image_feat, noisy.image_feat), (tiny_dataset.text_feat, noisy.text_feat)):
        assert clean is not None and spoiled is not None
        assert (spoiled != clean).any(1).all()  # no clean row left anywhere
    dev = torch.device("cpu")
    a = mixed_knn_adj(tiny_dataset, 10, 0.1, dev).matrix.to_dense()
    b = mixed_knn_adj(noisy, 10, 0.1, dev).matrix.to_dense()
    assert not torch.equal(a, b)
    torch.manual_seed(0)
    model = get_model("freedom").from_dataset(noisy)
    assert torch.equal(model.mm_adj.matrix.to_dense(), b)  # the model's graph is the spoiled one


def test_a_spoiled_dataset_leaves_no_cache_file(tiny_dir, tiny_dataset: Dataset) -> None:  # type: ignore[no-untyped-def]
    cache = tiny_dataset.path / ".mgtune_cache"
    before = sorted(cache.iterdir()) if cache.is_dir() else []
    mixed_knn_adj(perturb(tiny_dataset, Perturbation("gaussian", 0.3, seed=5)), 7, 0.3, torch.device("cpu"))
    after = sorted(cache.iterdir()) if cache.is_dir() else []
    assert after == before


def test_a_modality_the_data_lacks_is_a_data_error(tiny_dataset: Dataset) -> None:
    import dataclasses

    from mgtune.errors import DataFormatError

    no_text = dataclasses.replace(tiny_dataset, text_feat=None)
    with pytest.raises(DataFormatError, match="has no text features"):
        perturb(no_text, Perturbation("swap", 0.5, "text"))
    assert perturb(no_text, Perturbation("swap", 0.5, "both")).text_feat is None  # both: those present


@pytest.mark.parametrize(("args", "match"), [
    (("blur", 0.1), "unknown perturbation kind"),
    (("gaussian", -0.1), "must be >= 0"),
    (("mask", 1.5), r"in \[0, 1\]"),
    (("swap", 0.2, "audio"), "unknown modality"),
])
def test_bad_perturbations(args: tuple, match: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ConfigError, match=match):
        Perturbation(*args)
