"""A suite: several models, with and without MG, studied at the same time on one Ray runtime.

``mgtune run --model freedom,vbpr --mg both`` runs one study per model and MG setting. The suite
starts (or attaches to) one Ray runtime through `mgtune.study.session`, then runs every study as
its own driver process, ``mgtune run ... --address <that runtime> --storage <suite folder>``, so
each study is exactly a single study: its own folder, Optuna study, ASHA and ``results.csv``.
(Several Tuners in one driver would share Ray Tune's global state, which it is not designed for.)

Fair share: the runtime's trial slots (``--concurrency``, else as many trials as its resources
hold) are split evenly, ``max(1, slots // studies)`` trials at a time per study. With fewer slots
than studies, each trial asks for ``slots / studies`` of its CPUs (and GPUs), so every study runs a
trial from the start instead of queueing behind the others (a study keeps its worker between
trials); the trials then share the cores.

The parent prints one line per study as its trials end (trials done, best validation metric of its
completed trials so far, time spent), read from the study folders; each study's own output goes to
``<suite>/logs/<study>.log``. A study whose process fails, or whose every trial fails (a model that
cannot build on this data), is marked failed with a one-line reason; the others go on. With
``confirm``, every MG study is confirmed (``mgtune confirm``, reproduction cards in ``<suite>/cards``)
as soon as it finishes, while the other studies run. ``resume`` keeps finished studies, resumes
interrupted ones and runs the confirmations not done yet. The record is `mgtune.store.suite`'s ``suite.json``,
which also reads what the suite shows of its studies.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mgtune.errors import ConfigError
from mgtune.files import LOCK_FILE, claim_folder
from mgtune.models import get_model
from mgtune.models.model_files import module_path
from mgtune.processes import die_with_parent, suite_env
from mgtune.store import (
    CARD_DIR,
    LOG_DIR,
    STUDY_FILE,
    SUITE_FILE,
    SuiteRecord,
    SuiteStudy,
    is_suite,
    now,
    run_folder,
)
from mgtune.store.optuna_db import trial_progress
from mgtune.store.suite import last_line, study_name, study_state, summary_lines
from mgtune.study.session import cluster_address, resources, resume_command, sigterm_as_sigint, start_ray
from mgtune.study.session import log as _log
from mgtune.study.settings import StudySettings
from mgtune.training import TrainConfig, load_data

__all__ = ["SuiteSettings", "SuiteOutcome", "plan_studies", "run_suite", "is_suite_run", "EXIT_SOME_FAILED"]

EXIT_SOME_FAILED = 3  # the suite ended, but at least one study failed (the others' results are written)
_STOP_SECONDS = 180  # how long an interrupted study may take to save its state


def is_suite_run(s: StudySettings) -> bool:
    """Whether ``mgtune run`` with ``s`` is a suite: several models, ``all``, ``--mg both``, or ``--resume`` of a
    suite folder."""
    return s.named_a_suite or bool(s.resume and s.name and is_suite(Path(s.storage).expanduser() / s.name))


@dataclass(frozen=True)
class SuiteSettings:
    """A suite's settings: ``study`` holds those of ``mgtune run`` (as for a single study; its ``model`` names
    the models, ``mg`` says which studies, ``storage``/``name`` name the suite's folder, ``concurrency`` is
    the trial slots of the whole suite)."""

    study: StudySettings
    poll_seconds: float = 2.0

    def __post_init__(self) -> None:
        if self.study.search_space:
            raise ConfigError("--search-space names one model's space; a suite uses each model's own "
                              "(search_spaces/MODEL.yaml)")

    @property
    def models(self) -> list[str]:
        return self.study.models

    @property
    def mg(self) -> str:
        return self.study.mg  # type: ignore[return-value]  # normalised to on, off or both

    @property
    def confirm(self) -> int | None:
        return self.study.confirm


@dataclass
class SuiteOutcome:
    suite_dir: Path
    record: SuiteRecord
    interrupted: bool = False
    summary: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[SuiteStudy]:
        """The studies that failed, and the finished ones whose confirmation failed (both say why)."""
        return [s for s in self.record.studies if s.state == "failed" or s.reason]

    def result(self, report: list[str]) -> dict[str, Any]:
        """What ``mgtune run`` prints for a suite, with the report's files."""
        return {"suite": str(self.suite_dir), "exit_code": self.exit_code, "report": report,
                "studies": [s.as_dict() for s in self.record.studies]}

    @property
    def exit_code(self) -> int:
        """0: every study finished (and was confirmed, if asked); 130: interrupted; 3: a study or a
        confirmation failed (the others' results are written)."""
        if self.interrupted:
            return 130
        return EXIT_SOME_FAILED if self.failed else 0


