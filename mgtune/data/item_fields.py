"""Item fields of a typed table (RecBole's ``NAME.item``) sorted into text and metadata, and encoded.

The rule (counted over the rows of the file that have a value in the field; ``n`` such rows, and
the vocabulary ``V`` = distinct values of a ``token``, distinct space-separated tokens of a
``token_seq``):

- ``float`` -> ``numeric``; ``float_seq`` -> ``numeric_seq`` (a vector; every row the same length);
- ``token`` whose values are numbers (a year, a count), but for at most 1 in 20 (ml-100k's one
  ``unkonwn`` year), which count as missing -> ``numeric``;
- ``token`` / ``token_seq`` with a small vocabulary that repeats, ``V <= min(256, n / 10)`` (each
  value on ten items or more, on average) -> categorical: ``one_hot`` for a ``token`` (a type, a
  small brand list), ``multi_hot`` for a ``token_seq`` (genres);
- any other ``token`` / ``token_seq`` -> ``text`` (a title, a description, a name among thousands);
- a field with no value at all -> ``empty``, not used.

``--text-fields a,b`` / ``--meta-fields c,d`` override it: a given list is exactly that group
(a text field is then text whatever its type; a metadata field is ``numeric``/``numeric_seq`` by
its type and values as above, else ``one_hot``/``multi_hot`` whatever its vocabulary); a field
that is in neither a given list nor the other group by the rule is ``left_out``.

Text fields are joined per item and encoded by `mgtune.data.text` (`mgtune.data.item_text`). The
metadata block concatenates, per field: 0/1 columns, one per value (one-hot) or token
(multi-hot), ordered by decreasing frequency; or the numbers, standardised to mean 0 and standard
deviation 1 over the dataset's items (a missing number is the mean, 0). Vocabulary and scaling
come from the dataset's items only (after the k-core), so a value no kept item has gets no column.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mgtune.data.atomic_files import SEQ_SEPARATOR
from mgtune.data.features import FeatureReport, FeatureWriter, align_features, no_match_error
from mgtune.data.item_text import ItemTexts, encode_item_texts, join_text, text_cells
from mgtune.data.text import encode_texts
from mgtune.errors import ConfigError, DataFormatError

__all__ = ["TEXT", "ONE_HOT", "MULTI_HOT", "NUMERIC", "NUMERIC_SEQ", "EMPTY", "LEFT_OUT", "MAX_CATEGORIES",
           "MIN_ITEMS_PER_VALUE", "NUMERIC_SHARE", "MAX_HOT_COLUMNS", "ItemField", "ItemTable", "detect_fields",
           "metadata_block", "fields_writer"]

TEXT, ONE_HOT, MULTI_HOT, NUMERIC, NUMERIC_SEQ = "text", "one_hot", "multi_hot", "numeric", "numeric_seq"
EMPTY, LEFT_OUT = "empty", "left_out"
MAX_CATEGORIES = 256
NUMERIC_SHARE = 0.95
MIN_ITEMS_PER_VALUE = 10
MAX_HOT_COLUMNS = 4096
"""The widest one-hot/multi-hot ``--meta-fields`` may force: as wide as the widest features MMRec uses (image, 4096);
a title forced to one-hot over Elec's 63k items would be a 16 GB matrix."""


@dataclass(frozen=True)
class ItemField:
    """One field and what the rule (or an override) made of it; ``vocabulary`` is None for numbers."""

    name: str
    type: str
    kind: str
    rows_with_value: int
    vocabulary: int | None
    chosen_by: str  # "rule", "--text-fields" or "--meta-fields"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ItemTable:
    """An item table: unique raw ids (``str``) and the matching rows of each field's cells (``""`` missing)."""

    file: Path
    ids: np.ndarray
    cells: dict[str, np.ndarray]
    duplicate_ids: int = 0

    @classmethod
    def from_frame(cls, file: Path, frame: pd.DataFrame, id_field: str) -> ItemTable:
        ids = text_cells(frame[id_field])
        first = (ids != "") & ~pd.Index(ids).duplicated(keep="first")
        cells = {c: text_cells(frame[c])[first] for c in frame.columns if c != id_field}
        return cls(file, ids[first], cells, int(((ids != "") & ~first).sum()))


def _tokens(cells: np.ndarray) -> pd.Series:
    """Every token of every row, indexed by row number (a ``token_seq`` split on RecBole's separator)."""
    split = pd.Series(cells).str.split(SEQ_SEPARATOR).explode()
    return split[split.notna() & (split != "")]


def _number_share(cells: np.ndarray) -> float:
    """The share of a field's values that are numbers (0 for a field without values)."""
    present = pd.Series(cells[cells != ""])
    return float(pd.to_numeric(present, errors="coerce").notna().mean()) if len(present) else 0.0


def _vocabulary(cells: np.ndarray, ftype: str) -> int:
    present = cells[cells != ""]
    return int(_tokens(present).nunique()) if ftype == "token_seq" else len(set(present))


