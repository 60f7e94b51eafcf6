"""Search spaces: ``search_spaces/<model>.yaml`` -> a validated `SearchSpace` -> Optuna suggestions.

File format (one file per model)::

    model: freedom
    params:
      flip_interval: {type: int, low: 1, high: 10}
      learning_rate: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}
      dropout: {type: categorical, choices: [0.8, 0.9]}
  start:                 # optional: configurations the study evaluates first, in this order
    - {flip_interval: 3, learning_rate: 1.0e-3, dropout: 0.8}

``type`` is ``int`` / ``float`` (with ``low <= high`` and optional ``log``) or ``categorical``
(a non-empty list of ``choices``). ``flip_interval`` and ``flip_ratio`` set Mirror Gradient
(`MGConfig`), ``learning_rate`` and ``batch_size`` the training (`TrainConfig`); every other name must
be a field of the model's config dataclass. The file is read with `mgtune.yaml_files` (safe, and ``1e-4`` is a
number). Every problem is one `ConfigError` naming the file, the key and the value.

``start`` (warm starts) is a list of configurations, each a mapping that gives a value to *every*
parameter in ``params`` (no more, no fewer: a start is one point of the space, run exactly as written,
not a partial hint for the sampler to complete). Each value must lie in its parameter's range (an
``int`` parameter takes an integer) or be one of its choices, and together they must make a valid
configuration; two equal entries are refused. The study enqueues them in Optuna before anything is
sampled, so they are its first trials. The repository's files start from each model's reference
defaults, so a study never ends below the reference's default configuration (as judged on validation).
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mgtune.errors import ConfigError
from mgtune.models import get_model, load_model_module, parse_config
from mgtune.store import STUDY_FILE, StudyRecord
from mgtune.training import MGConfig, TrainConfig
from mgtune.yaml_files import read_yaml

if TYPE_CHECKING:
    import optuna

__all__ = [
    "MG_PARAMS", "TRAIN_PARAMS", "Param", "SearchSpace", "find_search_space", "load_search_space", "space_from_dict",
    "recorded_space",
]

MG_PARAMS = ("flip_interval", "flip_ratio")
"""Names that set `MGConfig`; ``--no-mg`` drops them."""
TRAIN_PARAMS = ("learning_rate", "batch_size")
"""Names that set `TrainConfig` (kept by ``--no-mg``); the evaluation's batch size is never searched (it is
sized to the memory there is)."""
TYPES = ("int", "float", "categorical")
SPACES_DIR = "search_spaces"


@dataclass(frozen=True)
class Param:
    """One searched hyperparameter: a numeric range or a list of choices."""

    name: str
    type: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()

    def suggest(self, trial: optuna.Trial) -> Any:
        if self.type == "categorical":
            return trial.suggest_categorical(self.name, list(self.choices))
        assert self.low is not None and self.high is not None
        if self.type == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.name, float(self.low), float(self.high), log=self.log)

    def as_dict(self) -> dict[str, Any]:
        """The file's form of this parameter (what ``study.json`` records)."""
        if self.type == "categorical":
            return {"type": self.type, "choices": list(self.choices)}
        return {"type": self.type, "low": self.low, "high": self.high, "log": self.log}


    def check(self, value: Any) -> Any:
        """``value`` as this parameter takes it (a categorical one: the equal choice itself);
        ValueError saying why when it is not in the range or among the choices."""
        if self.type == "categorical":
            for choice in self.choices:  # True == 1 in Python, but a boolean choice is no number
                if choice == value and isinstance(choice, bool) == isinstance(value, bool):
                    return choice
            raise ValueError(f"{value!r} is not one of the choices {list(self.choices)!r}")
        assert self.low is not None and self.high is not None
        if isinstance(value, bool) or not isinstance(value, int if self.type == "int" else (int, float)):
            raise ValueError(f"{value!r} is not {'an integer' if self.type == 'int' else 'a number'}")
        if not self.low <= value <= self.high:  # NaN fails this too
            raise ValueError(f"{value!r} is outside [{self.low:g}, {self.high:g}]")
        return value if self.type == "int" else float(value)


