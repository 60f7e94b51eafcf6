"""A study folder's record: ``study.json`` as one frozen `StudyRecord`, its only reader and writer.

The keys are the study contract shared with `mgtune.report` (``model``, ``dataset``, ``mg``,
``metric``, ``max_epochs`` are required, the rest default), plus what ``--resume`` needs to rebuild
a trial; keys it does not know are kept and written back unchanged. A file that cannot be read as
such a record is a `DataFormatError` naming the file and the key; a folder that is not a study is a
`ConfigError`. What a trial of the study trains (`mgtune.study.trainable.TrialSetup`) is built from
it by the study layer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mgtune.errors import ConfigError, DataFormatError
from mgtune.files import write_json
from mgtune.store.budget import Budget
from mgtune.store.json_files import read_json
from mgtune.store.layout import STUDY_FILE
from mgtune.store.metrics import CUTOFFS, metric_names

__all__ = ["StudyRecord"]


@dataclass(frozen=True, kw_only=True)
class StudyRecord:
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
    topk: tuple[int, ...] = CUTOFFS  # the training default
    max_concurrent_trials: int | None = None
    ray_address: str | None = None
    budget_epochs: int | None = None  # `mgtune.store.budget`: the limits; what was spent is in budget.jsonl
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
    def read(cls, folder: str | Path) -> StudyRecord:
        """The record of the study folder ``folder`` (as the user named it)."""
        folder_path = Path(folder).expanduser()
        if not folder_path.is_dir():
            raise ConfigError(f"{folder}: no such study folder")
        path = folder_path / STUDY_FILE
        if not path.is_file():
            raise ConfigError(f"{folder}: not a study folder (no {STUDY_FILE})")
        return cls.read_file(path)

    @classmethod
    def read_file(cls, path: Path) -> StudyRecord:
        return cls.from_dict(read_json(path), path)

    @classmethod
    def from_dict(cls, info: Mapping[str, Any], path: Path | str = STUDY_FILE) -> StudyRecord:
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
        known = metric_names(tuple(values.get("topk", CUTOFFS)))
        if values["metric"] not in known:  # every reader builds column names from it: refused once, here
            raise DataFormatError(f"{path}: key 'metric' must be one of {', '.join(known)}, got {values['metric']!r}")
        extra = {k: v for k, v in info.items() if k not in _KEYS and k not in ("extra", "present")}
        return cls(**values, extra=extra, present=frozenset(k for k in info if k in _KEYS))

    def require(self, *keys: str, path: Path | str = STUDY_FILE) -> StudyRecord:
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

    def replace(self, **changes: Any) -> StudyRecord:
        return dataclasses.replace(self, **changes)

    def budget(self) -> Budget:
        """The study's budget (no limits for a study that had none)."""
        return Budget(self.budget_epochs, self.time_budget_s)


_FIELDS = [f for f in dataclasses.fields(StudyRecord) if f.name not in ("extra", "present")]
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
