"""``mgtune train``: one training run into a folder, ``metrics.json`` and ``checkpoint.pt``.

Ctrl-C (or SIGTERM, taken the same way) ends the run but not its results: the best epoch so far is
written as for a finished run, with ``"interrupted": true`` in ``metrics.json``, and the command exits
with 130.
"""

from __future__ import annotations

import contextlib
import signal
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mgtune.checks import check_writable_dir
from mgtune.files import write_json
from mgtune.models import load_model_module
from mgtune.models.model_files import model_module_option
from mgtune.options import option
from mgtune.store import CHECKPOINT_FILE, METRICS_FILE
from mgtune.training.checkpoint import save_checkpoint
from mgtune.training.config import MGConfig, TrainConfig
from mgtune.training.device import peak_memory_mb, resolve_device
from mgtune.training.loop import EpochReport, TrainResult, load_data, train

__all__ = ["TrainOutput", "train_config", "train_into"]


@dataclass(frozen=True)
class TrainOutput:
    """Beside its `TrainConfig`, what ``mgtune train`` needs: where it writes, and the file of your own model."""

    out: str | None = option(None, help="output folder (metrics.json, checkpoint.pt)",
                             default_text="runs/train/MODEL-DATASET-TIMESTAMP")
    model_module: str | None = model_module_option()

    def __post_init__(self) -> None:
        load_model_module(self.model_module)  # before the TrainConfig names the model

    def folder(self, cfg: TrainConfig) -> Path:
        return Path(self.out or f"runs/train/{cfg.model}-{cfg.dataset}-{time.strftime('%Y%m%d-%H%M%S')}")


def train_config(options: dict[str, Any], sets: list[str], mg: MGConfig) -> TrainConfig:
    """The `TrainConfig` of ``mgtune train``'s options (``--set`` texts in ``sets``); the data folder absolute,
    as a checkpoint keeps it."""
    options = dict(options)
    model, dataset = options.pop("model"), options.pop("dataset")
    options["data_dir"] = str(Path(options.get("data_dir", "datasets")).resolve())
    return TrainConfig.from_options(model, dataset, sets, mg=mg, **options)


def train_into(cfg: TrainConfig, output: TrainOutput, log: Callable[[str], None]) -> dict[str, Any]:
    """Train ``cfg`` and write its ``metrics.json`` (returned) and best weights into the output folder.

    The folder is checked before training and the dataset before anything is printed or written. An
    interrupted run (Ctrl-C, SIGTERM) writes its best epoch so far and says ``"interrupted": true``.
    """
    out = output.folder(cfg)
    check_writable_dir("--out", out)
    data = load_data(cfg)
    log(f"training {cfg.model} on {cfg.dataset} ({'MG' if cfg.mg.enabled else 'no MG'}), output in {out}")
    seen = _Seen()
    try:
        with _sigterm_as_interrupt():
            result = train(cfg, callback=seen, data=data, log=log)
    except KeyboardInterrupt:
        result = seen.so_far(cfg)
    summary = result.summary() | ({"interrupted": True} if seen.interrupted else {})
    with _signals_held():  # a second Ctrl-C does not stop the writing half-way
        if result.best_state:
            save_checkpoint(out / CHECKPOINT_FILE, cfg, result.best_state, result.best_epoch)
        write_json(out / METRICS_FILE, summary)
    if seen.interrupted:
        log(f"interrupted after {result.epochs_run} epoch(s): " + (
            f"wrote the best epoch so far ({result.best_epoch}) to {out / METRICS_FILE} and {out / CHECKPOINT_FILE}"
            if result.best_state else f"no epoch had ended, so {out / METRICS_FILE} holds no metrics"))
    return summary


@dataclass
class _Seen:
    """The training loop's callback for `train_into`: the latest epoch report, to fall back on when interrupted."""

    last: EpochReport | None = None
    train_seconds: list[float] = field(default_factory=list)
    interrupted: bool = False

    def __call__(self, report: EpochReport) -> None:
        self.last = report
        self.train_seconds.append(report.train_seconds)

    def so_far(self, cfg: TrainConfig) -> TrainResult:
        """The run as it stood after its last finished epoch: the best epoch's metrics and weights."""
        self.interrupted = True
        rep = self.last
        seconds = statistics.median(self.train_seconds) if self.train_seconds else 0.0
        memory = peak_memory_mb(resolve_device(cfg.device))
        if rep is None:
            return TrainResult(cfg, -1, 0, {}, {}, {}, seconds, memory)
        return TrainResult(cfg, rep.best_epoch, rep.epoch + 1, rep.best_valid, rep.best_test, rep.best_weights,
                           seconds, memory)


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()  # signal handlers can only be set there


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt, as Ctrl-C does, while the block runs."""
    if not _in_main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Ctrl-C and SIGTERM are ignored while the block runs (the results are being written)."""
    if not _in_main_thread():
        yield
        return
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
