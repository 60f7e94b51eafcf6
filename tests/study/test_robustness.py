"""`mgtune robustness`: evaluations on spoiled features, their statistics, the report and the CLI's errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mgtune.cli import main
from mgtune.data import Dataset
from mgtune.store import ROBUST_DIR, ROBUST_FILE
from mgtune.store.folders import study_folders as study_dirs
from mgtune.store.robustness import drop_table, robustness_columns, write_robustness_rows
from mgtune.training import MGConfig, TrainConfig, train
from mgtune.training.perturb import Perturbation
from mgtune.training.robust_eval import TrainedRun, evaluate_runs


@pytest.fixture(scope="module", params=["freedom", "vbpr"])
def trained(request: pytest.FixtureRequest, tiny_dir: Path, tiny_dataset: Dataset) -> tuple[TrainedRun, dict]:
    cfg = TrainConfig(model=request.param, dataset="tiny", data_dir=str(tiny_dir), epochs=2, device="cpu",
                      mg=MGConfig(enabled=True), seed=3)
    result = train(cfg, data=tiny_dataset)
    return TrainedRun("t0", "mg", 3, result.config, result.best_state), result.test


def test_level_zero_reproduces_the_clean_test_metrics_exactly(trained: tuple[TrainedRun, dict],
                                                              tiny_dataset: Dataset) -> None:
    run, clean_test = trained
    ps = [Perturbation(k, 0.0, "both", seed=1) for k in ("gaussian", "mask", "swap")]
    ps.append(Perturbation("gaussian", 1.0, "both", seed=1))
    rows = evaluate_runs(tiny_dataset, [run], ps)
    for row in rows[:3]:
        assert {k: row[f"test_{k}"] for k in clean_test} == clean_test  # exactly, every metric
    assert any(rows[3][f"test_{k}"] != v for k, v in clean_test.items())  # strong noise moves something
    assert set(rows[0]) - {"source_trial"} <= set(robustness_columns(run.config.topk))


def _row(kind: str, level: float, arm: str, seed: int, value: float) -> dict:
    return {"kind": kind, "modality": "both", "level": level, "arm": arm, "seed": seed, "test_recall@20": value,
            "test_ndcg@20": value / 2}


def test_drop_table_pairs_the_drops_by_seed() -> None:
    rows = []
    for seed, (mg0, mg1, no0, no1) in enumerate([(0.2, 0.18, 0.2, 0.1), (0.3, 0.27, 0.3, 0.15), (0.1, 0.09, 0.1,
                                                                                              0.06)]):
        rows += [_row("gaussian", 0, "mg", seed, mg0), _row("gaussian", 0.5, "mg", seed, mg1),
                 _row("gaussian", 0, "nomg", seed, no0), _row("gaussian", 0.5, "nomg", seed, no1)]
    table = {d.level: d for d in drop_table(rows, "recall@20")}
    d = table[0.5]
    assert d.drop["mg"].mean == pytest.approx(0.1)
    assert d.drop["nomg"].mean == pytest.approx((0.5 + 0.5 + 0.4) / 3)
    assert d.difference.n == 3 and d.difference.mean == pytest.approx(0.1 - 1.4 / 3)
    assert d.difference.ci_high < 0 and d.verdict == "MG helps"  # MG loses less
    assert table[0].drop["mg"].mean == 0


def test_report_writes_curves_and_table(tmp_path: Path) -> None:
    from mgtune.report.robustness import write_robustness_report

    folder = tmp_path / "study" / ROBUST_DIR
    rows = [{**_row(kind, lv, arm, s, 0.2 - lv * (0.05 if arm == "mg" else 0.1) + s / 100), "study": "study",
             "model": "freedom", "dataset": "demo"}
            for kind in ("gaussian", "swap") for lv in (0.0, 0.5, 1.0) for arm in ("nomg", "mg") for s in range(3)]
    write_robustness_rows(folder / "results.csv", rows, (20,))
    (folder / ROBUST_FILE).write_text(json.dumps({"study": "study", "seeds": [0, 1, 2], "kinds": ["gaussian", "swap"],
                                                  "modality": "both", "seconds": 1.0}))
    md, png = write_robustness_report(tmp_path / "study")
    assert png.read_bytes()[:4] == b"\x89PNG"
    text = md.read_text()
    assert "![" in text and "curves.png" in text
    assert text.count("| gaussian |") == 4 and text.count("| MG helps |") == 8  # 2 kinds x 2 levels x 2 metrics
    from mgtune.report.robustness import robustness_sections

    section = robustness_sections([tmp_path / "study"])  # what `mgtune report` appends to the dataset's page
    assert section.count("## Robustness: study") == 1 and str(png) in section and "| MG helps |" in section


def test_a_folder_of_studies_is_taken_generically(tmp_path: Path) -> None:
    for name in ("b", "a"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "study.json").write_text("{}")
    (tmp_path / "notes").mkdir()
    assert [p.name for p in study_dirs(tmp_path)] == ["a", "b"]


@pytest.mark.parametrize(("args", "needle"), [
    (["--kinds", "blur"], "unknown perturbation kind 'blur'"),
    (["--levels", "0,-0.5"], "levels must be >= 0"),
    (["--kinds", "mask", "--levels", "0,1.5"], "share of the items, in [0, 1]"),
    (["--levels", "0,x"], "--levels: 'x' is not a number"),
    (["--modality", "audio"], "unknown modality"),
    (["--mask-fill", "nan"], "unknown mask fill"),
    (["--device", "tpu"], "--device must be auto, cpu or cuda"),
    ([], "not a study folder"),
])
def test_bad_arguments_are_one_line_and_exit_2(args: list[str], needle: str, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["robustness", str(tmp_path), *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("mgtune: error: ") and needle in err


def test_a_folder_of_only_no_mg_studies_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from mgtune.study import find_search_space, load_search_space

    space = load_search_space(find_search_space("freedom"))
    (tmp_path / "nomg").mkdir()
    (tmp_path / "nomg" / "study.json").write_text(json.dumps({
        "model": "freedom", "dataset": "tiny", "mg": False, "metric": "recall@20", "max_epochs": 2, "seed": 0,
        "search_space": space.as_dict()}))
    assert main(["robustness", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "none of its studies ran with MG" in err
