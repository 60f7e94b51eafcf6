"""Synthetic presets: Elec's shape, features streamed to disk, the successive-draw sampler of large presets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mgtune.data import synth
from mgtune.data.synth import PRESETS, synthesize


def test_elec_preset_has_elecs_shape() -> None:
    p = PRESETS["elec"]
    assert (p.n_users, p.n_items, p.n_interactions, p.image_dim, p.text_dim) == (192_403, 63_001, 1_689_188, 4096, 384)


def test_features_stream_to_disk_with_the_same_numbers(tmp_path: Path) -> None:
    in_memory = synthesize(PRESETS["tiny"], seed=2)
    on_disk = synthesize(PRESETS["tiny"], seed=2, feature_dir=tmp_path)
    for a, b in zip(in_memory, on_disk):
        np.testing.assert_array_equal(a, b)
    assert isinstance(on_disk[3], np.memmap) and isinstance(on_disk[4], np.memmap)
    np.testing.assert_array_equal(np.load(tmp_path / "image_feat.npy"), in_memory[3])
    np.testing.assert_array_equal(np.load(tmp_path / "text_feat.npy"), in_memory[4])


def test_large_presets_draw_distinct_items_per_user(monkeypatch: pytest.MonkeyPatch) -> None:
    gumbel = synthesize(PRESETS["small"], seed=1)
    monkeypatch.setattr(synth, "_GUMBEL_MAX", 0)  # as if the preset were Elec-sized
    users, items, _, _, _ = synthesize(PRESETS["small"], seed=1)
    assert len(users) == PRESETS["small"].n_interactions
    np.testing.assert_array_equal(users, gumbel[0])  # same users and counts; only the items differ
    assert len(np.unique(users * PRESETS["small"].n_items + items)) == len(users)
    # popular items stay popular: item popularity of both samplers correlates strongly
    pop_a = np.bincount(gumbel[1], minlength=PRESETS["small"].n_items)
    pop_b = np.bincount(items, minlength=PRESETS["small"].n_items)
    assert np.corrcoef(pop_a, pop_b)[0, 1] > 0.9


def test_successive_draws_follow_the_softmax() -> None:
    rng = np.random.default_rng(0)
    logits = np.log(np.array([[0.5, 0.3, 0.2]], dtype=np.float32)).T  # one user, three items
    first = [synth._successive_draws(np.ones((1, 1), np.float32), logits, np.array([1]), rng)[0][0]
             for _ in range(4000)]
    np.testing.assert_allclose(np.bincount(first) / 4000, [0.5, 0.3, 0.2], atol=0.03)
