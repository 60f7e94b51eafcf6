"""Models of your own from a Python file (``--model-module FILE``): the file is imported once per process
and its ``@register("name")`` calls add its models, with origin ``file PATH``.

The file is imported under a name made from its absolute path, so a Ray worker that imports the same
file (a study records it in ``study.json``; `mgtune.study.trainable.TrialSetup` carries it) gets the
same module and classes as the driver. A file that cannot be imported, or registers nothing, is one
`ConfigError` naming it (and the line, for an error inside it); the built-in models are untouched.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import sys
import traceback
from pathlib import Path

from mgtune.errors import ConfigError, MgtuneError
from mgtune.models.registry import loading_origin, model_names, model_origin, unregister
from mgtune.options import option

__all__ = ["load_model_file", "load_model_module", "model_module_option", "module_path"]


def model_module_option() -> str | None:
    """The ``--model-module`` field of a command's settings (train, run, eval, recommend)."""
    return option(None, metavar="FILE.py", default_text="none", help="a Python file that registers a model of your "
                  "own with @register('name') (see docs/adding-a-model.md)")


def module_path(path: str) -> str:
    """The absolute path of a model file as records keep it (a study's trials run in other folders)."""
    return str(Path(path).expanduser().resolve())


def load_model_module(path: str | None) -> list[str]:
    """`load_model_file` for an optional setting: nothing for None."""
    return [] if path is None else load_model_file(path)


def load_model_file(path: str | Path) -> list[str]:
    """Import the model file ``path`` (once per process); the names of the models it registered."""
    given = str(path)
    file = Path(path).expanduser()
    if file.suffix != ".py":
        raise ConfigError(f"--model-module {given}: expected a Python file ending in .py")
    if not file.is_file():
        raise ConfigError(f"--model-module {given}: file not found")
    file = file.resolve()
    origin = f"file {file}"
    digest = hashlib.blake2b(str(file).encode(), digest_size=6).hexdigest()
    name = f"mgtune_model_file_{re.sub(r'[^0-9A-Za-z_]', '_', file.stem)}_{digest}"
    if name in sys.modules:
        return _from(origin)
    spec = importlib.util.spec_from_file_location(name, file)
    assert spec is not None and spec.loader is not None  # a .py file always has a source loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # before running it: dataclasses and pickling look classes up by module
    with loading_origin(origin):
        try:
            spec.loader.exec_module(module)
        except MgtuneError as exc:  # the registry refused a model: its message names the origin, said once here
            _forget(name, origin)
            raise ConfigError(f"{given}{_line_in(exc, file)}: {str(exc).removeprefix(origin + ': ')}") from None
        except Exception as exc:  # the file's own error, told in one line; not a bug of mgtune
            _forget(name, origin)
            raise ConfigError(f"{given}{_line_in(exc, file)}: cannot be imported ({type(exc).__name__}: "
                              f"{(str(exc).strip().splitlines() or [''])[0]})") from None
    added = _from(origin)
    if not added:
        _forget(name, origin)
        raise ConfigError(f"{given}: registers no model; decorate your Recommender subclass with "
                          "@register('name') from mgtune.models")
    return added


def _from(origin: str) -> list[str]:
    return [n for n in model_names() if model_origin(n) == origin]


def _forget(module_name: str, origin: str) -> None:
    """Undo a failed import: its module and any model it registered before failing."""
    sys.modules.pop(module_name, None)
    for n in _from(origin):
        unregister(n)


def _line_in(exc: BaseException, file: Path) -> str:
    """``, line N`` of the deepest frame of ``exc`` inside ``file`` (a SyntaxError's own line), else ''."""
    if isinstance(exc, SyntaxError) and exc.lineno is not None:
        return f", line {exc.lineno}"
    lines = [f.lineno for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename) == file]
    return f", line {lines[-1]}" if lines else ""