@dataclass(frozen=True)
class SearchSpace:
    """A model's validated search space; ``source`` is the file it came from; ``start`` the
    configurations to evaluate first (each a value for every parameter)."""

    model: str
    params: tuple[Param, ...]
    source: str
    start: tuple[dict[str, Any], ...] = ()

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.params]

    def without_mg(self) -> SearchSpace:
        """The space of a ``--no-mg`` study: no MG parameters (``learning_rate`` stays), in the starts
        too; starts that differed only in MG settings become one."""
        start: list[dict[str, Any]] = []
        for point in ({k: v for k, v in p.items() if k not in MG_PARAMS} for p in self.start):
            if point not in start:
                start.append(point)
        return dataclasses.replace(self, params=tuple(p for p in self.params if p.name not in MG_PARAMS),
                                   start=tuple(start))

    def as_dict(self) -> dict[str, Any]:
        """The file's form without ``model`` (what ``study.json`` records; `space_from_dict` reads it back)."""
        return {"params": {p.name: p.as_dict() for p in self.params}, "start": [dict(p) for p in self.start]}

    def define_by_run(self) -> _DefineByRun:
        """Optuna define-by-run function for `OptunaSearch` (picklable, so Ray can save it)."""
        return _DefineByRun(self.params)

    def apply(self, base: TrainConfig, sampled: Mapping[str, Any]) -> TrainConfig:
        """``base`` with one trial's sampled values put where they belong."""
        mg = {k: v for k, v in sampled.items() if k in MG_PARAMS}
        train = {k: v for k, v in sampled.items() if k in TRAIN_PARAMS}
        model = {k: v for k, v in sampled.items() if k not in MG_PARAMS and k not in TRAIN_PARAMS}
        return dataclasses.replace(
            base, mg=dataclasses.replace(base.mg, **mg), model_params={**base.model_params, **model}, **train
        )


class _DefineByRun:
    def __init__(self, params: tuple[Param, ...]) -> None:
        self.params = params

    def __call__(self, trial: optuna.Trial) -> None:
        for p in self.params:
            p.suggest(trial)


def find_search_space(model: str) -> Path:
    """``search_spaces/<model>.yaml`` in the working directory, else the one shipped with the package.

    The files live in the repository's top-level ``search_spaces/`` folder, which the wheel installs as
    the package ``mgtune.search_spaces`` (an editable install maps it onto the folder itself), so a
    study started from any folder finds them; a folder of one's own in the working directory wins.
    """
    name = f"{model.lower()}.yaml"
    shipped = resources.files("mgtune.search_spaces").joinpath(name)
    candidates = [Path.cwd() / SPACES_DIR / name, Path(str(shipped))]
    for path in candidates:
        if path.is_file():
            return path
    raise ConfigError(
        f"no search space for model {model!r}: looked for {' and '.join(map(str, candidates))}; "
        "pass one with --search-space PATH"
    )


def load_search_space(path: str | Path, model: str | None = None) -> SearchSpace:
    """Read and validate ``path``; ``model`` (if given) must match the file's ``model``."""
    path = Path(path)
    where = str(path)
    doc = read_yaml(path, "search-space file")
    if not isinstance(doc, dict):
        raise ConfigError(f"{where}: expected a mapping with keys model and params, got {type(doc).__name__}")
    unknown = set(doc) - {"model", "params", "start"}
    if unknown:
        raise ConfigError(f"{where}: unknown top-level key(s) {', '.join(sorted(map(str, unknown)))}; "
                          "expected model, params and optionally start")
    if not isinstance(doc.get("model"), str):
        raise ConfigError(f"{where}: 'model' must name the model, got {doc.get('model')!r}")
    if model is not None and doc["model"].lower() != model.lower():
        raise ConfigError(
            f"{where}: the file is for model {doc['model'].lower()!r}, but the study is for {model.lower()!r}"
        )
    if not isinstance(doc.get("params"), dict) or not doc["params"]:
        raise ConfigError(
            f"{where}: 'params' must be a non-empty mapping of parameter -> spec, got {doc.get('params')!r}"
        )
    return space_from_dict(doc["model"], {k: doc[k] for k in ("params", "start") if k in doc}, str(path.resolve()))


def recorded_space(record: StudyRecord, study_dir: Path) -> SearchSpace:
    """The search space a study recorded in its ``study.json`` (the file of a model of one's own that the study
    recorded is imported first)."""
    load_model_module(record.extra.get("model_module"))
    return space_from_dict(record.model, record.search_space, str(study_dir / STUDY_FILE))


def space_from_dict(model: str, raw: Any, source: str) -> SearchSpace:
    """Validate a space in `SearchSpace.as_dict`'s form (a file's ``params`` and ``start``, or what a
    study recorded in ``study.json``); a bare ``params`` mapping (``study.json`` before warm starts)
    reads as a space without starts."""
    if isinstance(raw, dict) and "params" in raw:  # no model config has a field named params
        unknown = set(map(str, raw)) - {"params", "start"}
        if unknown:
            raise ConfigError(f"{source}: unknown search-space key(s) {', '.join(sorted(unknown))}; "
                              "expected params and optionally start")
        space = _params_from_dict(model, raw["params"], source)
        return dataclasses.replace(space, start=_parse_start(source, raw.get("start"), space))
    return _params_from_dict(model, raw, source)


