"""Best trial by validation (never test, never an ASHA-stopped trial), copied test metrics, MG gains."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest
from report_fixtures import FakeTrial, mg_trials, write_study

from mgtune.report import load_study
from mgtune.report.confirmed import find_confirmed
from mgtune.report.markdown import render_markdown
from mgtune.report.tables import SELECTION_RULE, compare, group_studies, render_csv

KS = (5, 10, 20)
KEYS = [f"{m}@{k}" for k in KS for m in ("recall", "precision", "map", "ndcg")]


def _groups(dirs: list[Path], metric: str = "recall@20"):  # type: ignore[no-untyped-def]
    return group_studies([load_study(d, metric, KS) for d in dirs], metric, KS)


def _fake(study: Path, trial_id: str) -> FakeTrial:
    """The fixture's trial, rebuilt from its results row, to know the metrics it was written with."""
    row = pd.read_csv(study / "results.csv", dtype={"trial_id": str}).set_index("trial_id").loc[trial_id]
    return FakeTrial(trial_id, valid=row["valid_recall@20"], test=row["test_recall@20"])


def test_best_trial_is_chosen_by_validation_among_completed(toy_pair: tuple[Path, Path]) -> None:
    mg_dir, nomg_dir = toy_pair
    nomg, mg = _groups([mg_dir, nomg_dir])
    assert (nomg.mg, mg.mg) == (False, True)
    # t2 has the best test score, t3 the best validation but was stopped by ASHA: t1 wins.
    assert mg.best is not None and mg.best.trial_id == "t1"
    assert nomg.best is not None and nomg.best.trial_id == "n1"
    assert mg.best.valid == pytest.approx(0.30)
    assert mg.best.test == pytest.approx({k: _fake(mg_dir, "t1").metrics("test")[k] for k in KEYS})
    assert mg.best.params == pytest.approx(
        {"flip_interval": 2, "flip_ratio": 0.12, "learning_rate": 10 ** -3.6, "dropout": 0.9})
    assert "flip_interval" not in nomg.best.params
    assert (len(mg.trials), mg.count("completed"), mg.count("early_stopped"), mg.count("diverged")) == (5, 3, 1, 1)
    assert mg.epochs_spent == 6 * 3 + 2 + 1


def test_selection_metric_changes_the_choice(runs: Path) -> None:
    # x leads on validation recall@20; y's derived validation ndcg@10 is higher (fixture skew).
    trials = mg_trials([("x", "completed", 0.30, 0.1), ("y", "completed", 0.29, 0.1)])
    assert trials[1].metrics("valid")["ndcg@10"] > trials[0].metrics("valid")["ndcg@10"]
    study = write_study(runs, "s", trials)
    assert [g.best.trial_id for g in _groups([study], "recall@20") if g.best] == ["x"]
    assert [g.best.trial_id for g in _groups([study], "ndcg@10") if g.best] == ["y"]


def test_gains_are_relative_to_no_mg(toy_pair: tuple[Path, Path]) -> None:
    mg_dir, nomg_dir = toy_pair
    (comparison,) = compare(_groups([mg_dir, nomg_dir]))
    mg_test, nomg_test = _fake(mg_dir, "t1").metrics("test"), _fake(nomg_dir, "n1").metrics("test")
    for key in KEYS:
        assert comparison.gains[key] == pytest.approx((mg_test[key] - nomg_test[key]) / nomg_test[key])
    assert len({round(v, 6) for v in comparison.gains.values()}) > 1  # the fixture makes them differ


def test_markdown_has_seed_style_comparison(toy_pair: tuple[Path, Path]) -> None:
    groups = _groups(list(toy_pair))
    comparisons = compare(groups)
    md = render_markdown("toy", groups, comparisons, "recall@20", KS, find_confirmed(groups))
    assert SELECTION_RULE.format(metric="recall@20") in md
    lines = md.splitlines()
    header = next(line for line in lines if line.startswith("| **Model**"))
    assert header.startswith("| **Model** | **REC@5** | **PREC@5** | **MAP@5** | **NDCG@5** | **REC@10**")
    start = lines.index(header)
    labels = [line.split("|")[1].strip() for line in lines[start + 2:start + 5]]
    assert labels == ["FREEDOM", "FREEDOM + MG", "Gain"]
    gain_cells = [c.strip() for c in lines[start + 4].split("|")[2:-1]]
    assert gain_cells == [f"{comparisons[0].gains[k]:+.2%}" for k in KEYS]
    mg_cells = [c.strip() for c in lines[start + 3].split("|")[2:-1]]
    assert mg_cells == [f"{_fake(toy_pair[0], 't1').metrics('test')[k]:.4f}" for k in KEYS]


