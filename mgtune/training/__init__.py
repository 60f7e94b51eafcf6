"""Training layer: config, the Mirror Gradient step, the loop, full-ranking evaluation, checkpoints."""

from mgtune.training.checkpoint import load_checkpoint, save_checkpoint
from mgtune.training.config import CUTOFFS, METRICS, MGConfig, TrainConfig, metric_names
from mgtune.training.device import peak_memory_mb, reset_peak_memory, resolve_device
from mgtune.training.environment import device_name, environment
from mgtune.training.evaluate import Evaluator, ranking_metrics
from mgtune.training.loop import EpochReport, TrainResult, build_model, build_optimizer, load_data, train, train_epoch
from mgtune.training.mg import is_flip_batch, mirror_gradient_step

__all__ = [
    "load_checkpoint", "save_checkpoint", "METRICS", "CUTOFFS", "MGConfig", "TrainConfig", "metric_names",
    "Evaluator", "ranking_metrics", "EpochReport", "TrainResult", "build_model", "build_optimizer", "train_epoch",
    "load_data", "resolve_device", "peak_memory_mb", "reset_peak_memory", "train", "is_flip_batch",
    "mirror_gradient_step", "device_name", "environment",
]
