"""One registry of models, keyed by lower-case name: the built-in ones and your own.

A model of your own joins with the same contract as a built-in one (a `Recommender` subclass with
its own ``config_cls``; `mgtune.testing.check_model` runs every check), in one of two ways:

- an installed package declares it in the entry-point group ``mgtune.models``
  (``[project.entry-points."mgtune.models"]`` ``mymodel = "my_pkg.model:MyModel"``). It is imported the
  first time its name is asked for, so a broken plugin never stops a built-in model; `load_plugins`
  imports them all (``mgtune models``);
- a Python file registers it with ``@register("mymodel")``, imported by
  `mgtune.models.model_files.load_model_file` (``--model-module FILE``).

A class that is not a `Recommender`, has no ``config_cls`` of its own, declares unknown
``needs_modalities`` or takes a name already taken is refused with one `ConfigError` naming its origin.
Each model's origin (``built-in``, ``package NAME``, ``file PATH``) is kept for ``mgtune models``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
from collections.abc import Callable, Iterator
from importlib.metadata import EntryPoint, entry_points
from typing import Any, TypeVar

from mgtune.errors import ConfigError, MgtuneError
from mgtune.models.base import MODALITY_NEEDS, ModelConfig, Recommender

__all__ = [
    "ENTRY_POINT_GROUP", "register", "unregister", "get_model", "model_names", "model_origin", "check_model_class",
    "load_plugins", "loading_origin",
]

ENTRY_POINT_GROUP = "mgtune.models"
BUILT_IN = "built-in"
_NAME = re.compile(r"[a-z][a-z0-9_]*")

_REGISTRY: dict[str, type[Recommender]] = {}
_ORIGIN: dict[str, str] = {}
_LOADING: list[str] = []  # the origin of the code being imported (a package or a file), innermost last
R = TypeVar("R", bound=type[Recommender])


@contextlib.contextmanager
def loading_origin(origin: str) -> Iterator[None]:
    """Models registered inside this block come from ``origin`` (``package NAME``, ``file PATH``)."""
    _LOADING.append(origin)
    try:
        yield
    finally:
        _LOADING.pop()


def register(name: str) -> Callable[[R], R]:
    """Class decorator: make a model available as ``name`` (lower case); see the module doc for the checks."""

    def deco(cls: R) -> R:
        _add(name, cls, _origin(cls))
        return cls

    return deco


def unregister(name: str) -> None:
    """Forget the model ``name`` (`mgtune.testing.check_model` registers a class for the checks only)."""
    _REGISTRY.pop(name.lower(), None)
    _ORIGIN.pop(name.lower(), None)


def _origin(cls: type) -> str:
    if _LOADING:
        return _LOADING[-1]
    return BUILT_IN if cls.__module__.startswith("mgtune.models.") else f"module {cls.__module__}"


def check_model_class(name: str, cls: Any, where: str) -> None:
    """The registry's checks of a model class before it is registered as ``name``; `ConfigError` naming ``where``."""
    if not _NAME.fullmatch(name.lower()):
        raise ConfigError(f"{where}: model name {name!r} must be a letter then letters, digits or _")
    if not (isinstance(cls, type) and issubclass(cls, Recommender)):
        raise ConfigError(f"{where}: model {name!r} is {cls!r}, not a subclass of mgtune.models.Recommender")
    config = cls.config_cls
    if config is ModelConfig or not (isinstance(config, type) and issubclass(config, ModelConfig)
                                     and dataclasses.is_dataclass(config)):
        raise ConfigError(f"{where}: model {name!r} ({cls.__qualname__}) has no config_cls of its own: set it to a "
                          "frozen dataclass subclass of mgtune.models.ModelConfig (empty for no hyperparameters)")
    if cls.needs_modalities not in MODALITY_NEEDS:
        raise ConfigError(f"{where}: model {name!r} declares needs_modalities {cls.needs_modalities!r}; use one of "
                          f"{', '.join(map(repr, MODALITY_NEEDS))}")


def _add(name: str, cls: Any, origin: str, where: str | None = None) -> None:
    key = name.lower()
    where = where or ("built-in model" if origin == BUILT_IN else origin)
    check_model_class(key, cls, where)
    taken = _REGISTRY.get(key)
    if taken is cls:
        return
    if taken is not None:
        raise ConfigError(f"{where}: model name {key!r} is taken by the {_ORIGIN[key]} model "
                          f"{taken.__module__}.{taken.__qualname__}; register yours under another name")
    _REGISTRY[key] = cls
    _ORIGIN[key] = origin
    cls.name = key


def _plugins() -> list[EntryPoint]:
    return list(entry_points(group=ENTRY_POINT_GROUP))


def _load_entry_point(ep: EntryPoint) -> None:
    origin = f"package {ep.dist.name if ep.dist is not None else ep.module}"
    where = f"model plugin {ep.name!r} ({ep.value}, {origin})"
    with loading_origin(origin):
        try:
            obj = ep.load()
        except MgtuneError as exc:  # the registry refused a model the import registered: it names the package
            raise ConfigError(f"{where}: {str(exc).removeprefix(origin + ': ')}") from None
        except Exception as exc:  # anything the plugin's import raises is the plugin's fault, not a bug here
            first = (str(exc).strip().splitlines() or [""])[0]
            raise ConfigError(f"{where}: cannot be imported ({type(exc).__name__}: {first})") from None
        _add(ep.name, obj, origin, where)


def get_model(name: str) -> type[Recommender]:
    """The model class registered as ``name``; an installed plugin of that name is imported on first use;
    unknown names list the valid ones.

    Every built-in model is registered by then: importing this module runs ``mgtune/models/__init__.py``
    first, which imports every model file.
    """
    key = name.lower()
    if key not in _REGISTRY:
        for ep in _plugins():
            if ep.name.lower() == key:
                _load_entry_point(ep)
                break
    if key not in _REGISTRY:
        known = sorted({*_REGISTRY, *(ep.name.lower() for ep in _plugins())})
        raise ConfigError(f"unknown model {name!r}; choose one of {', '.join(known)} (a model of your own: "
                          "--model-module FILE.py, or install its package)")
    return _REGISTRY[key]


def model_names() -> list[str]:
    """The registered models: the built-in ones and the plugins imported so far."""
    return sorted(_REGISTRY)


def parse_models(text: str) -> list[str]:
    """``"freedom,vbpr"`` or ``"all"`` -> registered model names, in the given order; `ConfigError` otherwise."""
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    if names == ["all"]:
        return model_names()
    if not names:
        raise ConfigError(f"--model expects a model name, a comma-separated list or 'all', got {text!r}")
    for n in names:
        get_model(n)  # unknown names list the valid ones
    return list(dict.fromkeys(names))


def model_origin(name: str) -> str:
    """Where the registered model ``name`` came from: ``built-in``, ``package NAME`` or ``file PATH``."""
    return _ORIGIN[name.lower()]


def load_plugins() -> list[str]:
    """Import every installed plugin not yet imported; one line per broken one (the others still load)."""
    problems = []
    for ep in _plugins():
        if _REGISTRY.get(ep.name.lower()) is not None and _ORIGIN[ep.name.lower()] != BUILT_IN:
            continue
        try:
            _load_entry_point(ep)
        except ConfigError as exc:
            problems.append(str(exc))
    return problems
