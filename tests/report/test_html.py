"""The HTML page: tables plus inline PNG plots that decode to real, non-empty images."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from report_fixtures import mg_trials, write_study

from mgtune.errors import DataFormatError
from mgtune.report import build_report, load_study
from mgtune.report.html import param_importances

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _pngs(page: str) -> list[bytes]:
    return [base64.b64decode(b) for b in re.findall(r'<img alt="[^"]*" src="data:image/png;base64,([^"]+)">', page)]


def test_page_has_tables_and_inline_plots(toy_pair: tuple[Path, Path], runs: Path, tmp_path: Path) -> None:
    vbpr = write_study(runs, "vbpr-toy", mg_trials([("v0", "completed", 0.1, 0.1)]), model="vbpr")
    build_report([*toy_pair, vbpr], tmp_path / "out")
    page = (tmp_path / "out" / "toy.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "<td>FREEDOM + MG</td>" in page and "<td>Gain</td>" in page and "ASHA" in page
    images = _pngs(page)
    # curves (1) + parameter sweeps (one per model: 2) + importances (both FREEDOM studies: 2)
    assert len(images) == 5
    for png in images:
        assert png.startswith(PNG_MAGIC) and len(png) > 5_000
        width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
        assert width > 200 and height > 50
    assert "VBPR + MG, study vbpr-toy: not enough trials" in page


def test_importances_need_varying_completed_trials(runs: Path) -> None:
    varied = load_study(write_study(runs, "varied", mg_trials([
        ("a", "completed", 0.1, 0.1), ("b", "completed", 0.3, 0.1), ("c", "early_stopped", 0.2, 0.1)])),
        "recall@20", (5,))
    importances = param_importances(varied)
    assert importances is not None
    assert set(importances) == {"flip_interval", "flip_ratio", "learning_rate", "dropout"}
    assert sum(importances.values()) == pytest.approx(1.0)

    same = mg_trials([("a", "completed", 0.1, 0.1), ("b", "completed", 0.3, 0.1)])
    same[1].params = dict(same[0].params)
    assert param_importances(load_study(write_study(runs, "same", same), "recall@20", (5,))) is None


def test_importances_from_a_folder_with_odd_characters(toy_pair: tuple[Path, Path], tmp_path: Path) -> None:
    odd = Path(shutil.copytree(toy_pair[0], tmp_path / "a dir#with?odd%20chars" / "study"))
    importances = param_importances(load_study(odd, "recall@20", (5,)))
    assert importances is not None and "flip_ratio" in importances


def test_unreadable_optuna_storage_is_a_data_error(runs: Path, tmp_path: Path) -> None:
    folder = write_study(runs, "s", mg_trials([("a", "completed", 0.1, 0.1)]))
    (folder / "optuna.db").write_bytes(b"not a database")
    with pytest.raises(DataFormatError, match=r"optuna\.db: not a readable Optuna storage"):
        build_report([folder], tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_reporting_leaves_the_optuna_storage_unchanged(toy_pair: tuple[Path, Path], tmp_path: Path) -> None:
    db = toy_pair[0] / "optuna.db"
    before = db.read_bytes()
    build_report(list(toy_pair), tmp_path / "out")
    assert db.read_bytes() == before


def test_importing_report_loads_no_optuna_or_matplotlib() -> None:
    code = ("import sys, mgtune.report; "
            "print(sorted(m for m in ('ray', 'optuna', 'matplotlib', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