def _meta_kind(cells: np.ndarray, ftype: str) -> str:
    if ftype == "float":
        return NUMERIC
    if ftype == "float_seq":
        return NUMERIC_SEQ
    if ftype == "token" and _number_share(cells) >= NUMERIC_SHARE:
        return NUMERIC
    return MULTI_HOT if ftype == "token_seq" else ONE_HOT


def _rule_kind(cells: np.ndarray, ftype: str) -> str:
    n = int((cells != "").sum())
    if n == 0:
        return EMPTY
    kind = _meta_kind(cells, ftype)
    if kind in (NUMERIC, NUMERIC_SEQ):
        return kind
    return kind if _vocabulary(cells, ftype) <= min(MAX_CATEGORIES, n / MIN_ITEMS_PER_VALUE) else TEXT


def _names(option: str, names: Sequence[str] | None, table: ItemTable, id_field: str) -> list[str] | None:
    if names is None:
        return None
    for n, name in enumerate(names):
        if name in names[:n]:
            raise ConfigError(f"{option}: names {name!r} twice")
        if name == id_field:
            raise ConfigError(f"{option}: {name!r} is the item id field of {table.file}, not a feature")
        if name not in table.cells:
            raise ConfigError(f"{option}: {table.file} has no field {name!r}; its fields are "
                              f"{', '.join(map(repr, table.cells))}")
    return list(names)


def detect_fields(table: ItemTable, types: dict[str, str], id_field: str, text_fields: Sequence[str] | None = None,
                  meta_fields: Sequence[str] | None = None) -> list[ItemField]:
    """Every non-id field of ``table`` with its kind, by the rule and the overrides (module docstring)."""
    text = _names("--text-fields", text_fields, table, id_field)
    meta = _names("--meta-fields", meta_fields, table, id_field)
    both = sorted(set(text or ()) & set(meta or ()))
    if both:
        raise ConfigError(f"--text-fields and --meta-fields both name {', '.join(map(repr, both))}")
    out = []
    for name, cells in table.cells.items():
        ftype = types[name]
        rows = int((cells != "").sum())
        vocab = None if ftype in ("float", "float_seq") else _vocabulary(cells, ftype)
        rule = _rule_kind(cells, ftype)
        if text is not None and name in text:
            kind, by = TEXT, "--text-fields"
        elif meta is not None and name in meta:
            kind, by = _meta_kind(cells, ftype), "--meta-fields"
            if kind in (ONE_HOT, MULTI_HOT) and vocab is not None and vocab > MAX_HOT_COLUMNS:
                raise ConfigError(f"--meta-fields: {table.file}'s field {name!r} has {vocab} distinct values, and a "
                                  f"{kind} of them would be {vocab} columns (at most {MAX_HOT_COLUMNS}); give it "
                                  "with --text-fields")
        elif (rule == TEXT and text is not None) or (rule not in (TEXT, EMPTY) and meta is not None):
            kind, by = LEFT_OUT, "rule"
        else:
            kind, by = rule, "rule"
        if by != "rule" and rows == 0:
            raise DataFormatError(f"{table.file}: field {name!r} ({by}) is empty in every row")
        field = ItemField(name, ftype, kind, rows, vocab, by)
        if kind in (NUMERIC, NUMERIC_SEQ):
            _number_block(table, np.arange(len(table.ids)), field)  # a bad number fails now, not after the k-core
        out.append(field)
    return out


def _numbers(cells: np.ndarray, ids: np.ndarray, name: str, file: Path, strict: bool = True) -> np.ndarray:
    """A ``(rows, 1)`` column of floats (NaN where missing); a cell that is not a number is an error if ``strict``."""
    values = pd.to_numeric(pd.Series(cells).replace("", np.nan), errors="coerce").to_numpy(np.float64, copy=True)
    bad = (np.isnan(values) & (cells != "")) | np.isinf(values)
    if bad.any() and strict:
        row = int(np.flatnonzero(bad)[0])
        raise DataFormatError(f"{file}: field {name!r} must hold numbers, got {str(cells[row])!r} for item "
                              f"{str(ids[row])!r}")
    values[bad] = np.nan
    return values[:, None]


def _number_rows(cells: np.ndarray, ids: np.ndarray, name: str, file: Path) -> np.ndarray:
    """A ``float_seq``'s ``(rows, d)`` vectors (NaN rows where missing); vectors of two lengths are an error."""
    present = np.flatnonzero(cells != "")
    parts = [str(cells[r]).split() for r in present]
    width = len(parts[0]) if parts else 1
    out = np.full((len(cells), width), np.nan)
    for r, p in zip(present, parts):
        if len(p) != width:
            raise DataFormatError(f"{file}: field {name!r} holds vectors of {width} and of {len(p)} numbers (item "
                                  f"{str(ids[r])!r}); a float_seq needs one length")
        out[r] = _numbers(np.array(p, dtype=object), np.repeat(ids[r], len(p)), name, file)[:, 0]
    return out


