"""A study: Ray Tune trials of the shared training function, OptunaSearch (TPE) and ASHA.

Folder layout (``<storage>/<name>/``, shared with `mgtune.report`): ``study.json``, ``optuna.db``
(the Optuna study ``mgtune``), ``results.csv`` and one ``trial_<id>/`` per trial with Ray's
``params.json``/``progress.csv``/``result.json``, checkpoints and the trial's TensorBoard events.
The folder's ``study.json`` is a `StudyMeta` (`mgtune.study.record`); the Ray session is
`mgtune.study.session`'s.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import stat
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mgtune import __version__
from mgtune.checks import MAX_SEED, check_float, check_int, check_name
from mgtune.errors import ConfigError
from mgtune.models import get_model
from mgtune.study.budget import Budget, Spent, format_duration, read_spent
from mgtune.study.record import RESULTS_FILE, STUDY_FILE, StudyMeta, now, select_best
from mgtune.study.results import TrialRecord, write_results
from mgtune.study.search_space import SearchSpace, find_search_space, load_search_space, space_from_dict
from mgtune.study.session import MAX_FAILURES, make_trainable, resources, sigterm_as_sigint, start_ray
from mgtune.study.session import log as _log
from mgtune.study.trainable import score_key, trial_dirname
from mgtune.training import CUTOFFS, TrainConfig, load_data

__all__ = ["StudySettings", "StudyOutcome", "run_study", "default_name", "study_folder", "check_trusted", "STUDY_FILE",
           "RESULTS_FILE"]

OPTUNA_FILE = "optuna.db"
OPTUNA_STUDY = "mgtune"
DEFAULT_GRACE_EPOCHS = 10
DEFAULT_TRIALS = 32
BUDGETED_TRIALS = 100_000  # a budgeted study without --trials: the budget, not a count, ends it
RESUME_KEYS = ("trials", "seed", "search_space", "data_dir", "cpus_per_trial", "gpus_per_trial", "checkpoint_every",
               "topk")  # what --resume cannot default


@dataclass(frozen=True)
class StudySettings:
    """The options of ``mgtune run`` (defaults as in the CLI)."""

    model: str | None = None  # may be None only with resume (then read from study.json)
    dataset: str | None = None
    data_dir: str = "datasets"
    trials: int | None = None  # None: DEFAULT_TRIALS, or BUDGETED_TRIALS when a budget is set
    max_epochs: int = 100
    grace_epochs: int | None = None  # None: DEFAULT_GRACE_EPOCHS, or max_epochs if that is fewer
    reduction_factor: int = 3
    metric: str = "recall@20"
    cpus_per_trial: float = 1.0
    gpus_per_trial: float | None = None  # None: DEFAULT_GPU_FRACTION if the cluster has GPUs, else 0
    concurrency: int | None = None  # None: as many trials as the cluster's resources hold
    address: str | None = None  # None: $RAY_ADDRESS, else a local Ray started for the study
    storage: str = "runs"
    name: str | None = None
    mg: bool = True
    seed: int = 0
    search_space: str | None = None
    resume: bool = False
    checkpoint_every: int = 5
    budget_epochs: int | None = None  # at most this many epochs over all trials (`mgtune.study.budget`)
    time_budget_s: float | None = None  # at most this much wall time, across --resume


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


def default_name(model: str, dataset: str, mg: bool) -> str:
    return f"{model}-{dataset}{'' if mg else '-nomg'}-{time.strftime('%Y%m%d-%H%M%S')}"


def run_study(s: StudySettings, log: Callable[[str], None] | None = None) -> StudyOutcome:
    """Run (or with ``s.resume`` continue) a study; `ConfigError` for any bad setting."""
    log = log or _log
    if s.resume:
        study_dir, meta, space = _load_study(s)
    else:
        study_dir, meta, space = _new_study(s)
    # fail on a bad dataset here, once, not in every trial; trials get this copy from the object store
    data = load_data(meta.train_config())

    import ray

    # stdout carries only the CLI's result: whatever Ray prints (worker logs it forwards, a raylet's
    # dying words) goes to stderr, from start to shutdown
    with contextlib.redirect_stdout(sys.stderr), sigterm_as_sigint():
        ray_started = time.perf_counter()
        start_ray(s.address, log)
        ray_seconds = time.perf_counter() - ray_started
        try:
            gpus, concurrency = resources(s if not s.resume else _with_meta_resources(s, meta), meta.trials, log)
            meta = meta.replace(gpus_per_trial=gpus, max_concurrent_trials=concurrency,
                                ray_address=ray.get_runtime_context().gcs_address)
            study_dir.mkdir(parents=True, exist_ok=True)  # only now: a setting refused above leaves no folder
            meta.write(study_dir)
            from mgtune.study._ray_parts import BudgetStopper, NoTrialFits, ProgressLines

            setup = meta.trial_setup(space, study_dir)
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
                tuner = tune.Tuner.restore(str(study_dir), trainable=trainable, resume_unfinished=True,
                                           resume_errored=True, restart_errored=False)
            else:
                log(f"study {study_dir}: {meta.trials} trials of {meta.model} on {meta.dataset} "
                    f"({'MG' if meta.mg else 'no MG'}), {concurrency} at a time, {setup.cpus_per_trial:g} CPU "
                    f"+ {gpus:g} GPU each; searching {', '.join(space.names) or 'nothing'}")
                if budget:
                    log(f"budget: {budget.describe(read_spent(study_dir)).removeprefix('budget ')}")
                tuner = _new_tuner(meta, space, trainable, study_dir, concurrency, [progress, no_fit], stopper)
            grid = _fit(tuner, study_dir)
        finally:
            ray_stopping = time.perf_counter()
            ray.shutdown()  # only disconnects from an attached cluster; stops a local one
            ray_seconds += time.perf_counter() - ray_stopping

    # Ray's trial statuses after a Ctrl-C do not say which trials were cut short; the Optuna study does:
    # every trial that ended was told to it (COMPLETE, PRUNED or FAIL), an interrupted one is still RUNNING
    spent = read_spent(study_dir)  # what the budget's tracker recorded, read once
    ended_by = meta.budget().ended_by(spent)
    finished = ended_by is not None or _ended_trials(study_dir) >= meta.trials
    if not finished:
        log(f"study interrupted; continue it with: mgtune run --resume --name {study_dir.name} "
            f"--storage {study_dir.parent}")
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
    return StudyOutcome(study_dir, True, rows, best, startup, ended_by, ray_seconds)


# ---------------------------------------------------------------- study folder
def _new_study(s: StudySettings) -> tuple[Path, StudyMeta, SearchSpace]:
    if not s.model or not s.dataset:
        raise ConfigError("--model and --dataset are required (unless --resume)")
    check_name("dataset name", s.dataset)  # before the study's folder name is made from it
    cls = get_model(s.model)
    model = s.model.lower()
    _check_numbers(s)
    TrainConfig(model=model, dataset=s.dataset, valid_metric=s.metric)  # validates the metric name
    path = Path(s.search_space) if s.search_space else find_search_space(model)
    space = load_search_space(path, model)
    mg = s.mg and cls.trainable
    if not mg:
        space = space.without_mg()
    study_dir = study_folder(s.storage, s.name if s.name is not None else default_name(model, s.dataset, mg))
    if (study_dir / STUDY_FILE).exists():
        raise ConfigError(f"{study_dir}: a study of this name exists; continue it with --resume or pick another --name")
    meta = StudyMeta(
        model=model, dataset=s.dataset, mg=mg, metric=s.metric, mode="max",
        max_epochs=s.max_epochs, grace_epochs=_grace_epochs(s), reduction_factor=s.reduction_factor,
        trials=_trials(s), seed=s.seed, search_space=space.as_dict(), search_space_file=space.source,
        created=now(), finished=None, mgtune_version=__version__,
        # beyond the shared contract: what --resume needs to rebuild the trainable
        data_dir=str(Path(s.data_dir).expanduser().resolve()), cpus_per_trial=s.cpus_per_trial,
        gpus_per_trial=s.gpus_per_trial or 0.0,  # set from the cluster before the file is written
        checkpoint_every=s.checkpoint_every, topk=CUTOFFS,
        budget_epochs=s.budget_epochs, time_budget_s=s.time_budget_s,
    )
    return study_dir, meta, space


def _load_study(s: StudySettings) -> tuple[Path, StudyMeta, SearchSpace]:
    if not s.name:
        raise ConfigError("--resume needs --name NAME (the study folder under --storage)")
    study_dir = study_folder(s.storage, s.name)
    meta_file = study_dir / STUDY_FILE
    if not meta_file.is_file():
        raise ConfigError(f"{meta_file}: not found; nothing to resume")
    check_trusted(study_dir)  # before Ray unpickles anything in it
    meta = StudyMeta.read_file(meta_file).require(*RESUME_KEYS, path=meta_file)
    for key, given in (("model", s.model), ("dataset", s.dataset)):
        if given and given.lower() != str(getattr(meta, key)).lower():
            raise ConfigError(f"{meta_file}: the study is for {key} {getattr(meta, key)!r}, not {given!r}")
    for key, flag in (("budget_epochs", "--budget-epochs"), ("time_budget_s", "--time-budget")):
        given = getattr(s, key)
        if given is not None and given != getattr(meta, key):
            raise ConfigError(f"{meta_file}: the study's budget is {meta.budget().describe(Spent()) or 'none'}; "
                              f"{flag} cannot change it on --resume (start a new study to spend more)")
    space = space_from_dict(meta.model, meta.search_space, str(meta_file))
    return study_dir, meta, space


def study_folder(storage: str, name: str) -> Path:
    """``<storage>/<name>``, absolute; `ConfigError` unless ``name`` is one path component and ``storage``
    is (or can become) a folder this user can write. Checked before Ray starts."""
    if "://" in storage:
        raise ConfigError(
            f"--storage {storage}: URIs are not supported; pass a folder every node can read and write "
            "(an NFS mount, or a bucket mounted with gcsfuse / mountpoint-s3)"
        )
    seps = {os.sep, os.altsep or os.sep}
    if name in ("", ".", "..") or any(c in name for c in seps) or "\0" in name:
        raise ConfigError(f"--name {name!r}: a study name is one folder name under --storage "
                          "(not empty, no '/', not '.' or '..')")
    root = Path(storage).expanduser()
    if "\0" in storage:
        raise ConfigError(f"--storage {storage!r}: not a valid path")
    existing = root
    while not existing.exists() and not existing.is_symlink() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        what = "is not a folder" if existing == root else f"cannot be created: {existing} is not a folder"
        raise ConfigError(f"--storage {storage}: {what}")
    if not os.access(existing, os.W_OK | os.X_OK):
        what = "is not writable" if existing == root else f"cannot be created: {existing} is not writable"
        raise ConfigError(f"--storage {storage}: {what} by this user")
    return (root.resolve() / name)


def check_trusted(folder: Path) -> None:
    """`ConfigError` unless ``folder`` and everything in it is this user's and writable by no one else.

    Resuming unpickles Ray's state (``tuner.pkl``, ``experiment_state-*.json``, ``searcher-state-*.pkl``,
    trials' ``error.pkl``), which runs code. The trust boundary is other users: a file this user owns
    and only this user can write is trusted; anything another user could have written is refused.
    Group write is allowed only for the user's private group (what a umask of 002 gives).
    """
    uid = os.getuid()
    paths = [folder]
    for top, dirs, files in os.walk(folder, onerror=_raise):
        paths += [Path(top, n) for n in dirs + files]
    for path in paths:
        try:
            st = path.lstat()
        except OSError as exc:
            raise ConfigError(f"{path}: cannot be checked before resuming ({exc.strerror})") from None
        if stat.S_ISLNK(st.st_mode):
            raise ConfigError(f"{path}: refusing to resume: a symbolic link in the study folder")
        if st.st_uid != uid:
            raise ConfigError(f"{path}: refusing to resume: owned by uid {st.st_uid}, not by this user "
                              f"(uid {uid}); Ray would unpickle files from this folder")
        others = stat.S_IWOTH | (0 if _private_group(st.st_gid, uid) else stat.S_IWGRP)
        if st.st_mode & others:
            raise ConfigError(f"{path}: refusing to resume: writable by group or others "
                              f"(mode {stat.filemode(st.st_mode)}); Ray would unpickle files from this folder "
                              f"(if you trust it: chmod -R go-w {folder})")


def _private_group(gid: int, uid: int) -> bool:
    """Whether group ``gid`` is this user's own (a user private group, as a umask of 002 expects):
    named after the user, no other member, and no other user's primary group."""
    import grp
    import pwd

    try:
        group, user = grp.getgrgid(gid), pwd.getpwuid(uid)
    except KeyError:
        return False
    if group.gr_name != user.pw_name or set(group.gr_mem) - {user.pw_name}:
        return False
    return all(p.pw_gid != gid or p.pw_uid == uid for p in pwd.getpwall())


