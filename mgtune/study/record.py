"""A study folder's record: ``study.json`` as one frozen `StudyMeta`, and the facts every reader shares.

`StudyMeta` is the only reader and the only writer of ``study.json``. The keys are the study
contract shared with `mgtune.report` (``model``, ``dataset``, ``mg``, ``metric``, ``max_epochs``
are required, the rest default), plus what ``--resume`` needs to rebuild a trial; keys it does not
know are kept and written back unchanged. A file that cannot be read as such a record is a
`DataFormatError` naming the file and the key; a folder that is not a study is a `ConfigError`.

Also here: the metric cutoffs (`CUTOFFS`), the trial statuses of ``results.csv`` (`STATUSES`) and
the one rule that picks the best trial (`select_best`): the completed trial with the highest
*validation* metric, the earlier trial winning ties; test never selects.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from mgtune.errors import ConfigError, DataFormatError
from mgtune.files import write_json
from mgtune.study.budget import Budget

if TYPE_CHECKING:
    from mgtune.study.search_space import SearchSpace
    from mgtune.study.trainable import TrialSetup
    from mgtune.training import TrainConfig

__all__ = [
    "STUDY_FILE", "RESULTS_FILE", "STATUSES", "FINISHED", "StudyMeta", "select_best", "selectable", "rank_completed",
    "finite_number", "now", "read_record", "ROBUST_DIR",
]

STUDY_FILE = "study.json"
RESULTS_FILE = "results.csv"
ROBUST_DIR = "robustness"  # `mgtune robustness` writes its results.csv there, inside the study folder
# a trial's status in results.csv; budget_stopped: cut short by the study's budget (results.csv files
# written before it existed call those early_stopped, as they do the trials ASHA stopped)
STATUSES = ("completed", "early_stopped", "budget_stopped", "diverged", "errored")
FINISHED = ("completed", "early_stopped", "budget_stopped")  # the statuses of trials that produced metrics

_Row = TypeVar("_Row", bound=Mapping[str, Any])


@dataclass(frozen=True, kw_only=True)
class StudyMeta:
    """``study.json``. Fields are in the file's key order; ``extra`` holds keys this version does not know."""

    model: str
    dataset: str
    mg: bool
    metric: str  # the validation metric the study optimised
    mode: str = "max"
    max_epochs: int
    grace_epochs: int = 0
    reduction_factor: int = 0
    trials: int = 0
    seed: int = 0
    search_space: dict[str, Any] = field(default_factory=dict)
    search_space_file: str | None = None
    created: str | None = None
    finished: str | None = None  # ISO time, or None while the study runs or after an interruption
    mgtune_version: str | None = None
    # beyond the shared contract: what --resume needs to rebuild the trainable
    data_dir: str = field(default_factory=lambda: str(Path("datasets").resolve()))
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    checkpoint_every: int = 5
    topk: tuple[int, ...] = field(default_factory=lambda: _cutoffs())  # the training default, CUTOFFS
    max_concurrent_trials: int | None = None
    ray_address: str | None = None
    budget_epochs: int | None = None  # `mgtune.study.budget`: the limits; what was spent is in budget.jsonl
    time_budget_s: float | None = None
    ended_by: str | None = None  # a finished study: "trials" (all ran), or the budget's "epochs" or "time"
    extra: dict[str, Any] = field(default_factory=dict, compare=False)
    present: frozenset[str] = field(default=frozenset(), compare=False, repr=False)
    """The keys the file held (all of them for a record built in memory)."""

    def __post_init__(self) -> None:
        if not self.present:
            object.__setattr__(self, "present", frozenset(_KEYS))

    # ------------------------------------------------------------ reading
    @classmethod
    def read(cls, folder: str | Path) -> StudyMeta:
        """The record of the study folder ``folder`` (as the user named it)."""
        folder_path = Path(folder).expanduser()
        if not folder_path.is_dir():
            raise ConfigError(f"{folder}: no such study folder")
        path = folder_path / STUDY_FILE
        if not path.is_file():
            raise ConfigError(f"{folder}: not a study folder (no {STUDY_FILE})")
        return cls.read_file(path)

    @classmethod
    def read_file(cls, path: Path) -> StudyMeta:
        try:
            info = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError) as exc:
            raise DataFormatError(f"{path}: cannot read ({exc})") from None
        except json.JSONDecodeError as exc:
            raise DataFormatError(f"{path}: not valid JSON ({exc})") from None
        if not isinstance(info, dict):
            raise DataFormatError(f"{path}: expected a JSON object, got {type(info).__name__}")
        return cls.from_dict(info, path)

    @classmethod
    def from_dict(cls, info: Mapping[str, Any], path: Path | str = STUDY_FILE) -> StudyMeta:
        for key in _REQUIRED:
            if key not in info:
                raise DataFormatError(f"{path}: missing key {key!r}")
        values: dict[str, Any] = {}
        for key in _KEYS:
            if key not in info:
                continue
            value, kind = info[key], _TYPES[key]
            if key == "finished":  # a reader never needs more than "finished or not"
                values[key] = value if isinstance(value, str) else None
                continue
            if not _is(value, kind):
                raise DataFormatError(f"{path}: key {key!r} expects {_kind_name(kind)}, got {value!r}")
            if key == "topk":
                value = tuple(value)
            elif kind is float or kind == (float, type(None)):
                value = None if value is None else float(value)
            values[key] = value
        extra = {k: v for k, v in info.items() if k not in _KEYS and k not in ("extra", "present")}
        return cls(**values, extra=extra, present=frozenset(k for k in info if k in _KEYS))

    def require(self, *keys: str, path: Path | str = STUDY_FILE) -> StudyMeta:
        """Self, or a `DataFormatError` if the file lacked any of ``keys`` (those a job cannot default)."""
        missing = [k for k in keys if k not in self.present]
        if missing:
            raise DataFormatError(f"{path}: missing key(s) {', '.join(missing)}")
        return self

    # ------------------------------------------------------------ writing
    def as_dict(self) -> dict[str, Any]:
        """The JSON object of ``study.json``: every field in order, ``topk`` as a list, then unknown keys."""
        out: dict[str, Any] = {}
        for key in _KEYS:
            value = getattr(self, key)
            if key in _ONLY_WHEN_SET and value is None and key not in self.present:
                continue  # a study without a budget reads and writes back as before budgets existed
            out[key] = list(value) if key == "topk" else value
        return {**out, **self.extra}

    def write(self, folder: Path) -> None:
        """Replace ``folder/study.json`` atomically."""
        write_json(Path(folder) / STUDY_FILE, self.as_dict())

    def replace(self, **changes: Any) -> StudyMeta:
        return dataclasses.replace(self, **changes)

    def budget(self) -> Budget:
        """The study's budget (no limits for a study that had none)."""
        return Budget(self.budget_epochs, self.time_budget_s)

    # ------------------------------------------------------------ what a trial of this study trains
    def train_config(self) -> TrainConfig:
        """The study's training settings without sampled parameters (enough to load its dataset)."""
        from mgtune.training import MGConfig, TrainConfig  # torch: only when a study or confirmation runs

        return TrainConfig(model=self.model, dataset=self.dataset, data_dir=self.data_dir,
                           mg=MGConfig(enabled=self.mg), valid_metric=self.metric, topk=self.topk)

    def trial_setup(self, space: SearchSpace, folder: Path) -> TrialSetup:
        """What every trial of this study shares; ``folder`` is where the trials write (a study or confirmation)."""
        from mgtune.study.trainable import TrialSetup

        return TrialSetup(
            space=space, model=self.model, dataset=self.dataset, data_dir=self.data_dir, mg=self.mg,
            metric=self.metric, max_epochs=self.max_epochs, seed=self.seed,
            cpus_per_trial=self.cpus_per_trial, gpus_per_trial=self.gpus_per_trial,
            checkpoint_every=self.checkpoint_every, study_dir=str(folder), topk=self.topk,
        )


