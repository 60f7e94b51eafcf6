"""A suite folder's record: ``suite.json`` as one `SuiteRecord` (its only reader and writer).

A suite (``mgtune run --model a,b --mg both``) is several studies of one dataset run together:
``<storage>/<suite>/`` holds ``suite.json``, one study folder per model and MG setting (each exactly
as a single ``mgtune run`` writes it) and ``logs/<study>.log`` (each study's stderr). This module
reads no study, so the report layer can read a suite cheaply.
"""

from __future__ import annotations

import dataclasses
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mgtune.errors import ConfigError, DataFormatError
from mgtune.files import write_json
from mgtune.store.csv_files import read_rows
from mgtune.store.json_files import read_json
from mgtune.store.layout import ERROR_FILE, RESULTS_FILE, STUDY_FILE, SUITE_FILE
from mgtune.store.results import FINISHED, select_best

__all__ = ["SUITE_STATES", "SuiteStudy", "SuiteRecord", "is_suite", "study_name", "study_rows", "trial_error",
           "last_line", "best_valid", "summary_lines", "study_state"]

SUITE_STATES = ("pending", "running", "finished", "failed", "interrupted")  # a study's state in the suite


def study_name(model: str, mg: bool) -> str:
    """The study folder of ``model`` with or without MG inside a suite: ``freedom`` or ``freedom-nomg``."""
    return model.lower() if mg else f"{model.lower()}-nomg"


def is_suite(folder: str | Path) -> bool:
    return (Path(folder) / SUITE_FILE).is_file()


@dataclass(frozen=True)
class SuiteStudy:
    """One study of the suite and how far it got."""

    name: str  # its folder under the suite folder
    model: str
    mg: bool
    state: str = "pending"
    reason: str | None = None  # one line, when failed
    confirmed: bool = False  # its confirmation (MG studies, with --confirm) finished

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class SuiteRecord:
    """``suite.json``: the settings every study shares (``settings``, the child ``mgtune run`` options) and
    the studies' states. Keys this version does not know are kept in ``extra`` and written back."""

    dataset: str
    studies: tuple[SuiteStudy, ...]
    settings: dict[str, Any] = field(default_factory=dict)
    confirm: int | None = None  # seeds of each confirmation, None: no confirmation
    created: str | None = None
    finished: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def read(cls, folder: str | Path) -> SuiteRecord:
        path = Path(folder) / SUITE_FILE
        if not path.is_file():
            raise ConfigError(f"{folder}: not a suite folder (no {SUITE_FILE})")
        info = read_json(path)
        try:
            studies = tuple(SuiteStudy(**s) for s in info["studies"])
            bad = [s.state for s in studies if s.state not in SUITE_STATES]
            if bad or not isinstance(info["dataset"], str):
                raise ValueError(f"unknown state {bad[0]!r}" if bad else "dataset must be a string")
            known = {f.name for f in dataclasses.fields(cls)} - {"extra", "studies"}
            return cls(studies=studies, **{k: v for k, v in info.items() if k in known},
                       extra={k: v for k, v in info.items() if k not in known and k != "studies"})
        except (KeyError, TypeError, ValueError) as exc:
            raise DataFormatError(f"{path}: not a suite record ({type(exc).__name__}: {exc})") from None

    def as_dict(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "studies": [s.as_dict() for s in self.studies], "settings": self.settings,
                "confirm": self.confirm, "created": self.created, "finished": self.finished, **self.extra}

    def write(self, folder: Path) -> None:
        """Replace ``folder/suite.json`` atomically."""
        write_json(Path(folder) / SUITE_FILE, self.as_dict())

    def replace(self, **changes: Any) -> SuiteRecord:
        return dataclasses.replace(self, **changes)

    def with_study(self, name: str, **changes: Any) -> SuiteRecord:
        """The record with study ``name`` changed."""
        return self.replace(studies=tuple(dataclasses.replace(s, **changes) if s.name == name else s
                                          for s in self.studies))

    def study_dirs(self, folder: str | Path) -> list[Path]:
        """The folders of the studies that left a study record (``study.json``), in the suite's order."""
        return [Path(folder) / s.name for s in self.studies if (Path(folder) / s.name / STUDY_FILE).is_file()]


# ---------------------------------------------------------------- what a suite reads of its studies
def study_rows(study_dir: Path) -> list[dict[str, str]]:
    """A study's ``results.csv`` rows as text; [] before it wrote one, or when it is unreadable (a study
    whose results cannot be read has failed)."""
    try:
        return read_rows(study_dir / RESULTS_FILE) if (study_dir / RESULTS_FILE).exists() else []
    except DataFormatError:
        return []


def trial_error(study_dir: Path, rows: list[dict[str, str]]) -> str:
    """The last line of the first failed trial's ``error.txt`` (the exception), or its status."""
    for r in rows:
        error = study_dir / (r.get("trial_dir") or "") / ERROR_FILE
        if r.get("trial_dir") and error.is_file():
            return last_line(error)
    return rows[0].get("status", "no trial") if rows else "no trial ran"


def last_line(path: Path) -> str:
    """A log's ``mgtune: error:`` line if it has one, else its last non-empty line (at most 300 characters)."""
    try:
        lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "no output"
    errors = [ln for ln in lines if ln.startswith("mgtune: error:")]
    return (errors or lines or ["no output"])[-1][:300]


def best_valid(study_dir: Path, metric: str) -> float | None:
    """The best validation ``metric`` of the study's completed trials (`select_best`), or None."""
    best = select_best(study_rows(study_dir), metric)
    return None if best is None else float(best[f"valid_{metric}"])


def summary_lines(suite_dir: Path, record: SuiteRecord) -> list[str]:
    """What a suite prints at its end: one line per study, its state, why it failed and its best score."""
    lines = [f"suite {suite_dir.name} on {record.dataset}:"]
    for st in record.studies:
        best = best_valid(suite_dir / st.name, record.settings.get("metric", "recall@20"))
        extra = f" ({st.reason})" if st.reason else ""
        conf = ", confirmed" if st.confirmed else ""
        lines.append(f"  {st.name:<20} {st.state}{conf}{extra}" + (f"  best valid {best:.4f}" if best is not None
                                                                    else ""))
    return lines


def study_state(returncode: int, log_file: Path, study_dir: Path) -> tuple[str, str | None]:
    """A suite's study whose process ended with ``returncode``: interrupted, failed (and why) or finished."""
    if returncode in (130, -signal.SIGINT):
        return "interrupted", None
    if returncode != 0:
        return "failed", last_line(log_file)
    rows = study_rows(study_dir)
    if not any(r.get("status") in FINISHED for r in rows):
        return "failed", f"all {len(rows)} trials failed: {trial_error(study_dir, rows)}"
    return "finished", None
