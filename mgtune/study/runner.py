"""A study: Ray Tune trials of the shared training function, OptunaSearch (TPE) and ASHA.

The study folder (``<storage>/<name>/``) is laid out as `mgtune.store.layout` describes; its records
are `mgtune.store`'s, the Ray session `mgtune.study.session`'s and the Tune hooks
`mgtune.study._ray_parts`'.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mgtune import __version__
from mgtune.errors import ConfigError, StorageError
from mgtune.files import check_room, claim_folder, refused_by_the_disk, stops_on_a_full_disk
from mgtune.models import get_model
from mgtune.models.model_files import module_path
from mgtune.store import (
    CUTOFFS,
    OPTUNA_FILE,
    OPTUNA_STUDY,
    PARAMS_FILE,
    PROGRESS_FILE,
    RESULTS_FILE,
    STUDY_FILE,
    Spent,
    StudyRecord,
    TrialRecord,
    check_ray_state,
    check_trusted,
    format_duration,
    now,
    read_spent,
    run_folder,
    select_best,
    trial_id_of,
    write_results,
)
from mgtune.store.csv_files import read_frame
from mgtune.store.json_files import read_json
from mgtune.store.optuna_db import ended_trials
from mgtune.store.results import score_key
from mgtune.study.search_space import SearchSpace, find_search_space, load_search_space, recorded_space
from mgtune.study.session import (
    MAX_FAILURES,
    lost_its_node,
    make_trainable,
    resources,
    resume_command,
    sigterm_as_sigint,
    start_ray,
)
from mgtune.study.session import log as _log
from mgtune.study.settings import StudySettings
from mgtune.study.trainable import TrialSetup, study_data, trial_dirname

__all__ = ["StudySettings", "StudyOutcome", "run_study", "default_name"]

RESUME_KEYS = ("trials", "seed", "search_space", "data_dir", "cpus_per_trial", "gpus_per_trial", "checkpoint_every",
               "topk")  # what --resume cannot default


@dataclass
class StudyOutcome:
    study_dir: Path
    finished: bool  # False when interrupted; resume with --resume
    rows: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] | None = None
    startup_seconds: dict[str, float] = field(default_factory=dict)
    """Per trial, in creation order: seconds from its creation to its first epoch (`benchmarks/study_speed.py`)."""
    ended_by: str | None = None  # "epochs" or "time" when the budget ended the study, else None
    ray_seconds: float = 0.0
    """Ray's own start and shutdown (a fixed cost per study; `benchmarks/study_vs_grid.py` reports it apart)."""
    metric: str = "recall@20"  # the study's validation metric

    def summary(self) -> dict[str, Any] | None:
        """What ``mgtune run`` prints: the best configuration (by validation; test is only reported), or None."""
        best = self.best
        if best is None:
            return None
        return {
            "study": str(self.study_dir), "best_trial": best["trial_id"], "trial_dir": best["trial_dir"],
            "params": {k.removeprefix("param_"): v for k, v in best.items() if k.startswith("param_")},
            f"valid_{self.metric}": best[f"valid_{self.metric}"], f"test_{self.metric}": best[f"test_{self.metric}"],
            **({"ended_by": f"budget ({self.ended_by})"} if self.ended_by else {}),
        }


def default_name(model: str, dataset: str, mg: bool) -> str:
    return f"{model}-{dataset}{'' if mg else '-nomg'}-{time.strftime('%Y%m%d-%H%M%S')}"


