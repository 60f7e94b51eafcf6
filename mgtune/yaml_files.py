"""Reading a YAML file the way every mgtune input is read: safely, and with one-line errors.

PyYAML's safe loader follows YAML 1.1, where a float needs a dot (``1.0e-4``) and ``1e-4`` is a string,
and it keeps the last of two equal keys without a word. Search spaces are written by people, so this
loader reads ``1e-4`` as a number and refuses a duplicate key.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from mgtune.errors import ConfigError

__all__ = ["read_yaml"]


def read_yaml(path: str | Path, what: str = "YAML file") -> Any:
    """The document in ``path``; `ConfigError` naming the file (and the line) for anything unreadable."""
    where = str(path)
    if not Path(path).is_file():
        raise ConfigError(f"{where}: {what} not found")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{where}: cannot read as UTF-8 text ({type(exc).__name__})") from None
    try:
        return yaml.load(text, Loader=_Loader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{where}: not valid YAML{at}: {problem}") from None


_FLOAT = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)


class _Loader(yaml.SafeLoader):
    """Safe loader that reads ``1e-4`` as a float and rejects duplicate keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))
