"""Command-line options declared where their settings live: a dataclass field carries its default and help.

Each command's settings are one frozen dataclass whose fields hold the defaults and whose
``__post_init__`` holds every check. A field made with `option` also describes its command-line
option (flag, help, metavar, choices); `mgtune.cli` builds the parser from these fields, shows
every default in ``--help``, and passes on only what the user gave, so the dataclass is the one
place a default is written and a value is checked.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from mgtune.errors import ConfigError

__all__ = ["option", "Option", "options_of", "parse_list", "parse_floats"]


@dataclasses.dataclass(frozen=True)
class Option:
    """What the command line needs to know about one settings field."""

    help: str
    flag: str | None = None  # default: --field-name; "" for a positional argument
    metavar: str | None = None
    choices: tuple[str, ...] | None = None
    parse: Callable[[str], Any] | None = None  # text -> value (default: the field's type)
    const: Any = None  # a flag without a value sets the field to this (e.g. --resume: True)
    default_text: str | None = None  # what --help shows as the default, where the value alone would not say
    repeat: bool = False  # may be given several times (a list of texts)


def option(default: Any = dataclasses.MISSING, *, help: str, flag: str | None = None, metavar: str | None = None,
           choices: tuple[str, ...] | None = None, parse: Callable[[str], Any] | None = None, const: Any = None,
           default_text: str | None = None, repeat: bool = False) -> Any:
    """A dataclass field with ``default`` that is also a command-line option (see `Option`)."""
    meta = {"option": Option(help, flag, metavar, choices, parse, const, default_text, repeat)}
    if isinstance(default, (list, dict, set)):
        raise TypeError("option defaults must be immutable (use a tuple)")
    return dataclasses.field(default=default, metadata=meta)


def options_of(cls: type) -> list[tuple[dataclasses.Field[Any], Option]]:
    """The fields of the settings class ``cls`` that are command-line options, in declaration order."""
    return [(f, f.metadata["option"]) for f in dataclasses.fields(cls) if "option" in f.metadata]


def parse_list(text: str, option: str) -> tuple[str, ...]:
    """``"a,b"`` -> ``("a", "b")`` for the option named ``option``; an empty list is a `ConfigError`."""
    items = tuple(x.strip() for x in text.split(",") if x.strip())
    if not items:
        raise ConfigError(f"{option}: expected a comma-separated list, got {text!r}")
    return items


def parse_floats(text: str, option: str) -> tuple[float, ...]:
    """``"0,0.5"`` -> ``(0.0, 0.5)``; an item that is not a number is a `ConfigError`."""
    out = []
    for item in parse_list(text, option):
        try:
            out.append(float(item))
        except ValueError:
            raise ConfigError(f"{option}: {item!r} is not a number") from None
    return tuple(out)