def plan_studies(models: Sequence[str], mg: str) -> list[SuiteStudy]:
    """One study per model and MG setting, no MG first; a model that is not trained gets only its no-MG study."""
    settings = {"on": (True,), "off": (False,), "both": (False, True)}[mg]
    out = []
    for model in models:
        trained = get_model(model).trainable
        for on in dict.fromkeys(on and trained for on in settings):
            out.append(SuiteStudy(study_name(model, on), model, on))
    return out


def run_suite(s: SuiteSettings, log: Callable[[str], None] | None = None) -> SuiteOutcome:
    """Run (or with ``resume`` continue) the suite ``storage/name``; `ConfigError` for bad settings."""
    log = log or _log
    with contextlib.ExitStack() as held:  # the suite folder, claimed (`claim_folder`) for the whole run
        suite_dir, record = _load(s, held) if s.study.resume else _new(s, held)
        import ray

        start_ray(s.study.address, log, s.study.trial_niceness)
        try:
            with sigterm_as_sigint():  # after ray.init, whose own handler exits at once
                given = cluster_address(s.study.address)
                address = _child_address(given, ray.get_runtime_context().gcs_address)
                resume = resume_command(suite_dir, given)
                # a runtime of the suite's own dies with it: its studies are told so (`mgtune.processes`)
                env = {} if given else suite_env(resume)
                run = _SuiteRun(s, suite_dir, record, address, log, env)
                run.run()
            record, interrupted = run.record, run.interrupted
        finally:
            ray.shutdown()  # only disconnects from an attached cluster; stops the suite's own runtime
        if not interrupted:
            record = record.replace(finished=now())
            record.write(suite_dir)
        else:
            log(f"suite interrupted; continue it with: {resume}")
        return SuiteOutcome(suite_dir, record, interrupted, summary_lines(suite_dir, record))


def _child_address(given: str | None, gcs_address: str) -> str:
    """Where the studies attach: the address the suite was given, else its own runtime, on the loopback
    interface it was started on (`mgtune.study.session.start_ray`)."""
    return given if given else f"127.0.0.1:{gcs_address.rpartition(':')[2]}"


# ---------------------------------------------------------------- the suite folder
def _new(s: SuiteSettings, held: contextlib.ExitStack) -> tuple[Path, SuiteRecord]:
    st = s.study
    assert st.dataset is not None  # StudySettings requires it unless resuming
    data_dir = str(Path(st.data_dir).expanduser().resolve())
    name = st.name or f"suite-{st.dataset}-{time.strftime('%Y%m%d-%H%M%S')}"
    suite_dir = run_folder(st.storage, name, "suite")
    # a bad dataset fails here, once, not in every study (this also writes the demo data once)
    load_data(TrainConfig(model=s.models[0], dataset=st.dataset, data_dir=data_dir))
    if suite_dir.exists() and any(p.name != LOCK_FILE for p in suite_dir.iterdir()):
        raise ConfigError(f"{suite_dir}: exists; continue the suite with --resume or pick another --name")
    settings = {k: getattr(st, k) for k in _SHARED} | {"data_dir": data_dir, "mg": s.mg}
    if st.model_module:  # every study imports it (absolute: the studies may run elsewhere)
        settings["model_module"] = module_path(st.model_module)
    record = SuiteRecord(st.dataset, tuple(plan_studies(s.models, s.mg)), settings, s.confirm, now())
    held.enter_context(claim_folder(suite_dir, SUITE_FILE, "suite"))
    record.write(suite_dir)
    return suite_dir, record


_SHARED = ("trials", "max_epochs", "grace_epochs", "reduction_factor", "metric", "cpus_per_trial", "gpus_per_trial",
           "concurrency", "seed", "checkpoint_every", "budget_epochs",
           "time_budget_s")  # the study options kept in suite.json; a budget is each study's own


def _load(s: SuiteSettings, held: contextlib.ExitStack) -> tuple[Path, SuiteRecord]:
    if not s.study.name:
        raise ConfigError("--resume needs --name NAME (the suite folder under --storage)")
    suite_dir = run_folder(s.study.storage, s.study.name, "suite")
    record = SuiteRecord.read(suite_dir)
    held.enter_context(claim_folder(suite_dir, what="suite"))
    if s.confirm is not None:  # a confirmation may be asked for on resume
        record = record.replace(confirm=s.confirm)
    # every study not finished runs again: one with a study record resumes (mgtune run --resume)
    studies = tuple(st if st.state == "finished" else SuiteStudy(st.name, st.model, st.mg, confirmed=st.confirmed)
                    for st in record.studies)
    return suite_dir, record.replace(studies=studies, finished=None)