_FIELDS = [f for f in dataclasses.fields(StudyMeta) if f.name not in ("extra", "present")]
_KEYS = tuple(f.name for f in _FIELDS)
_REQUIRED = ("model", "dataset", "mg", "metric", "max_epochs")
_ONLY_WHEN_SET = ("budget_epochs", "time_budget_s", "ended_by")
_TYPES: dict[str, Any] = {
    "model": str, "dataset": str, "mg": bool, "metric": str, "mode": str, "max_epochs": int, "grace_epochs": int,
    "reduction_factor": int, "trials": int, "seed": int, "search_space": dict, "search_space_file": (str, type(None)),
    "created": (str, type(None)), "finished": (str, type(None)), "mgtune_version": (str, type(None)),
    "data_dir": str, "cpus_per_trial": float, "gpus_per_trial": float, "checkpoint_every": int, "topk": list,
    "max_concurrent_trials": (int, type(None)), "ray_address": (str, type(None)),
    "budget_epochs": (int, type(None)), "time_budget_s": (float, type(None)), "ended_by": (str, type(None)),
}
assert set(_TYPES) == set(_KEYS)


def _is(value: Any, kind: Any) -> bool:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool):
        return bool in kinds
    if isinstance(value, int) and float in kinds:
        return True
    if kind is list:
        return isinstance(value, list) and all(isinstance(k, int) and not isinstance(k, bool) for k in value)
    return isinstance(value, kinds)