def _number_block(table: ItemTable, rows: np.ndarray, f: ItemField) -> np.ndarray:
    cells, ids = table.cells[f.name][rows], table.ids[rows]
    if f.kind == NUMERIC_SEQ:
        return _number_rows(cells, ids, f.name, table.file)
    return _numbers(cells, ids, f.name, table.file, strict=f.type == "float")  # a token's rare word is missing


def _standardised(values: np.ndarray) -> np.ndarray:
    """Each column to mean 0, sd 1 over its values; missing ones (NaN, a whole column of them too) are 0, the mean.

    The columns are divided by their largest magnitude first: z-scores do not change, and the sums of
    numbers near 1e308 do not overflow.
    """
    scale = np.nanmax(np.abs(values), axis=0, initial=0.0)
    values = values / np.where(scale > 0, scale, 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "Mean of empty slice": a column without values is 0
        mean = np.nanmean(values, axis=0)
        std = np.nanstd(values, axis=0)
    z = (values - mean) / np.where(std > 0, std, 1.0)
    return np.nan_to_num(z, nan=0.0)


def _hot(cells: np.ndarray, multi: bool) -> tuple[np.ndarray, list[str]]:
    """0/1 columns, one per value (or token), most frequent first; and the values."""
    tokens = _tokens(cells) if multi else pd.Series(cells)[cells != ""]
    order = tokens.value_counts(sort=False).sort_index().sort_values(ascending=False, kind="stable")
    vocab = [str(v) for v in order.index]
    out = np.zeros((len(cells), len(vocab)), dtype=np.float32)
    out[tokens.index.to_numpy(), pd.Index(vocab).get_indexer(tokens.to_numpy())] = 1.0
    return out, vocab


def metadata_block(table: ItemTable, rows: np.ndarray, fields: Sequence[ItemField]) -> tuple[np.ndarray,
                                                                                             list[dict[str, Any]]]:
    """The metadata matrix of table rows ``rows`` (module docstring) and one description per field.

    Shapes: returns ``(len(rows), sum of the fields' widths)`` float32.
    """
    blocks, parts = [], []
    for f in fields:
        cells = table.cells[f.name][rows]
        part: dict[str, Any] = {"fields": [f.name], "kind": f.kind}
        if f.kind in (NUMERIC, NUMERIC_SEQ):
            block = _standardised(_number_block(table, rows, f))
        else:
            block, part["values"] = _hot(cells, f.kind == MULTI_HOT)
        part["dim"] = block.shape[1]
        if block.shape[1]:
            blocks.append(block.astype(np.float32))
            parts.append(part)
    if not blocks:
        raise DataFormatError(f"{table.file}: no item of the interactions has a value in "
                              f"{', '.join(f.name for f in fields)}")
    return np.hstack(blocks), parts


def fields_writer(table: ItemTable, text: Sequence[ItemField], meta: Sequence[ItemField], encoder: str,
                  seed: int) -> FeatureWriter:
    """Writes the encoded ``text`` fields, then the ``meta`` block, side by side, for the dataset's items.

    Text alone is `mgtune.data.item_text.encode_item_texts` (items without text get the mean). With a
    metadata block beside it, a matched row without text gets the mean text vector and its own
    metadata; items without a row get the mean of both.
    """
    names = [f.name for f in text]
    frame = pd.DataFrame({n: table.cells[n] for n in names})
    texts = ItemTexts(table.file, table.ids, join_text(frame, names) if names else np.array([]), names,
                      table.duplicate_ids)
    if not meta:
        return lambda item_ids, out: encode_item_texts(texts, item_ids, out, encoder, seed)

    def write(item_ids: pd.Index, out: Path) -> FeatureReport:
        rows = np.flatnonzero(item_ids.get_indexer(table.ids) >= 0)
        if len(rows) == 0:
            raise no_match_error(table.file, len(table.ids), item_ids)
        blocks, holds = [], []
        if names:
            has = texts.texts[rows] != ""
            if not has.any():
                raise DataFormatError(f"{table.file}: no item of the interactions has text in {', '.join(names)}")
            vectors = encode_texts([str(t) for t in texts.texts[rows][has]], encoder, seed=seed)
            block = np.repeat(vectors.mean(axis=0, keepdims=True), len(rows), axis=0)
            block[has] = vectors
            blocks.append(block)
            holds.append({"fields": names, "kind": TEXT, "dim": vectors.shape[1], "encoder": encoder})
        values, parts = metadata_block(table, rows, meta)
        report = align_features([(table.ids[rows], np.hstack([*blocks, values]))], item_ids, out, table.file)
        report.n_unmatched_rows = len(table.ids) - len(rows)
        report.n_duplicate_rows = table.duplicate_ids
        report.details = {"holds": holds + parts}
        return report

    return write