# ---------------------------------------------------------------- children
@dataclass
class _Child:
    study: SuiteStudy
    proc: subprocess.Popen[bytes]
    log_file: Path
    confirm: bool = False  # a confirmation (mgtune confirm), else a study (mgtune run)
    started: float = field(default_factory=time.monotonic)
    shown: tuple[Any, ...] = ()


def _share(conf: dict[str, Any], n: int, log: Callable[[str], None]) -> tuple[int, float, float | None]:
    """Concurrency, CPUs and GPUs per trial of each of ``n`` studies (see the module's "fair share");
    ``conf``: the suite's settings."""
    cpus = float(conf["cpus_per_trial"])
    gpus, fits = resources(cpus, conf["gpus_per_trial"], None, 10**9, log)
    slots = conf["concurrency"] or fits
    if slots >= n:
        return slots // n, cpus, gpus
    part = slots / n
    return 1, round(cpus * part, 4), round(gpus * part, 4) if gpus else gpus


class _SuiteRun:
    """The studies and confirmations of one invocation: started, watched, and recorded as they end.

    A finished MG study's confirmation starts as soon as the study ends (with ``confirm``), while the
    other studies still run.
    """

    def __init__(self, s: SuiteSettings, suite_dir: Path, record: SuiteRecord, address: str,
                 log: Callable[[str], None], env: dict[str, str]) -> None:
        self.s, self.suite_dir, self.record, self.address, self.log = s, suite_dir, record, address, log
        self.env = env  # added to each study's environment
        self.conf = record.settings
        self.interrupted = False

    def run(self) -> None:
        todo = [st for st in self.record.studies if st.state != "finished"]
        children = []
        if todo:
            concurrency, cpus, gpus = _share(self.conf, len(todo), self.log)
            size = f"{self.conf['trials']} trials" if self.conf.get("trials") else "budgeted trials"
            self.log(f"suite {self.suite_dir}: {len(todo)} studies of {size} on "
                     f"{self.record.dataset}, at the same time on the Ray runtime at {self.address}; {concurrency} "
                     f"trial(s) at a time each, {cpus:g} CPU each; each study's log in {self.suite_dir / LOG_DIR}")
            children = [self._study(st, concurrency, cpus, gpus) for st in todo]
        children += [self._confirm(st) for st in self.record.studies if self._to_confirm(st)]
        self.record.write(self.suite_dir)
        _wait_all(children, self.s.poll_seconds, self._tick, self._ended, self.log)

    def _study(self, st: SuiteStudy, concurrency: int, cpus: float, gpus: float | None) -> _Child:
        conf = self.conf
        args = ["run", "--storage", str(self.suite_dir), "--name", st.name, "--address", self.address]
        if (self.suite_dir / st.name / STUDY_FILE).is_file():
            args.append("--resume")
        else:
            args += ["--model", st.model, "--dataset", self.record.dataset, "--data-dir", conf["data_dir"],
                     "--max-epochs", str(conf["max_epochs"]),
                     "--reduction-factor", str(conf["reduction_factor"]), "--metric", conf["metric"],
                     "--seed", str(conf["seed"]), "--checkpoint-every", str(conf["checkpoint_every"]),
                     "--cpus-per-trial", str(cpus), "--concurrency", str(concurrency)]
            for flag, key in (("--trials", "trials"), ("--grace-epochs", "grace_epochs"),
                              ("--budget-epochs", "budget_epochs"), ("--time-budget", "time_budget_s")):
                if conf.get(key) is not None:
                    args += [flag, str(conf[key])]
            if gpus is not None:
                args += ["--gpus-per-trial", str(gpus)]
            if conf.get("model_module"):
                args += ["--model-module", conf["model_module"]]
            if not st.mg:
                args.append("--no-mg")
        self.record = self.record.with_study(st.name, state="running")
        return _start(st, args, self.suite_dir / LOG_DIR / f"{st.name}.log", self.env)

    def _to_confirm(self, st: SuiteStudy) -> bool:
        return bool(self.record.confirm) and st.state == "finished" and st.mg and not st.confirmed

    def _confirm(self, st: SuiteStudy) -> _Child:
        # each run at the CPUs asked (no share): a confirmation keeps no worker between its runs, so Ray
        # takes turns among the confirmations and studies without a slot held by one of them
        self.log(f"{st.name:<20} confirming over {self.record.confirm} seeds, MG and no MG")
        args = ["confirm", str(self.suite_dir / st.name), "--seeds", str(self.record.confirm), "--address",
                self.address, "--cpus-per-trial", str(self.conf["cpus_per_trial"]),
                "--out", str(self.suite_dir / CARD_DIR)]
        if self.conf["gpus_per_trial"] is not None:
            args += ["--gpus-per-trial", str(self.conf["gpus_per_trial"])]
        if self.s.study.resume:
            args.append("--resume")
        return _start(st, args, self.suite_dir / LOG_DIR / f"{st.name}-confirm.log", self.env, confirm=True)

    def _tick(self, child: _Child) -> None:
        if not child.confirm:
            _show_progress(child, self.suite_dir, self.conf["metric"], self.conf, self.log)

    def _ended(self, child: _Child, stopping: bool) -> list[_Child]:
        """Record how ``child`` ended; the confirmation started next, if any (none while ``stopping``)."""
        name, rc = child.study.name, child.proc.returncode
        if rc in (130, -signal.SIGINT):
            self.interrupted = True
        if child.confirm:
            if rc == 0:
                self.record = self.record.with_study(name, confirmed=True, reason=None)
                self.log(f"{name:<20} confirmed over {self.record.confirm} seeds")
            elif not self.interrupted:
                why = f"confirmation failed: {last_line(child.log_file)}"
                self.record = self.record.with_study(name, reason=why)
                self.log(f"{name:<20} {why}")
            self.record.write(self.suite_dir)
            return []
        state, reason = study_state(child.proc.returncode, child.log_file, self.suite_dir / name)
        self.record = self.record.with_study(name, state=state, reason=reason)
        self.record.write(self.suite_dir)
        _show_progress(child, self.suite_dir, self.conf["metric"], self.conf, self.log, end=state)
        study = next(st for st in self.record.studies if st.name == name)
        start = self._to_confirm(study) and not (self.interrupted or stopping)
        return [self._confirm(study)] if start else []


