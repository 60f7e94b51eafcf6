"""Store layer: the one reader and writer of every record a run leaves on disk (no torch, Ray or Optuna).

Modules, by what they hold: `layout` (every file and folder name, the folder map in its docstring),
`study_record` (``study.json``), `results` (``results.csv``, trial statuses, `select_best`),
`budget` (``budget.jsonl``), `confirmation` and `robustness` (``confirm/`` and ``robustness/``),
`suite` (``suite.json``), `stats` (the paired statistics their readers compute), `folders` (where a
run's folder goes, and whether it may be resumed), `optuna_db` (a study's progress from its
``optuna.db``), and underneath `csv_files`, `json_files`, `fields` and `metrics`. Binary artefacts
(checkpoints, weights, TensorBoard events, Optuna's and Ray's own state) are written by what makes
them, under the names defined in `layout`.
"""

from mgtune.store.budget import Budget, Spent, format_duration, parse_duration, read_spent
from mgtune.store.fields import finite_number, now
from mgtune.store.folders import check_ray_state, check_trusted, run_folder, whole_pickle
from mgtune.store.layout import (
    BUDGET_FILE,
    CARD_DIR,
    CHECKPOINT_FILE,
    CONFIRM_DIR,
    CONFIRM_FILE,
    CURVES_FILE,
    ERROR_FILE,
    FAILED_FILE,
    LOG_DIR,
    METRICS_FILE,
    OPTUNA_FILE,
    OPTUNA_STUDY,
    PARAMS_FILE,
    PROGRESS_FILE,
    REPORT_DIR,
    RESULTS_FILE,
    ROBUST_DIR,
    ROBUST_FILE,
    ROBUST_PAGE,
    ROBUST_WEIGHTS_DIR,
    RUN_FILE,
    STATE_FILE,
    STUDY_FILE,
    SUITE_FILE,
    TRIAL_PREFIX,
    WEIGHTS_FILE,
    trial_folder,
    trial_id_of,
)
from mgtune.store.metrics import CUTOFFS, METRICS, metric_names
from mgtune.store.results import FINISHED, STATUSES, TrialRecord, read_results, select_best, write_results
from mgtune.store.study_record import StudyRecord
from mgtune.store.suite import SuiteRecord, SuiteStudy, is_suite

__all__ = [
    "STUDY_FILE", "RESULTS_FILE", "OPTUNA_FILE", "OPTUNA_STUDY", "BUDGET_FILE", "REPORT_DIR", "PARAMS_FILE",
    "PROGRESS_FILE", "ERROR_FILE", "FAILED_FILE", "STATE_FILE", "CONFIRM_DIR", "CONFIRM_FILE", "RUN_FILE",
    "WEIGHTS_FILE", "ROBUST_DIR", "ROBUST_FILE", "ROBUST_WEIGHTS_DIR", "CURVES_FILE", "ROBUST_PAGE", "SUITE_FILE",
    "LOG_DIR", "CARD_DIR", "METRICS_FILE", "CHECKPOINT_FILE", "TRIAL_PREFIX", "trial_folder", "trial_id_of", "Budget",
    "Spent", "format_duration", "parse_duration", "read_spent", "finite_number", "now", "check_trusted",
    "check_ray_state", "whole_pickle", "run_folder", "CUTOFFS", "METRICS", "metric_names", "FINISHED", "STATUSES",
    "TrialRecord", "read_results", "select_best", "write_results", "StudyRecord", "SuiteRecord", "SuiteStudy",
    "is_suite",
]
