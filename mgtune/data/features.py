"""Item feature files read in row chunks and aligned to a dataset's item ids, streaming to disk.

A feature source is one of

- a ``.npy`` array ``[n, d]`` with an id list (a text file, one raw item id per line, row ``r`` of
  the array belongs to line ``r``);
- a CSV/TSV or parquet table whose first column is the raw item id and whose other columns are
  the ``d`` feature values (parquet needs pyarrow, which Ray installs);
- any iterator of ``(ids, values)`` chunks (the Amazon ``.b`` reader is one).

`align_features` writes the ``[n_items, d]`` float32 matrix a dataset needs straight into a
``.npy`` file on disk (`mgtune.data.npy_rows`: ordinary writes, so a full disk is an error, never
a SIGBUS), one chunk at a time, so a 4096-d Elec matrix never exists in memory. Items the source
does not cover get the mean of the covered rows, as MMRec's ``3feat-encoder`` notebook does, and
are counted. Ids that match no item are ignored and counted; if none match, or the rows differ in
width, or a value is NaN or infinite (as float32), the error names the file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mgtune.checks import check_regular_file, first_line, short_repr
from mgtune.data.npy_rows import NpyRows, write_npy_rows
from mgtune.data.tables import check_scalar_column, check_text_file, read_errors, read_parquet
from mgtune.errors import DataFormatError

__all__ = ["FeatureSource", "FeatureReport", "FeatureWriter", "read_feature_chunks", "align_features",
           "source_writer", "no_match_error"]

Chunk = tuple[np.ndarray, np.ndarray]  # (raw ids as str, values [rows, d])
_CHUNK_ROWS = 8192


@dataclass(frozen=True)
class FeatureSource:
    """A feature file, and for a ``.npy`` array the file of its row ids."""

    path: Path
    ids: Path | None = None


@dataclass
class FeatureReport:
    """What `align_features` found: width, covered and mean-filled items, unmatched source rows."""

    file: str
    dim: int = 0
    n_covered: int = 0
    n_unmatched_rows: int = 0
    n_duplicate_rows: int = 0
    missing_items: list[int] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)  # what the matrix holds, when it was built from fields

    def as_dict(self, item_ids: pd.Index, show: int = 20) -> dict[str, object]:
        return {
            "file": self.file, "dim": self.dim, "covered_items": self.n_covered,
            "mean_filled_items": len(self.missing_items),
            "mean_filled_examples": [str(item_ids[i]) for i in self.missing_items[:show]],
            "unmatched_rows": self.n_unmatched_rows, "duplicate_rows": self.n_duplicate_rows, **self.details,
        }


FeatureWriter = Callable[[pd.Index, Path], FeatureReport]
"""Writes a modality's ``[n_items, d]`` matrix for the raw item ids (in id order) to a path."""


def read_feature_chunks(source: FeatureSource) -> Iterator[Chunk]:
    """The rows of ``source`` in chunks of raw ids and values; format by the file's suffix.

    Every file is checked and read now (a .npy through a read-only map), so a bad one fails before any work.
    """
    path = check_regular_file(source.path, "feature file")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return _npy_chunks(path, source.ids)
    if source.ids is not None:
        raise DataFormatError(f"{source.ids}: an id list goes with a .npy feature file, not with {path.name}")
    if suffix in (".csv", ".tsv", ".txt"):
        return _table_chunks(path, _read_text_table(path, "," if suffix == ".csv" else "\t"))
    if suffix == ".parquet":
        return _table_chunks(path, read_parquet(path))
    raise DataFormatError(f"{path}: unknown feature file type {suffix!r}; use .npy (with ids), .csv, .tsv or .parquet")


def _npy_chunks(path: Path, ids_file: Path | None) -> Iterator[Chunk]:
    if ids_file is None:
        raise DataFormatError(f"{path}: a .npy feature file needs its id list (one raw item id per line)")
    check_text_file(ids_file, "id list")
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)  # read-only: a map that is never written
    except Exception as exc:
        raise DataFormatError(f"{path}: unreadable .npy file ({first_line(exc)})") from None
    if arr.ndim != 2 or arr.dtype.kind not in "iuf":
        raise DataFormatError(f"{path}: expected a 2-d array of numbers [n, d], got {arr.dtype} of shape {arr.shape}")
    with read_errors(ids_file, "id list"), ids_file.open(encoding="utf-8-sig") as fh:  # -sig: a BOM is no id
        ids = np.array([line.strip() for line in fh if line.strip()])
    if len(ids) != arr.shape[0]:
        raise DataFormatError(f"{ids_file}: {len(ids)} ids for the {arr.shape[0]} rows of {path}")

    def chunks() -> Iterator[Chunk]:
        for start in range(0, len(ids), _CHUNK_ROWS):
            yield ids[start : start + _CHUNK_ROWS], np.asarray(arr[start : start + _CHUNK_ROWS])

    return chunks()


