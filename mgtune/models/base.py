"""The model interface every recommender implements, and typed per-model configs."""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self, TypeVar

import torch
from torch import Tensor, nn

from mgtune.checks import check_float, check_int
from mgtune.data import Batch, Dataset
from mgtune.errors import ConfigError

__all__ = ["ModelConfig", "Recommender", "parse_config", "MODALITY_NEEDS"]

MODALITY_NEEDS = ("image or text", "image and text", "image", "text", "none")
"""What a model may declare it needs of the item features (`Recommender.needs_modalities`): at least one
of them, both, one in particular, or none (a model that ignores features)."""

C = TypeVar("C", bound="ModelConfig")
T = TypeVar("T")


@dataclass(frozen=True)
class ModelConfig:
    """Base of every ``<Model>Config``: a frozen dataclass of the model's own hyperparameters."""

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def parse_config(cls: type[C], overrides: Mapping[str, Any]) -> C:
    """Build ``cls`` from defaults plus ``overrides`` (strings from ``--set`` are converted).

    Unknown keys and values of the wrong type raise `ConfigError` naming the key and the choices.
    """
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    values = {}
    for key, raw in overrides.items():
        if key not in fields:
            raise ConfigError(
                f"unknown hyperparameter {key!r} for {cls.__name__}; valid: {', '.join(sorted(fields)) or 'none'}"
            )
        values[key] = _convert(key, raw, hints[key])
    for f in fields.values():
        if f.name in values or f.default is not dataclasses.MISSING:
            _check_field(cls.__name__, f.name, values.get(f.name, f.default), hints[f.name])
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{cls.__name__}: {exc}") from None


_MAX_LAYERS = 64
_MAX_SIZE = 16_384


def _check_field(owner: str, name: str, value: Any, hint: Any) -> None:
    """The rules every model's hyperparameters share, by name and type; a model's own go in its config.

    Counts of layers (``n_*``) are in [0, 64]; every other integer is a size or a neighbour count,
    in [1, 16384]. Floats are finite: dropout rates in [0, 1), temperatures > 0, shares
    (``*_image_weight``, ``lambda_coeff``) in [0, 1], weights and the rest >= 0.
    """
    where = f"{owner}.{name}"
    if typing.get_origin(hint) is tuple:
        if not isinstance(value, tuple) or not value:
            raise ConfigError(f"{where} must be a non-empty list, got {value!r}")
        for item in value:
            _check_field(owner, name, item, typing.get_args(hint)[0])
    elif hint is int:
        if name.startswith("n_"):
            check_int(where, value, low=0, high=_MAX_LAYERS)
        else:
            check_int(where, value, low=1, high=_MAX_SIZE)
    elif hint is float:
        if "dropout" in name:
            check_float(where, value, low=0.0, high=1.0, high_open=True)
        elif "temp" in name:
            check_float(where, value, low=0.0, low_open=True)
        elif name.endswith("image_weight") or name == "lambda_coeff":
            check_float(where, value, low=0.0, high=1.0)
        else:
            check_float(where, value, low=0.0)
    elif hint is bool and not isinstance(value, bool):
        raise ConfigError(f"{where} must be true or false, got {value!r}")
    elif hint is str and not isinstance(value, str):
        raise ConfigError(f"{where} must be a string, got {value!r}")


def _convert(key: str, raw: Any, hint: Any) -> Any:
    origin = typing.get_origin(hint)
    try:
        if origin is tuple:
            inner = typing.get_args(hint)[0]
            items = raw.strip("[]() ").split(",") if isinstance(raw, str) else list(raw)
            return tuple(_convert(key, x, inner) for x in items if str(x).strip() != "")
        if hint is bool:
            if isinstance(raw, str):
                if raw.lower() in ("true", "1", "yes"):
                    return True
                if raw.lower() in ("false", "0", "no"):
                    return False
                raise ValueError(raw)
            return bool(raw)
        if hint is int:
            value = float(raw)
            if value != int(value):
                raise ValueError(raw)
            return int(value)
        if hint is float:
            return float(raw)
        if hint is str:
            return str(raw)
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"hyperparameter {key!r} expects {getattr(hint, '__name__', hint)}, got {raw!r}") from None
    return raw


