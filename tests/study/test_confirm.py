"""`mgtune confirm`: selection, paired statistics against scipy, the reproduction card, bad input.

Most tests lay out a study folder and its ``confirm/`` runs by hand (as Ray writes them), so that
the confirmation finds every run done and starts no Ray. The tests marked ``ray`` run a real tiny
study with ``--confirm 3``, then rerun one deleted run, then stop a longer confirmation with SIGTERM
and resume it.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats
from signals import signal_when

from mgtune.cli import main
from mgtune.data import AMAZON_DATASETS, Dataset
from mgtune.report.card import write_card
from mgtune.report.card_data import build_card, published_data, published_results
from mgtune.store.confirmation import ARMS, confirm_columns, load_confirmation, read_study, select_candidates
from mgtune.store.results import result_columns
from mgtune.store.stats import MG_HELPS, MG_HURTS, NO_CLEAR, arm_stats, paired_t_test, verdict
from mgtune.study import load_search_space
from mgtune.study.confirm import ConfirmSettings, run_confirm
from mgtune.study.search_space import find_search_space, recorded_space
from mgtune.training import MGConfig, TrainConfig, metric_names, train

TOPK = (5, 10, 20, 50)
NAMES = metric_names(TOPK)
SPACE = load_search_space(find_search_space("freedom"))
PARAMS = {"flip_interval": 3, "flip_ratio": 0.2, "learning_rate": 0.001, "dropout": 0.8, "reg_weight": 0.0}


# ---------------------------------------------------------------- folders laid out by hand
def _metrics(base: float) -> dict[str, float]:
    return {n: round(base * (1 + 0.1 * i), 6) for i, n in enumerate(NAMES)}


def write_study(root: Path, name: str = "s", dataset: str = "tiny", mg: bool = True,
                trials: tuple[tuple[str, str, float], ...] = (("a", "completed", 0.2), ("b", "completed", 0.3),
                                                             ("c", "early_stopped", 0.9))) -> Path:
    """A study folder per the contract: study.json, results.csv, params.json per trial."""
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "study.json").write_text(json.dumps({
        "model": "freedom", "dataset": dataset, "mg": mg, "metric": "recall@20", "mode": "max", "max_epochs": 2,
        "grace_epochs": 1, "reduction_factor": 3, "trials": len(trials), "seed": 0,
        "search_space": SPACE.as_dict(), "search_space_file": SPACE.source, "created": "2026-01-01T00:00:00",
        "finished": "2026-01-01T01:00:00", "mgtune_version": "0.1.0",
    }))
    with (folder / "results.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=result_columns(SPACE.names, TOPK))
        writer.writeheader()
        for tid, status, valid in trials:
            writer.writerow({"trial_id": tid, "trial_dir": f"trial_{tid}", "status": status, "epochs_run": 2,
                             "best_epoch": 1, "seconds": 10.0, **{f"param_{k}": v for k, v in PARAMS.items()},
                             **{f"valid_{n}": v for n, v in _metrics(valid).items()},
                             **{f"test_{n}": v for n, v in _metrics(valid * 0.9).items()}})
            (folder / f"trial_{tid}").mkdir()
            params = {**PARAMS, "dropout": 0.9 if tid == "a" else 0.8}
            (folder / f"trial_{tid}" / "params.json").write_text(json.dumps(params))
    return folder


def write_run(study: Path, run_id: str, source: str, seed: int, arm: str, test: float,
              status: str = "completed") -> Path:
    """One confirmation run as Ray leaves it: params.json, progress.csv (2 epochs), run.json or error.txt."""
    folder = study / "confirm" / f"trial_{run_id}"
    folder.mkdir(parents=True)
    (folder / "params.json").write_text(json.dumps({"run": {"source_trial": source, "seed": seed, "arm": arm,
                                                            "params": PARAMS}}))
    columns = ["epoch", "train_loss", "lr", *(f"valid_{n}" for n in NAMES), *(f"test_{n}" for n in NAMES),
               "best_epoch", "best_valid_recall@20", "train_seconds", "eval_seconds", "final", "trial_seconds"]
    with (folder / "progress.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        for epoch in (0, 1):
            last = epoch == 1 and status == "completed"
            writer.writerow({"epoch": epoch, "train_loss": 0.5, "lr": 0.001,
                             **{f"valid_{n}": v for n, v in _metrics(test * (0.5 + epoch / 2)).items()},
                             **{f"test_{n}": v for n, v in _metrics(test * (0.5 + epoch / 2)).items()},
                             "best_epoch": epoch, "best_valid_recall@20": 0.1, "train_seconds": 0.25 + epoch,
                             "eval_seconds": 0.1, "final": last, "trial_seconds": 3.0 * (epoch + 1)})
            if status != "completed":
                break
    if status == "completed":
        (folder / "run.json").write_text(json.dumps({"peak_memory_mb": 500.0 + seed, "device": "Test CPU"}))
    else:
        (folder / "error.txt").write_text("Failure # 1\nray.exceptions.RayTaskError(DivergedError): loss became nan\n")
    return folder


def confirmed_study(root: Path, mg_tests: list[float], nomg_tests: list[float], dataset: str = "tiny") -> Path:
    """A study whose best trial ``b`` was confirmed over seeds 0.. with the given test recall@20 bases."""
    study = write_study(root, dataset=dataset)
    for seed, (m, n) in enumerate(zip(mg_tests, nomg_tests)):
        write_run(study, f"m{seed}", "b", seed, "mg", m)
        write_run(study, f"n{seed}", "b", seed, "nomg", n)
    return study


def _confirm(study: Path, out: Path, seeds: int = 3) -> Any:
    """`run_confirm`, then the card, as `mgtune confirm --out OUT` does."""
    outcome = run_confirm(ConfirmSettings(study_dir=str(study), seeds=seeds), log=lambda _: None)
    outcome.cards = write_card(outcome.confirmation, out)
    return outcome


# ---------------------------------------------------------------- statistics
@pytest.mark.parametrize("mg,nomg", [
    ([0.21, 0.25, 0.22], [0.20, 0.22, 0.215]),
    ([0.10, 0.12, 0.09, 0.11, 0.13], [0.11, 0.10, 0.10, 0.12, 0.12]),
    ([0.5, 0.4], [0.45, 0.41]),
])
def test_paired_ci_and_p_value_match_scipy(mg: list[float], nomg: list[float]) -> None:
    res = paired_t_test(mg, nomg)
    diffs = np.subtract(mg, nomg)
    ref = stats.ttest_rel(mg, nomg)
    low, high = stats.t.interval(0.95, len(diffs) - 1, loc=diffs.mean(), scale=stats.sem(diffs))
    assert res.n == len(mg)
    assert res.mean == pytest.approx(diffs.mean(), abs=1e-15)
    assert res.sd == pytest.approx(diffs.std(ddof=1), rel=1e-12)
    assert res.t == pytest.approx(ref.statistic, rel=1e-10)
    assert res.p_value == pytest.approx(ref.pvalue, rel=1e-10)
    assert (res.ci_low, res.ci_high) == (pytest.approx(low, rel=1e-10), pytest.approx(high, rel=1e-10))


def test_arm_stats_use_ddof_1_and_degenerate_pairs_decide_nothing() -> None:
    values = [0.1, 0.4, 0.25, 0.3]
    s = arm_stats(values)
    assert (s.n, s.mean, s.sd) == (4, pytest.approx(np.mean(values)), pytest.approx(np.std(values, ddof=1)))
    one = paired_t_test([0.3], [0.2])  # one pair: no interval
    assert one.n == 1 and np.isnan(one.ci_low) and one.verdict == NO_CLEAR
    same = paired_t_test([0.3, 0.2], [0.3, 0.2])  # identical arms: no difference
    assert (same.ci_low, same.ci_high, same.p_value, same.verdict) == (0.0, 0.0, 1.0, NO_CLEAR)
    with pytest.raises(ValueError):
        paired_t_test([0.1, 0.2], [0.1])


@pytest.mark.parametrize("low,high,expected", [
    (0.001, 0.02, MG_HELPS), (-0.001, 0.02, NO_CLEAR), (0.0, 0.02, NO_CLEAR), (-0.03, -0.01, MG_HURTS),
    (-0.03, 0.0, NO_CLEAR), (float("nan"), float("nan"), NO_CLEAR),
])
def test_verdict_reads_only_the_interval(low: float, high: float, expected: str) -> None:
    assert verdict(low, high) == expected


@pytest.mark.parametrize("mg,nomg,expected", [
    ([0.22, 0.25, 0.23], [0.20, 0.22, 0.21], MG_HELPS),  # MG higher on every seed, consistently
    ([0.20, 0.22, 0.21], [0.22, 0.25, 0.23], MG_HURTS),
    ([0.25, 0.20, 0.23], [0.20, 0.24, 0.22], NO_CLEAR),  # higher on average, but the CI straddles zero
])
def test_verdict_follows_the_ci_through_the_confirmation_and_card(tmp_path: Path, mg: list[float],
                                                                   nomg: list[float], expected: str) -> None:
    study = confirmed_study(tmp_path, mg, nomg)
    outcome = _confirm(study, tmp_path / "reports")
    result = outcome.confirmation.results()[0]
    test = result.tests["recall@20"]
    assert test.verdict == expected == result.verdict
    assert (test.ci_low > 0) == (expected == MG_HELPS) and (test.ci_high < 0) == (expected == MG_HURTS)
    card = json.loads((tmp_path / "reports" / "freedom-tiny-card.json").read_text())
    assert card["verdict"]["verdict"] == expected
    assert f"**{expected}**" in (tmp_path / "reports" / "freedom-tiny-card.md").read_text()


# ---------------------------------------------------------------- selection, results.csv, the card
def test_selection_takes_completed_trials_by_validation(tmp_path: Path) -> None:
    study_dir, meta = read_study(write_study(tmp_path))
    chosen = select_candidates(study_dir, meta, recorded_space(meta, study_dir).names, top=5)
    # "c" has the best validation but was stopped by ASHA: never chosen
    assert [(c.rank, c.trial_id) for c in chosen] == [(1, "b"), (2, "a")]
    assert chosen[1].params["dropout"] == 0.9  # from the trial's params.json, typed


def test_rerun_skips_finished_runs_and_writes_results_and_card(tmp_path: Path) -> None:
    study = confirmed_study(tmp_path, [0.22, 0.25, 0.23], [0.20, 0.22, 0.21], dataset="sports")
    before = {p: p.read_bytes() for p in (study / "confirm").rglob("progress.csv")}
    outcome = _confirm(study, tmp_path / "reports")  # every run is done: starts no Ray
    assert outcome.finished and {p: p.read_bytes() for p in before} == before
    with (study / "confirm" / "results.csv").open() as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
    assert reader.fieldnames == confirm_columns(SPACE.names, TOPK)
    assert [(r["seed"], r["arm"]) for r in rows] == [(str(s), a) for s in range(3) for a in ARMS]
    assert {r["status"] for r in rows} == {"completed"} and {r["source_trial"] for r in rows} == {"b"}
    assert float(rows[0]["seconds_per_epoch"]) == pytest.approx(0.75)  # median of 0.25 and 1.25
    assert float(rows[1]["test_recall@20"]) == _metrics(0.22)["recall@20"]  # the best epoch's test value
    assert [p.name for p in outcome.cards] == ["freedom-sports-card.md", "freedom-sports-card.json"]


def test_card_has_every_field(tmp_path: Path) -> None:
    study = confirmed_study(tmp_path, [0.22, 0.25, 0.23], [0.20, 0.22, 0.21], dataset="sports")
    write_run(study, "x", "b", 0, "mg", 0.9, status="diverged")  # an older, failed record of a finished run
    _confirm(study, tmp_path / "reports")
    card = json.loads((tmp_path / "reports" / "freedom-sports-card.json").read_text())
    assert {"model", "dataset", "study", "selection", "seeds", "seed_rule", "protocol", "environment", "verdict",
            "configurations", "compute", "published"} <= set(card)
    assert card["seeds"] == [0, 1, 2]
    assert {"batch_size", "max_epochs", "early_stopping_patience", "validation_metric", "cutoffs", "test",
            "confidence"} <= set(card["protocol"])
    assert card["protocol"]["cutoffs"] == list(TOPK) and card["protocol"]["max_epochs"] == 2
    assert {"mgtune", "torch", "cuda", "ray", "devices"} <= set(card["environment"])
    assert card["environment"]["devices"] == ["Test CPU"]
    (config,) = card["configurations"]
    assert {"configuration", "per_seed", "summary", "verdict", "resources"} <= set(config)
    assert config["configuration"]["params"] == PARAMS
    assert config["configuration"]["train_config"]["mg"]["flip_interval"] == 3
    assert len(config["per_seed"]) == 6
    for run in config["per_seed"]:
        assert run["status"] == "completed" and set(run["test"]) == set(NAMES)
        assert run["peak_memory_mb"] == 500.0 + run["seed"] and run["seconds_per_epoch"] == 0.75
    assert set(config["summary"]) == set(NAMES)
    assert set(config["resources"]) == {"seconds_per_epoch", "peak_memory_mb"}
    assert config["resources"]["peak_memory_mb"]["mg"]["mean"] == pytest.approx(501.0)
    # the paired numbers are scipy's on the per-seed values the card lists
    mg = [r["test"]["ndcg@10"] for r in config["per_seed"] if r["arm"] == "mg"]
    nomg = [r["test"]["ndcg@10"] for r in config["per_seed"] if r["arm"] == "nomg"]
    diff = config["summary"]["ndcg@10"]["difference"]
    assert diff["p_value"] == pytest.approx(stats.ttest_rel(mg, nomg).pvalue, rel=1e-9)
    d = np.subtract(mg, nomg)
    assert diff["ci_low"] == pytest.approx(stats.t.interval(0.95, 2, loc=d.mean(), scale=stats.sem(d))[0], rel=1e-9)
    compute = card["compute"]
    assert compute["study_seconds"] == 30.0 and compute["confirmation_seconds"] == 36.0  # 3 trials; 6 runs x 6 s
    assert compute["total_seconds"] == 66.0
    # sports is an Amazon dataset: published numbers of both sources, with where they come from
    published = card["published"]
    assert set(published["sources"]) == {"mmrec", "mg_paper"}
    assert all(s["url"].startswith("https://github.com/") for s in published["sources"].values())
    got = {(p["source"], p["arm"], p["metric"]): p["published"] for p in published["comparison"]}
    assert got[("mmrec", "nomg", "recall@20")] == 0.1089
    assert got[("mg_paper", "mg", "recall@5")] == 0.0466 and got[("mg_paper", "nomg", "recall@5")] == 0.0446
    assert all(p["ours"]["n"] == 3 for p in published["comparison"])
    md = (tmp_path / "reports" / "freedom-sports-card.md").read_text()
    for heading in ("## Seeds", "## Protocol", "## Environment", "### Per-seed runs", "## Compute",
                    "## Published numbers", "Test metrics over seeds"):
        assert heading in md
    assert "0.1089" in md and "Mirror Gradient" in md


def test_published_data_has_only_amazon_rows_with_known_sources() -> None:
    doc = published_data()
    assert doc["results"] and all(r["dataset"] in AMAZON_DATASETS for r in doc["results"])
    assert {r["source"] for r in doc["results"]} <= set(doc["sources"])
    mg_rows = [r for r in doc["results"] if r["source"] == "mg_paper"]
    assert all(set(r["metrics"]) == {"recall@5", "precision@5", "map@5", "ndcg@5"} for r in mg_rows)
    assert published_results("freedom", "tiny") == ({}, [])


def test_non_amazon_dataset_card_says_why_there_are_no_published_numbers(tmp_path: Path) -> None:
    study = confirmed_study(tmp_path, [0.22, 0.25], [0.20, 0.22])
    _confirm(study, tmp_path / "reports", seeds=2)
    conf = load_confirmation(study)
    assert conf is not None
    card = build_card(conf)
    assert card["published"]["comparison"] == [] and "Amazon" in card["published"]["note"]


# ---------------------------------------------------------------- determinism
def test_same_seed_gives_the_same_metrics_twice_on_cpu(tiny_dir: Path, tiny_dataset: Dataset) -> None:
    cfg = TrainConfig(model="freedom", dataset="tiny", data_dir=str(tiny_dir), epochs=2, seed=1, device="cpu",
                      mg=MGConfig(flip_interval=2, flip_ratio=0.3))
    first, second = (train(cfg, data=tiny_dataset) for _ in range(2))
    assert first.test == second.test and first.valid == second.valid and first.best_epoch == second.best_epoch
    import dataclasses

    other = train(dataclasses.replace(cfg, seed=2), data=tiny_dataset)
    assert other.valid != first.valid  # the seed matters, so the pairs above compare like with like


# ---------------------------------------------------------------- bad input
def _error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(list(argv)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("mgtune: error: "), err
    return err


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "no such study folder" in _error(capsys, "confirm", str(tmp_path / "nope"))
    assert "not a study folder" in _error(capsys, "confirm", str(tmp_path))
    none_done = write_study(tmp_path, "none", trials=(("a", "early_stopped", 0.3), ("b", "diverged", 0.0)))
    assert "no completed trial" in _error(capsys, "confirm", str(none_done))
    good = write_study(tmp_path, "good")
    assert "--seeds must be >= 2" in _error(capsys, "confirm", str(good), "--seeds", "1")
    assert "--top must be >= 1" in _error(capsys, "confirm", str(good), "--top", "0")
    nomg = write_study(tmp_path, "nomg", mg=False)
    assert "without MG" in _error(capsys, "confirm", str(nomg))
    (good / "results.csv").unlink()
    assert "results.csv: missing" in _error(capsys, "confirm", str(good))
    # `run --confirm 1` is refused before any study starts
    storage = tmp_path / "runs"
    assert "--seeds must be >= 2" in _error(capsys, "run", "--model", "freedom", "--dataset", "tiny", "--storage",
                                            str(storage), "--confirm", "1")
    assert not storage.exists()


# ---------------------------------------------------------------- end to end, with Ray
def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mgtune.cli", *args], capture_output=True, text=True,
                          timeout=900, cwd=cwd, env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])})


@pytest.fixture(scope="module")
def confirmed(tiny_dir: Path,
              tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    """A real 2-trial, 2-epoch study of FREEDOM on the tiny preset, then ``--confirm 3``."""
    work = tmp_path_factory.mktemp("confirm")
    proc = _cli("run", "--model", "freedom", "--dataset", "tiny", "--data-dir", str(tiny_dir), "--trials", "2",
                "--max-epochs", "2", "--grace-epochs", "2", "--storage", "runs", "--name", "s", "--confirm", "3",
                cwd=work)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc, work


@pytest.mark.ray
def test_run_with_confirm_trains_both_arms_over_seeds(confirmed: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    proc, work = confirmed
    study = work / "runs" / "s"
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    (config,) = summary["configurations"]
    assert summary["seeds"] == [0, 1, 2] and config["verdict"] in (MG_HELPS, MG_HURTS, NO_CLEAR)
    with (study / "confirm" / "results.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["seed"], r["arm"]) for r in rows] == [(str(s), a) for s in range(3) for a in ARMS]
    assert {r["status"] for r in rows} == {"completed"}
    assert all(float(r["peak_memory_mb"]) > 0 and float(r["seconds_per_epoch"]) > 0 and r["device"] for r in rows)
    assert all(int(r["epochs_run"]) == 2 for r in rows)
    # the MG run of the first seed repeats the study's own trial: the same numbers in a fresh process
    with (study / "results.csv").open() as fh:
        best = next(r for r in csv.DictReader(fh) if r["trial_id"] == config["source_trial"])
    mg0 = rows[1]
    assert (mg0["seed"], mg0["arm"]) == ("0", "mg")
    assert {n: float(mg0[f"test_{n}"]) for n in NAMES} == {n: float(best[f"test_{n}"]) for n in NAMES}
    card = json.loads((work / "reports" / "freedom-tiny-card.json").read_text())
    assert card["environment"]["devices"] and card["compute"]["confirmation_runs"] == 6
    assert "Confirmed over seeds" in (study / "report" / "tiny.md").read_text()


@pytest.mark.ray
def test_robustness_on_the_confirmed_study(confirmed: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    """Every run kept its weights; `mgtune robustness` evaluates them (no Ray) and level 0 is the recorded test."""
    _, work = confirmed
    study = work / "runs" / "s"
    weights = sorted((study / "confirm").glob("trial_*/weights.pt"))
    assert len(weights) == 6
    proc = _cli("robustness", "runs/s", "--kinds", "swap,gaussian", "--levels", "0,1", cwd=work)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with (study / "robustness" / "results.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 6 * 2 * 2
    with (study / "confirm" / "results.csv").open() as fh:
        recorded = {(r["seed"], r["arm"]): r for r in csv.DictReader(fh)}
    for r in rows:
        if float(r["level"]) == 0:
            assert {n: float(r[f"test_{n}"]) for n in NAMES} == \
                {n: float(recorded[(r["seed"], r["arm"])][f"test_{n}"]) for n in NAMES}
    assert (study / "robustness" / "curves.png").is_file()
    assert "## Robustness" in (work / "reports" / "freedom-tiny-card.md").read_text()


@pytest.mark.ray
def test_rerun_trains_only_the_missing_run_and_gets_the_same_numbers(
        confirmed: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    _, work = confirmed
    study = work / "runs" / "s"
    with (study / "confirm" / "results.csv").open() as fh:
        before = list(csv.DictReader(fh))
    gone = before[2]  # seed 1, no MG
    for f in sorted((study / "confirm" / gone["trial_dir"]).rglob("*"), reverse=True):
        f.unlink() if f.is_file() else f.rmdir()
    (study / "confirm" / gone["trial_dir"]).rmdir()
    kept = {r["trial_dir"]: (study / "confirm" / r["trial_dir"] / "progress.csv").read_bytes() for r in before
            if r is not gone}
    proc = _cli("confirm", str(study), "--seeds", "3", "--out", "cards", cwd=work)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "1 run(s)" in proc.stderr
    with (study / "confirm" / "results.csv").open() as fh:
        after = list(csv.DictReader(fh))
    for name, data in kept.items():  # not trained again
        assert (study / "confirm" / name / "progress.csv").read_bytes() == data
    again = after[2]
    assert again["trial_dir"] != gone["trial_dir"] and (again["seed"], again["arm"]) == ("1", "nomg")
    assert {n: again[f"test_{n}"] for n in NAMES} == {n: gone[f"test_{n}"] for n in NAMES}  # same seed, same numbers
    assert (work / "cards" / "freedom-tiny-card.md").is_file()


@pytest.mark.ray
def test_sigterm_stops_confirm_with_the_resume_line_and_resume_finishes_it(
        confirmed: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    """SIGTERM (a scheduler ending the job) stops `mgtune confirm` as Ctrl-C does: exit 130, the resume line,
    nothing on stdout; the finished runs are kept and ``--resume`` completes the rest."""
    _, work = confirmed
    study = work / "runs" / "s"
    before = {p.name for p in (study / "confirm").glob("trial_*")}
    err = work / "sigterm.err"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2]), "RAY_ADDRESS": ""}
    with err.open("w") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mgtune.cli", "confirm", str(study), "--seeds", "5"], cwd=work, env=env,
            stdout=subprocess.PIPE, stderr=fh, text=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # as from a shell, not pytest's
    out = signal_when(proc, lambda: bool({p.name for p in (study / "confirm").glob("trial_*")} - before), err,
                      timeout=300)
    text = err.read_text()
    assert proc.returncode == 130, text[-3000:]
    assert f"continue it with: mgtune confirm {study} --seeds 5 --top 1 --resume" in text.splitlines()[-1]
    assert out == "" and "Traceback" not in text
    proc2 = _cli("confirm", str(study), "--seeds", "5", "--resume", cwd=work)
    assert proc2.returncode == 0, proc2.stderr[-3000:]
    with (study / "confirm" / "results.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["seed"], r["arm"]) for r in rows] == [(str(s), a) for s in range(5) for a in ARMS]
    assert {r["status"] for r in rows} == {"completed"}