def _read_text_table(path: Path, sep: str) -> pd.DataFrame:
    import csv

    check_text_file(path, "feature file")
    try:
        with read_errors(path, "feature file"), path.open(newline="", encoding="utf-8-sig") as fh:
            rows = [row for row in csv.reader(fh, delimiter=sep) if row]  # unequal rows are an error, not NaN
    except csv.Error as exc:
        raise DataFormatError(f"{path}: not a readable table ({exc})") from None
    if len(rows) < 2:
        raise DataFormatError(f"{path}: no feature rows (a header line, then one row per item)")
    width = len(rows[0])
    for n, row in enumerate(rows[1:], start=2):
        if len(row) != width:
            raise DataFormatError(
                f"{path}: mixed feature dimensions: line {n} has {len(row) - 1} values, the header {width - 1}"
            )
    return pd.DataFrame(rows[1:], columns=rows[0])


def _table_chunks(path: Path, table: pd.DataFrame) -> Iterator[Chunk]:
    """First column: the ids. The rest: numbers, or one column of equal-length arrays of numbers."""
    if table.shape[1] < 2:
        raise DataFormatError(f"{path}: needs an id column and at least one feature column")
    ids = check_scalar_column(path, table.iloc[:, 0], str(table.columns[0])).astype(str).str.strip().to_numpy()
    rest = table.iloc[:, 1:]
    if rest.shape[1] == 1 and rest.iloc[:, 0].map(lambda v: isinstance(v, (list, np.ndarray))).all():
        lengths = rest.iloc[:, 0].map(len)
        if lengths.nunique() > 1:
            row = int(np.flatnonzero(lengths.to_numpy() != lengths.iloc[0])[0])
            raise DataFormatError(f"{path}: mixed feature dimensions: row {row + 1} has {lengths.iloc[row]} "
                                  f"values, row 1 has {lengths.iloc[0]}")
        try:
            values = np.stack(rest.iloc[:, 0].to_list()).astype(np.float64)
        except (ValueError, TypeError) as exc:
            raise DataFormatError(f"{path}: feature column {rest.columns[0]!r} holds arrays that are not all "
                                  f"numbers ({first_line(exc)})") from None
    else:
        nested = rest.map(lambda v: isinstance(v, (list, tuple, dict, set, np.ndarray))).to_numpy()
        numeric = rest.apply(lambda col: pd.to_numeric(col, errors="coerce"))
        bad = (numeric.isna().to_numpy() & ~rest.map(_is_nan_text).to_numpy()) | nested
        if bad.any():
            row, col = (int(x[0]) for x in np.nonzero(bad))
            text = bad[:, col].mean() > 0.5 and not nested[:, col].any()  # mostly words: raw text, not a typo
            hint = (f"; it looks like raw text: give the file with --item-text {path} --text-columns "
                    f"{rest.columns[col]} and --text-encoder encodes it") if text else ""
            hint += "; an array of values goes alone, in the only feature column" if nested[row, col] else ""
            raise DataFormatError(f"{path}: feature column {rest.columns[col]!r} has non-numeric value "
                                  f"{short_repr(rest.iloc[row, col])} on data row {row + 1}{hint}")
        values = numeric.to_numpy(dtype=np.float64)  # cast to float32 by align_features, which checks it
    return iter([(ids[start : start + _CHUNK_ROWS], values[start : start + _CHUNK_ROWS])
                 for start in range(0, len(ids), _CHUNK_ROWS)])