def _start(study: SuiteStudy, args: list[str], log_file: Path, env: dict[str, str], confirm: bool = False) -> _Child:
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as fh:
        # its own session: a Ctrl-C reaches the suite, which passes it on once (a second one would make
        # Ray abandon the study's state); it ends (SIGTERM, as Ctrl-C) when the suite dies, even by kill -9
        proc = subprocess.Popen([sys.executable, "-m", "mgtune.cli", *args], stdin=subprocess.DEVNULL,
                                stdout=fh, stderr=subprocess.STDOUT, start_new_session=True, env={**os.environ, **env},
                                preexec_fn=functools.partial(die_with_parent, os.getpid()))
    return _Child(study, proc, log_file, confirm)


def _wait_all(children: list[_Child], poll: float, tick: Callable[[_Child], None],
              on_end: Callable[[_Child, bool], list[_Child]], log: Callable[[str], None]) -> None:
    """Wait for every child: ``tick`` for each running one every ``poll`` seconds, ``on_end(child, stopping)``
    once it ended (it returns the children it started, which are waited for too; none while stopping).

    On Ctrl-C, pass it on once to the children still running and wait for them to save their state.
    """
    running = list(children)
    try:
        while running:
            for c in list(running):
                if c.proc.poll() is None:
                    tick(c)
                else:
                    running.remove(c)
                    running += on_end(c, False)
            if running:
                time.sleep(poll)
    except KeyboardInterrupt:
        log("interrupted: stopping every study (each saves its state)")
        for c in running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(c.proc.pid, signal.SIGINT)
        for c in running:
            try:
                c.proc.wait(timeout=_STOP_SECONDS)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(c.proc.pid, signal.SIGKILL)
                c.proc.wait()
            on_end(c, True)


# ---------------------------------------------------------------- progress
def _show_progress(child: _Child, suite_dir: Path, metric: str, conf: dict[str, Any], log: Callable[[str], None],
                   end: str | None = None) -> None:
    """The study's line when its figures changed: trials done, best validation score so far, time spent."""
    try:
        done, best = trial_progress(suite_dir / child.study.name)
    except sqlite3.Error:
        return
    shown = (done, best, end)
    if shown == child.shown:
        return
    child.shown = shown
    minutes, secs = divmod(round(time.monotonic() - child.started), 60)
    best_s = "—" if best is None else f"{best:.4f}"
    state = f"  {end}" if end else ""
    log(f"{child.study.name:<20} {done:>3}/{conf['trials']} trials  best valid {metric} {best_s}  "
        f"{minutes}m {secs:02d}s{state}")
