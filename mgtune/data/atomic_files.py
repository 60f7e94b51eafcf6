"""RecBole's atomic files: ``NAME.inter``, ``NAME.item``, ``NAME.user``, tab-separated with typed headers.

RecBole (https://recbole.io/docs/user_guide/data/atomic_files.html) writes every column of the
header as ``name:type``, ``type`` one of ``token`` (one discrete value: an id, a year, a brand),
``token_seq`` (space-separated discrete values: genres, the words of a title), ``float`` (a
number: a rating, a timestamp) and ``float_seq`` (space-separated numbers: a vector). The header
is the whole schema, so nothing else is asked of the user; a column without ``:type`` or with
another type is an error naming the file and the column. Cells are read as text (ids stay
``"007"``), empty cells as missing; the ``.kg``/``.link``/``.net`` files are not read (no MMRec
model uses them), and RecBole's pre-split ``NAME.train.inter`` etc. are not either: the split is
ours (`mgtune.data.split`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mgtune.data.tables import check_text_file, read_cells, read_errors
from mgtune.errors import DataFormatError

__all__ = ["FIELD_TYPES", "SEQ_SEPARATOR", "AtomicFile", "RecBoleFiles", "read_atomic", "find_recbole_files"]

FIELD_TYPES = ("token", "token_seq", "float", "float_seq")
SEQ_SEPARATOR = " "  # RecBole's default seq_separator
_SPLITS = (".train", ".valid", ".test")


@dataclass(frozen=True)
class AtomicFile:
    """One atomic file: its cells (str, or NaN when empty), columns named without their types."""

    path: Path
    frame: pd.DataFrame
    types: dict[str, str]


@dataclass(frozen=True)
class RecBoleFiles:
    """The atomic files of dataset ``name`` in a folder; ``item``/``user`` are None when absent."""

    name: str
    inter: Path
    item: Path | None
    user: Path | None


def parse_header(path: Path, line: str) -> dict[str, str]:
    """``{name: type}`` of a typed header line, in column order."""
    types: dict[str, str] = {}
    for column in line.rstrip("\r\n").split("\t"):
        name, sep, ftype = column.strip().rpartition(":")
        if not sep or not name:
            raise DataFormatError(f"{path}: header column {column.strip()!r} has no :type (RecBole headers are "
                                  f"name:type, type one of {', '.join(FIELD_TYPES)})")
        if ftype not in FIELD_TYPES:
            raise DataFormatError(f"{path}: header column {column.strip()!r} has unknown type {ftype!r} "
                                  f"(RecBole's types are {', '.join(FIELD_TYPES)})")
        if name in types:
            raise DataFormatError(f"{path}: header names column {name!r} twice")
        types[name] = ftype
    return types


def read_atomic(path: Path, header_only: bool = False) -> AtomicFile:
    """Read an atomic file (rules in the module docstring); ``header_only`` reads no rows."""
    check_text_file(path, "atomic file")
    with read_errors(path, "atomic file"), path.open(encoding="utf-8-sig") as fh:
        line = fh.readline()
    if not line.strip():
        raise DataFormatError(f"{path}: empty file; the first line must be a typed header (e.g. item_id:token)")
    types = parse_header(path, line)
    if header_only:
        return AtomicFile(path, pd.DataFrame(columns=list(types)), types)
    frame = read_cells(path, "\t", header=None, skiprows=1, names=list(types), encoding="utf-8-sig")
    return AtomicFile(path, frame, types)


def find_recbole_files(folder: Path) -> RecBoleFiles:
    """The dataset in ``folder``: ``<folder name>.inter`` if there is one, else the folder's only ``.inter``."""
    if not folder.is_dir():
        raise DataFormatError(f"{folder}: RecBole dataset folder not found")
    # whatever is not a folder counts: a FIFO or a broken link named NAME.inter is an error when read, not absent
    candidates = sorted(p for p in folder.glob("*.inter") if not p.is_dir())
    inters = [p for p in candidates if not p.stem.endswith(_SPLITS)]
    own = folder / f"{folder.name}.inter"
    if own in inters:
        inter = own
    elif len(inters) == 1:
        inter = inters[0]
    elif not inters:
        split = [p.name for p in candidates]
        hint = f" (pre-split {', '.join(split)} are not read: the split is mgtune's)" if split else ""
        raise DataFormatError(f"{folder}: no NAME.inter file; a RecBole dataset folder holds NAME.inter and "
                              f"optionally NAME.item and NAME.user{hint}")
    else:
        raise DataFormatError(f"{folder}: several .inter files ({', '.join(p.name for p in inters)}) and none is "
                              f"{own.name}; point --recbole at a folder holding one dataset")
    name = inter.stem

    def optional(suffix: str) -> Path | None:
        path = folder / f"{name}.{suffix}"
        return path if path.exists() or path.is_symlink() else None  # present but unreadable: an error when read

    return RecBoleFiles(name, inter, optional("item"), optional("user"))
