"""The report shows a study's confirmation (`mgtune confirm`) and marks "MG helps" only on the CI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from report_fixtures import KS, METRICS

from mgtune.report import build_report
from mgtune.store.confirmation import ARMS, write_confirm_results
from mgtune.store.stats import MG_HELPS, MG_HURTS, NO_CLEAR, paired_t_test


def _confirm(study: Path, mg: list[float], nomg: list[float]) -> None:
    """``confirm/`` of ``study``'s trial ``t1`` with the given per-seed test values (every metric alike)."""
    folder = study / "confirm"
    folder.mkdir()
    seeds = list(range(len(mg)))
    (folder / "confirm.json").write_text(json.dumps({
        "seeds": seeds, "candidates": [{"rank": 1, "source_trial": "t1", "valid": 0.3, "params": {}}],
    }))
    rows = [{"source_trial": "t1", "rank": 1, "seed": s, "arm": arm, "status": "completed",
             "trial_dir": f"trial_{s}{arm}", "seconds": 5.0,
             **{f"test_{m}@{k}": (mg if arm == "mg" else nomg)[s] for m in METRICS for k in KS}}
            for s in seeds for arm in ARMS]
    write_confirm_results(folder / "results.csv", rows, [], KS)


@pytest.mark.parametrize("mg,nomg,expected", [
    ([0.22, 0.25, 0.23], [0.20, 0.22, 0.21], MG_HELPS),
    ([0.25, 0.20, 0.23], [0.20, 0.24, 0.22], NO_CLEAR),
    ([0.20, 0.22, 0.21], [0.22, 0.25, 0.23], MG_HURTS),
])
def test_confirmed_section_shows_spread_gain_ci_and_the_verdict(toy_pair: tuple[Path, Path], tmp_path: Path,
                                                                mg: list[float], nomg: list[float],
                                                                expected: str) -> None:
    _confirm(toy_pair[0], mg, nomg)
    md = build_report(list(toy_pair), tmp_path / "out")[0].read_text()
    section = md.split("## Confirmed over seeds: MG vs no-MG")[1].split("## Studies")[0]
    (line,) = [ln for ln in section.splitlines() if ln.startswith("- FREEDOM")]
    assert f"{expected} on test recall@20" in line and "3 paired seeds" in line
    test = paired_t_test(mg, nomg)
    assert f"{test.mean:+.4f} [{test.ci_low:+.4f}, {test.ci_high:+.4f}]" in line
    table = [ln for ln in section.splitlines() if ln.startswith("|")]
    assert table[2].startswith("| FREEDOM (3 seeds) |") and table[3].startswith("| FREEDOM + MG |")
    assert f"{sum(mg) / 3:.4f} ± " in table[3]
    verdicts = table[6].split("|")[2:-1]
    assert {v.strip() for v in verdicts} == {expected}  # every metric carries the same values here
    assert (MG_HELPS in line) == (test.ci_low > 0)
    html = (tmp_path / "out" / "toy.html").read_text()
    assert "Confirmed over seeds" in html and expected in html


def test_no_confirmation_no_section(toy_pair: tuple[Path, Path], tmp_path: Path) -> None:
    md = build_report(list(toy_pair), tmp_path / "out")[0].read_text()
    assert "Confirmed over seeds" not in md