def _raise(exc: OSError) -> None:
    raise ConfigError(f"{exc.filename}: cannot be checked before resuming ({exc.strerror})")


def _grace_epochs(s: StudySettings) -> int:
    """The explicit ``--grace-epochs``, else 10 capped at ``--max-epochs`` (so a short study needs no flag)."""
    return s.grace_epochs if s.grace_epochs is not None else min(DEFAULT_GRACE_EPOCHS, s.max_epochs)


def _trials(s: StudySettings) -> int:
    if s.trials is not None:
        return s.trials
    return BUDGETED_TRIALS if s.budget_epochs is not None or s.time_budget_s is not None else DEFAULT_TRIALS


def _check_numbers(s: StudySettings) -> None:
    Budget(s.budget_epochs, s.time_budget_s)  # a one-line error for a bad budget
    checks = [
        (_trials(s) >= 1, f"--trials must be >= 1, got {s.trials}"),
        (s.max_epochs >= 1, f"--max-epochs must be >= 1, got {s.max_epochs}"),
        (1 <= _grace_epochs(s) <= s.max_epochs,
         f"--grace-epochs must be between 1 and --max-epochs ({s.max_epochs}), got {s.grace_epochs}"),
        (s.reduction_factor >= 2, f"--reduction-factor must be >= 2, got {s.reduction_factor}"),
        (s.cpus_per_trial > 0, f"--cpus-per-trial must be > 0, got {s.cpus_per_trial}"),
        (s.gpus_per_trial is None or s.gpus_per_trial >= 0, f"--gpus-per-trial must be >= 0, got {s.gpus_per_trial}"),
        (s.gpus_per_trial is None or s.gpus_per_trial <= 1 or float(s.gpus_per_trial).is_integer(),
         f"--gpus-per-trial above 1 must be a whole number, got {s.gpus_per_trial}"),
        (s.concurrency is None or s.concurrency >= 1, f"--concurrency must be >= 1, got {s.concurrency}"),
        (s.checkpoint_every >= 1, f"--checkpoint-every must be >= 1, got {s.checkpoint_every}"),
    ]
    for ok, msg in checks:
        if not ok:
            raise ConfigError(msg)
    # what the comparisons above let through: infinities, and seeds NumPy cannot take
    check_float("--cpus-per-trial", s.cpus_per_trial, low=0, low_open=True)
    if s.gpus_per_trial is not None:
        check_float("--gpus-per-trial", s.gpus_per_trial, low=0)
    check_int("--seed", s.seed, low=0, high=MAX_SEED)


