"""Checks of user-given values, shared by every layer: numbers, names, output folders, JSON.

Every check raises `ConfigError` with the setting's name, the rule and the value, so a bad value
given anywhere (an option, ``--set``, a search space, a checkpoint's config) reads the same.
"""

from __future__ import annotations

import errno
import math
import os
import re
import stat
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mgtune.errors import ConfigError, DataFormatError

__all__ = ["check_int", "check_float", "check_name", "check_writable_dir", "check_regular_file", "first_line",
           "short_repr",
           "finite_or_none", "MAX_SEED"]

MAX_SEED = 2**32 - 1
"""NumPy's seeds are unsigned 32-bit; torch's are wider."""

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def check_int(name: str, value: Any, low: int | None = None, high: int | None = None) -> int:
    """``value`` as an int in ``[low, high]`` (either end may be open-ended)."""
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and math.isfinite(value) and value == int(value):
            value = int(value)
        else:
            raise ConfigError(f"{name} must be an integer, got {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ConfigError(f"{name} must be {_range(low, high)}, got {value}")
    return value


def check_float(name: str, value: Any, low: float | None = None, high: float | None = None,
                low_open: bool = False, high_open: bool = False) -> float:
    """``value`` as a finite float in the range (``low_open``/``high_open``: that end excluded)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, got {value}")
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        raise ConfigError(f"{name} must be {_range(low, high, low_open, high_open)}, got {value:g}")
    return value


def _range(low: float | None, high: float | None, low_open: bool = False, high_open: bool = False) -> str:
    lo = None if low is None else f"{'>' if low_open else '>='} {_fmt(low)}"
    hi = None if high is None else f"{'<' if high_open else '<='} {_fmt(high)}"
    if lo and hi:
        return f"{lo} and {hi}"
    return lo or hi or "a number"


def _fmt(x: float) -> str:
    return str(x) if isinstance(x, int) else f"{x:g}"


def check_name(what: str, name: Any) -> str:
    """A plain folder name (dataset, study): no separators, no ``..``, not absolute, not hidden.

    Names become folders under a root the user chose (``--data-dir``, ``--storage``); a name that
    is a path would put them, or what replaces them, somewhere else.
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(
            f"{what} must be a plain name (letters, digits, '.', '_', '-'; no '/' or '..'; at most 128 "
            f"characters), got {short_repr(name, 60)}"
        )
    if set(name) <= {"."}:
        raise ConfigError(f"{what} must be a plain name, got {name!r}")
    return name


def check_writable_dir(what: str, folder: str | Path) -> Path:
    """``folder`` (which may not exist yet) can be created and written; checked before any work starts."""
    path = Path(folder).expanduser()
    probe = path
    while not probe.exists():  # the nearest existing ancestor decides whether the folder can be created
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise ConfigError(f"{what} {path}: {probe} is a file, not a folder")
    try:  # os.access would say yes to root on a read-only mount: try it
        with tempfile.TemporaryFile(dir=probe, prefix=".mgtune-probe-"):
            pass
    except OSError as exc:
        raise ConfigError(f"{what} {path}: cannot write in {probe} ({exc.strerror or type(exc).__name__})") from None
    return path


_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def check_regular_file(path: str | Path, what: str = "file") -> Path:
    """``path`` if it is a regular file (after following links), else `DataFormatError` naming it and ``what`` it is.

    Every input file is checked here before it is opened or hashed: opening a FIFO (or a terminal, a
    socket) blocks until someone writes to it, so ``mgtune data prepare`` would hang; a folder, a
    broken link or a link loop fails later with a traceback or, worse, reads as "no such file" where
    a missing optional file is allowed.
    """
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise DataFormatError(f"{path}: {what} is a symbolic link loop") from None
        if isinstance(exc, FileNotFoundError):
            broken = f"is a symbolic link to {os.readlink(path)}, which does not exist" if path.is_symlink() else ""
            raise DataFormatError(f"{path}: {what} {broken or 'not found'}") from None
        raise DataFormatError(f"{path}: {what} cannot be read ({exc.strerror or type(exc).__name__})") from None
    if not stat.S_ISREG(mode):
        kind = next((k for test, k in _KINDS if test(mode)), "not a regular file")
        block = (" (reading it would block)" if stat.S_ISFIFO(mode) else
                 " (reading it might never end)" if stat.S_ISCHR(mode) else "")
        raise DataFormatError(f"{path}: {what} is {kind}, not a regular file{block}")
    return path


def short_repr(value: Any, width: int = 40) -> str:
    """``repr(value)``, cut to ``width`` characters: a cell quoted in a message may be a whole document."""
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def first_line(exc: BaseException) -> str:
    """``exc`` in one line, its class named (``ValueError: ...``): messages of libraries may run over several."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def finite_or_none(obj: Any) -> Any:
    """``obj`` with every non-finite float (NaN, inf) replaced by None, so its JSON is JSON.

    Used once, where JSON is made (`mgtune.files.json_text`): a metric that is NaN is reported as
    null, deliberately, never as the non-standard ``NaN`` token.
    """
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {k: finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_or_none(v) for v in obj]
    if hasattr(obj, "item") and hasattr(obj, "dtype") and getattr(obj, "ndim", None) == 0:  # numpy/torch scalar
        return finite_or_none(obj.item())
    return obj