def run_study(s: StudySettings, log: Callable[[str], None] | None = None) -> StudyOutcome:
    """Run (or with ``s.resume`` continue) a study; `ConfigError` for any bad setting."""
    log = log or _log
    if s.named_a_suite:
        raise ConfigError("several models or --mg both make a suite: run it with mgtune.study.suite.run_suite")
    if s.resume:
        study_dir, meta, space = _load_study(s)
    else:
        study_dir, meta, space = _new_study(s)
    # fail on a bad dataset here, once, not in every trial; trials get this copy from the object store
    data = study_data(meta)

    import ray

    # stdout carries only the CLI's result: whatever Ray prints (worker logs it forwards, a raylet's
    # dying words) goes to stderr, from start to shutdown
    with contextlib.redirect_stdout(sys.stderr), sigterm_as_sigint(), contextlib.ExitStack() as held:
        cpus, gpus, want = ((meta.cpus_per_trial, meta.gpus_per_trial, meta.max_concurrent_trials) if s.resume
                            else (s.cpus_per_trial, s.gpus_per_trial, s.concurrency))
        resume_line = resume_command(study_dir, s.address)
        full = f"the study stopped: make room, then continue it with: {resume_line}"
        check_room(study_dir, "nothing was started")
        # held to the end: one run per folder; taken before Ray starts, so a second run is refused at once
        held.enter_context(claim_folder(study_dir, None if s.resume else STUDY_FILE, "study"))
        ray_started = time.perf_counter()
        start_ray(s.address, log, s.trial_niceness, (cpus, min(meta.trials, want or meta.trials)))
        ray_seconds = time.perf_counter() - ray_started
        try:
            gpus, concurrency = resources(cpus, gpus, want, meta.trials, log)
            meta = meta.replace(gpus_per_trial=gpus, max_concurrent_trials=concurrency,
                                ray_address=ray.get_runtime_context().gcs_address)
            held.enter_context(stops_on_a_full_disk(study_dir, full))
            meta.write(study_dir)
            from mgtune.study._ray_parts import BudgetStopper, NoTrialFits, ProgressLines, RoomGuard, restore_tuner

            setup = TrialSetup.from_record(meta, space, study_dir)
            trainable = make_trainable(setup, data)
            budget = meta.budget()
            stopper = BudgetStopper(budget, str(study_dir)) if budget else None
            progress = ProgressLines(meta.metric, meta.trials, stopper)  # a resumed study prints with its saved copy
            no_fit = NoTrialFits(setup.cpus_per_trial, setup.gpus_per_trial)  # a resumed study: its saved copy
            if s.resume:
                from ray import tune

                if not tune.Tuner.can_restore(str(study_dir)):
                    raise ConfigError(f"{study_dir}: no Ray experiment state to resume (the study never started "
                                      "its trials); start it again under a new --name")
                log(f"resuming study {study_dir}")
                # resume_errored: a trial that lost its node more often than FailureConfig retries continues
                # from its checkpoint; one that failed by itself fails again at once (see make_trainable)
                tuner = restore_tuner(study_dir, trainable, "the study cannot be resumed; its trials and results "
                                      "are kept (a new --name searches on)", resume_unfinished=True,
                                      resume_errored=True, restart_errored=False)
            else:
                log(f"study {study_dir}: {meta.trials} trials of {meta.model} on {meta.dataset} "
                    f"({'MG' if meta.mg else 'no MG'}), {concurrency} at a time, {setup.cpus_per_trial:g} CPU "
                    f"+ {gpus:g} GPU each; searching {', '.join(space.names) or 'nothing'}")
                if budget:
                    log(f"budget: {budget.describe(read_spent(study_dir)).removeprefix('budget ')}")
                tuner = _new_tuner(meta, space, trainable, study_dir, concurrency,
                                   [progress, no_fit, RoomGuard(str(study_dir))], stopper)
            grid = _fit(tuner, resume_line)
        finally:
            ray_stopping = time.perf_counter()
            ray.shutdown()  # only disconnects from an attached cluster; stops a local one
            ray_seconds += time.perf_counter() - ray_stopping

    refused = [trial_id_of(Path(grid[i].path).name) for i in range(len(grid))
               if grid[i].error is not None and refused_by_the_disk(grid[i].error)]
    if refused:  # not the trials' fault, nor a lost node: they continue from their checkpoints
        raise StorageError(f"{study_dir}: cannot write: the disk refused the files of trial(s) {', '.join(refused)} "
                           f"(full, over quota or read-only); {full}")
    # Ray's trial statuses after a Ctrl-C do not say which trials were cut short; the Optuna study does:
    # every trial that ended was told to it (COMPLETE, PRUNED or FAIL); one that was interrupted, or that
    # lost its node on every try, is still RUNNING
    spent = read_spent(study_dir)  # what the budget's tracker recorded, read once
    ended_by = meta.budget().ended_by(spent)
    ended = ended_trials(study_dir)
    finished = ended_by is not None or ended >= meta.trials
    if not finished:  # stopped by `RoomGuard`, or by Ctrl-C on a disk as full
        check_room(study_dir, full)
    lost = [] if finished else _lost_trials(grid, study_dir)
    if lost and ended + len(lost) >= meta.trials:  # nothing else was left: the lost trials stopped the study
        one = len(lost) == 1
        raise ConfigError(f"{'trial' if one else 'trials'} {', '.join(lost)} lost {'its' if one else 'their'} Ray "
                          f"node (or worker process) on each of {MAX_FAILURES + 1} tries; the study stopped: "
                          f"continue it from the last checkpoints with: {resume_command(study_dir, s.address)}")
    if not finished:
        log(f"study interrupted; continue it with: {resume_command(study_dir, s.address)}")
        return StudyOutcome(study_dir, False)
    records = [_record(grid[i], study_dir, spent.stopped) for i in range(len(grid))]  # a ResultGrid indexes
    rows = write_results(study_dir / RESULTS_FILE, records, space.names, meta.topk)
    meta = meta.replace(finished=now(), ended_by=ended_by or "trials")
    meta.write(study_dir)
    if ended_by is not None:
        log(f"the budget ended the study: {spent.epochs} epochs, {format_duration(spent.seconds)} spent "
            f"({meta.budget().describe(spent)})")
    if progress.startup_seconds:
        median = statistics.median(progress.startup_seconds.values())
        log(f"trial start-up (created -> first epoch): median {median:.1f}s")
    startup = {t: progress.startup_seconds[t] for t in progress.created if t in progress.startup_seconds}
    best = select_best(rows, meta.metric, budget_ended=ended_by is not None)
    log(f"results: {study_dir / RESULTS_FILE}")
    if best is None:
        log("no trial completed (all stopped early or failed): no best configuration")
    return StudyOutcome(study_dir, True, rows, best, startup, ended_by, ray_seconds, meta.metric)


