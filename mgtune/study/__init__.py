"""Study layer: search spaces, Ray Tune trials of the shared training function, ``results.csv``.

Modules, by job: `record` (``study.json`` as `StudyMeta`, the trial statuses and `select_best`),
`search_space`, `trainable` (one trial, on a Ray worker), `results` (``results.csv``), `session`
(the Ray runtime: start or attach, resources), `runner` (`run_study`), `confirm` (`run_confirm`),
`confirmation` (a confirmation's record and statistics, with `stats`), `card` (a reproduction card
as data), `environment`, and `suite` (several studies at once on one Ray runtime, ``mgtune run
--model a,b --mg both``) with its record `suite_record` (``suite.json``).

Importing it imports none of them: the names below load their module on first use, so the report
layer can read a study's record without torch, Ray or Optuna.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mgtune.study.record import RESULTS_FILE, STATUSES, STUDY_FILE, StudyMeta, select_best
    from mgtune.study.results import TrialRecord, result_columns, write_results
    from mgtune.study.runner import StudyOutcome, StudySettings, default_name, run_study
    from mgtune.study.search_space import (
        MG_PARAMS,
        TRAIN_PARAMS,
        Param,
        SearchSpace,
        find_search_space,
        load_search_space,
        space_from_dict,
    )
    from mgtune.study.trainable import TrialSetup, run_trial, score_key

__all__ = [
    "RESULTS_FILE", "STATUSES", "STUDY_FILE", "StudyMeta", "select_best",
    "TrialRecord", "result_columns", "write_results",
    "StudyOutcome", "StudySettings", "default_name", "run_study",
    "MG_PARAMS", "TRAIN_PARAMS", "Param", "SearchSpace", "find_search_space", "load_search_space", "space_from_dict",
    "TrialSetup", "run_trial", "score_key",
]
_MODULE_OF = {  # each name's module, for __getattr__
    **dict.fromkeys(["RESULTS_FILE", "STATUSES", "STUDY_FILE", "StudyMeta", "select_best"], "record"),
    **dict.fromkeys(["TrialRecord", "result_columns", "write_results"], "results"),
    **dict.fromkeys(["StudyOutcome", "StudySettings", "default_name", "run_study"], "runner"),
    **dict.fromkeys(["MG_PARAMS", "TRAIN_PARAMS", "Param", "SearchSpace", "find_search_space", "load_search_space",
                     "space_from_dict"], "search_space"),
    **dict.fromkeys(["TrialSetup", "run_trial", "score_key"], "trainable"),
}
assert sorted(_MODULE_OF) == sorted(__all__)


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
