"""`mgtune confirm`: a study's best configurations re-trained over seeds, with MG and without.

A study's winner is one seed's number. Here each of the ``top`` best *completed* trials (by the
study's validation metric, the report's rule; test never selects) is trained again for every seed
``study seed + 0 .. N-1``, twice: MG as the trial configured it, and MG off (the same
configuration with ``mg.enabled = False``). Every run is a Ray trial of the study's own trainable
(`run_trial`, so the one training function) with the study's full ``max_epochs`` and the loop's own
early stopping; no search and no ASHA. The MG run of seed ``study seed + 0`` repeats the study's
trial. Both arms of a seed share initialisation and batch order, so they are compared in pairs
(`mgtune.study.stats`).

Folder ``<study>/confirm/`` (a Ray experiment; its record is `mgtune.store.confirmation`):
``confirm.json``, one ``trial_<id>/`` per run, and ``results.csv``, rewritten after every
invocation. A run is done once it completed or diverged; running the command again starts only the runs not done
(errored or interrupted ones start over); ``--resume`` first continues interrupted runs from their
checkpoints. The reproduction card is `mgtune.report.card`'s, written by the CLI afterwards.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shlex
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mgtune.data import Dataset
from mgtune.errors import ConfigError, DataFormatError
from mgtune.files import check_room, stops_on_a_full_disk, write_json
from mgtune.store import (
    CONFIRM_DIR,
    CONFIRM_FILE,
    RESULTS_FILE,
    RUN_FILE,
    WEIGHTS_FILE,
    StudyRecord,
    check_ray_state,
    check_trusted,
    now,
    trial_folder,
)
from mgtune.store.confirmation import (
    ARMS,
    SEED_RULE,
    Candidate,
    Confirmation,
    RunKey,
    collect_rows,
    load_confirmation,
    pending_runs,
    read_study,
    seeds_for,
    select_candidates,
    unrecorded_runs,
    write_confirm_results,
)
from mgtune.store.json_files import read_json
from mgtune.study.search_space import SearchSpace, recorded_space
from mgtune.study.session import MAX_FAILURES, make_trainable, resources, sigterm_as_sigint, start_ray
from mgtune.study.session import log as _log
from mgtune.study.settings import ConfirmSettings
from mgtune.study.trainable import TrialSetup, study_data, train_trial, trial_dirname
from mgtune.training import device_name, environment, peak_memory_mb, resolve_device, save_checkpoint

__all__ = ["ConfirmSettings", "ConfirmOutcome", "run_confirm", "run_confirm_trial"]


# ---------------------------------------------------------------- one run (on a Ray worker)
def run_confirm_trial(config: dict[str, Any], setup: TrialSetup, data: Dataset) -> None:
    """The Ray trainable of a confirmation: `train_trial` with this run's seed and MG switch.

    ``config["run"]`` holds ``source_trial``, ``seed``, ``arm`` and the configuration's ``params``.
    Afterwards the run's peak memory and device go to ``run.json`` in the trial folder; its best weights
    are in ``weights.pt`` there, which every trial that ends by itself writes (`mgtune.study.trainable`).
    """
    from ray import tune

    run = config["run"]
    arm_setup = dataclasses.replace(setup, seed=int(run["seed"]), mg=run["arm"] == "mg")
    result = train_trial(run["params"], arm_setup, data)
    device = resolve_device(arm_setup.train_config(run["params"]).device)
    trial_dir = Path(setup.study_dir) / trial_folder(tune.get_context().get_trial_id())  # where run_trial wrote
    write_json(trial_dir / RUN_FILE, {"peak_memory_mb": round(peak_memory_mb(device), 1),
                                       "device": device_name(device)})
    if not (trial_dir / WEIGHTS_FILE).is_file():  # the trainable writes it with the final epoch's report
        save_checkpoint(trial_dir / WEIGHTS_FILE, result.config, result.best_state, result.best_epoch)


# ---------------------------------------------------------------- running
@dataclass
class ConfirmOutcome:
    study_dir: Path
    finished: bool  # False when interrupted: run the command again (with --resume to continue runs)
    confirmation: Confirmation | None = None
    cards: list[Path] = dataclasses.field(default_factory=list)  # set by the CLI once it wrote the card

    def summary(self) -> dict[str, Any]:
        """What `mgtune confirm` prints: per configuration the verdict on the study's test metric."""
        conf = self.confirmation
        if conf is None:
            return {"study": str(self.study_dir), "finished": self.finished}
        metric = conf.metric
        configs = []
        for result in conf.results():
            test = result.tests[metric]
            configs.append({
                **result.candidate.as_dict(), "metric": f"test_{metric}",
                **{arm: result.arms[arm][metric].as_dict() for arm in ARMS},
                "difference": test.as_dict(), "verdict": test.verdict,
            })
        return {"study": str(self.study_dir), "confirm_dir": str(self.study_dir / CONFIRM_DIR),
                "seeds": conf.seeds, "configurations": configs, "cards": [str(p) for p in self.cards]}


