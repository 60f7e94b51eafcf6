"""`build_report`: one md/csv/html per dataset, replaced atomically, untouched on any error."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from report_fixtures import mg_trials, write_study

from mgtune.errors import ConfigError, DataFormatError, StorageError
from mgtune.report import build_report


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_writes_three_files_per_dataset(toy_pair: tuple[Path, Path], runs: Path, tmp_path: Path) -> None:
    other = write_study(runs, "vbpr-other", mg_trials([("a", "completed", 0.1, 0.1)]), model="vbpr",
                        dataset="other")
    out = tmp_path / "reports"
    paths = build_report([*toy_pair, other, toy_pair[0]], out, metric="ndcg@20", ks=(10,))
    assert paths == [out / f"{d}.{ext}" for d in ("other", "toy") for ext in ("md", "csv", "html")]
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in paths)  # no temp files left
    md = (out / "toy.md").read_text()
    assert "validation ndcg@20" in md and "| **REC@10** |" in md and "REC@5" not in md
    assert "| FREEDOM + MG | 5 |" in md  # the repeated folder is read once


def test_bad_arguments(toy_pair: tuple[Path, Path], tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no study folders given"):
        build_report([], tmp_path)
    with pytest.raises(ConfigError, match="metric must look like"):
        build_report(list(toy_pair), tmp_path, metric="auc")
    with pytest.raises(DataFormatError, match=r"missing column.*test_recall@7"):
        build_report(list(toy_pair), tmp_path, ks=(7,))


@pytest.fixture
def old_report(tmp_path: Path) -> Path:
    """A report folder from an earlier run (content stands in for real pages)."""
    out = tmp_path / "reports"
    out.mkdir()
    for ext in ("md", "csv", "html"):
        (out / f"toy.{ext}").write_text(f"earlier {ext} report\n")
    return out


def test_existing_report_untouched_when_input_is_bad(old_report: Path, toy_pair: tuple[Path, Path],
                                                     runs: Path) -> None:
    before = _snapshot(old_report)
    broken = write_study(runs, "broken", mg_trials([("a", "completed", 0.1, 0.1)]))
    (broken / "results.csv").write_text("trial_id,trial_dir\n1,2,3,4\n")
    with pytest.raises(DataFormatError):
        build_report([*toy_pair, broken], old_report)
    assert _snapshot(old_report) == before


def test_existing_report_untouched_when_a_late_stage_fails(old_report: Path, toy_pair: tuple[Path, Path]) -> None:
    # The Markdown and CSV render fine; the HTML needs the best trial's progress.csv, which is gone.
    before = _snapshot(old_report)
    (toy_pair[0] / "trial_t1" / "progress.csv").unlink()
    with pytest.raises(DataFormatError, match=r"trial_t1/progress\.csv: missing"):
        build_report(list(toy_pair), old_report)
    assert _snapshot(old_report) == before


def test_existing_report_untouched_when_writing_fails(old_report: Path, toy_pair: tuple[Path, Path],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    before = _snapshot(old_report)
    real_mkstemp, calls = tempfile.mkstemp, []

    def failing_mkstemp(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 3:  # md and csv are staged, the html cannot be
            raise OSError(28, "No space left on device")
        return real_mkstemp(*args, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", failing_mkstemp)
    with pytest.raises(StorageError, match=r"toy\.html: cannot write: the disk is full \(ENOSPC\); every report "
                                           r"page is as it was"):
        build_report(list(toy_pair), old_report)
    assert _snapshot(old_report) == before  # old files intact, staged temp files removed


def test_rerun_replaces_the_report(old_report: Path, toy_pair: tuple[Path, Path], runs: Path) -> None:
    build_report(list(toy_pair), old_report)
    assert "| FREEDOM + MG | 5 |" in (old_report / "toy.md").read_text()
    better = write_study(runs, "freedom-toy-2", mg_trials([("z", "completed", 0.9, 0.9)]))
    build_report([*toy_pair, better], old_report)
    md = (old_report / "toy.md").read_text()
    assert "| FREEDOM + MG | 6 |" in md and "| z |" in md
    assert sorted(p.name for p in old_report.iterdir()) == ["toy.csv", "toy.html", "toy.md"]
