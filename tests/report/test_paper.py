"""A suite folder in `mgtune report`: its finished studies, read like single studies, and the paper's table."""

from __future__ import annotations

from pathlib import Path

import pytest
from report_fixtures import mg_trials, nomg_trials, write_study

from mgtune.cli import main
from mgtune.report.card_data import published_results
from mgtune.store.suite import SuiteRecord, SuiteStudy, study_name

SCORES = [("t0", "completed", 0.20, 0.18), ("t1", "completed", 0.30, 0.25)]


def _suite(root: Path, dataset: str) -> Path:
    """A suite folder as `mgtune run --model freedom,vbpr --mg both` leaves it, VBPR's MG study failed."""
    folder = root / "s"
    studies = []
    for model in ("freedom", "vbpr"):
        for mg in (False, True):
            name = study_name(model, mg)
            failed = model == "vbpr" and mg
            if not failed:
                write_study(folder, name, (mg_trials if mg else nomg_trials)(SCORES), model=model, dataset=dataset,
                            mg=mg)
            studies.append(SuiteStudy(name, model, mg, "failed" if failed else "finished",
                                      "all 2 trials failed: boom" if failed else None))
    SuiteRecord(dataset, tuple(studies), {"metric": "recall@20"}).write(folder)
    return folder


@pytest.mark.parametrize("dataset", ["toy", "baby"])
def test_report_of_a_suite_leads_with_the_paper_table(tmp_path: Path, dataset: str) -> None:
    suite = _suite(tmp_path, dataset)
    assert main(["report", str(suite), "--out", str(tmp_path / "out")]) == 0
    md = (tmp_path / "out" / f"{dataset}.md").read_text()
    paper = md.split("## The paper's table: MG vs no-MG")[1].split("##")[0]
    rows = [r.split(" | ")[0].strip("| ") for r in paper.splitlines() if r.startswith("| ") and "**" not in r]
    published = [r for r in rows if "(published: " in r]
    assert rows[:3] == ["FREEDOM", "FREEDOM + MG", "Gain"]
    assert "VBPR" not in rows  # its MG study failed: no pair to show
    assert "REC@50" in paper and "NDCG@50" in paper  # the seed's cutoffs 5/10/20/50
    if dataset == "baby":  # every published FREEDOM row of baby, each naming its source
        _, expected = published_results("freedom", "baby")
        assert expected and len(published) == len(expected)
        assert all(f"`{r['source']}`" in paper for r in expected)
    else:
        assert not published
    assert md.index("The paper's table") < md.index("## Best configuration per model")
    assert "vbpr-nomg" in md and "| vbpr " not in md  # the failed study is not read, but named with its reason
    assert "Failed studies (not in the table):\n- `vbpr`: all 2 trials failed: boom" in paper


def test_suite_record_round_trip_and_bad_file(tmp_path: Path) -> None:
    from mgtune.errors import DataFormatError

    record = SuiteRecord("toy", (SuiteStudy("freedom", "freedom", True),), {"trials": 2}, 3, "now")
    record.write(tmp_path)
    assert SuiteRecord.read(tmp_path) == record
    (tmp_path / "suite.json").write_text('{"dataset": "toy", "studies": [{"name": "x", "model": "x", "mg": true, '
                                         '"state": "lost"}]}')
    with pytest.raises(DataFormatError, match="unknown state 'lost'"):
        SuiteRecord.read(tmp_path)