def test_csv_has_one_row_per_model_and_mg_setting(toy_pair: tuple[Path, Path], runs: Path) -> None:
    vbpr = write_study(runs, "vbpr-toy", mg_trials([("v0", "completed", 0.1, 0.1)]), model="vbpr")
    groups = _groups([*toy_pair, vbpr])
    comparisons = compare(groups)
    table = pd.read_csv(io.StringIO(render_csv(groups, comparisons, "recall@20", KS)), dtype={"trial_id": str})
    assert list(zip(table["model"], table["mg"], table["trial_id"])) == [
        ("freedom", False, "n1"), ("freedom", True, "t1"), ("vbpr", True, "v0")]
    mg_row = table.iloc[1]
    t1 = _fake(toy_pair[0], "t1").metrics("test")
    for key in KEYS:
        assert mg_row[f"test_{key}"] == pytest.approx(t1[key])
        assert mg_row[f"gain_{key}"] == pytest.approx(comparisons[0].gains[key])
    assert table["gain_recall@5"].isna().tolist() == [True, False, True]
    assert mg_row["param_flip_interval"] == 2 and pd.isna(table.iloc[0]["param_flip_interval"])
    assert mg_row[["trials", "trials_completed", "trials_early_stopped", "trials_diverged", "epochs_spent",
                   "best_epoch"]].tolist() == [5, 3, 1, 1, 21, 4]


def test_group_without_completed_trial_says_so(runs: Path) -> None:
    mg = write_study(runs, "only-stopped", mg_trials([("a", "early_stopped", 0.3, 0.3)]))
    nomg = write_study(runs, "nomg", mg_trials([("b", "completed", 0.2, 0.2)]), mg=False)
    groups = _groups([mg, nomg])
    assert groups[1].best is None
    assert compare(groups) == []
    md = render_markdown("toy", groups, [], "recall@20", KS, find_confirmed(groups))
    # trials per model: all, completed, stopped by ASHA, cut by the budget, diverged, errored, epochs
    assert "| FREEDOM + MG | 1 | 0 | 1 | 0 | 0 | 0 | 2 |" in md and "no completed trial" in md
    assert "No model has both an MG and a no-MG study with a completed trial" in md


def test_studies_of_one_setting_are_pooled(runs: Path) -> None:
    first = write_study(runs, "first", mg_trials([("a", "completed", 0.2, 0.2), ("b", "completed", 0.25, 0.1)]))
    second = write_study(runs, "second", mg_trials([("a", "completed", 0.27, 0.2)]))
    (group,) = _groups([first, second])
    assert len(group.trials) == 3
    assert group.best is not None and (group.best.study.name, group.best.trial_id) == ("second", "a")


def test_csv_counts_every_status_and_names_both_times(runs: Path) -> None:
    from mgtune.store import Spent

    study = write_study(runs, "budgeted", mg_trials([("a", "completed", 0.2, 0.2), ("b", "budget_stopped", 0.3, 0.3),
                                                     ("c", "early_stopped", 0.4, 0.4)]), ended_by="time")
    Spent(11, 95.5, ("b",)).write(study)  # the budget record's wall time wins over study.json's created/finished
    table = pd.read_csv(io.StringIO(render_csv(_groups([study]), [], "recall@20", KS)), dtype={"trial_id": str})
    row = table.iloc[0]
    assert [row[f"trials_{s}"] for s in ("completed", "early_stopped", "budget_stopped", "diverged", "errored")] == [
        1, 1, 1, 0, 0]
    assert row["wall_seconds"] == 95.5 and row["trial_seconds"] == pytest.approx(3.5 * (6 + 3 + 2))
    assert row["trial_id"] == "c"  # a budget ended the study: every trial with metrics competes
    md = render_markdown("toy", _groups([study]), [], "recall@20", KS, [])
    assert "| FREEDOM + MG | 3 | 1 | 1 | 1 | 0 | 0 | 11 | 1m36s | 38s |" in md
    assert "| c (stopped by ASHA) |" in md


def test_wall_time_without_a_budget_is_created_to_finished(runs: Path) -> None:
    plain = write_study(runs, "plain", mg_trials([("a", "completed", 0.2, 0.2)]), created="2026-01-01T10:00:00+0100",
                        finished="2026-01-01T10:30:05+0100")
    running = write_study(runs, "running", mg_trials([("a", "completed", 0.2, 0.2)]), finished=None)
    assert load_study(plain, "recall@20", KS).wall_seconds == 1805.0
    assert load_study(running, "recall@20", KS).wall_seconds is None
    (group,) = _groups([plain, running])
    assert group.wall_seconds is None and "| FREEDOM + MG | 2 | 2 | 0 | 0 | 0 | 0 | 12 | — | 42s |" in render_markdown(
        "toy", [group], [], "recall@20", KS, [])
