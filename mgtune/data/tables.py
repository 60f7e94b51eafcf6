"""Read a table file (interactions, item text) by its suffix: CSV, TSV, JSON lines or parquet, ``.gz`` too.

One reader, so every option that takes a table file accepts the same formats and fails the same
way: a `DataFormatError` naming the file. Text formats are read with every cell as a string (ids
stay text, so ``"007"`` and ``"7"`` differ) and empty cells as missing; JSON lines and parquet keep
their own types.

Every text input of ``mgtune data prepare`` (a table, an id list, an atomic file, Amazon's JSON)
passes `check_text_file` first: a regular file (a FIFO would block), gzip that is whole when named
``.gz``, UTF-8 without NUL bytes (a NUL is binary data, which parsers would keep inside an id).
`read_errors` turns what reading can still raise into the same one-line errors.
"""

from __future__ import annotations

import codecs
import gzip
import warnings
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from mgtune.checks import check_regular_file, first_line, short_repr
from mgtune.errors import DataFormatError

__all__ = ["TABLE_SUFFIXES", "read_table", "read_parquet", "check_text_file", "read_errors", "open_text",
           "check_scalar_column", "read_cells"]

TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".inter", ".jsonl", ".json", ".ndjson", ".parquet")
_CHUNK = 1 << 24
_NL = b"\n"


def _kind(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if len(suffixes) > 1 and suffixes[-1] == ".gz":
        return suffixes[-2]
    return (suffixes or [""])[-1]


def _gzipped(path: Path) -> bool:
    return path.suffix.lower() == ".gz"


@contextmanager
def read_errors(path: Path, what: str) -> Iterator[None]:
    """Within: what reading ``path`` raises (not gzip, cut short, not UTF-8, an OS error) is a `DataFormatError`."""
    try:
        yield
    except gzip.BadGzipFile:
        raise DataFormatError(f"{path}: {what} is not gzip data, though its name ends in .gz") from None
    except EOFError:
        raise DataFormatError(f"{path}: {what} is a truncated gzip file (it ends before its data does)") from None
    except zlib.error as exc:
        raise DataFormatError(f"{path}: {what} has corrupt gzip data ({exc})") from None
    except UnicodeDecodeError as exc:
        raise DataFormatError(f"{path}: {what} is not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise DataFormatError(f"{path}: {what} cannot be read ({exc.strerror or first_line(exc)})") from None


def open_text(path: Path, encoding: str = "utf-8") -> IO[str]:
    """``path`` opened as text, ``.gz`` decompressed (call inside `read_errors`)."""
    return gzip.open(path, "rt", encoding=encoding) if _gzipped(path) else path.open(encoding=encoding)


def check_text_file(path: Path, what: str) -> Path:
    """``path`` if it is a regular file of UTF-8 text without NUL bytes (``.gz``: once decompressed), else a
    `DataFormatError` naming the line. One pass over the bytes, 16 MiB at a time."""
    check_regular_file(path, what)
    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    with read_errors(path, what), (gzip.open(path, "rb") if _gzipped(path) else path.open("rb")) as fh:
        while chunk := fh.read(_CHUNK):
            nul = chunk.find(b"\0")
            if nul >= 0:
                raise DataFormatError(f"{path}: {what} has a NUL byte on line {line + chunk.count(_NL, 0, nul)}: "
                                      "binary data, not text")
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                at = line + chunk.count(_NL, 0, max(0, min(exc.start, len(chunk))))
                raise DataFormatError(f"{path}: {what} is not UTF-8 text (line {at}: {exc.reason}); save it as "
                                      "UTF-8") from None
            line += chunk.count(_NL)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise DataFormatError(f"{path}: {what} is not UTF-8 text (it ends inside a character)") from None
    return path


def read_table(path: Path, what: str) -> pd.DataFrame:
    """The table in ``path``; ``what`` names it in errors (e.g. "interactions file")."""
    check_regular_file(path, what)
    kind = _kind(path)
    if kind not in TABLE_SUFFIXES:
        raise DataFormatError(f"{path}: unknown {what} type {kind!r}; use .csv, .tsv, .jsonl or .parquet")
    if kind == ".parquet":
        return read_parquet(path)
    check_text_file(path, what)
    if path.stat().st_size == 0:
        raise DataFormatError(f"{path}: {what} is empty")
    if kind not in (".jsonl", ".json", ".ndjson"):
        sep = "," if kind == ".csv" else "\t"
        header = read_cells(path, sep, header=None, nrows=1)
        _check_header(path, [str(c) for c in header.iloc[0]] if len(header) else [])
        return read_cells(path, sep)
    try:
        frame = pd.read_json(path, lines=True, dtype=False)
    except Exception as exc:
        raise DataFormatError(f"{path}: cannot read ({first_line(exc)})") from None
    if not all(isinstance(c, str) for c in frame.columns):  # pandas numbers the cells of arrays or bare values
        raise DataFormatError(f"{path}: JSON lines must be one object per line ({{\"user_id\": ..., ...}}); some "
                              "lines are arrays or bare values")
    _check_header(path, [str(c) for c in frame.columns])
    return frame


def read_cells(path: Path, sep: str, **kwargs: Any) -> pd.DataFrame:
    """A delimited text file's cells as strings, empty ones missing (``kwargs`` go to ``pd.read_csv``).

    A row longer than the header is an error: pandas would otherwise make its first cells the index
    and shift every column by one, silently.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            return pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, na_values=[""], index_col=False,
                               **kwargs)
    except pd.errors.ParserWarning:
        raise DataFormatError(f"{path}: a row has more cells than there are columns") from None
    except Exception as exc:
        raise DataFormatError(f"{path}: cannot read ({first_line(exc)})") from None


def _check_header(path: Path, header: list[str]) -> None:
    """Two columns of one name would be read as ``name`` and ``name.1``: which one was meant is not known."""
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise DataFormatError(f"{path}: the header names column {name!r} twice")
        seen.add(name)


def read_parquet(path: Path) -> pd.DataFrame:
    check_regular_file(path, "parquet file")
    try:
        frame = pd.read_parquet(path)
    except ImportError:
        raise DataFormatError(f"{path}: reading parquet needs pyarrow (pip install pyarrow)") from None
    except Exception as exc:
        raise DataFormatError(f"{path}: unreadable parquet file ({first_line(exc)})") from None
    _check_header(path, [str(c) for c in frame.columns])
    return frame


def check_scalar_column(path: Path, col: pd.Series, name: str) -> pd.Series:
    """``col``, refused if a cell is a list, an array or an object (JSON lines and parquet hold them): an id is one
    value, and ``str()`` of a list would make a new id that matches nothing."""
    if col.dtype == object:
        nested = col.map(lambda v: isinstance(v, (list, tuple, dict, set, np.ndarray))).to_numpy(dtype=bool)
        if nested.any():
            row = int(np.flatnonzero(nested)[0])
            raise DataFormatError(f"{path}: column {name!r} holds a {type(col.iloc[row]).__name__} on data row "
                                  f"{row + 1} ({short_repr(col.iloc[row])}); an id is one value")
    return col
