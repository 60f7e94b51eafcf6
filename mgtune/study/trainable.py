"""One study trial: the Ray Tune function trainable around `mgtune.training.train`.

The trial builds a `TrainConfig` from its sampled parameters and calls the shared training
function unchanged. Per epoch the callback writes TensorBoard scalars into the trial folder
(`mgtune.training.tensorboard`) and reports flat metrics to Ray (which writes ``progress.csv``);
every ``checkpoint_every`` epochs the report carries a checkpoint holding the loop's resume state.
A trial that ends by itself (its epochs run, or its own early stopping) writes its best weights to
``weights.pt`` in its folder first (`mgtune.training.save_checkpoint`: config and weights), which
``mgtune recommend --study``, ``mgtune eval`` and ``mgtune robustness`` read; a trial ASHA or a budget stops
keeps only its resume checkpoints. A model of one's own from a file (``--model-module``) is imported
on the worker before the trial builds anything.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mgtune.data import Dataset, Split
from mgtune.models import get_model, load_model_module
from mgtune.store import STATE_FILE, WEIGHTS_FILE, StudyRecord, trial_folder
from mgtune.store.results import FINAL, TRIAL_SECONDS, score_key
from mgtune.study.search_space import SearchSpace
from mgtune.training import (
    CUTOFFS,
    EpochReport,
    MGConfig,
    TrainConfig,
    TrainResult,
    load_data,
    resolve_device,
    save_checkpoint,
    train,
)
from mgtune.training.tensorboard import RunWriter

__all__ = [
    "TrialSetup", "study_data", "run_trial", "train_trial", "trial_dirname", "TrialOutOfMemoryError",
    "out_of_memory_reason",
]


def trial_dirname(trial: Any) -> str:
    """Ray's ``trial_dirname_creator``: short trial folder names (Ray's default repeats every parameter)."""
    return trial_folder(trial.trial_id)


@dataclass(frozen=True)
class TrialSetup:
    """What every trial of a study shares; travels to the workers with the trainable."""

    space: SearchSpace
    model: str
    dataset: str
    data_dir: str
    mg: bool
    metric: str
    max_epochs: int
    seed: int
    cpus_per_trial: float
    gpus_per_trial: float
    checkpoint_every: int
    study_dir: str  # absolute; each trial writes its TensorBoard events into study_dir/<trial folder>
    topk: tuple[int, ...] = CUTOFFS
    model_module: str | None = None  # absolute path of the file of a model of one's own (study.json keeps it)

    @classmethod
    def from_record(cls, record: StudyRecord, space: SearchSpace, folder: Path) -> TrialSetup:
        """What every trial of the study ``record`` shares; ``folder`` is where the trials write (the
        study's folder, or its confirmation's)."""
        return cls(
            space=space, model=record.model, dataset=record.dataset, data_dir=record.data_dir, mg=record.mg,
            metric=record.metric, max_epochs=record.max_epochs, seed=record.seed,
            cpus_per_trial=record.cpus_per_trial, gpus_per_trial=record.gpus_per_trial,
            checkpoint_every=record.checkpoint_every, study_dir=str(folder), topk=record.topk,
            model_module=record.extra.get("model_module"),
        )

    def train_config(self, sampled: dict[str, Any]) -> TrainConfig:
        load_model_module(self.model_module)  # on a Ray worker: the model must be registered there too
        base = TrainConfig.for_model(
            self.model, self.dataset, data_dir=self.data_dir, mg=MGConfig(enabled=self.mg),
            epochs=self.max_epochs, valid_metric=self.metric, topk=self.topk, seed=self.seed,
            # from the trial's resources: Ray 2.60 leaves CUDA_VISIBLE_DEVICES alone for 0-GPU trials
            device="cuda" if self.gpus_per_trial > 0 else "cpu",
        )
        return self.space.apply(base, sampled)


def study_data(record: StudyRecord) -> Dataset:
    """The dataset of the study ``record`` (the demo set is made on first use); its problems are one line."""
    return load_data(TrainConfig(model=record.model, dataset=record.dataset, data_dir=record.data_dir,
                                 mg=MGConfig(enabled=record.mg), valid_metric=record.metric, topk=record.topk))


def run_trial(config: dict[str, Any], setup: TrialSetup, data: Dataset) -> None:
    """The Ray function trainable; ``config`` holds the sampled parameters only."""
    train_trial(config, setup, data)  # Ray takes a returned value for a result: return nothing


def train_trial(config: dict[str, Any], setup: TrialSetup, data: Dataset) -> TrainResult:
    """`run_trial`'s work, returning the run's result (with its best weights) to a caller that keeps them,
    such as a confirmation run."""
    from ray import tune

    started = time.perf_counter()
    logging.getLogger("ray.train").setLevel(logging.WARNING)  # one "checkpoint created" line per save is noise
    torch.set_num_threads(max(1, int(setup.cpus_per_trial)))
    if 0 < setup.gpus_per_trial < 1 and torch.cuda.is_available():
        # Ray only books fractions; cap this process so trials sharing the GPU cannot starve each other
        torch.cuda.set_per_process_memory_fraction(setup.gpus_per_trial)
    cfg = setup.train_config(config)
    resume, seconds_before = _load_state(tune.get_checkpoint(), resolve_device(cfg.device))
    trial_dir = Path(setup.study_dir) / trial_folder(tune.get_context().get_trial_id())
    choices = {p.name: p.choices for p in setup.space.params if p.type == "categorical"}
    writer = RunWriter(trial_dir, {**config, "mg": setup.mg}, choices, setup.topk,
                       resumed_after=None if resume is None else resume["epoch"])

    def clock() -> float:
        return seconds_before + time.perf_counter() - started

    try:
        reporter = _Reporter(setup, cfg, writer, clock, trial_dir)
        return _train_within_share(setup, cfg, reporter, _writable(data), resume)
    finally:
        writer.close()


class TrialOutOfMemoryError(RuntimeError):
    """A trial ran out of its CUDA memory share; the message is the one-line reason the study records."""


def out_of_memory_reason(gpus_per_trial: float, device_bytes: int, model: str) -> str:
    """E.g. ``CUDA out of memory at 0.25 GPU (35 GiB) for freedom``: the share, in GiB, and the model."""
    share = min(gpus_per_trial, 1.0) if gpus_per_trial > 0 else 1.0
    return f"CUDA out of memory at {gpus_per_trial:g} GPU ({share * device_bytes / 2**30:.0f} GiB) for {model}"


def _train_within_share(setup: TrialSetup, cfg: TrainConfig, reporter: Callable[[EpochReport], None], data: Dataset,
                        resume: dict[str, Any] | None) -> TrainResult:
    """`train`, with a CUDA out-of-memory turned into a `TrialOutOfMemoryError` whose message names the share.

    The error is raised outside the ``except`` block, so the failed step's tensors (held by the
    original traceback) are freed first and the GPU's other trials get their memory back.
    """
    try:
        return train(cfg, reporter, data=data, resume=resume, snapshot_every=setup.checkpoint_every)
    except torch.cuda.OutOfMemoryError:
        device = resolve_device(cfg.device)
        total = torch.cuda.get_device_properties(device).total_memory if device.type == "cuda" else 0
        reason = out_of_memory_reason(setup.gpus_per_trial, total, cfg.model)
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    raise TrialOutOfMemoryError(reason)


class _Reporter:
    """The training loop's callback: TensorBoard scalars, then one `ray.tune.report` per epoch."""

    def __init__(self, setup: TrialSetup, cfg: TrainConfig, writer: RunWriter, clock: Callable[[], float],
                 trial_dir: Path) -> None:
        self.setup, self.cfg, self.writer, self.clock, self.trial_dir = setup, cfg, writer, clock, trial_dir
        self.trainable = get_model(cfg.model).trainable

    def __call__(self, rep: EpochReport) -> None:
        from ray import tune

        self.writer.epoch(rep)
        # the loop's own stopping rules (its bad_epochs is always epoch - best_epoch)
        final = (not self.trainable or rep.epoch + 1 >= self.cfg.epochs
                 or rep.epoch - rep.best_epoch > self.cfg.patience)
        metrics: dict[str, Any] = {
            "epoch": rep.epoch, "train_loss": rep.train_loss, "lr": rep.lr,
            **{f"valid_{k}": v for k, v in rep.valid.items()}, **{f"test_{k}": v for k, v in rep.test.items()},
            "best_epoch": rep.best_epoch, score_key(self.cfg.valid_metric): rep.best_valid[self.cfg.valid_metric],
            "train_seconds": rep.train_seconds, "eval_seconds": rep.eval_seconds, FINAL: final,
            TRIAL_SECONDS: self.clock(),
        }
        if final:
            # before reporting: Ray may end the trial inside this report (ASHA stops it at max_t too)
            self.writer.session_end()
            save_checkpoint(self.trial_dir / WEIGHTS_FILE, self.cfg, rep.best_weights, rep.best_epoch)
        if final or rep.state is None:  # the loop snapshots every checkpoint_every-th epoch
            tune.report(metrics)  # a finished trial is never resumed: no checkpoint needed
            return
        with tempfile.TemporaryDirectory(prefix="mgtune-ckpt-") as tmp:
            torch.save({"loop": rep.state, TRIAL_SECONDS: metrics[TRIAL_SECONDS]}, Path(tmp) / STATE_FILE)
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(tmp))


def _load_state(checkpoint: Any, device: torch.device) -> tuple[dict[str, Any] | None, float]:
    """The loop's resume state (mapped onto the trial's ``device``) and the trial's seconds so far,
    from a Ray checkpoint (or none)."""
    if checkpoint is None:
        return None, 0.0
    with checkpoint.as_directory() as folder:
        saved = torch.load(Path(folder) / STATE_FILE, map_location=device, weights_only=True)
    return saved["loop"], float(saved[TRIAL_SECONDS])


def _writable(data: Dataset) -> Dataset:
    """Copies of arrays that came read-only from Ray's object store (torch warns on those)."""
    import dataclasses

    def copy(a: np.ndarray | None) -> np.ndarray | None:
        return a if a is None or a.flags.writeable else np.array(a)

    def split(s: Split) -> Split:
        return Split(copy(s.users), copy(s.items))  # type: ignore[arg-type]

    return dataclasses.replace(
        data, train=split(data.train), valid=split(data.valid), test=split(data.test),
        image_feat=copy(data.image_feat), text_feat=copy(data.text_feat),
    )
