"""A confirmation's record: ``<study>/confirm/`` and what it says (candidates, runs, statistics).

The folder (a Ray experiment) holds ``confirm.json`` (settings and chosen configurations), one
``trial_<id>/`` per run (Ray's ``params.json`` and ``progress.csv``, checkpoints, TensorBoard events,
``run.json`` with the run's peak memory and device, ``weights.pt`` with its best weights), and
``results.csv``: one row per (configuration, seed, arm). A run is done once it completed or
diverged. `mgtune.study.confirm` runs the confirmation; this module chooses what to confirm, reads
what the runs left, and reads a confirmation back with its paired statistics (`mgtune.store.stats`).
``confirm.json`` also records what a reproduction card needs from the training stack (each
configuration's full training settings, the protocol, the environment), so that the card is written
without torch.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from mgtune.errors import DataFormatError
from mgtune.store.csv_files import read_frame, read_rows, write_csv
from mgtune.store.fields import finite_number
from mgtune.store.json_files import read_json, read_record
from mgtune.store.layout import (
    CONFIRM_DIR,
    CONFIRM_FILE,
    ERROR_FILE,
    PARAMS_FILE,
    PROGRESS_FILE,
    RESULTS_FILE,
    RUN_FILE,
    STUDY_FILE,
    trial_folder,
    trial_id_of,
)
from mgtune.store.metrics import metric_names
from mgtune.store.results import TrialRecord, rank_completed, read_results, trial_row
from mgtune.store.stats import ArmStats, PairedTest, arm_stats, paired_t_test
from mgtune.store.study_record import StudyRecord

__all__ = [
    "ARMS", "SEED_RULE", "SELECTION", "Candidate", "RunKey", "ConfigResult", "Confirmation", "read_study",
    "select_candidates", "seeds_for", "pending_runs", "unrecorded_runs", "collect_rows", "confirm_columns",
    "write_confirm_results", "load_confirmation",
]

ARMS = ("nomg", "mg")
SEED_RULE = "study seed + 0 .. N-1 (the MG run of the first seed repeats the study's own trial)"
SELECTION = ("Configurations confirmed: the study's trials with status completed (ran to max_epochs or stopped "
             "by their own early stopping) with the highest validation {metric}; test never selects.")
HEAD = ("source_trial", "rank", "seed", "arm", "status", "trial_dir", "epochs_run", "best_epoch", "seconds",
        "seconds_per_epoch", "peak_memory_mb", "device")
_INTS = ("rank", "seed", "epochs_run", "best_epoch")
_DONE = ("completed", "diverged")  # not run again; errored and interrupted runs are
_PREFERENCE = {"errored": 0, "diverged": 1, "completed": 2}  # which record of a run counts when there are several


@dataclass(frozen=True)
class Candidate:
    """A configuration to confirm: a completed study trial, ranked by its validation score."""

    rank: int
    trial_id: str
    valid: float  # the study's validation metric at the trial's best epoch
    params: dict[str, Any]  # the trial's sampled parameters (its params.json)

    def as_dict(self) -> dict[str, Any]:
        return {"rank": self.rank, "source_trial": self.trial_id, "valid": self.valid, "params": self.params}


class RunKey(NamedTuple):
    source_trial: str
    seed: int
    arm: str  # "mg" or "nomg"


def seeds_for(study_seed: int, n: int) -> list[int]:
    return [study_seed + i for i in range(n)]


# ---------------------------------------------------------------- the study
def read_study(path: str | Path) -> tuple[Path, StudyRecord]:
    """The study folder ``path`` (resolved) and its record, which must name its seed and search space."""
    study_dir = Path(path).expanduser().resolve()
    return study_dir, StudyRecord.read(path).require("seed", "search_space", path=study_dir / STUDY_FILE)


def select_candidates(study_dir: Path, meta: StudyRecord, param_names: Sequence[str], top: int) -> list[Candidate]:
    """The ``top`` completed trials with the best validation metric; the earlier trial wins ties."""
    path = study_dir / RESULTS_FILE
    if not path.is_file():
        raise DataFormatError(f"{path}: missing; the study has not finished (continue it with mgtune run --resume)")
    key = f"valid_{meta.metric}"
    frame = read_results(path, [key])  # the report's reader: a damaged file is an error, never another trial
    rows = frame.astype(object).where(frame.notna(), None).to_dict("records")
    done = rank_completed(rows, meta.metric)  # as the report: ties keep the file's (trial id) order
    if not done:
        raise DataFormatError(f"{path}: no completed trial to confirm (none of its {len(rows)} trials ran to "
                              "max_epochs or its own early stopping)")
    out = []
    for rank, row in enumerate(done[:top], start=1):
        params_file = study_dir / (row.get("trial_dir") or trial_folder(str(row["trial_id"]))) / PARAMS_FILE
        saved = read_json(params_file)
        params = {p: saved[p] for p in param_names if p in saved}
        out.append(Candidate(rank, str(row["trial_id"]), float(row[key]), params))
    return out


# ---------------------------------------------------------------- the runs still to do
def pending_runs(confirm_dir: Path, wanted: Sequence[RunKey], meta: StudyRecord) -> list[RunKey]:
    """The runs still to train: no record, or only an errored one."""
    found = _scan(confirm_dir, meta.topk, [])
    return [k for k in wanted if k not in found or found[k]["status"] not in _DONE]


def unrecorded_runs(confirm_dir: Path, runs: Sequence[RunKey], meta: StudyRecord) -> list[RunKey]:
    """The runs with neither a final epoch nor an error: Ray was interrupted before they ended.

    (Ray's trial states cannot tell: after Ctrl-C it marks the trials it stopped as terminated, done or not.)
    """
    found = _scan(confirm_dir, meta.topk, [])
    return [k for k in runs if k not in found]


# ---------------------------------------------------------------- results.csv
def confirm_columns(param_names: Sequence[str], topk: Sequence[int]) -> list[str]:
    names = metric_names(tuple(topk))
    return [*HEAD, *(f"param_{p}" for p in param_names), *(f"valid_{n}" for n in names),
            *(f"test_{n}" for n in names)]


def write_confirm_results(path: Path, rows: Sequence[dict[str, Any]], param_names: Sequence[str],
                          topk: Sequence[int]) -> None:
    """``confirm/results.csv``, replaced atomically."""
    write_csv(path, confirm_columns(param_names, topk), rows)


def _scan(confirm_dir: Path, topk: Sequence[int], param_names: Sequence[str]) -> dict[RunKey, dict[str, Any]]:
    """The best record of every run in the folder (completed > diverged > errored; then the latest)."""
    found: dict[RunKey, tuple[tuple[int, float], dict[str, Any]]] = {}
    for params_file in sorted(confirm_dir.glob(f"{trial_folder('*')}/{PARAMS_FILE}")):
        try:
            run = read_json(params_file).get("run")
        except DataFormatError:
            continue  # a trial being started
        if not isinstance(run, dict):
            continue
        row = _run_row(params_file.parent, run, topk, param_names)
        if row is None:
            continue
        key = RunKey(str(run["source_trial"]), int(run["seed"]), str(run["arm"]))
        order = (_PREFERENCE[row["status"]], params_file.stat().st_mtime)
        if key not in found or order > found[key][0]:
            found[key] = (order, row)
    return {k: row for k, (_, row) in found.items()}


def _run_row(trial_dir: Path, run: dict[str, Any], topk: Sequence[int],
             param_names: Sequence[str]) -> dict[str, Any] | None:
    """One run's results.csv row, or None while it is unfinished (no final epoch and no error)."""
    progress_file, error_file = trial_dir / PROGRESS_FILE, trial_dir / ERROR_FILE
    progress = None
    if progress_file.is_file() and progress_file.stat().st_size:
        progress = read_frame(progress_file)
    error = RuntimeError(error_file.read_text()) if error_file.is_file() else None
    rec = TrialRecord(trial_id_of(trial_dir.name), trial_dir.name, run["params"], progress, error)
    row = trial_row(rec, param_names, topk)
    if row["status"] == "early_stopped":  # no ASHA here: not final and no error means interrupted
        return None
    extra = read_json(trial_dir / RUN_FILE) if (trial_dir / RUN_FILE).is_file() else {}
    per_epoch = (progress.drop_duplicates("epoch", keep="last")["train_seconds"].dropna()
                 if progress is not None and "train_seconds" in progress else [])
    row.update(source_trial=run["source_trial"], seed=int(run["seed"]), arm=run["arm"],
               seconds_per_epoch=round(statistics.median(per_epoch), 4) if len(per_epoch) else None,
               peak_memory_mb=extra.get("peak_memory_mb"), device=extra.get("device"))
    return row


def collect_rows(confirm_dir: Path, wanted: Sequence[RunKey], meta: StudyRecord,
                 param_names: Sequence[str]) -> list[dict[str, Any]]:
    """The best record of every wanted run found, in the order wanted, with its configuration's rank."""
    found = _scan(confirm_dir, meta.topk, param_names) if confirm_dir.is_dir() else {}
    ranks: dict[str, int] = {}
    for key in wanted:
        ranks.setdefault(key.source_trial, len(ranks) + 1)
    return [{**found[k], "rank": ranks[k.source_trial]} for k in wanted if k in found]


# ---------------------------------------------------------------- reading a confirmation back
@dataclass(frozen=True)
class ConfigResult:
    """One configuration over seeds: per arm and test metric the spread, per metric the paired test."""

    candidate: Candidate
    metric: str  # the study's selection metric; the verdict is on its test value
    runs: list[dict[str, Any]]  # its results.csv rows, by seed then arm
    arms: dict[str, dict[str, ArmStats]]  # arm -> metric -> stats over its completed runs
    tests: dict[str, PairedTest]  # metric -> MG - no MG over the seeds where both arms completed
    seconds_per_epoch: dict[str, ArmStats]  # arm -> stats
    peak_memory_mb: dict[str, ArmStats]

    @property
    def verdict(self) -> str:
        return self.tests[self.metric].verdict


@dataclass(frozen=True, eq=False)
class Confirmation:
    """``<study>/confirm/`` as read back: the study's metadata, the settings and the runs."""

    study_dir: Path
    meta: StudyRecord
    info: dict[str, Any]
    rows: list[dict[str, Any]]
    study_rows: list[dict[str, Any]]  # the study's own results.csv (for its compute)

    @property
    def metric(self) -> str:
        return self.meta.metric

    @property
    def seeds(self) -> list[int]:
        return [int(s) for s in self.info["seeds"]]

    @property
    def topk(self) -> tuple[int, ...]:
        return self.meta.topk

    @property
    def candidates(self) -> list[Candidate]:
        return [Candidate(int(c["rank"]), str(c["source_trial"]), float(c["valid"]), dict(c["params"]))
                for c in self.info["candidates"]]

    @property
    def seconds(self) -> float:
        return math.fsum(r["seconds"] or 0.0 for r in self.rows)

    @property
    def study_seconds(self) -> float:
        return math.fsum(finite_number(r.get("seconds")) or 0.0 for r in self.study_rows)

    def results(self) -> list[ConfigResult]:
        return [self._result(c) for c in self.candidates]

    def _result(self, c: Candidate) -> ConfigResult:
        names = metric_names(self.topk)
        runs = sorted((r for r in self.rows if r["source_trial"] == c.trial_id),
                      key=lambda r: (r["seed"], ARMS.index(r["arm"])))
        done = {(r["seed"], r["arm"]): r for r in runs if r["status"] == "completed"}
        paired = [s for s in self.seeds if (s, "mg") in done and (s, "nomg") in done]

        def values(arm: str, col: str) -> list[float]:
            cells = [done[(s, arm)][col] for s in self.seeds if (s, arm) in done]
            return [float(v) for v in cells if v is not None]

        arms = {arm: {n: arm_stats(values(arm, f"test_{n}")) for n in names} for arm in ARMS}
        tests = {n: paired_t_test([done[(s, "mg")][f"test_{n}"] for s in paired],
                                  [done[(s, "nomg")][f"test_{n}"] for s in paired]) for n in names}
        return ConfigResult(c, self.metric, runs, arms, tests,
                            {a: arm_stats(values(a, "seconds_per_epoch")) for a in ARMS},
                            {a: arm_stats(values(a, "peak_memory_mb")) for a in ARMS})


def load_confirmation(study_dir: str | Path) -> Confirmation | None:
    """``<study>/confirm/`` read back; None when the study has no confirmation with results yet."""
    folder = Path(study_dir) / CONFIRM_DIR
    record = read_record(folder / CONFIRM_FILE, folder / RESULTS_FILE)
    if record is None:
        return None
    meta = StudyRecord.read(study_dir)
    study_dir = Path(study_dir).expanduser().resolve()
    info, rows = record[0], [_typed(folder / RESULTS_FILE, n, r) for n, r in enumerate(record[1], start=1)]
    _check_runs(folder, info, rows)
    study_rows: list[dict[str, Any]] = []
    if (study_dir / RESULTS_FILE).exists():
        study_rows = list(read_rows(study_dir / RESULTS_FILE))
    return Confirmation(study_dir, meta, info, rows, study_rows)


def _check_runs(folder: Path, info: dict[str, Any], rows: Sequence[dict[str, Any]]) -> None:
    """`DataFormatError` unless ``results.csv`` holds one row per run ``confirm.json`` names (once it is finished;
    at most one before): a file that lost rows (cut at a row's end, edited) is never read as fewer seeds, nor one
    with extra or doubled rows as more."""
    path, info_file = folder / RESULTS_FILE, folder / CONFIRM_FILE
    try:
        seeds = [int(s) for s in info["seeds"]]
        trials = [str(c["source_trial"]) for c in info["candidates"]]
        for c in info["candidates"]:
            int(c["rank"]), float(c["valid"]), dict(c["params"])
    except (KeyError, TypeError, ValueError) as exc:
        raise DataFormatError(f"{info_file}: seeds and candidates (rank, source_trial, valid, params) must be "
                              f"lists of the types mgtune writes ({type(exc).__name__}: {exc})") from None
    wanted = {(t, s, a) for t in trials for s in seeds for a in ARMS}
    seen: set[tuple[Any, ...]] = set()
    for number, r in enumerate(rows, start=1):
        key = (r.get("source_trial"), r.get("seed"), r.get("arm"))
        if key not in wanted:
            raise DataFormatError(f"{path}: data row {number} is run {key}, which {info_file.name} does not name")
        if key in seen:
            raise DataFormatError(f"{path}: data row {number} repeats run {key}")
        seen.add(key)
    missing = sorted(wanted - seen, key=str)
    if missing and info.get("finished"):  # an interrupted confirmation lacks the runs it did not reach
        raise DataFormatError(f"{path}: {len(missing)} of {len(wanted)} runs missing (first: {missing[0]}); the "
                              "file is damaged: rerun mgtune confirm with --resume, which rewrites it")


def _typed(path: Path, number: int, row: dict[str, str]) -> dict[str, Any]:
    try:
        return _cells(row)
    except (ValueError, OverflowError) as exc:
        raise DataFormatError(f"{path}: data row {number}: {exc}") from None


def _cells(row: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, text in row.items():
        if key in _INTS:
            out[key] = int(float(text)) if text not in ("", None) else None
        elif key in ("seconds", "seconds_per_epoch", "peak_memory_mb") or key.startswith(("valid_", "test_")):
            out[key] = finite_number(text)
        else:
            out[key] = text if text != "" else None
    return out