# ---------------------------------------------------------------- study folder
def _new_study(s: StudySettings) -> tuple[Path, StudyRecord, SearchSpace]:
    assert s.model is not None and s.dataset is not None  # StudySettings requires them unless resuming
    model = s.model.lower()
    path = Path(s.search_space) if s.search_space else find_search_space(model)
    space = load_search_space(path, model)
    mg = s.mg != "off" and get_model(model).trainable
    if not mg:
        space = space.without_mg()
    study_dir = run_folder(s.storage, s.name if s.name is not None else default_name(model, s.dataset, mg))
    if (study_dir / STUDY_FILE).exists():
        raise ConfigError(f"{study_dir}: a study of this name exists; continue it with --resume or pick another --name")
    meta = StudyRecord(
        model=model, dataset=s.dataset, mg=mg, metric=s.metric, mode="max",
        max_epochs=s.max_epochs, grace_epochs=s.grace, reduction_factor=s.reduction_factor,
        trials=s.total_trials, seed=s.seed, search_space=space.as_dict(), search_space_file=space.source,
        created=now(), finished=None, mgtune_version=__version__,
        # beyond the shared contract: what --resume needs to rebuild the trainable
        data_dir=str(Path(s.data_dir).expanduser().resolve()), cpus_per_trial=s.cpus_per_trial,
        gpus_per_trial=s.gpus_per_trial or 0.0,  # set from the cluster before the file is written
        checkpoint_every=s.checkpoint_every, topk=CUTOFFS,
        budget_epochs=s.budget_epochs, time_budget_s=s.time_budget_s,
        extra={"model_module": module_path(s.model_module)} if s.model_module else {},
    )
    return study_dir, meta, space


def _load_study(s: StudySettings) -> tuple[Path, StudyRecord, SearchSpace]:
    if not s.name:
        raise ConfigError("--resume needs --name NAME (the study folder under --storage)")
    study_dir = run_folder(s.storage, s.name)
    meta_file = study_dir / STUDY_FILE
    if not meta_file.is_file():
        raise ConfigError(f"{meta_file}: not found; nothing to resume")
    check_trusted(study_dir)  # before Ray unpickles anything in it
    check_ray_state(study_dir, "the study cannot be resumed; its trials and results are kept (a new --name "
                               "searches on)")
    meta = StudyRecord.read_file(meta_file).require(*RESUME_KEYS, path=meta_file)
    for key, given in (("model", s.model), ("dataset", s.dataset)):
        if given and given.lower() != str(getattr(meta, key)).lower():
            raise ConfigError(f"{meta_file}: the study is for {key} {getattr(meta, key)!r}, not {given!r}")
    for key, flag in (("budget_epochs", "--budget-epochs"), ("time_budget_s", "--time-budget")):
        given = getattr(s, key)
        if given is not None and given != getattr(meta, key):
            raise ConfigError(f"{meta_file}: the study's budget is {meta.budget().describe(Spent()) or 'none'}; "
                              f"{flag} cannot change it on --resume (start a new study to spend more)")
    return study_dir, meta, recorded_space(meta, study_dir)