class Recommender(nn.Module):
    """A multimodal recommender: a loss on training batches and full-ranking scores for users.

    Subclasses set ``config_cls``, build everything they precompute (graphs, kNN structures)
    once in ``__init__``, and end it with ``reset_parameters()``.
    """

    name: ClassVar[str]
    """The lower-case name the model is registered under (set by `registry.register`)."""
    config_cls: ClassVar[type[ModelConfig]] = ModelConfig
    needs_negatives: ClassVar[bool] = True
    """False for models trained on (user, positive) pairs only (BM3, SELFCFED_LGN)."""
    trainable: ClassVar[bool] = True
    """False for models evaluated without training (ItemKNNCBF)."""
    needs_modalities: ClassVar[str] = "image or text"
    """The item features the model needs, one of `MODALITY_NEEDS` (``mgtune models`` lists it);
    `mgtune.testing.check_model` checks that the model builds exactly when they are there."""
    train_defaults: ClassVar[dict[str, Any]] = {}
    """``TrainConfig`` settings this model's reference YAML sets for itself (e.g. a learning-rate decay);
    `TrainConfig.for_model` puts them under whatever the user gives."""
    feature_parts: ClassVar[tuple[str, ...]] = ()
    """What ``__init__`` builds from the item features: attribute names (kNN graphs, feature buffers,
    feature tables); a name also covers the state-dict entries ``name`` and ``name.*``. A model
    evaluated on other features rebuilds these and takes only the rest from its trained weights
    (`load_trained`); ``tests/models/test_feature_parts.py`` checks the list is complete."""

    def __init__(self, data: Dataset, cfg: ModelConfig, device: torch.device) -> None:
        super().__init__()
        self.n_users = data.n_users
        self.n_items = data.n_items
        self.cfg = cfg
        self.device = device
        self._eval_cache: dict[str, Any] = {}

    @classmethod
    def from_dataset(cls, data: Dataset, cfg: ModelConfig | None = None, device: str | torch.device = "cpu") -> Self:
        """Build the model for ``data`` on ``device`` (parameters moved there too)."""
        dev = torch.device(device)
        model = cls(data, cfg if cfg is not None else cls.config_cls(), dev)
        return model.to(dev)

    def reset_parameters(self) -> None:
        """Initialise parameters as the reference does. Default: nothing to do."""

    def loss(self, batch: Batch) -> Tensor:
        """The training loss of one batch, a 0-dim tensor."""
        raise NotImplementedError

    def score(self, users: Tensor) -> Tensor:
        """Scores of every item for ``users``: shape ``(len(users), n_items)``, not masked."""
        raise NotImplementedError

    def pre_epoch(self, epoch: int) -> None:
        """Called before each training epoch (edge pruning, graph resampling...). Default no-op."""

    def cached(self, key: str, build: Callable[[], T]) -> T:
        """Memoise ``build()`` while in eval mode, so full-graph propagation runs once per evaluation."""
        if self.training:
            return build()
        if key not in self._eval_cache:
            self._eval_cache[key] = build()
        return self._eval_cache[key]

    def is_feature_part(self, key: str) -> bool:
        """Whether the state-dict entry ``key`` is one of the `feature_parts`."""
        return any(key == name or key.startswith(f"{name}.") for name in self.feature_parts)

    def load_trained(self, trained: Mapping[str, Tensor], clean_build: Mapping[str, Tensor]) -> None:
        """Load ``trained`` (a trained model's state) into this model, built on other item features.

        Entries outside `feature_parts` are the trained ones. A feature part keeps this build's
        value, and where training moved it (a trainable feature table) it becomes
        ``trained + (this build - clean_build)``: the trained table shifted by the change in the
        features. ``clean_build`` is the state of the model built on the features it was trained on;
        with unchanged features the result is exactly ``trained``.
        """
        own = self.state_dict()
        state = {}
        for key, value in trained.items():
            if not self.is_feature_part(key):
                state[key] = value
            elif torch.equal(value.to(own[key].device), clean_build[key].to(own[key].device)):
                state[key] = own[key]  # not trained: as rebuilt from these features
            else:
                delta = own[key] - clean_build[key].to(own[key].device)
                state[key] = value.to(own[key].device) + delta if bool(delta.any()) else value
        self.load_state_dict(state)

    def train(self, mode: bool = True) -> Self:
        self._eval_cache = {}  # parameters may change between evaluations
        return super().train(mode)
