"""Typed configuration of one training run (a `mgtune train` or one study trial)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from mgtune.checks import MAX_SEED, check_float, check_int
from mgtune.errors import ConfigError
from mgtune.options import option, options_of
from mgtune.store.metrics import CUTOFFS, METRICS, metric_names

__all__ = ["MGConfig", "TrainConfig", "METRICS", "CUTOFFS", "metric_names", "parse_sets"]

_MAX_SIZE = 10**9  # epochs, batch sizes, cutoffs: anything larger is a typo


@dataclass(frozen=True)
class MGConfig:
    """Mirror Gradient settings (the reference's ``alpha1``, ``alpha2`` and ``beta``, renamed once)."""

    enabled: bool = option(True, flag="--no-mg", const=False, help="train without Mirror Gradient")
    alpha1: float = option(1.0, help="MG: weight of the normal step on a flip batch")
    flip_ratio: float = option(0.2, help="MG: weight of the mirrored (negated) step; the reference's alpha2")
    flip_interval: int = option(3, help="MG: every K-th batch (batch 0 included) is mirrored; the reference's beta")

    def __post_init__(self) -> None:
        if not isinstance(self.enabled, bool):
            raise ConfigError(f"mg.enabled must be true or false, got {self.enabled!r}")
        check_int("flip_interval", self.flip_interval, low=1)
        check_float("flip_ratio", self.flip_ratio, low=0)
        check_float("alpha1", self.alpha1, low=0, low_open=True)
        if self.enabled and not self.alpha1 > self.flip_ratio:
            # a flip batch steps on alpha1 * L, then on -flip_ratio * L: with flip_ratio >= alpha1 the
            # pair is net gradient ascent
            raise ConfigError(
                f"Mirror Gradient needs alpha1 > flip_ratio (otherwise a flip batch is net gradient ascent), "
                f"got alpha1={self.alpha1:g}, flip_ratio={self.flip_ratio:g}"
            )


@dataclass(frozen=True)
class TrainConfig:
    """Everything one run depends on; defaults are MMRec's ``overall.yaml``."""

    model: str = option(help="model name, e.g. freedom")
    dataset: str = option(help="dataset folder name under --data-dir ('demo' is built in)")
    data_dir: str = option("datasets", help="the folder of dataset folders")
    model_params: dict[str, Any] = field(default_factory=dict)  # overrides of the model's config (--set)
    mg: MGConfig = field(default_factory=MGConfig)
    epochs: int = option(1000, help="epochs at most")
    batch_size: int = option(2048, help="training interactions per optimiser step (searchable in a search space too)")
    eval_batch_size: int = 4096  # users scored at once; evaluation shrinks it to the memory there is
    learning_rate: float = option(1e-3, flag="--lr", default_text="0.001, or the model's own", help="learning rate")
    weight_decay: float = 0.0
    lr_decay: float = 1.0  # lr(epoch) = learning_rate * lr_decay ** (epoch / lr_decay_every)
    lr_decay_every: int = 50
    patience: int = option(20, help="early stopping: stop after this many epochs without a better validation "
                           "metric, plus one")
    valid_metric: str = option("recall@20", flag="--metric", help="validation metric of early stopping")
    topk: tuple[int, ...] = CUTOFFS
    seed: int = option(999, help="seed of initialisation and batch order")
    device: str = option("auto", help="auto, cpu or cuda")

    def __post_init__(self) -> None:
        for name in ("model", "dataset", "data_dir", "valid_metric", "device"):
            if not isinstance(getattr(self, name), str):
                raise ConfigError(f"{name} must be a string, got {getattr(self, name)!r}")
        if not isinstance(self.model_params, dict):
            raise ConfigError(f"model_params must be a mapping of hyperparameter -> value, got {self.model_params!r}")
        if not isinstance(self.mg, MGConfig):
            raise ConfigError(f"mg must be Mirror Gradient settings, got {self.mg!r}")
        if not isinstance(self.topk, tuple) or not self.topk:
            raise ConfigError(f"topk must be a non-empty list of cutoffs, got {self.topk!r}")
        for k in self.topk:
            check_int("topk", k, low=1, high=_MAX_SIZE)
        if self.valid_metric not in metric_names(self.topk):
            raise ConfigError(
                f"unknown validation metric {self.valid_metric!r}; use one of {', '.join(metric_names(self.topk))}"
            )
        for name in ("epochs", "batch_size", "eval_batch_size", "lr_decay_every"):
            check_int(name, getattr(self, name), low=1, high=_MAX_SIZE)
        check_int("patience", self.patience, low=0)
        check_int("seed", self.seed, low=0, high=MAX_SEED)
        check_float("learning_rate", self.learning_rate, low=0, low_open=True)
        check_float("weight_decay", self.weight_decay, low=0)
        check_float("lr_decay", self.lr_decay, low=0, low_open=True)
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
    def from_options(cls, model: str, dataset: str, sets: list[str] | None = None, **settings: Any) -> TrainConfig:
        """`for_model` from command-line options: ``sets`` are ``--set key=value`` texts, checked against the
        model's config at once (before any data is read)."""
        from mgtune.models import get_model, parse_config

        params = parse_sets(sets or [])
        flags = {f.name: opt.flag or "--" + f.name.replace("_", "-")
                 for c in (cls, MGConfig) for f, opt in options_of(c)}
        for key in params:
            if key in flags:
                raise ConfigError(f"--set {key}={params[key]}: {key} is a training setting, not a model "
                                  f"hyperparameter; use {flags[key]}")
        parse_config(get_model(model).config_cls, params)
        return cls.for_model(model.lower(), dataset, model_params=params, **settings)

    @classmethod
    def from_dict(cls, d: Any) -> TrainConfig:
        """The inverse of `as_dict`; anything else (a checkpoint's foreign config) is a `ConfigError`."""
        if not isinstance(d, dict):
            raise ConfigError(f"training settings must be a mapping, got {type(d).__name__}")
        d = dict(d)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(map(str, d)) - known
        if unknown:
            raise ConfigError(f"unknown training setting(s): {', '.join(sorted(unknown))}")
        mg, topk = d.get("mg", {}), d.get("topk", CUTOFFS)
        if not isinstance(mg, dict) or set(map(str, mg)) - {f.name for f in dataclasses.fields(MGConfig)}:
            raise ConfigError(f"mg must be a mapping of enabled, alpha1, flip_ratio, flip_interval, got {mg!r}")
        if not isinstance(topk, (list, tuple)):
            raise ConfigError(f"topk must be a list of cutoffs, got {topk!r}")
        missing = [f.name for f in dataclasses.fields(cls) if f.name in ("model", "dataset") and f.name not in d]
        if missing:
            raise ConfigError(f"missing training setting(s): {', '.join(missing)}")
        return cls(**{**d, "mg": MGConfig(**mg), "topk": tuple(topk)})


def parse_sets(pairs: list[str]) -> dict[str, str]:
    """``["reg_weight=0.001", ...]`` -> ``{"reg_weight": "0.001"}``; `ConfigError` for a pair without ``=``."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set expects key=value, got {pair!r}")
        out[key.strip()] = value.strip()
    return out
