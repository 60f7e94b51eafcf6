"""Item text, encoded into a dataset's ``text_feat.npy``: from a table of your own (``--item-text``) or any reader.

``--item-text FILE`` is a CSV, TSV, JSON-lines or parquet table (`mgtune.data.tables`) with an
item id column (the ``--item-col`` name when the file has it, else the first column) and one or
more text columns: those named by ``--text-columns``, by default every other column that does not
hold only numbers. An item's text is its columns' non-empty values joined by spaces; a repeated
id keeps its first row. Only the dataset's items (after the k-core) are encoded, by
`mgtune.data.text.encode_texts` (TF-IDF + SVD by default, or MiniLM), so the vocabulary is the
dataset's own; items without text get the mean vector, as items without features do.

Bad input is a `DataFormatError` naming the file: a named column that is missing, a text column
empty in every row, no text column at all, ids that match no item of the interactions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mgtune.data.features import FeatureReport, FeatureWriter, align_features, no_match_error
from mgtune.data.tables import read_table
from mgtune.data.text import encode_texts
from mgtune.errors import DataFormatError

__all__ = ["ItemTextSource", "ItemTexts", "read_item_text", "text_cells", "join_text", "is_numeric_column",
           "encode_item_texts", "item_text_writer"]


@dataclass(frozen=True)
class ItemTextSource:
    """An ``--item-text`` file; ``columns`` empty: every non-id column that holds text."""

    path: Path
    columns: tuple[str, ...] = ()
    id_column: str = "item_id"


@dataclass(frozen=True)
class ItemTexts:
    """One text per raw item id (``""`` for none), and the fields they were joined from."""

    file: Path
    ids: np.ndarray
    texts: np.ndarray
    fields: list[str]
    duplicate_ids: int = 0


def text_cells(col: pd.Series) -> np.ndarray:
    """The cells of ``col`` as stripped strings; missing cells are ``""``, a list's items are joined by spaces."""

    def cell(v: Any) -> str:
        if isinstance(v, (list, tuple, np.ndarray)):
            return " ".join(str(x).strip() for x in v if x is not None)
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return ""
        return str(v).strip()

    return np.array([cell(v) for v in col], dtype=object)


def join_text(frame: pd.DataFrame, fields: Sequence[str]) -> np.ndarray:
    """Per row, the non-empty cells of ``fields`` joined by spaces."""
    cells = [text_cells(frame[f]) for f in fields]
    return np.array([" ".join(c for c in row if c) for row in zip(*cells)], dtype=object)


def is_numeric_column(cells: np.ndarray) -> bool:
    """Every non-empty cell is a number (then the column is a number, not text); an empty column is not."""
    present = cells[cells != ""]
    return len(present) > 0 and bool(pd.to_numeric(pd.Series(present), errors="coerce").notna().all())


def read_item_text(source: ItemTextSource) -> ItemTexts:
    """Read ``source`` and join each item's text columns (rules in the module docstring)."""
    path = source.path
    frame = read_table(path, "item text file")
    header = [str(c) for c in frame.columns]
    frame.columns = pd.Index(header)
    if len(header) < 2:
        raise DataFormatError(f"{path}: needs an item id column and at least one text column; the header has "
                              f"{', '.join(map(repr, header))}")
    id_col = source.id_column if source.id_column in header else header[0]
    cells = {c: text_cells(frame[c]) for c in header if c != id_col}
    if source.columns:
        missing = [c for c in source.columns if c not in header]
        if missing:
            raise DataFormatError(f"{path}: --text-columns names missing column(s) {', '.join(map(repr, missing))}; "
                                  f"the header has {', '.join(map(repr, header[:12]))}")
        if id_col in source.columns:
            raise DataFormatError(f"{path}: --text-columns names {id_col!r}, the item id column")
        fields = list(source.columns)
    else:
        fields = [c for c in cells if not is_numeric_column(cells[c])]
        if not fields:
            raise DataFormatError(f"{path}: no text column: every column besides the id {id_col!r} holds numbers "
                                  "(name the text columns with --text-columns)")
    for f in fields:
        if not (cells[f] != "").any():
            raise DataFormatError(f"{path}: text column {f!r} is empty in every row")
    ids = text_cells(frame[id_col])
    first = (ids != "") & ~pd.Index(ids).duplicated(keep="first")
    texts = join_text(frame, fields)
    duplicates = int(((ids != "") & ~first).sum())
    return ItemTexts(path, ids[first], texts[first], fields, duplicate_ids=duplicates)


def encode_item_texts(texts: ItemTexts, item_ids: pd.Index, out: Path, encoder: str, seed: int) -> FeatureReport:
    """Encode the texts of the dataset's items and write the ``[n_items, d]`` matrix to ``out``.

    Only ids that are items (``item_ids``, raw ids in item order) and have text are encoded; the
    others' rows are the mean. Shapes: the file is ``(len(item_ids), d)``.
    """
    matched = item_ids.get_indexer(texts.ids) >= 0
    if not matched.any():
        raise no_match_error(texts.file, len(texts.ids), item_ids)
    has = matched & (texts.texts != "")
    if not has.any():
        raise DataFormatError(f"{texts.file}: no item of the interactions has text in {', '.join(texts.fields)}")
    values = encode_texts([str(t) for t in texts.texts[has]], encoder, seed=seed)
    report = align_features([(texts.ids[has], values)], item_ids, out, texts.file)
    report.n_unmatched_rows = int((~matched).sum())
    report.n_duplicate_rows = texts.duplicate_ids
    report.details = {"holds": [{"fields": texts.fields, "kind": "text", "dim": report.dim, "encoder": encoder}],
                      "items_without_text": int((matched & ~has).sum())}
    return report


def item_text_writer(texts: ItemTexts, encoder: str, seed: int) -> FeatureWriter:
    return lambda item_ids, out: encode_item_texts(texts, item_ids, out, encoder, seed)