def _kind_name(kind: Any) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = ["null" if k is type(None) else "list of int" if k is list else k.__name__ for k in kinds]
    return " or ".join(names)


# ---------------------------------------------------------------- the best trial
def rank_completed(rows: Iterable[_Row], metric: str, statuses: tuple[str, ...] = ("completed",)) -> list[_Row]:
    """The completed trials (or those of ``statuses``) with a finite validation ``metric``, best first;
    ties keep the rows' order."""
    key = f"valid_{metric}"
    done = [r for r in rows if r.get("status") in statuses and finite_number(r.get(key)) is not None]
    return sorted(done, key=lambda r: -float(r[key]))  # stable: the earlier trial wins ties


def select_best(rows: Iterable[_Row], metric: str, budget_ended: bool = False) -> _Row | None:
    """The completed trial with the best *validation* ``metric`` (test never selects), or None.

    In a study its budget ended (``budget_ended``), the trials running at the end were cut short by the
    budget, not judged worse, so every trial with metrics competes (completed or stopped early, by ASHA
    or by the budget): the best validation value any of them reached, whose checkpoint is kept.
    """
    ranked = rank_completed(rows, metric, selectable(budget_ended))
    return ranked[0] if ranked else None


def selectable(budget_ended: bool = False) -> tuple[str, ...]:
    """The statuses `select_best` chooses among: ``completed``, or in a study its budget ended every finished one."""
    return FINISHED if budget_ended else ("completed",)


def finite_number(value: Any) -> float | None:
    """``value`` as a finite float (numbers, or text from a CSV cell); None for anything else."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _cutoffs() -> tuple[int, ...]:
    """`mgtune.training.CUTOFFS`, the one definition of the cutoffs; imported late, since training imports torch."""
    from mgtune.training import CUTOFFS

    return CUTOFFS


def now() -> str:
    """The local time as study files record it (``created``, ``finished``)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def read_record(info_file: Path, results_file: Path) -> tuple[dict[str, Any], list[dict[str, str]]] | None:
    """A JSON record and its CSV of rows (a confirmation's, a robustness pass's); None while either is missing."""
    import csv

    if not info_file.is_file() or not results_file.is_file():
        return None
    try:
        info = json.loads(info_file.read_text())
    except json.JSONDecodeError as exc:
        raise DataFormatError(f"{info_file}: not valid JSON ({exc})") from None
    with results_file.open(newline="") as fh:
        return info, list(csv.DictReader(fh))