def _is_nan_text(value: object) -> bool:
    """A cell that spells a missing number (empty, 'nan', 'inf', a parquet null): a NaN, not a typo."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return True
    return isinstance(value, str) and value.strip().lower() in ("", "nan", "inf", "-inf", "+inf")


def align_features(chunks: Iterable[Chunk], item_ids: pd.Index, out_path: Path, file: str | Path) -> FeatureReport:
    """Write ``[len(item_ids), d]`` float32 rows for the items, in ``item_ids`` order, to ``out_path``.

    ``item_ids[i]`` is the raw id of item ``i`` (a string). A source row whose id names no item is
    skipped; a repeated id keeps its first row. Items no row covers get the mean of the covered
    rows. Raises `DataFormatError` naming ``file`` for values that are NaN or infinite *as float32*
    (a float64 1e39 is finite, its float32 is not; checked after the cast, so the dataset holds only
    what the loader accepts), rows of different widths, or a source whose ids match no item at all.
    The file is written with ordinary writes (`mgtune.data.npy_rows`), so a full disk is an error.

    Shapes: each chunk ``(ids (rows,), values (rows, d))``; the file ``(n_items, d)``.
    """
    report = FeatureReport(file=str(file))
    n_items = len(item_ids)
    covered = np.zeros(n_items, dtype=bool)
    total: np.ndarray | None = None
    seen_rows = 0
    with ExitStack() as stack:
        out: NpyRows | None = None
        for ids, raw in chunks:
            if raw.ndim != 2:
                raise DataFormatError(f"{file}: expected rows of feature values, got an array of shape {raw.shape}")
            with np.errstate(over="ignore", invalid="ignore"):  # finiteness is the float32's, checked below
                values = raw.astype(np.float32)
            if out is None:
                if values.shape[1] == 0:
                    raise DataFormatError(f"{file}: rows have no feature values")
                report.dim = values.shape[1]
                out = stack.enter_context(write_npy_rows(out_path, n_items, report.dim))
                total = np.zeros(report.dim, dtype=np.float64)
            elif values.shape[1] != report.dim:
                raise DataFormatError(
                    f"{file}: mixed feature dimensions: rows of {report.dim} and of {values.shape[1]} values"
                )
            finite = np.isfinite(values).all(axis=1)
            if not finite.all():
                row = int(np.flatnonzero(~finite)[0])
                cast = " (beyond float32's range, +-3.4e38)" if np.isfinite(raw[row]).all() else ""
                raise DataFormatError(
                    f"{file}: NaN or infinite feature values in row {seen_rows + row + 1} (id {str(ids[row])!r}){cast}"
                )
            seen_rows += len(ids)
            rows = item_ids.get_indexer(ids)
            known = rows >= 0
            report.n_unmatched_rows += int((~known).sum())
            rows, values = rows[known], values[known]
            first = ~covered[rows]
            _, first_in_chunk = np.unique(rows, return_index=True)
            unique_first = np.zeros(len(rows), dtype=bool)
            unique_first[first_in_chunk] = True
            keep = first & unique_first
            report.n_duplicate_rows += int((~keep).sum())
            rows, values = rows[keep], values[keep]
            out.write_rows(rows, values)
            covered[rows] = True
            assert total is not None
            total += values.sum(axis=0, dtype=np.float64)
        if out is None:
            raise DataFormatError(f"{file}: no feature rows")
        report.n_covered = int(covered.sum())
        if report.n_covered == 0:
            raise no_match_error(file, report.n_unmatched_rows, item_ids)
        assert total is not None
        missing = np.flatnonzero(~covered)
        report.missing_items = missing.tolist()
        mean = (total / report.n_covered).astype(np.float32)
        for start in range(0, len(missing), _CHUNK_ROWS):
            part = missing[start : start + _CHUNK_ROWS]
            out.write_rows(part, np.broadcast_to(mean, (len(part), report.dim)))
    return report


def no_match_error(file: str | Path, n_ids: int, item_ids: pd.Index) -> DataFormatError:
    """The error for an item file none of whose ``n_ids`` ids is an item of the interactions."""
    return DataFormatError(
        f"{file}: none of its {n_ids} ids matches an item of the interactions "
        f"(items look like {', '.join(map(repr, item_ids[:3]))}); check the id column"
    )


def source_writer(source: FeatureSource) -> FeatureWriter:
    """The writer of a feature file's matrix; a missing or unknown file fails now, before any other work."""
    chunks = read_feature_chunks(source)
    return lambda item_ids, out: align_features(chunks, item_ids, out, source.path)
