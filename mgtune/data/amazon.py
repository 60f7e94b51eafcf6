"""The raw Amazon review data (McAuley's 2014 release) that MMRec's preprocessing notebooks start from.

For a category ``Cat`` (``Baby``, ``Sports_and_Outdoors``, ``Clothing_Shoes_and_Jewelry``,
``Electronics``; the short names ``baby``, ``sports``, ``clothing``, ``elec`` work too) the
folder holds

- the ratings: ``ratings_<Cat>.csv`` (no header: user, item, rating, unix time), or the reviews
  ``reviews_<Cat>_5.json.gz`` / ``reviews_<Cat>.json.gz`` (one JSON object per line, fields
  ``reviewerID``, ``asin``, ``overall``, ``unixReviewTime``), gzipped or not;
- ``meta_<Cat>.json.gz``: one item per line, written as a *Python literal* in that release (single
  quotes), so it is parsed with `json` or else `ast.literal_eval`, never ``eval`` (the notebook's
  ``eval`` would run whatever a line says);
- ``image_features_<Cat>.b``: per item, a 10-byte ASIN then 4096 little-endian float32 (the
  release's CNN features), read through a memory map one chunk at a time.

Text per item, as the ``3feat-encoder`` notebook builds it: title, brand, the first category
path and the description, joined by spaces. Items without a meta line, or with none of those
fields, have no text and get the mean text vector, like items without an image.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mgtune.checks import check_regular_file, first_line
from mgtune.data.dataset import target_folder
from mgtune.data.features import Chunk, FeatureReport, FeatureWriter, align_features
from mgtune.data.item_text import ItemTexts, encode_item_texts
from mgtune.data.prepare import Columns, Interactions, build_dataset, check_prepare_values, interactions_from_frame
from mgtune.data.tables import check_text_file, open_text, read_cells, read_errors
from mgtune.data.text import DEFAULT_TEXT_ENCODER, check_text_encoder
from mgtune.errors import ConfigError, DataFormatError

__all__ = ["CATEGORIES", "AmazonFiles", "find_amazon_files", "read_amazon_interactions", "read_meta",
           "item_text", "image_feature_chunks", "prepare_amazon"]

CATEGORIES = {"baby": "Baby", "sports": "Sports_and_Outdoors", "clothing": "Clothing_Shoes_and_Jewelry",
              "elec": "Electronics", "electronics": "Electronics"}
IMAGE_DIM = 4096
_ASIN_BYTES = 10


@dataclass(frozen=True)
class AmazonFiles:
    """The raw files of one category; ``meta``/``image`` are None when absent."""

    category: str
    ratings: Path
    meta: Path | None
    image: Path | None


def find_amazon_files(folder: Path, category: str) -> AmazonFiles:
    """Locate a category's files in ``folder`` (names in the module docstring)."""
    if not folder.is_dir():
        raise DataFormatError(f"{folder}: Amazon data folder not found")
    cat = CATEGORIES.get(category.lower(), category)

    def first(*names: str) -> Path | None:  # a FIFO or a folder of the name is an error when read, not absent
        path = next((folder / n for n in names if (folder / n).exists() or (folder / n).is_symlink()), None)
        return None if path is None else check_regular_file(path, "Amazon file")

    ratings = first(f"ratings_{cat}.csv", f"reviews_{cat}_5.json.gz", f"reviews_{cat}_5.json",
                    f"reviews_{cat}.json.gz", f"reviews_{cat}.json")
    if ratings is None:
        raise DataFormatError(
            f"{folder}: no ratings_{cat}.csv or reviews_{cat}_5.json(.gz) for category {category!r} "
            f"(from http://jmcauley.ucsd.edu/data/amazon/links.html)"
        )
    return AmazonFiles(cat, ratings, first(f"meta_{cat}.json.gz", f"meta_{cat}.json"),
                       first(f"image_features_{cat}.b"))


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """The numbered non-blank lines of a JSON-lines file (``.gz`` too), checked as text first (`check_text_file`)."""
    check_text_file(path, "Amazon file")
    with read_errors(path, "Amazon file"), open_text(path) as fh:
        for n, line in enumerate(fh, start=1):
            if line.strip():
                yield n, line


def _parse_line(line: str, path: Path, lineno: int) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except (ValueError, RecursionError):  # JSONDecodeError is a ValueError; RecursionError: nested too deeply
        try:
            record = ast.literal_eval(line)  # the 2014 release writes Python literals; never eval()
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError) as exc:  # TypeError: {[1]: 2}
            raise DataFormatError(f"{path}: line {lineno} is neither JSON nor a Python literal "
                                  f"({first_line(exc)})") from None
    if not isinstance(record, dict):
        raise DataFormatError(f"{path}: line {lineno} is a {type(record).__name__}, not an object")
    return record


