"""Study layer: search spaces, Ray Tune trials of the shared training function, ``results.csv``.

Importing it does not import Ray or Optuna; `run_study` and the trainable load them when they run.
"""

from mgtune.study.results import STATUSES, TrialRecord, best_row, result_columns, write_results
from mgtune.study.runner import RESULTS_FILE, STUDY_FILE, StudyOutcome, StudySettings, default_name, run_study
from mgtune.study.search_space import (
    MG_PARAMS, TRAIN_PARAMS, Param, SearchSpace, find_search_space, load_search_space, space_from_dict,
)
from mgtune.study.trainable import TrialSetup, run_trial, score_key

__all__ = [
    "STATUSES", "TrialRecord", "best_row", "result_columns", "write_results",
    "RESULTS_FILE", "STUDY_FILE", "StudyOutcome", "StudySettings", "default_name", "run_study",
    "MG_PARAMS", "TRAIN_PARAMS", "Param", "SearchSpace", "find_search_space", "load_search_space", "space_from_dict",
    "TrialSetup", "run_trial", "score_key",
]
