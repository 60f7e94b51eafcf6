"""Typed configuration of one training run (a `mgtune train` or one study trial)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from mgtune.errors import ConfigError

__all__ = ["MGConfig", "TrainConfig", "METRICS", "CUTOFFS", "metric_names"]

METRICS = ("recall", "precision", "map", "ndcg")
CUTOFFS = (5, 10, 20, 50)  # the cutoffs k of every metric@k recorded, unless a config says otherwise


def metric_names(topk: tuple[int, ...]) -> list[str]:
    """Keys like ``recall@20`` for every metric and cutoff."""
    return [f"{m}@{k}" for m in METRICS for k in topk]


@dataclass(frozen=True)
class MGConfig:
    """Mirror Gradient settings (the reference's ``alpha1``, ``alpha2`` and ``beta``, renamed once)."""

    enabled: bool = True
    alpha1: float = 1.0  # weight of the normal step on a flip batch
    flip_ratio: float = 0.2  # weight of the mirrored (negated) step; the reference's alpha2
    flip_interval: int = 3  # every flip_interval-th batch (batch 0 included) is a flip batch; beta

    def __post_init__(self) -> None:
        if self.flip_interval < 1:
            raise ConfigError(f"flip_interval must be >= 1, got {self.flip_interval}")
        if self.flip_ratio < 0:
            raise ConfigError(f"flip_ratio must be >= 0, got {self.flip_ratio}")


@dataclass(frozen=True)
class TrainConfig:
    """Everything one run depends on; defaults are MMRec's ``overall.yaml``."""

    model: str
    dataset: str
    data_dir: str = "datasets"
    model_params: dict[str, Any] = field(default_factory=dict)  # overrides of the model's config
    mg: MGConfig = field(default_factory=MGConfig)
    epochs: int = 1000
    batch_size: int = 2048
    eval_batch_size: int = 4096
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    lr_decay: float = 1.0  # lr(epoch) = learning_rate * lr_decay ** (epoch / lr_decay_every)
    lr_decay_every: int = 50
    patience: int = 20  # stop after this many epochs without a better validation metric, plus one
    valid_metric: str = "recall@20"
    topk: tuple[int, ...] = CUTOFFS
    seed: int = 999
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.valid_metric not in metric_names(self.topk):
            raise ConfigError(
                f"unknown validation metric {self.valid_metric!r}; use one of {', '.join(metric_names(self.topk))}"
            )
        for name in ("epochs", "batch_size", "eval_batch_size", "lr_decay_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.learning_rate <= 0:
            raise ConfigError(f"learning_rate must be > 0, got {self.learning_rate}")
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ConfigError(f"device must be auto, cpu or cuda, got {self.device!r}")

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-able form (also what checkpoints store)."""
        d = dataclasses.asdict(self)
        d["topk"] = list(self.topk)
        return d

    @classmethod
    def for_model(cls, model: str, dataset: str, **settings: Any) -> TrainConfig:
        """A config with ``model``'s own training defaults under ``settings`` (a ``None`` setting is unset).

        As in MMRec, where a model's YAML overrides ``overall.yaml`` (LATTICE's and MGCN's
        ``learning_rate_scheduler: [0.96, 50]``, for instance): see ``Recommender.train_defaults``.
        """
        from mgtune.models import get_model

        given = {k: v for k, v in settings.items() if v is not None}
        return cls(model=model, dataset=dataset, **{**get_model(model).train_defaults, **given})

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        d = dict(d)
        d["mg"] = MGConfig(**d.get("mg", {}))
        d["topk"] = tuple(d.get("topk", CUTOFFS))
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"unknown training setting(s): {', '.join(sorted(unknown))}")
        return cls(**d)
