"""One registry of models, keyed by lower-case name."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from mgtune.errors import ConfigError
from mgtune.models.base import Recommender

__all__ = ["register", "get_model", "model_names"]

_REGISTRY: dict[str, type[Recommender]] = {}
R = TypeVar("R", bound=type[Recommender])


def register(name: str) -> Callable[[R], R]:
    """Class decorator: make a model available as ``name`` (lower case)."""

    def deco(cls: R) -> R:
        key = name.lower()
        assert key not in _REGISTRY, f"model {key} registered twice"
        _REGISTRY[key] = cls
        cls.name = key
        return cls

    return deco


def get_model(name: str) -> type[Recommender]:
    """The model class registered as ``name``; unknown names list the valid ones.

    Every model is registered by then: importing this module runs ``mgtune/models/__init__.py``
    first, which imports every model file.
    """
    key = name.lower()
    if key not in _REGISTRY:
        raise ConfigError(f"unknown model {name!r}; choose one of {', '.join(model_names())}")
    return _REGISTRY[key]


def model_names() -> list[str]:
    return sorted(_REGISTRY)