def _with_meta_resources(s: StudySettings, meta: StudyMeta) -> StudySettings:
    return dataclasses.replace(s, cpus_per_trial=meta.cpus_per_trial, gpus_per_trial=meta.gpus_per_trial,
                               concurrency=meta.max_concurrent_trials)


def _fit(tuner: Any, study_dir: Path) -> Any:
    from mgtune.study._ray_parts import NoTrialFitsError

    try:
        return tuner.fit()
    except Exception as exc:
        cause: BaseException | None = exc
        while cause is not None and not isinstance(cause, NoTrialFitsError):
            cause = cause.__cause__ or cause.__context__
        if cause is None:
            raise
        raise ConfigError(f"{cause}; the study stopped: continue it on a cluster that has room with: mgtune run "
                          f"--resume --name {study_dir.name} --storage {study_dir.parent}") from None


def _new_tuner(meta: StudyMeta, space: SearchSpace, trainable: Any, study_dir: Path, concurrency: int,
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


def _ended_trials(study_dir: Path) -> int:
    import optuna

    storage = optuna.storages.RDBStorage(f"sqlite:///{study_dir / OPTUNA_FILE}")
    ended = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.FAIL)
    study = optuna.load_study(study_name=OPTUNA_STUDY, storage=storage)
    return len(study.get_trials(deepcopy=False, states=ended))


def _record(result: Any, study_dir: Path, budget_stopped: tuple[str, ...]) -> TrialRecord:
    """One trial as Ray kept it; ``budget_stopped``: the trials the budget cut short (`Spent.stopped`)."""
    trial_dir = Path(result.path)
    trial_id = trial_dir.name.removeprefix("trial_")
    progress = result.metrics_dataframe
    if progress is None and (trial_dir / "progress.csv").is_file():
        import pandas as pd

        progress = pd.read_csv(trial_dir / "progress.csv")
    params = result.config or {}
    if not params and (trial_dir / "params.json").is_file():
        params = json.loads((trial_dir / "params.json").read_text())
    return TrialRecord(trial_id, os.path.relpath(trial_dir, study_dir), params, progress, result.error,
                       trial_id in budget_stopped)


# ---------------------------------------------------------------- small helpers
