"""A report over real studies made by `mgtune run` (Ray): FREEDOM with and without MG.

The expected best trials, test metrics and gains are recomputed here from each study's own
results.csv, independently of the report code.
"""

from __future__ import annotations

import base64
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from mgtune.cli import main
from mgtune.data.synth import make_synthetic

pytestmark = pytest.mark.ray

STUDIES = {  # name -> extra arguments of `mgtune run`
    "freedom-mg": ["--model", "freedom"],
    "freedom-nomg": ["--model", "freedom", "--no-mg"],
}  # a model without its no-MG pair is covered by the fixture studies of test_html / test_build
KEYS = [f"{m}@{k}" for k in (5, 10, 20) for m in ("recall", "precision", "map", "ndcg")]
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("real")
    make_synthetic(root / "datasets", "tiny", "tiny", seed=0)
    for name, extra in STUDIES.items():
        model = extra[1]
        cmd = [sys.executable, "-m", "mgtune.cli", "run", *extra, "--dataset", "tiny", "--trials", "3",
               "--max-epochs", "3", "--grace-epochs", "1", "--name", name,
               "--search-space", str(REPO / "search_spaces" / f"{model}.yaml")]
        done = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stderr[-3000:]
        # `mgtune run` reports on its own study when it finishes, and says where
        assert f"{root / 'runs' / name / 'report' / 'tiny.md'}" in done.stderr
    return root / "runs"


def _expected_best(study: Path) -> pd.Series:
    results = pd.read_csv(study / "results.csv", dtype={"trial_id": str})
    completed = results[results["status"] == "completed"]
    return completed.loc[completed["valid_recall@20"].idxmax()]


def test_report_over_real_studies(storage: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "reports"
    assert main(["report", "--storage", str(storage), "--out", str(out)]) == 0
    assert capsys.readouterr().out.split() == [str(out / f"tiny.{e}") for e in ("md", "csv", "html")]

    table = pd.read_csv(out / "tiny.csv", dtype={"trial_id": str}).set_index(["model", "mg"])
    assert sorted(table.index) == [("freedom", False), ("freedom", True)]
    best = {key: _expected_best(storage / name) for key, name in
            [(("freedom", True), "freedom-mg"), (("freedom", False), "freedom-nomg")]}
    for key, row in best.items():
        assert table.loc[key, "trial_id"] == row["trial_id"]
        for metric in KEYS:
            assert table.loc[key, f"test_{metric}"] == pytest.approx(row[f"test_{metric}"])
    assert pd.isna(table.loc[("freedom", False), "param_flip_interval"])  # --no-mg samples no MG params
    for metric in KEYS:
        mg, nomg = best[("freedom", True)][f"test_{metric}"], best[("freedom", False)][f"test_{metric}"]
        if nomg:
            assert table.loc[("freedom", True), f"gain_{metric}"] == pytest.approx((mg - nomg) / nomg)

    md = (out / "tiny.md").read_text()
    assert "| FREEDOM |" in md and "| FREEDOM + MG |" in md and "| Gain |" in md
    page = (out / "tiny.html").read_text()
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) >= 2  # curves, one parameter sweep per model
    assert all(base64.b64decode(b).startswith(b"\x89PNG") and len(b) > 5_000 for b in images)
