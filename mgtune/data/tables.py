"""Read a table file (interactions, item text) by its suffix: CSV, TSV, JSON lines or parquet, ``.gz`` too.

One reader, so every option that takes a table file accepts the same formats and fails the same
way: a `DataFormatError` naming the file. Text formats are read with every cell as a string (ids
stay text, so ``"007"`` and ``"7"`` differ) and empty cells as missing; JSON lines and parquet keep
their own types.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mgtune.errors import DataFormatError

__all__ = ["TABLE_SUFFIXES", "read_table", "read_parquet"]

TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".inter", ".jsonl", ".json", ".ndjson", ".parquet")


def _kind(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if len(suffixes) > 1 and suffixes[-1] == ".gz":
        return suffixes[-2]
    return (suffixes or [""])[-1]


def read_table(path: Path, what: str) -> pd.DataFrame:
    """The table in ``path``; ``what`` names it in errors (e.g. "interactions file")."""
    if not path.is_file():
        raise DataFormatError(f"{path}: {what} not found")
    kind = _kind(path)
    if kind not in TABLE_SUFFIXES:
        raise DataFormatError(f"{path}: unknown {what} type {kind!r}; use .csv, .tsv, .jsonl or .parquet")
    if kind == ".parquet":
        return read_parquet(path)
    try:
        if kind in (".jsonl", ".json", ".ndjson"):
            return pd.read_json(path, lines=True, dtype=False)
        return pd.read_csv(path, sep="," if kind == ".csv" else "\t", dtype=str, keep_default_na=False,
                           na_values=[""])
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [""])[0]
        raise DataFormatError(f"{path}: cannot read ({type(exc).__name__}: {first})") from None


def read_parquet(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except ImportError:
        raise DataFormatError(f"{path}: reading parquet needs pyarrow (pip install pyarrow)") from None
    except Exception as exc:
        raise DataFormatError(f"{path}: unreadable parquet file ({type(exc).__name__}: {exc})") from None
