"""Fixtures of the report tests: storage folders holding studies written by `report_fixtures`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from report_fixtures import mg_trials, nomg_trials, write_study


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    """An empty storage folder (the role of ``runs/``)."""
    (tmp_path / "runs").mkdir()
    return tmp_path / "runs"


@pytest.fixture(scope="session")
def toy_pair_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """FREEDOM with MG and without on dataset ``toy`` (written once; tests get copies via `toy_pair`).

    MG study: ``t2`` has the best TEST but not the best validation; ``t3`` has the best validation
    but was stopped by ASHA; ``t1`` (best completed by validation) must be chosen.
    """
    root = tmp_path_factory.mktemp("template")
    mg = write_study(root, "freedom-toy", mg_trials([
        ("t0", "completed", 0.20, 0.18),
        ("t1", "completed", 0.30, 0.25),
        ("t2", "completed", 0.28, 0.40),
        ("t3", "early_stopped", 0.35, 0.50),
        ("t4", "diverged", 0.0, 0.0),
    ]))
    nomg = write_study(root, "freedom-toy-nomg", nomg_trials([
        ("n0", "completed", 0.22, 0.20),
        ("n1", "completed", 0.26, 0.21),
        ("n2", "early_stopped", 0.10, 0.09),
    ]), mg=False)
    return mg, nomg


@pytest.fixture
def toy_pair(runs: Path, toy_pair_template: tuple[Path, Path]) -> tuple[Path, Path]:
    """A fresh copy of `toy_pair_template` under ``runs``, free to modify."""
    mg, nomg = (Path(shutil.copytree(src, runs / src.name)) for src in toy_pair_template)
    return mg, nomg