def _lost_trials(grid: Any, study_dir: Path) -> list[str]:
    """Ids of the trials Ray ended in an error that was not their own (`session.lost_its_node`)."""
    ids = [trial_id_of(Path(grid[i].path).name) for i in range(len(grid)) if grid[i].error is not None]
    return [t for t in ids if lost_its_node(study_dir, t)]


def _fit(tuner: Any, resume_command: str) -> Any:
    from mgtune.study._ray_parts import NoTrialFitsError

    try:
        return tuner.fit()
    except Exception as exc:
        cause: BaseException | None = exc
        while cause is not None and not isinstance(cause, NoTrialFitsError):
            cause = cause.__cause__ or cause.__context__
        if cause is None:
            raise
        raise ConfigError(f"{cause}; the study stopped: continue it on a cluster that has room with: "
                          f"{resume_command}") from None


def _new_tuner(meta: StudyRecord, space: SearchSpace, trainable: Any, study_dir: Path, concurrency: int,
               callbacks: list[Any], stopper: Any = None) -> Any:
    import optuna
    from ray import tune
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

    from mgtune.study._ray_parts import PrunedAwareOptunaSearch, StartsRunFullASHA

    score = score_key(meta.metric)
    starts = [dict(point) for point in space.start]
    search = PrunedAwareOptunaSearch(
        space=space.define_by_run(), metric=score, mode="max",
        # enqueued in the Optuna study when it is set up, so they are its first trials, values exact
        points_to_evaluate=starts or None,
        sampler=optuna.samplers.TPESampler(seed=meta.seed), study_name=OPTUNA_STUDY,
        storage=optuna.storages.RDBStorage(f"sqlite:///{study_dir / OPTUNA_FILE}"), study_dir=str(study_dir),
        budget=meta.budget() or None,
    )
    asha = StartsRunFullASHA(time_attr="training_iteration", metric=score, mode="max", max_t=meta.max_epochs,
                             grace_period=meta.grace_epochs, reduction_factor=meta.reduction_factor,
                             starts=starts)
    return tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            search_alg=search, scheduler=asha, num_samples=meta.trials, max_concurrent_trials=concurrency,
            trial_dirname_creator=trial_dirname, reuse_actors=True,  # skips worker start-up between trials
        ),
        run_config=tune.RunConfig(
            name=study_dir.name, storage_path=str(study_dir.parent), verbose=0, stop=stopper,
            callbacks=[JsonLoggerCallback(), CSVLoggerCallback(), *callbacks],
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1, checkpoint_score_attribute=score,
                                                    checkpoint_score_order="max"),  # the best + the latest
            # a trial whose node is lost is retried from its checkpoint (another node, if any); one that
            # fails by itself is recorded (see _fails_once), and the study goes on
            failure_config=tune.FailureConfig(max_failures=MAX_FAILURES),
        ),
    )


def _record(result: Any, study_dir: Path, budget_stopped: tuple[str, ...]) -> TrialRecord:
    """One trial as Ray kept it; ``budget_stopped``: the trials the budget cut short (`Spent.stopped`)."""
    trial_dir = Path(result.path)
    trial_id = trial_id_of(trial_dir.name)
    progress = result.metrics_dataframe
    if progress is None and (trial_dir / PROGRESS_FILE).is_file():
        progress = read_frame(trial_dir / PROGRESS_FILE)
    params = result.config or {}
    if not params and (trial_dir / PARAMS_FILE).is_file():
        params = read_json(trial_dir / PARAMS_FILE)
    return TrialRecord(trial_id, os.path.relpath(trial_dir, study_dir), params, progress, result.error,
                       trial_id in budget_stopped)