def run_confirm(s: ConfirmSettings, log: Callable[[str], None] | None = None) -> ConfirmOutcome:
    """Confirm the study ``s.study_dir``; `ConfigError`/`DataFormatError` for bad input, before any run."""
    log = log or _log
    study_dir, meta = read_study(s.study_dir)
    space = recorded_space(meta, study_dir)
    if not meta.mg:
        raise ConfigError(f"{s.study_dir}: the study ran without MG (--no-mg or a model that is not trained), "
                          "so it has no MG configuration to confirm; confirm an MG study")
    candidates = select_candidates(study_dir, meta, space.names, s.top)
    if len(candidates) < s.top:
        log(f"--top {s.top}: the study has only {len(candidates)} completed trial(s); confirming those")
    seeds = seeds_for(meta.seed, s.seeds)
    wanted = [RunKey(c.trial_id, seed, arm) for c in candidates for seed in seeds for arm in ARMS]
    confirm_dir = study_dir / CONFIRM_DIR
    info_file = confirm_dir / CONFIRM_FILE
    try:
        old = read_json(info_file) if info_file.exists() else {}
    except DataFormatError:
        old = {}  # rewritten below
    info: dict[str, Any] = {
        "study": study_dir.name, "metric": meta.metric, "seeds": seeds, "seed_rule": SEED_RULE, "top": s.top,
        "arms": {"mg": "MG as configured", "nomg": "the same configuration with mg.enabled = False"},
        "max_epochs": meta.max_epochs, "candidates": [c.as_dict() for c in candidates],
        "cpus_per_trial": s.cpus_per_trial, "created": old.get("created") or now(), "finished": None,
        # what the reproduction card needs from the training stack, recorded here so that it is written without it
        "train_configs": _train_configs(meta, space, confirm_dir, candidates), "environment": environment(),
    }
    interrupted = False
    pending = pending_runs(confirm_dir, wanted, meta)
    if pending and s.resume and confirm_dir.is_dir():
        check_trusted(confirm_dir)  # before Ray unpickles its saved state from it
        check_ray_state(confirm_dir, _NOT_RESUMED)
    if pending:
        check_room(confirm_dir, "nothing was started")
        data = study_data(meta)  # a bad dataset fails here, once
        interrupted = _run_ray(s, meta, space, confirm_dir, info, pending, data, wanted, log)
    rows = collect_rows(confirm_dir, wanted, meta, space.names)
    confirm_dir.mkdir(parents=True, exist_ok=True)
    write_confirm_results(confirm_dir / RESULTS_FILE, rows, space.names, meta.topk)
    if interrupted:
        log(f"confirmation interrupted; continue it with: {_resume_command(s, study_dir)}")
        return ConfirmOutcome(study_dir, False)
    info.setdefault("gpus_per_trial", old.get("gpus_per_trial"))  # set by _run_ray when something ran
    write_json(info_file, {**info, "finished": now()})
    failed = [r for r in rows if r["status"] != "completed"]
    if failed:
        log(f"{len(failed)} run(s) did not complete ({', '.join(sorted({r['status'] for r in failed}))}); "
            "they are left out of the statistics (errored runs start again when the command is rerun)")
    conf = load_confirmation(study_dir)
    assert conf is not None
    outcome = ConfirmOutcome(study_dir, True, conf)
    for result in conf.results():
        test = result.tests[conf.metric]
        log(f"configuration {result.candidate.rank} (trial {result.candidate.trial_id}): test {conf.metric} "
            f"MG - no MG = {test.mean:+.4f}, 95% CI [{test.ci_low:+.4f}, {test.ci_high:+.4f}], "
            f"p = {test.p_value:.3g} over {test.n} seeds: {test.verdict}")
    return outcome


_NOT_RESUMED = "run it again without --resume: its finished runs are kept and the others start again"


def _resume_command(s: ConfirmSettings, study_dir: Path) -> str:
    address = f" --address {shlex.quote(s.address)}" if s.address else ""
    return f"mgtune confirm {shlex.quote(str(study_dir))} --seeds {s.seeds} --top {s.top}{address} --resume"


