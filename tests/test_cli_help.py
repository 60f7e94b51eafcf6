"""Every option of every command and subcommand says its default in ``--help``, or why it has none."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest

from mgtune.cli import build_parser


def _options(parser: argparse.ArgumentParser, path: str = "mgtune") -> Iterator[tuple[str, argparse.Action]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _options(sub, f"{path} {name}")
        elif not isinstance(action, argparse._HelpAction):
            yield path, action


def _reason(action: argparse.Action) -> str | None:
    """Why ``action`` shows no default, if it has a good reason."""
    if not action.option_strings:
        return "a positional argument: always given"
    if isinstance(action, argparse._StoreConstAction):
        return "a flag: off unless given"
    if action.required and "(required)" in (action.help or ""):
        return "required, and says so"
    return None


OPTIONS = list(_options(build_parser()))


def test_the_walk_sees_every_command() -> None:
    commands = {path for path, _ in OPTIONS}
    assert {"mgtune train", "mgtune eval", "mgtune recommend", "mgtune run", "mgtune confirm", "mgtune robustness",
            "mgtune report", "mgtune data synth", "mgtune data prepare"} <= commands
    assert len(OPTIONS) > 80


@pytest.mark.parametrize("path, action", OPTIONS, ids=[f"{p} {a.dest}" for p, a in OPTIONS])
def test_every_option_shows_its_default_or_a_reason(path: str, action: argparse.Action) -> None:
    shown = "default: " in (action.help or "")
    assert shown or _reason(action), f"{path} {'/'.join(action.option_strings)}: no default in --help: {action.help!r}"
    if shown:
        assert not action.required, f"{path} {action.option_strings}: required, yet it shows a default"


def test_a_missing_default_fails_the_walk() -> None:
    """The check can fail: an option of a settings class without default_text and with a None default."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--thing", help="a thing")
    (action,) = [a for _, a in _options(parser) if a.dest == "thing"]
    assert "default: " not in (action.help or "") and _reason(action) is None
