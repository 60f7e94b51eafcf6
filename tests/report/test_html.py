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


def _every_status(runs: Path, learning_rates: list[float] | None = None) -> Path:
    """A study its epochs budget ended, holding a trial of every status; the budget-cut one is best."""
    trials = mg_trials([("t0", "completed", 0.20, 0.18), ("t1", "completed", 0.30, 0.25),
                        ("t2", "budget_stopped", 0.33, 0.40), ("t3", "early_stopped", 0.10, 0.50),
                        ("t4", "diverged", 0.0, 0.0), ("t5", "errored", 0, 0)])
    for t, lr in zip(trials, learning_rates or []):
        t.params["learning_rate"] = lr
    return write_study(runs, f"budgeted-{len(list(runs.iterdir()))}", trials, ended_by="epochs", budget_epochs=30)


def test_every_status_is_named_in_the_tables(runs: Path, tmp_path: Path) -> None:
    build_report([_every_status(runs)], tmp_path / "out")
    page = (tmp_path / "out" / "toy.html").read_text()
    for header in ("Completed", "Stopped by ASHA", "Cut by the budget", "Diverged", "Errored", "Wall time",
                   "Trial-seconds"):
        assert f"<th>{header}</th>" in page
    assert "<td>t2 (cut by the budget)</td>" in page  # the budget ended the study: the cut trial may be best
    # trials, then one per status, epochs (6 + 6 + 3 + 2 + 1 + 1), wall time (study.json: 1 h), trial-seconds
    assert "<td>FREEDOM + MG</td><td>6</td><td>2</td><td>1</td><td>1</td><td>1</td><td>1</td><td>19</td>" in page
    assert "<td>1h00m</td><td>1m06s</td>" in page
    # every table scrolls in its own box; the configuration wraps between its items
    assert page.count('<div class="scroll"><table>') == page.count("<table>") == 3  # best, trials, studies
    assert '<td class="items"><span>flip_interval=3,</span> <span>flip_ratio=0.19,</span>' in page


@pytest.mark.parametrize("learning_rates", [
    None, [3e-4, 3.5e-4, 4e-4, 5e-4, 6e-4, 8e-4], [1e-4] * 6,
    [1e-4, 1e-2, 3e-3, 5e-4, 2e-3, 4e-3],  # a linear view of these reaches below zero (a demo study's did)
])
def test_plots_name_every_status_and_keep_labels_apart(runs: Path, learning_rates: list[float] | None) -> None:
    from figure_checks import overlapping_tick_labels

    from mgtune.report.html import curves_figure, sweep_figure
    from mgtune.report.tables import group_studies

    groups = group_studies([load_study(_every_status(runs, learning_rates), "recall@20", (5, 10, 20))],
                           "recall@20", (5, 10, 20))
    sweep = sweep_figure(groups, "recall@20")
    (legend,) = sweep.legends
    assert [t.get_text() for t in legend.get_texts()] == [
        f"FREEDOM + MG: {s}" for s in ("completed", "stopped by ASHA", "cut by the budget", "diverged", "errored")]
    assert overlapping_tick_labels(sweep) == []
    learning_rate = next(ax for ax in sweep.axes if ax.get_title().endswith("learning_rate"))
    assert learning_rate.get_xscale() == "log" and 2 <= len(learning_rate.get_xticks()) <= 5
    low, high = learning_rate.get_xlim()
    assert low <= min(learning_rates or [1e-4]) and high >= max(learning_rates or [1e-2])  # failed trials too
    curves = curves_figure(groups, "recall@20")
    assert overlapping_tick_labels(curves) == []
    labels = [t.get_text() for t in curves.axes[0].get_legend().get_texts()]
    assert labels[0] == "t2 (0.3300, cut by the budget)" and labels[1] == "t1 (0.3000)"