def _train_configs(meta: StudyRecord, space: SearchSpace, confirm_dir: Path,
                   candidates: Sequence[Candidate]) -> dict[str, dict[str, Any]]:
    """Each candidate's full training settings (its MG arm; the seed is each run's own)."""
    setup = TrialSetup.from_record(meta, space, confirm_dir)
    configs = {}
    for c in candidates:
        config = setup.train_config(c.params).as_dict()
        config.pop("seed")
        configs[c.trial_id] = config
    return configs


def _run_ray(s: ConfirmSettings, meta: StudyRecord, space: SearchSpace, confirm_dir: Path, info: dict[str, Any],
             pending: list[RunKey], data: Dataset, wanted: Sequence[RunKey], log: Callable[[str], None]) -> bool:
    """Run the ``pending`` runs as Ray trials; True when interrupted."""
    import ray
    from ray import tune

    from mgtune.study._ray_parts import restore_tuner

    start_ray(s.address, log, trials=(s.cpus_per_trial, len(pending)))
    try:
        gpus, concurrency = resources(s.cpus_per_trial, s.gpus_per_trial, None, len(pending), log)
        info["gpus_per_trial"] = gpus
        confirm_dir.mkdir(parents=True, exist_ok=True)
        write_json(confirm_dir / CONFIRM_FILE, info)
        setup = dataclasses.replace(TrialSetup.from_record(meta, space, confirm_dir), cpus_per_trial=s.cpus_per_trial,
                                    gpus_per_trial=gpus)
        trainable = make_trainable(setup, data, run_confirm_trial)
        # stdout carries only the CLI's result; SIGTERM stops the runs as Ctrl-C does (the resume line, exit 130)
        # not --resume: Ray's state may be cut short by the full disk; a new run keeps every finished run
        again = _resume_command(s, confirm_dir.parent).removesuffix(" --resume")
        full = f"the confirmation stopped: make room, then run it again (its finished runs are kept): {again}"
        with contextlib.redirect_stdout(sys.stderr), sigterm_as_sigint(), stops_on_a_full_disk(confirm_dir, full):
            if s.resume and tune.Tuner.can_restore(str(confirm_dir)):
                log(f"resuming the interrupted runs in {confirm_dir}")
                restore_tuner(confirm_dir, trainable, _NOT_RESUMED, resume_unfinished=True, resume_errored=False,
                              restart_errored=False).fit()
                if unrecorded_runs(confirm_dir, wanted, meta):
                    check_room(confirm_dir, full)  # stopped by `RoomGuard`?
                    return True
                pending = pending_runs(confirm_dir, wanted, meta)
            if not pending:
                return False
            log(f"confirming {len(info['candidates'])} configuration(s) of {meta.model} on {meta.dataset}: "
                f"{len(pending)} run(s) (seeds {info['seeds']}, MG and no MG), {concurrency} at a time, "
                f"{s.cpus_per_trial:g} CPU + {gpus:g} GPU each, up to {meta.max_epochs} epochs")
            _tuner(pending, info, trainable, confirm_dir, concurrency, meta).fit()
            if unrecorded_runs(confirm_dir, pending, meta):
                check_room(confirm_dir, full)
                return True
            return False
    finally:
        ray.shutdown()  # only disconnects from an attached cluster; stops a local one


def _tuner(pending: list[RunKey], info: dict[str, Any], trainable: Any, confirm_dir: Path, concurrency: int,
           meta: StudyRecord) -> Any:
    from ray import tune
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

    from mgtune.study._ray_parts import ProgressLines, RoomGuard

    params = {c["source_trial"]: c["params"] for c in info["candidates"]}
    runs = [{"source_trial": k.source_trial, "seed": k.seed, "arm": k.arm, "params": params[k.source_trial]}
            for k in pending]
    return tune.Tuner(
        trainable,
        param_space={"run": tune.grid_search(runs)},
        tune_config=tune.TuneConfig(
            num_samples=1, max_concurrent_trials=concurrency, trial_dirname_creator=trial_dirname,
            reuse_actors=False,  # a fresh process per run: its resident set is that run's peak memory
        ),
        run_config=tune.RunConfig(
            name=confirm_dir.name, storage_path=str(confirm_dir.parent), verbose=0,
            callbacks=[JsonLoggerCallback(), CSVLoggerCallback(), ProgressLines(meta.metric, len(runs)),
                       RoomGuard(str(confirm_dir))],
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            # a run whose node is lost is retried from its checkpoint; a failed run is recorded, the others go on
            failure_config=tune.FailureConfig(max_failures=MAX_FAILURES),
        ),
    )


