"""`mgtune confirm`: a study's best configurations re-trained over seeds, with MG and without.

A study's winner is one seed's number. Here each of the ``top`` best *completed* trials (by the
study's validation metric, the report's rule; test never selects) is trained again for every seed
``study seed + 0 .. N-1``, twice: MG as the trial configured it, and MG off (the same
configuration with ``mg.enabled = False``). Every run is a Ray trial of the study's own trainable
(`run_trial`, so the one training function) with the study's full ``max_epochs`` and the loop's own
early stopping; no search and no ASHA. The MG run of seed ``study seed + 0`` repeats the study's
trial. Both arms of a seed share initialisation and batch order, so they are compared in pairs
(`mgtune.study.stats`).

Folder ``<study>/confirm/`` (a Ray experiment): ``confirm.json`` (settings and chosen
configurations), one ``trial_<id>/`` per run (Ray's ``params.json`` and ``progress.csv``,
checkpoints, TensorBoard events, and ``run.json`` with the run's peak memory and device), and
``results.csv``: one row per (configuration, seed, arm), rewritten after every invocation. A run is
done once it completed or diverged; running the command again starts only the runs not done
(errored or interrupted ones start over); ``--resume`` first continues interrupted runs from their
checkpoints.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
import math
import os
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from mgtune.data import Dataset
from mgtune.errors import ConfigError, DataFormatError
from mgtune.files import write_json, write_text
from mgtune.study.results import TrialRecord, read_results, trial_row
from mgtune.study.runner import (
    MAX_FAILURES, RESULTS_FILE, STUDY_FILE, StudySettings, _log, _now, _resources, _setup, _start_ray,
    _train_config, _trainable, check_trusted,
)
from mgtune.study.search_space import SearchSpace, space_from_dict
from mgtune.study.stats import ArmStats, PairedTest, arm_stats, paired_t_test
from mgtune.study.trainable import TrialSetup, _dirname, run_trial, trial_dirname
from mgtune.training import load_data, metric_names, peak_memory_mb, resolve_device

__all__ = [
    "CONFIRM_DIR", "CONFIRM_FILE", "RUN_FILE", "ARMS", "SEED_RULE", "SELECTION", "ConfirmSettings", "Candidate",
    "RunKey", "ConfigResult", "Confirmation", "ConfirmOutcome", "run_confirm", "read_study", "select_candidates",
    "load_confirmation", "confirm_columns", "write_confirm_results", "run_confirm_trial", "seeds_for",
]

CONFIRM_DIR = "confirm"
CONFIRM_FILE = "confirm.json"
RUN_FILE = "run.json"
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
class ConfirmSettings:
    """The options of ``mgtune confirm`` (defaults as in the CLI)."""

    study_dir: str
    seeds: int = 5
    top: int = 1
    cpus_per_trial: float = 1.0
    gpus_per_trial: float | None = None  # None: 0.25 if the cluster has GPUs, else 0 (as `mgtune run`)
    address: str | None = None  # None: $RAY_ADDRESS, else a local Ray started for the confirmation
    resume: bool = False
    out: str | None = "reports"  # folder of the reproduction cards; None writes none

    def __post_init__(self) -> None:
        checks = [
            (self.seeds >= 2, f"--seeds must be >= 2 (a spread and a paired test need two seeds), got {self.seeds}"),
            (self.top >= 1, f"--top must be >= 1, got {self.top}"),
            (self.cpus_per_trial > 0, f"--cpus-per-trial must be > 0, got {self.cpus_per_trial}"),
            (self.gpus_per_trial is None or self.gpus_per_trial >= 0,
             f"--gpus-per-trial must be >= 0, got {self.gpus_per_trial}"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ConfigError(msg)


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
def read_study(path: str | Path) -> tuple[Path, dict[str, Any], SearchSpace]:
    """``study.json`` of a study folder, with the keys beyond the shared contract defaulted, and its space."""
    study_dir, meta = _read_meta(path)
    return study_dir, meta, space_from_dict(meta["model"], meta["search_space"], str(study_dir / STUDY_FILE))


def _read_meta(path: str | Path) -> tuple[Path, dict[str, Any]]:
    study_dir = Path(path).expanduser().resolve()
    meta_file = study_dir / STUDY_FILE
    if not study_dir.is_dir():
        raise ConfigError(f"{path}: no such study folder")
    if not meta_file.is_file():
        raise ConfigError(f"{path}: not a study folder (no {STUDY_FILE})")
    try:
        meta = json.loads(meta_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataFormatError(f"{meta_file}: not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise DataFormatError(f"{meta_file}: expected a JSON object")
    missing = [k for k in ("model", "dataset", "mg", "metric", "max_epochs", "seed", "search_space") if k not in meta]
    if missing:
        raise DataFormatError(f"{meta_file}: missing key(s) {', '.join(missing)}")
    # a folder written by `mgtune run` has these; one laid out by hand per the contract may not
    return study_dir, {"data_dir": str(Path("datasets").resolve()), "topk": [5, 10, 20, 50], "checkpoint_every": 5,
                       "cpus_per_trial": 1.0, "gpus_per_trial": 0.0, **meta}


def select_candidates(study_dir: Path, meta: dict[str, Any], space: SearchSpace, top: int) -> list[Candidate]:
    """The ``top`` completed trials with the best validation metric; the earlier trial wins ties."""
    path = study_dir / RESULTS_FILE
    if not path.is_file():
        raise DataFormatError(f"{path}: missing; the study has not finished (continue it with mgtune run --resume)")
    key = f"valid_{meta['metric']}"
    frame = read_results(path, [key])  # the report's reader: a damaged file is an error, never another trial
    rows = frame.astype(object).where(frame.notna(), None).to_dict("records")
    done = [r for r in rows if r.get("status") == "completed" and _number(r.get(key)) is not None]
    if not done:
        raise DataFormatError(f"{path}: no completed trial to confirm (none of its {len(rows)} trials ran to "
                              "max_epochs or its own early stopping)")
    done.sort(key=lambda r: -float(r[key]))  # stable sort: ties keep the file's (trial id) order, as the report
    out = []
    for rank, row in enumerate(done[:top], start=1):
        params_file = study_dir / (row.get("trial_dir") or f"trial_{row['trial_id']}") / "params.json"
        try:
            saved = json.loads(params_file.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DataFormatError(f"{params_file}: cannot read the trial's parameters ({exc})") from None
        if not isinstance(saved, dict):
            raise DataFormatError(f"{params_file}: expected a JSON object of parameters, got {type(saved).__name__}")
        params = {p: saved[p] for p in space.names if p in saved}
        out.append(Candidate(rank, str(row["trial_id"]), float(row[key]), params))
    return out


# ---------------------------------------------------------------- one run (on a Ray worker)
def run_confirm_trial(config: dict[str, Any], setup: TrialSetup, data: Dataset) -> None:
    """The Ray trainable of a confirmation: `run_trial` with this run's seed and MG switch.

    ``config["run"]`` holds ``source_trial``, ``seed``, ``arm`` and the configuration's ``params``.
    Afterwards the run's peak memory and device go to ``run.json`` in the trial folder.
    """
    from ray import tune

    from mgtune.study.environment import device_name

    run = config["run"]
    arm_setup = dataclasses.replace(setup, seed=int(run["seed"]), mg=run["arm"] == "mg")
    run_trial(run["params"], arm_setup, data)
    device = resolve_device(arm_setup.train_config(run["params"]).device)
    trial_dir = Path(setup.study_dir) / _dirname(tune.get_context().get_trial_id())  # where run_trial wrote
    write_json(trial_dir / RUN_FILE, {"peak_memory_mb": round(peak_memory_mb(device), 1),
                                       "device": device_name(device)})


# ---------------------------------------------------------------- running
@dataclass
class ConfirmOutcome:
    study_dir: Path
    finished: bool  # False when interrupted: run the command again (with --resume to continue runs)
    confirmation: Confirmation | None = None
    cards: list[Path] = dataclasses.field(default_factory=list)

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
    study_dir, meta, space = read_study(s.study_dir)
    if not meta["mg"]:
        raise ConfigError(f"{s.study_dir}: the study ran without MG (--no-mg or a model that is not trained), "
                          "so it has no MG configuration to confirm; confirm an MG study")
    candidates = select_candidates(study_dir, meta, space, s.top)
    if len(candidates) < s.top:
        log(f"--top {s.top}: the study has only {len(candidates)} completed trial(s); confirming those")
    seeds = seeds_for(int(meta["seed"]), s.seeds)
    wanted = [RunKey(c.trial_id, seed, arm) for c in candidates for seed in seeds for arm in ARMS]
    confirm_dir = study_dir / CONFIRM_DIR
    info_file = confirm_dir / CONFIRM_FILE
    try:
        old = json.loads(info_file.read_text()) if info_file.is_file() else {}
    except json.JSONDecodeError:
        old = {}  # rewritten below
    info: dict[str, Any] = {
        "study": study_dir.name, "metric": meta["metric"], "seeds": seeds, "seed_rule": SEED_RULE, "top": s.top,
        "arms": {"mg": "MG as configured", "nomg": "the same configuration with mg.enabled = False"},
        "max_epochs": meta["max_epochs"], "candidates": [c.as_dict() for c in candidates],
        "cpus_per_trial": s.cpus_per_trial, "created": old.get("created") or _now(), "finished": None,
    }
    interrupted = False
    pending = _pending(confirm_dir, wanted, meta)
    if pending and s.resume and confirm_dir.is_dir():
        check_trusted(confirm_dir)  # before Ray unpickles its saved state from it
    if pending:
        data = load_data(_train_config(meta))  # a bad dataset fails here, once
        interrupted = _run_ray(s, meta, space, confirm_dir, info, pending, data, wanted, log)
    rows = _collect(confirm_dir, wanted, meta, space.names)
    confirm_dir.mkdir(parents=True, exist_ok=True)
    write_confirm_results(confirm_dir / RESULTS_FILE, rows, space.names, meta["topk"])
    if interrupted:
        log(f"confirmation interrupted; continue it with: mgtune confirm {study_dir} --seeds {s.seeds} "
            f"--top {s.top} --resume")
        return ConfirmOutcome(study_dir, False)
    info.setdefault("gpus_per_trial", old.get("gpus_per_trial"))  # set by _run_ray when something ran
    write_json(info_file, {**info, "finished": _now()})
    failed = [r for r in rows if r["status"] != "completed"]
    if failed:
        log(f"{len(failed)} run(s) did not complete ({', '.join(sorted({r['status'] for r in failed}))}); "
            "they are left out of the statistics (errored runs start again when the command is rerun)")
    conf = load_confirmation(study_dir)
    assert conf is not None
    outcome = ConfirmOutcome(study_dir, True, conf)
    if s.out is not None:
        from mgtune.study.card import write_card

        outcome.cards = write_card(conf, Path(s.out))
    for result in conf.results():
        test = result.tests[conf.metric]
        log(f"configuration {result.candidate.rank} (trial {result.candidate.trial_id}): test {conf.metric} "
            f"MG - no MG = {test.mean:+.4f}, 95% CI [{test.ci_low:+.4f}, {test.ci_high:+.4f}], "
            f"p = {test.p_value:.3g} over {test.n} seeds: {test.verdict}")
    return outcome


def _pending(confirm_dir: Path, wanted: Sequence[RunKey], meta: dict[str, Any]) -> list[RunKey]:
    """The runs still to train: no record, or only an errored one."""
    found = _scan(confirm_dir, meta["topk"], [])
    return [k for k in wanted if k not in found or found[k]["status"] not in _DONE]


def _unrecorded(confirm_dir: Path, runs: Sequence[RunKey], meta: dict[str, Any]) -> list[RunKey]:
    """The runs with neither a final epoch nor an error: Ray was interrupted before they ended.

    (Ray's trial states cannot tell: after Ctrl-C it marks the trials it stopped as terminated, done or not.)
    """
    found = _scan(confirm_dir, meta["topk"], [])
    return [k for k in runs if k not in found]


def _run_ray(s: ConfirmSettings, meta: dict[str, Any], space: SearchSpace, confirm_dir: Path, info: dict[str, Any],
             pending: list[RunKey], data: Dataset, wanted: Sequence[RunKey], log: Callable[[str], None]) -> bool:
    """Run the ``pending`` runs as Ray trials; True when interrupted."""
    import ray
    from ray import tune

    _start_ray(s.address, log)
    try:
        resources = StudySettings(cpus_per_trial=s.cpus_per_trial, gpus_per_trial=s.gpus_per_trial)
        gpus, concurrency = _resources(resources, len(pending), log)
        info["gpus_per_trial"] = gpus
        confirm_dir.mkdir(parents=True, exist_ok=True)
        write_json(confirm_dir / CONFIRM_FILE, info)
        setup = dataclasses.replace(_setup(meta, space, confirm_dir), cpus_per_trial=s.cpus_per_trial,
                                    gpus_per_trial=gpus)
        trainable = _trainable(setup, data, run_confirm_trial)
        with contextlib.redirect_stdout(sys.stderr):  # stdout carries only the CLI's result
            if s.resume and tune.Tuner.can_restore(str(confirm_dir)):
                log(f"resuming the interrupted runs in {confirm_dir}")
                tune.Tuner.restore(str(confirm_dir), trainable=trainable, resume_unfinished=True,
                                   resume_errored=False, restart_errored=False).fit()
                if _unrecorded(confirm_dir, wanted, meta):
                    return True
                pending = _pending(confirm_dir, wanted, meta)
            if not pending:
                return False
            log(f"confirming {len(info['candidates'])} configuration(s) of {meta['model']} on {meta['dataset']}: "
                f"{len(pending)} run(s) (seeds {info['seeds']}, MG and no MG), {concurrency} at a time, "
                f"{s.cpus_per_trial:g} CPU + {gpus:g} GPU each, up to {meta['max_epochs']} epochs")
            _tuner(pending, info, trainable, confirm_dir, concurrency, meta).fit()
            return bool(_unrecorded(confirm_dir, pending, meta))
    finally:
        ray.shutdown()  # only disconnects from an attached cluster; stops a local one


def _tuner(pending: list[RunKey], info: dict[str, Any], trainable: Any, confirm_dir: Path, concurrency: int,
           meta: dict[str, Any]) -> Any:
    from ray import tune
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

    from mgtune.study._ray_parts import ProgressLines

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
            callbacks=[JsonLoggerCallback(), CSVLoggerCallback(), ProgressLines(meta["metric"], len(runs))],
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            # a run whose node is lost is retried from its checkpoint; a failed run is recorded, the others go on
            failure_config=tune.FailureConfig(max_failures=MAX_FAILURES),
        ),
    )


# ---------------------------------------------------------------- results.csv
def confirm_columns(param_names: Sequence[str], topk: Sequence[int]) -> list[str]:
    names = metric_names(tuple(topk))
    return [*HEAD, *(f"param_{p}" for p in param_names), *(f"valid_{n}" for n in names),
            *(f"test_{n}" for n in names)]


def write_confirm_results(path: Path, rows: Sequence[dict[str, Any]], param_names: Sequence[str],
                          topk: Sequence[int]) -> None:
    """``confirm/results.csv``, replaced atomically."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=confirm_columns(param_names, topk), extrasaction="ignore")
    writer.writeheader()
    writer.writerows({k: ("" if v is None else v) for k, v in row.items()} for row in rows)
    write_text(path, buf.getvalue())


def _scan(confirm_dir: Path, topk: Sequence[int], param_names: Sequence[str]) -> dict[RunKey, dict[str, Any]]:
    """The best record of every run in the folder (completed > diverged > errored; then the latest)."""
    found: dict[RunKey, tuple[tuple[int, float], dict[str, Any]]] = {}
    for params_file in sorted(confirm_dir.glob("trial_*/params.json")):
        try:
            run = json.loads(params_file.read_text()).get("run")
        except (OSError, json.JSONDecodeError):
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
    import pandas as pd

    progress_file, error_file = trial_dir / "progress.csv", trial_dir / "error.txt"
    progress = None
    if progress_file.is_file() and progress_file.stat().st_size:
        progress = pd.read_csv(progress_file)
    error = RuntimeError(error_file.read_text()) if error_file.is_file() else None
    rec = TrialRecord(trial_dir.name.removeprefix("trial_"), trial_dir.name, run["params"], progress, error)
    row = trial_row(rec, param_names, topk)
    if row["status"] == "early_stopped":  # no ASHA here: not final and no error means interrupted
        return None
    extra = json.loads((trial_dir / RUN_FILE).read_text()) if (trial_dir / RUN_FILE).is_file() else {}
    per_epoch = (progress.drop_duplicates("epoch", keep="last")["train_seconds"].dropna()
                 if progress is not None and "train_seconds" in progress else [])
    row.update(source_trial=run["source_trial"], seed=int(run["seed"]), arm=run["arm"],
               seconds_per_epoch=round(statistics.median(per_epoch), 4) if len(per_epoch) else None,
               peak_memory_mb=extra.get("peak_memory_mb"), device=extra.get("device"))
    return row


def _collect(confirm_dir: Path, wanted: Sequence[RunKey], meta: dict[str, Any],
             param_names: Sequence[str]) -> list[dict[str, Any]]:
    found = _scan(confirm_dir, meta["topk"], param_names) if confirm_dir.is_dir() else {}
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
    meta: dict[str, Any]
    info: dict[str, Any]
    rows: list[dict[str, Any]]
    study_rows: list[dict[str, Any]]  # the study's own results.csv (for its compute)

    @property
    def metric(self) -> str:
        return str(self.meta["metric"])

    @property
    def seeds(self) -> list[int]:
        return [int(s) for s in self.info["seeds"]]

    @property
    def topk(self) -> tuple[int, ...]:
        return tuple(self.meta["topk"])

    @property
    def candidates(self) -> list[Candidate]:
        return [Candidate(int(c["rank"]), str(c["source_trial"]), float(c["valid"]), dict(c["params"]))
                for c in self.info["candidates"]]

    @property
    def seconds(self) -> float:
        return math.fsum(r["seconds"] or 0.0 for r in self.rows)

    @property
    def study_seconds(self) -> float:
        return math.fsum(_number(r.get("seconds")) or 0.0 for r in self.study_rows)

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
    info_file, results = folder / CONFIRM_FILE, folder / RESULTS_FILE
    if not info_file.is_file() or not results.is_file():
        return None
    study_dir, meta = _read_meta(study_dir)
    try:
        info = json.loads(info_file.read_text())
    except json.JSONDecodeError as exc:
        raise DataFormatError(f"{info_file}: not valid JSON ({exc})") from None
    with results.open(newline="") as fh:
        rows = [_typed(r) for r in csv.DictReader(fh)]
    study_rows: list[dict[str, Any]] = []
    if (study_dir / RESULTS_FILE).is_file():
        with (study_dir / RESULTS_FILE).open(newline="") as fh:
            study_rows = list(csv.DictReader(fh))
    return Confirmation(study_dir, meta, info, rows, study_rows)


def _typed(row: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, text in row.items():
        if key in _INTS:
            out[key] = int(float(text)) if text not in ("", None) else None
        elif key in ("seconds", "seconds_per_epoch", "peak_memory_mb") or key.startswith(("valid_", "test_")):
            out[key] = _number(text)
        else:
            out[key] = text if text != "" else None
    return out


def _number(text: Any) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None
