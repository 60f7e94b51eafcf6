"""The Tune hooks of a study: searcher, scheduler, stopper and callbacks (subclasses of Ray Tune's classes).

Importing this module imports Ray, so the drivers import it lazily.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path
from typing import Any

from ray.air.constants import TRAINING_ITERATION
from ray.tune import Callback
from ray.tune.schedulers import ASHAScheduler, TrialScheduler
from ray.tune.search import Searcher
from ray.tune.search.optuna import OptunaSearch
from ray.tune.stopper import Stopper

from mgtune.errors import ConfigError
from mgtune.files import free_bytes, min_free_bytes
from mgtune.store import TRIAL_PREFIX, Budget, Spent, finite_number, read_spent, trial_id_of, whole_pickle
from mgtune.store.results import FINAL, score_key
from mgtune.store.suite import last_line
from mgtune.study.session import log as _log
from mgtune.study.session import lost_its_node


class PrunedAwareOptunaSearch(OptunaSearch):
    """`OptunaSearch` that tells Optuna a trial ASHA stopped early was *pruned*.

    Ray hands a trial that its scheduler stopped to ``on_trial_complete`` with its last, partial
    result, and the base class tells Optuna ``COMPLETE`` with that score, so TPE would learn from
    scores after 2 epochs as if they were final. A result without the trainable's ``final`` flag is
    passed on as no result, which the base class tells Optuna as ``PRUNED``; Optuna then keeps the
    trial's last intermediate value, and TPE ranks pruned trials below the completed ones.

    A trial that Ray ended because it lost its node on every try is not over (`session.lost_its_node`):
    Optuna is not told, so it stays ``RUNNING`` until ``--resume`` finishes it. That is why this class
    limits the trials running at once itself: Ray's ``ConcurrencyLimiter`` would drop the resumed
    trial's completion, as it no longer counts that trial as running.
    """

    def __init__(self, *args: Any, study_dir: str, budget: Budget | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.study_dir = study_dir
        """The study folder (Ray restores the searcher from a local copy of its state, elsewhere)."""
        self.budget = budget
        """The study's budget: once ``budget.jsonl`` says it is spent, no new trial is suggested."""
        self.max_concurrent = 0  # 0: no limit; set by Ray's ConcurrencyLimiter, which then leaves it to us
        self._live: set[str] = set()  # trials suggested and not completed

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update({"max_concurrent": 0, "_live": set(), **state})  # a searcher pickled before these

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        self.max_concurrent = max_concurrent
        return True

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        if self.budget and self.budget.ended_by(read_spent(Path(self.study_dir))) is not None:
            # the running trials end at their next epoch (`BudgetStopper`); Ray's hint omits FINISHED
            return Searcher.FINISHED  # type: ignore[return-value]
        if self.max_concurrent and len(self._live) >= self.max_concurrent:
            return None
        suggestion = super().suggest(trial_id)
        if suggestion not in (None, Searcher.FINISHED):
            self._live.add(trial_id)
        return suggestion

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        """Nothing per epoch. The base class writes every epoch's score to ``optuna.db`` (about 5 ms of SQLite
        while the trial waits for the driver); TPE reads only a trial's final value, or a pruned trial's
        last one, which `on_trial_complete` reports. Per-epoch curves are in each trial's ``progress.csv``
        and TensorBoard events."""

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        self._live.discard(trial_id)
        if error and lost_its_node(self.study_dir, trial_id):
            return
        if result is not None and not error and not result.get(FINAL, False):
            ot_trial = self._ot_trials.get(trial_id)
            if ot_trial is not None and trial_id not in self._completed_trials and self.metric in result:
                # the stopping result (which Ray passes here, not to on_trial_result) as the trial's one
                # intermediate value, which Optuna then keeps as the pruned trial's value
                ot_trial.report(result[self.metric], result[TRAINING_ITERATION])
            result = None
        super().on_trial_complete(trial_id, result=result, error=error)

    def restore_from_dir(self, checkpoint_dir: str) -> None:
        """Restore, then tidy what a hard kill of the driver left that Ray's saved state does not know.

        Ray saves its state every few seconds; a driver killed with SIGKILL may have asked Optuna for a
        trial (now ``RUNNING`` forever) and started it (a trial folder holding only its first TensorBoard
        events) after the last save. Ray's restored state does not know that trial, so it is never
        resumed: Optuna is told it failed, and its folder, holding no result, is removed.
        """
        super().restore_from_dir(checkpoint_dir)
        import optuna

        study = self._ot_study
        assert study is not None  # restored with the rest of the searcher's state
        known = {t.number for t in self._ot_trials.values()}
        for stale in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            if stale.number not in known:
                study.tell(stale.number, state=optuna.trial.TrialState.FAIL)
                _log(f"Optuna trial {stale.number}: left running by a driver that was killed; marked failed")
        for folder in Path(self.study_dir).glob(f"{TRIAL_PREFIX}*"):
            orphan = trial_id_of(folder.name) not in self._ot_trials
            if orphan and folder.is_dir() and _holds_no_result(folder):
                shutil.rmtree(folder)
                _log(f"{folder}: a trial started by a driver that was killed, with no result; removed")


