"""Writing a file so that no reader, and no crash, ever sees half of it.

Every output of mgtune (datasets, caches, checkpoints, study files, results) is written to a temp
file beside its target and renamed over it only once complete: the old file stays whole until then,
and an error removes the temp file. Temp names are unique, so concurrent writers (Ray trials
sharing a cache) never write into one another's file.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from mgtune.checks import finite_or_none

__all__ = ["atomic_open", "write_text", "write_json", "json_text", "replace_dir"]

_UMASK = os.umask(0o022)  # read the process umask (the only way is to set it) and put it back
os.umask(_UMASK)


@contextmanager
def atomic_open(path: Path, mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """Open a temp file beside ``path`` for writing; on a clean exit it replaces ``path``.

    The file gets the permissions a plain ``open`` would give it (``mkstemp`` makes them 0600).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, **kwargs) as fh:
            yield fh
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` (UTF-8), atomically."""
    with atomic_open(path, "w", encoding="utf-8") as fh:
        fh.write(text)


def json_text(obj: Any, indent: int | None = None) -> str:
    """``obj`` as standard JSON: non-finite numbers become null (never the non-JSON ``NaN``)."""
    return json.dumps(finite_or_none(obj), indent=indent, allow_nan=False)


def write_json(path: Path, obj: Any) -> None:
    """Replace ``path`` with ``obj`` as indented JSON, atomically."""
    write_text(path, json_text(obj, indent=2) + "\n")


def replace_dir(folder: Path, build: Callable[[Path], object]) -> None:
    """Run ``build`` on a temp folder beside ``folder``, then put it in ``folder``'s place.

    A whole dataset folder is swapped, so nothing of an old one (a stale graph file, a cache) survives
    into the new one. The old folder is renamed aside first and removed after the swap: two renames,
    so for an instant ``folder`` is absent, but never half-written; a failure restores the old one.
    """
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.parent / f".{folder.name}.{uuid.uuid4().hex}.tmp"
    tmp.mkdir()  # the permissions a plain mkdir gives (mkdtemp's would be 0700)
    old = tmp.with_suffix(".old")
    try:
        build(tmp)
        if folder.exists():
            os.rename(folder, old)
        os.rename(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists() and not folder.exists():
            os.rename(old, folder)
        raise
    shutil.rmtree(old, ignore_errors=True)
