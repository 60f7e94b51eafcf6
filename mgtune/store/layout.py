"""The folder map: every file and folder name a run leaves on disk, defined here and nowhere else.

A **study** (``mgtune run``), ``<storage>/<name>/``::

    study.json              the study record (`StudyRecord`)
    results.csv             one row per trial (`mgtune.store.results`)
    optuna.db               Optuna's SQLite storage, study "mgtune" (written by Optuna)
    budget.jsonl            what a budgeted study has spent (`mgtune.store.budget`)
    report/                 the study's own report (`mgtune report`)
    trial_<id>/             one per trial, written by Ray Tune and the trainable:
        params.json         the sampled parameters (Ray)
        progress.csv        one row per epoch (Ray); result.json the same as JSON lines
        events.out.tfevents.*   TensorBoard scalars and HParams (the trainable)
        checkpoint_*/state.pt   the training loop's resume state (the trainable)
        weights.pt          the best weights (config too), once the trial ended by itself (the trainable)
        failed.txt          an error the trial raised itself (not retried)
        error.txt           Ray's record of a failed trial
    tuner.pkl, experiment_state-*.json, searcher-state-*.pkl, ...   Ray Tune's own state
    confirm/                a confirmation (``mgtune confirm``), itself a Ray experiment:
        confirm.json        settings, chosen configurations, training settings, environment
        results.csv         one row per configuration x seed x arm (`mgtune.store.confirmation`)
        trial_<id>/         one per run, as above (weights.pt included), plus run.json (peak memory,
                            device)
    robustness/             a robustness pass (``mgtune robustness``):
        robustness.json     settings; results.csv: one row per run x perturbation
        curves.png, robustness.md    its report; weights/: runs trained again for it

A **suite** (``mgtune run --model a,b --mg both``), ``<storage>/<name>/``: ``suite.json`` (`SuiteRecord`),
one study folder per model and MG setting (``freedom``, ``freedom-nomg``), ``logs/<study>.log`` and
``logs/<study>-confirm.log`` (each child's output), ``cards/`` (reproduction cards) and ``report/``.

A **training run** (``mgtune train``), ``--out``: ``metrics.json`` and ``checkpoint.pt``.
"""

from __future__ import annotations

__all__ = [
    "STUDY_FILE", "RESULTS_FILE", "OPTUNA_FILE", "OPTUNA_STUDY", "BUDGET_FILE", "REPORT_DIR", "PARAMS_FILE",
    "PROGRESS_FILE", "ERROR_FILE", "FAILED_FILE", "STATE_FILE", "CONFIRM_DIR", "CONFIRM_FILE", "RUN_FILE",
    "WEIGHTS_FILE", "ROBUST_DIR", "ROBUST_FILE", "ROBUST_WEIGHTS_DIR", "CURVES_FILE", "ROBUST_PAGE",
    "SUITE_FILE", "LOG_DIR", "CARD_DIR", "METRICS_FILE", "CHECKPOINT_FILE", "TRIAL_PREFIX", "trial_folder",
    "trial_id_of",
]

STUDY_FILE = "study.json"
RESULTS_FILE = "results.csv"  # a study's trials; in confirm/ its runs; in robustness/ its evaluations
OPTUNA_FILE = "optuna.db"
OPTUNA_STUDY = "mgtune"  # the study's name inside optuna.db
BUDGET_FILE = "budget.jsonl"
"""One JSON line. Not ``.json``: Ray copies a study folder's ``*.json`` and ``*.pkl`` files aside when a
study resumes and copies them back over the folder as it goes, which would turn the spending back."""
REPORT_DIR = "report"

TRIAL_PREFIX = "trial_"
PARAMS_FILE = "params.json"
PROGRESS_FILE = "progress.csv"
ERROR_FILE = "error.txt"
FAILED_FILE = "failed.txt"
STATE_FILE = "state.pt"

CONFIRM_DIR = "confirm"
CONFIRM_FILE = "confirm.json"
RUN_FILE = "run.json"
WEIGHTS_FILE = "weights.pt"

ROBUST_DIR = "robustness"
ROBUST_FILE = "robustness.json"
ROBUST_WEIGHTS_DIR = "weights"
CURVES_FILE = "curves.png"
ROBUST_PAGE = "robustness.md"

SUITE_FILE = "suite.json"
LOG_DIR = "logs"
CARD_DIR = "cards"

METRICS_FILE = "metrics.json"
CHECKPOINT_FILE = "checkpoint.pt"


def trial_folder(trial_id: str) -> str:
    """The folder name of trial ``trial_id`` inside a study or confirmation folder."""
    return f"{TRIAL_PREFIX}{trial_id}"


def trial_id_of(folder_name: str) -> str:
    """The trial id in a trial folder's name (the inverse of `trial_folder`)."""
    return folder_name.removeprefix(TRIAL_PREFIX)
