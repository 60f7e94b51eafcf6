"""Shared fixtures: tiny synthetic datasets in MMRec's format, made by the project itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from mgtune.data import Dataset, load_dataset
from mgtune.data.synth import make_synthetic


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir holding the ``tiny`` preset as dataset ``tiny`` (made once per session)."""
    root = tmp_path_factory.mktemp("data")
    make_synthetic(root, "tiny", "tiny", seed=0)
    return root


@pytest.fixture(scope="session")
def tiny_dataset(tiny_dir: Path) -> Dataset:
    return load_dataset(tiny_dir, "tiny")