def read_amazon_interactions(path: Path) -> Interactions:
    """The user, item, rating, timestamp rows of a ratings CSV or a reviews JSON(.gz) file."""
    if path.name.startswith("ratings_"):
        check_text_file(path, "Amazon ratings file")
        frame = read_cells(path, ",", header=None, names=["user", "item", "rating", "timestamp"])
    else:
        rows = []
        for n, line in _lines(path):
            r = _parse_line(line, path, n)
            rows.append((r.get("reviewerID"), r.get("asin"), r.get("overall"), r.get("unixReviewTime")))
        frame = pd.DataFrame(rows, columns=["user", "item", "rating", "timestamp"])
    return interactions_from_frame(frame, path, Columns("user", "item", "rating", "timestamp"))


def read_meta(path: Path, wanted: pd.Index) -> dict[str, dict[str, Any]]:
    """The meta record of each item in ``wanted`` (raw ASINs), streaming over the file."""
    meta: dict[str, dict[str, Any]] = {}
    for n, line in _lines(path):
        record = _parse_line(line, path, n)
        asin = record.get("asin")
        if isinstance(asin, str) and asin in wanted:
            meta[asin] = record
    return meta


def item_text(record: dict[str, Any]) -> str:
    """Title, brand, the first category path and the description, joined by spaces (notebook order)."""
    parts = [record.get("title"), record.get("brand")]
    cats = record.get("categories")
    if isinstance(cats, list) and cats and isinstance(cats[0], list):
        parts.extend(cats[0])
    parts.append(record.get("description"))
    return " ".join(str(p) for p in parts if isinstance(p, str) and p.strip()).replace("\n", " ")


def image_feature_chunks(path: Path, dim: int = IMAGE_DIM, chunk_rows: int = 4096) -> Iterator[Chunk]:
    """(ASINs, features) chunks of a ``.b`` file, through a memory map: memory is one chunk."""
    record = np.dtype([("asin", f"S{_ASIN_BYTES}"), ("feat", "<f4", (dim,))])
    size = path.stat().st_size
    if size == 0 or size % record.itemsize:
        raise DataFormatError(
            f"{path}: {size} bytes is not a whole number of records ({_ASIN_BYTES}-byte ASIN + {dim} float32 = "
            f"{record.itemsize} bytes each); the file is truncated or not an image feature file"
        )
    data = np.memmap(path, dtype=record, mode="r")
    for start in range(0, len(data), chunk_rows):
        part = data[start : start + chunk_rows]
        asins = np.char.strip(np.char.decode(part["asin"], "ascii", errors="replace"))
        yield asins, np.array(part["feat"], dtype=np.float32)


def _text_writer(meta_path: Path, encoder: str, seed: int) -> FeatureWriter:
    def write(item_ids: pd.Index, out: Path) -> FeatureReport:
        meta = read_meta(meta_path, item_ids)  # only the dataset's items: Elec's meta file is large
        ids = np.array(list(meta), dtype=object)
        texts = ItemTexts(meta_path, ids, np.array([item_text(meta[a]) for a in ids], dtype=object),
                          ["title", "brand", "categories", "description"])
        return encode_item_texts(texts, item_ids, out, encoder, seed)

    return write


def prepare_amazon(
    data_dir: str | Path, name: str, folder: Path, category: str, *, core: int = 5, split: str = "random",
    seed: int = 0, text_encoder: str | None = None, user_graph_k: int = 200, force: bool = False,
) -> dict[str, Any]:
    """Build dataset ``<data_dir>/<name>`` from a category's raw files; return the summary.

    ``text_encoder`` None: TF-IDF; naming one when the folder has no meta file is an error.
    """
    check_prepare_values(core, split, seed, user_graph_k, None)
    target = target_folder(data_dir, name, force)
    files = find_amazon_files(folder, category)
    if text_encoder is not None and files.meta is None:
        raise ConfigError(f"--text-encoder {text_encoder}: {folder} has no meta_{files.category}.json(.gz), so there "
                          "is no item text to encode")
    encoder = text_encoder or DEFAULT_TEXT_ENCODER
    if files.meta is not None:
        check_text_encoder(encoder)
    data = read_amazon_interactions(files.ratings)
    writers: dict[str, FeatureWriter] = {}
    if files.image is not None:
        image = files.image
        writers["image"] = lambda ids, out: align_features(image_feature_chunks(image), ids, out, image)
    if files.meta is not None:
        writers["text"] = _text_writer(files.meta, encoder, seed)
    inputs = [p for p in (files.ratings, files.meta, files.image) if p is not None]
    extra = {"amazon_category": files.category, "text_encoder": encoder if files.meta else None}
    return build_dataset(target, name, data, writers, inputs, core=core, split=split, seed=seed,
                         user_graph_k=user_graph_k, extra=extra, force=force)