def _params_from_dict(model: str, raw: Any, source: str) -> SearchSpace:
    where = source
    model = model.lower()
    cls = get_model(model)  # unknown model names list the valid ones
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: 'params' must be a mapping of parameter -> spec, got {raw!r}")
    fields = {f.name for f in dataclasses.fields(cls.config_cls)}
    hints = typing.get_type_hints(cls.config_cls)
    params = []
    for name, spec in raw.items():
        name = str(name)
        where_p = f"{where}: parameter {name!r}"
        if name in MG_PARAMS or name in TRAIN_PARAMS:
            if not cls.trainable:
                raise ConfigError(f"{where_p}: model {model} is not trained, so {name} has no effect; remove it")
            hint = typing.get_type_hints(MGConfig if name in MG_PARAMS else TrainConfig)[name]
        elif name in fields:
            hint = hints[name]
        else:
            valid = [*MG_PARAMS, *TRAIN_PARAMS] if cls.trainable else []
            raise ConfigError(f"{where_p}: unknown parameter; valid: {', '.join(valid + sorted(fields))}")
        param = _parse_param(where_p, name, spec, hint)
        _check_values(where_p, cls.config_cls, param)
        params.append(param)
    return SearchSpace(model, tuple(params), source)


def _parse_start(where: str, raw: Any, space: SearchSpace) -> tuple[dict[str, Any], ...]:
    """The ``start`` list, each entry a complete, valid configuration of ``space`` (see the module doc)."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError(f"{where}: 'start' must be a list of mappings parameter -> value, got {raw!r}")
    params = {p.name: p for p in space.params}
    start: list[dict[str, Any]] = []
    for number, entry in enumerate(raw, 1):
        at = f"{where}: start entry {number}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{at}: expected a mapping parameter -> value, got {entry!r}")
        unknown = sorted(set(map(str, entry)) - set(params))
        if unknown:
            raise ConfigError(f"{at}: unknown parameter(s) {', '.join(unknown)}; the space's parameters: "
                              f"{', '.join(params)}")
        missing = [name for name in params if name not in entry]
        if missing:
            raise ConfigError(f"{at}: no value for {', '.join(missing)}; a start gives every parameter in params")
        point = {}
        for name, param in params.items():
            try:
                point[name] = param.check(entry[name])
            except ValueError as exc:
                raise ConfigError(f"{at}: {name} = {exc}") from None
        try:  # values that are each valid can still clash (alpha1 > flip_ratio, say)
            cfg = space.apply(TrainConfig(model=space.model, dataset="d"), point)
            parse_config(get_model(space.model).config_cls, cfg.model_params)
        except ConfigError as exc:
            raise ConfigError(f"{at}: not a valid configuration ({exc})") from None
        if point in start:
            raise ConfigError(f"{at}: repeats entry {start.index(point) + 1}")
        start.append(point)
    return tuple(start)


def _parse_param(where: str, name: str, spec: Any, hint: Any) -> Param:
    if not isinstance(spec, dict):
        raise ConfigError(f"{where}: expected a mapping like {{type: float, low: 0.1, high: 1.0}}, got {spec!r}")
    kind = spec.get("type")
    if kind not in TYPES:
        raise ConfigError(f"{where}: unknown type {kind!r}; use one of {', '.join(TYPES)}")
    allowed = {"type", "choices"} if kind == "categorical" else {"type", "low", "high", "log"}
    unknown = set(spec) - allowed
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))} for type {kind}; "
                          f"allowed: {', '.join(sorted(allowed))}")
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices:
            raise ConfigError(f"{where}: 'choices' must be a non-empty list, got {choices!r}")
        for c in choices:
            if not isinstance(c, (bool, int, float, str)):
                raise ConfigError(f"{where}: choices must be numbers, strings or booleans, got {c!r}")
        if len(set(map(repr, choices))) != len(choices):
            raise ConfigError(f"{where}: 'choices' has duplicates: {choices!r}")
        return Param(name, kind, choices=tuple(choices))

    if kind == "float" and hint is int:
        raise ConfigError(f"{where}: is an integer hyperparameter; use type int")
    if kind == "int" and hint not in (int, float):
        raise ConfigError(f"{where}: is not numeric; use type categorical")
    bounds = []
    for key in ("low", "high"):
        value = spec.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(f"{where}: '{key}' must be a finite number, got {value!r}")
        if kind == "int" and value != int(value):
            raise ConfigError(f"{where}: '{key}' must be an integer for type int, got {value!r}")
        bounds.append(int(value) if kind == "int" else float(value))
    low, high = bounds
    if low > high:
        raise ConfigError(f"{where}: low <= high must hold, got low={low}, high={high}")
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise ConfigError(f"{where}: 'log' must be true or false, got {log!r}")
    if log and low <= 0:
        raise ConfigError(f"{where}: a log range needs low > 0, got low={low}")
    return Param(name, kind, low=low, high=high, log=log)


def _check_values(where: str, config_cls: type, param: Param) -> None:
    """Every end of a range and every choice must be a valid setting (e.g. ``dropout < 1``)."""
    values = list(param.choices) if param.type == "categorical" else [param.low, param.high]
    for value in values:
        setting: dict[str, Any] = {param.name: value}
        try:
            if param.name in MG_PARAMS:
                MGConfig(**setting)
            elif param.name in TRAIN_PARAMS:
                TrainConfig(model="m", dataset="d", **setting)
            else:
                parse_config(config_cls, {param.name: value})
        except ConfigError as exc:
            raise ConfigError(f"{where}: value {value!r} is invalid ({exc})") from None