def _holds_no_result(folder: Path) -> bool:
    """Nothing but TensorBoard events (written as a trial starts) in ``folder``."""
    return all(p.is_file() and p.name.startswith("events.out.tfevents.") for p in folder.iterdir())


class StartsRunFullASHA(ASHAScheduler):
    """ASHA that never stops a warm-start trial (a search space's ``start:``) before ``max_t``.

    The starts hold the reference defaults, which a study must never end worse than. At ASHA's first
    rung (10 epochs) a default at learning rate 1e-3 often trails a fast configuration that ends
    lower, and plain ASHA would stop it there. A start still counts in the rungs' cutoffs for others.
    """

    def __init__(self, *args: Any, starts: list[dict[str, Any]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.starts = starts

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> str:
        action = super().on_trial_result(tune_controller, trial, result)
        if action == TrialScheduler.STOP and result.get(self._time_attr, 0) < self._max_t and any(
                all(trial.config.get(k) == v for k, v in start.items()) for start in self.starts):
            return TrialScheduler.CONTINUE
        return action


class NoTrialFitsError(RuntimeError):
    """The live nodes can no longer hold one trial (raised in a callback, so Ray Tune ends ``fit``)."""


NO_FIT_GRACE_ENV = "MGTUNE_NO_FIT_GRACE_S"
"""Seconds a study waits for a node that can hold a trial to (re)appear before it stops (default 60)."""


class NoTrialFits(Callback):
    """Stops the study when trials wait and no live node can hold one (the node that could was lost).

    Without it Ray Tune waits forever for resources. The check is per node, as in `session.resources`,
    and a study gives the cluster ``$MGTUNE_NO_FIT_GRACE_S`` seconds to recover (an autoscaler, a restart).
    """

    def __init__(self, cpus: float, gpus: float) -> None:
        self.cpus, self.gpus = cpus, gpus
        self._since: float | None = None
        self._checked = 0.0

    def __getstate__(self) -> dict[str, Any]:
        return {"cpus": self.cpus, "gpus": self.gpus, "_since": None, "_checked": 0.0}

    def on_step_end(self, iteration: int, trials: list[Any], **info: Any) -> None:
        now = time.monotonic()
        if now - self._checked < 1.0:
            return
        self._checked = now
        waiting = any(t.status == "PENDING" for t in trials) and not any(t.status == "RUNNING" for t in trials)
        if not waiting or self._fits():
            self._since = None
            return
        self._since = self._since or now
        grace = float(os.environ.get(NO_FIT_GRACE_ENV, "60"))
        if now - self._since >= grace:
            raise NoTrialFitsError(
                f"no live node of the Ray cluster can hold a trial ({self.cpus:g} CPU + {self.gpus:g} GPU) "
                f"after waiting {grace:g} s; a node was lost or the cluster shrank")

    def _fits(self) -> bool:
        import ray

        for node in ray.nodes():
            res = node.get("Resources", {})
            cpus, gpus = res.get("CPU", 0.0) + 1e-9, res.get("GPU", 0.0) + 1e-9
            if node.get("Alive") and cpus >= self.cpus and gpus >= self.gpus:
                return True
        return False


class BudgetStopper(Stopper):
    """Counts a study's epochs and wall time against its `Budget`, on the driver, in ``budget.jsonl``.

    Once a limit is reached every running trial stops after its current epoch (a clean stop at a
    result, never a kill mid-epoch), and `PrunedAwareOptunaSearch` suggests no new trial, so the
    study ends when the last running trial does. Ray pickles the stopper with the tuner, so
    ``--resume`` gets it back; what was spent is not in the pickle but in ``budget.jsonl`` (`Spent`),
    read on first use and rewritten after every epoch and, with a time budget, every second.
    """

    def __init__(self, budget: Budget, study_dir: str) -> None:
        self.budget, self.study_dir = budget, study_dir
        self._start_session()

    def _start_session(self) -> None:
        self._before: Spent | None = None  # spent in earlier sessions, read on first use
        self._epochs = 0  # epochs reported in this session
        self._stopped: list[str] = []  # trials this session stopped before they finished
        self._since = time.monotonic()  # this session's start: the tuner's creation or restoration
        self._written = 0.0  # when budget.jsonl was last written

    def __getstate__(self) -> dict[str, Any]:
        return {"budget": self.budget, "study_dir": self.study_dir}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._start_session()

    def spent(self) -> Spent:
        if self._before is None:
            self._before = read_spent(Path(self.study_dir))
        return Spent(self._before.epochs + self._epochs, self._before.seconds + time.monotonic() - self._since,
                     tuple(dict.fromkeys([*self._before.stopped, *self._stopped])))

    def ended_by(self) -> str | None:
        """"epochs" or "time" once the budget is spent, else None."""
        return self.budget.ended_by(self.spent())

    def _write(self) -> None:
        self.spent().write(Path(self.study_dir))
        self._written = time.monotonic()

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        """Whether ``trial_id`` stops now. Ray asks the stopper before the scheduler, so a trial stopped
        here was cut by the budget, never by ASHA; one whose result is its final one was not cut at all."""
        if "epoch" in result:
            self._epochs += 1
        stop = self.ended_by() is not None
        cut = stop and not result.get(FINAL, False) and trial_id not in self._stopped
        if cut:
            self._stopped.append(trial_id)
        if "epoch" in result or cut:
            self._write()
        return stop

    def stop_all(self) -> bool:
        """Never stops trials mid-epoch; with a time budget, keeps ``budget.jsonl``'s clock current
        (Ray calls this at every step of its loop) so the searcher sees the time run out."""
        if self.budget.seconds is not None and time.monotonic() - self._written >= 1.0:
            self._write()
        return False


class ProgressLines(Callback):
    """One line per trial event on stderr, instead of Ray's periodic trial table."""

    def __init__(self, metric: str, n_trials: int, budget: BudgetStopper | None = None) -> None:
        self.metric, self.n_trials, self.budget = metric, n_trials, budget
        self.best: float | None = None  # the best validation metric of any trial so far
        self.finished: set[str] = set()
        self.created: dict[str, float] = {}
        self.startup_seconds: dict[str, float] = {}
        """Per trial: from its creation to its first epoch beginning (scheduling, worker, imports, data, model)."""

    def on_step_end(self, iteration: int, trials: list[Any], **info: Any) -> None:
        now = time.monotonic()
        for t in trials:
            self.created.setdefault(t.trial_id, now)

    def _done(self, trials: list[Any], finished: str | None = None) -> str:
        if finished is not None:
            self.finished.add(finished)
        done = self.finished | {t.trial_id for t in trials if t.status in ("TERMINATED", "ERROR")}
        parts = [f"{len(done)}/{self.n_trials} done" if self.budget is None else f"{len(done)} done"]
        if self.budget is not None:
            parts.append(self.budget.budget.describe(self.budget.spent()))
        if self.best is not None:
            parts.append(f"best {self.metric} {self.best:.4f}")
        return f"[{', '.join(parts)}]"

    def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self.created.setdefault(trial.trial_id, time.monotonic())
        params = "  ".join(f"{k}={_fmt(v)}" for k, v in trial.config.items())
        _log(f"{trial.trial_id}  started   {params}")

    def on_trial_result(self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any],
                        **info: Any) -> None:
        if "epoch" not in result:
            return
        if trial.trial_id in self.created and trial.trial_id not in self.startup_seconds:
            first_epoch = result.get("train_seconds", 0.0) + result.get("eval_seconds", 0.0)
            self.startup_seconds[trial.trial_id] = time.monotonic() - self.created[trial.trial_id] - first_epoch
        score = finite_number(result.get(score_key(self.metric)))
        if score is not None and (self.best is None or score > self.best):
            self.best = score
        _log(f"{trial.trial_id}  epoch {result['epoch']:3d}  loss {result['train_loss']:.4f}  "
               f"valid {self.metric} {result[f'valid_{self.metric}']:.4f}  "
               f"best {result[score_key(self.metric)]:.4f}  {self._done(trials)}")

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        last = trial.last_result or {}
        budget_spent = self.budget is not None and self.budget.ended_by() is not None
        how = "completed" if last.get(FINAL) else "stopped by the budget" if budget_spent else "stopped by ASHA"
        best = last.get(score_key(self.metric))
        best_s = f"  best valid {self.metric} {best:.4f} (epoch {last.get('best_epoch')})" if best is not None else ""
        epochs = last.get(TRAINING_ITERATION, 0)
        _log(f"{trial.trial_id}  {how} after {epochs} epoch(s){best_s}  {self._done(trials, trial.trial_id)}")

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        # trial.error_file is in Ray's session folder, which goes away; the trial folder keeps a copy
        where = f"{trial.path}/error.txt" if trial.path else trial.error_file
        why = last_line(Path(trial.error_file)) if trial.error_file else "error"
        _log(f"{trial.trial_id}  failed ({why}); details in {where}  "
               f"{self._done(trials, trial.trial_id)}")


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


class RoomGuard(Callback):
    """Interrupts a run, as Ctrl-C does, once its storage has less free than `min_free_bytes`.

    Ray rewrites its experiment state (and trials their checkpoints) in place: a disk that fills up
    mid-write leaves them cut short, and such a study can no longer be resumed. Stopped while there is
    still room, Ray saves its state whole, every unfinished trial stays resumable, and the driver
    turns the stop into one line (`mgtune.files.check_room`). Checked at every step of Tune's loop, on the
    driver.
    """

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self._fired = False

    def __setstate__(self, state: dict[str, Any]) -> None:  # --resume: a new session, a new check
        self.__dict__.update(state, _fired=False)

    def on_step_begin(self, iteration: int, trials: list[Any], **info: Any) -> None:
        if self._fired:
            return
        free, need = free_bytes(Path(self.folder)), min_free_bytes()  # a statvfs: microseconds
        if free < need:
            _log(f"{self.folder}: {free / 2**20:.1f} MB free, below the {need / 2**20:g} MB a run keeps free: "
                 "stopping the trials while Ray can still save its state")
            self._fired = True  # once: the interrupt ends the run
            os.kill(os.getpid(), signal.SIGINT)


def restore_tuner(folder: Path, trainable: Any, then: str, **options: Any) -> Any:
    """``tune.Tuner.restore(folder)``; ``then`` says what is left to do when Ray cannot read its state.

    `check_ray_state` has refused a cut-short state before Ray started; what Ray still cannot unpickle
    is one line here. A trial's ``error.pkl`` that a full disk cut short is removed first: Ray would
    fail on it after the whole resumed run, and reads the same error's ``error.txt`` instead.
    """
    from ray import tune

    for pickled in folder.glob(f"{TRIAL_PREFIX}*/error.pkl"):
        if not whole_pickle(pickled.read_bytes()):
            _log(f"{pickled}: cut short (a full disk?); removed, Ray reads the trial's error.txt instead")
            pickled.unlink()
    try:
        return tune.Tuner.restore(str(folder), trainable=trainable, **options)
    except Exception as exc:  # unpickling Ray's state: any error of a damaged file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ConfigError(f"{folder}: Ray's saved state cannot be read ({type(exc).__name__}"
                          f"{': ' + first if first else ''}); {then}") from None
