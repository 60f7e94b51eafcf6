"""Turn a plain interactions file (and optional feature files) into a dataset folder in MMRec's format.

Steps, as MMRec's preprocessing notebooks take them (``preprocessing/0rating2inter`` ...
``3feat-encoder``), with the differences named:

1. read user, item and optional rating and timestamp columns from a CSV, TSV, JSON-lines or
   parquet file (`mgtune.data.tables`), or from RecBole's typed atomic files
   (`mgtune.data.recbole`) or the raw Amazon files (`mgtune.data.amazon`), which then join here;
   ids are kept as text, so ``"007"`` and ``"7"`` are two items;
2. drop rows without a user or item, then repeated (user, item) pairs, keeping the earliest
   (MMRec drops only rows repeated with the same timestamp; a repeated pair would be both a
   training positive and a test target);
3. iterative k-core filtering (`mgtune.data.kcore`), then ids ``0..n-1`` in order of first
   appearance, kept as ``u_id_mapping.csv`` (``user_id``, ``userID``) and ``i_id_mapping.csv``
   (``asin``, ``itemID``), tab-separated as MMRec writes them;
4. the per-user split (`mgtune.data.split`) into ``x_label`` 0/1/2 = train/valid/test;
5. feature matrices aligned to the new item ids (`mgtune.data.features`), the mean vector for
   items without features; raw item text (``--item-text``) is encoded first, over the dataset's
   items only (`mgtune.data.item_text`);
6. the DualGNN/DRAGON user graph ``user_graph_dict.npy`` from the training rows
   (`mgtune.data.user_graph`);
7. ``prepare.json``: inputs (paths as given) with content hashes, the columns read, settings, counts at
   each step, cold-start items (items with no training row: only their features can score them) and the split.

Everything is written into a temp folder beside the target, renamed into place at the end: an
error at any step leaves no dataset folder behind.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mgtune.checks import MAX_SEED, check_float, check_int, short_repr
from mgtune.data.atomic_files import FIELD_TYPES
from mgtune.data.dataset import file_digest, target_folder
from mgtune.data.features import FeatureSource, FeatureWriter, source_writer
from mgtune.data.item_text import ItemTextSource, item_text_writer, read_item_text
from mgtune.data.kcore import k_core
from mgtune.data.split import TEST, TRAIN, VALID, split_labels
from mgtune.data.tables import check_scalar_column, read_table
from mgtune.data.text import DEFAULT_TEXT_ENCODER, check_text_encoder
from mgtune.data.user_graph import MAX_USER_GRAPH_K, USER_GRAPH_FILE, top_k_cooccurrence, write_user_graph_dict
from mgtune.errors import ConfigError, DataFormatError
from mgtune.files import replace_dir, write_json

__all__ = [
    "Columns", "Interactions", "prepare_dataset", "read_interactions", "build_dataset", "format_summary",
    "interactions_from_frame", "check_prepare_values", "SUMMARY_FILE", "SPLITS",
]

SUMMARY_FILE = "prepare.json"
SPLITS = ("random", "time")
_MAX_CORE = 2**31 - 1  # no item has more interactions than ids there are


@dataclass(frozen=True)
class Columns:
    """Column names in the interactions file. ``None`` for rating/timestamp: used if present."""

    user: str = "user_id"
    item: str = "item_id"
    rating: str | None = None
    timestamp: str | None = None


@dataclass
class Interactions:
    """Raw interactions: ``user``/``item`` (str), optional ``rating``/``timestamp`` (float64) columns;
    ``columns``: the source's column of each (``{"user": "user_id", ...}``), which ``prepare.json`` records."""

    frame: pd.DataFrame
    source: Path
    n_read: int
    columns: dict[str, str] = field(default_factory=dict)


def read_interactions(path: Path, columns: Columns = Columns()) -> Interactions:
    """Read a CSV (``.csv``), TSV (``.tsv``, ``.txt``, ``.inter``), JSON-lines (``.jsonl``) or parquet file.

    A ``.gz`` suffix is decompressed (`mgtune.data.tables`). Raises `DataFormatError` naming the
    file for an unreadable file, a missing column, or a rating or timestamp that is not a number
    (timestamps may also be dates, e.g. ``2014-03-01``).
    """
    return interactions_from_frame(read_table(path, "interactions file"), path, columns)


def interactions_from_frame(frame: pd.DataFrame, path: Path, columns: Columns) -> Interactions:
    """Pick and check ``columns`` of a table read from ``path`` (errors name ``path``)."""
    header = [str(c) for c in frame.columns]
    if len(frame) == 0:
        raise DataFormatError(f"{path}: no interaction rows (the header has {', '.join(map(repr, header[:12]))})")
    wanted = {"user": columns.user, "item": columns.item}
    for key, default in (("rating", columns.rating), ("timestamp", columns.timestamp)):
        if default is not None:
            wanted[key] = default
        elif key in header:
            wanted[key] = key
    missing = [f"{name!r} ({key})" for key, name in wanted.items() if name not in header]
    if missing:
        typed = all(c.rpartition(":")[2] in FIELD_TYPES for c in header)  # user_id:token ...: RecBole's header
        how = ("it is a RecBole atomic file: give its folder with --recbole DIR" if typed else
               "name the columns with --user-col/--item-col/--rating-col/--time-col")
        raise DataFormatError(
            f"{path}: missing column {', '.join(missing)}; the header has {', '.join(map(repr, header[:12]))} "
            f"({how})"
        )
    same = [f"{a} and {b}" for a, b in (("user", "item"), ("user", "rating"), ("user", "timestamp"),
                                         ("item", "rating"), ("item", "timestamp"), ("rating", "timestamp"))
            if a in wanted and b in wanted and wanted[a] == wanted[b]]
    if same:
        raise ConfigError(f"{path}: the {same[0]} columns are both {wanted[same[0].split()[0]]!r}; each role needs its "
                          "own column (--user-col/--item-col/--rating-col/--time-col)")
    out = pd.DataFrame(index=frame.index)
    for key in ("user", "item"):
        col = check_scalar_column(path, frame[wanted[key]], wanted[key])
        out[key] = col.where(col.isna(), col.astype(str).str.strip())
    if "rating" in wanted:
        out["rating"] = _numbers(frame[wanted["rating"]], path, wanted["rating"])
    if "timestamp" in wanted:
        out["timestamp"] = _timestamps(frame[wanted["timestamp"]], path, wanted["timestamp"])
    return Interactions(out, path, len(frame), wanted)


def _numbers(col: pd.Series, path: Path, name: str) -> pd.Series:
    values = pd.to_numeric(col, errors="coerce").astype(np.float64)
    bad = values.isna() | ~np.isfinite(values)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        kind = "numbers" if np.isnan(values.iloc[row]) else "finite numbers"
        raise DataFormatError(f"{path}: column {name!r} must hold {kind}, got {short_repr(col.iloc[row])} on data row "
                              f"{row + 1}")
    return values


def _timestamps(col: pd.Series, path: Path, name: str) -> pd.Series:
    values = pd.to_numeric(col, errors="coerce")
    if values.isna().any():  # dates as text
        dates = pd.to_datetime(col, errors="coerce", utc=True, format="mixed")
        if dates.isna().any():
            row = int(np.flatnonzero(dates.isna().to_numpy())[0])
            raise DataFormatError(
                f"{path}: column {name!r} must hold numbers or dates, got {col.iloc[row]!r} on data row {row + 1}"
            )
        values = (dates - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
    values = values.astype(np.float64)
    infinite = ~np.isfinite(values.to_numpy())  # 'inf' is a number to pandas, and would order nothing
    if infinite.any():
        row = int(np.flatnonzero(infinite)[0])
        raise DataFormatError(f"{path}: column {name!r} must hold finite numbers or dates, got "
                              f"{short_repr(col.iloc[row])} on data row {row + 1}")
    return values


def prepare_dataset(
    data_dir: str | Path, name: str, interactions: Path, *, columns: Columns = Columns(), core: int = 5,
    split: str = "random", seed: int = 0, min_rating: float | None = None, image: FeatureSource | None = None,
    text: FeatureSource | None = None, item_text: ItemTextSource | None = None, text_encoder: str | None = None,
    user_graph_k: int = 200, force: bool = False,
) -> dict[str, Any]:
    """Build dataset ``<data_dir>/<name>`` from an interactions file and feature files; return the summary.

    See the module docstring for the steps. ``split`` is ``"random"`` or ``"time"``;
    ``user_graph_k = 0`` writes no user graph. ``item_text`` is raw text to encode into the text
    features with ``text_encoder`` (None: TF-IDF), instead of a ready ``text`` feature file.
    """
    check_prepare_values(core, split, seed, user_graph_k, min_rating)
    if item_text is not None and text is not None:
        raise ConfigError("--item-text and --text-features both make text_feat.npy; give one of them")
    if item_text is None and text_encoder is not None:
        raise ConfigError(f"--text-encoder {text_encoder}: there is no item text to encode; give the text with "
                          "--item-text FILE (ready vectors go in with --text-features)")
    encoder = text_encoder or DEFAULT_TEXT_ENCODER
    if item_text is not None:
        check_text_encoder(encoder)
    target = target_folder(data_dir, name, force)
    data = read_interactions(interactions, columns)
    inputs = [interactions] + [p for s in (image, text) if s for p in (s.path, s.ids) if p]
    writers: dict[str, FeatureWriter] = {}
    for modality, source in (("image", image), ("text", text)):
        if source is not None:
            writers[modality] = source_writer(source)
    extra: dict[str, Any] = {"columns": vars(columns)}
    if item_text is not None:
        texts = read_item_text(item_text)  # a bad file fails now, before any work
        writers["text"] = item_text_writer(texts, encoder, seed)
        inputs.append(item_text.path)
        extra.update(item_text_columns=texts.fields, text_encoder=encoder)
    return build_dataset(target, name, data, writers, inputs, core=core, split=split, seed=seed,
                         min_rating=min_rating, user_graph_k=user_graph_k, extra=extra, force=force)


def check_prepare_values(core: int, split: str, seed: int, user_graph_k: int, min_rating: float | None) -> None:
    """The settings every way of preparing shares, checked before any file is read (`ConfigError`)."""
    if split not in SPLITS:
        raise ConfigError(f"--split must be 'random' or 'time', got {split!r}")
    check_int("--core", core, low=1, high=_MAX_CORE)
    check_int("--seed", seed, low=0, high=MAX_SEED)
    check_int("--user-graph-k", user_graph_k, low=0, high=MAX_USER_GRAPH_K)
    if min_rating is not None:
        check_float("--min-rating", min_rating)


def build_dataset(
    target: Path, name: str, data: Interactions, features: dict[str, FeatureWriter], inputs: list[Path], *,
    core: int = 5, split: str = "random", seed: int = 0, min_rating: float | None = None,
    user_graph_k: int = 200, extra: dict[str, Any] | None = None, record: dict[str, Any] | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Steps 2-7 of the module docstring for already-read interactions; writes ``target`` whole or not at all.

    ``extra`` joins the summary's settings; ``record`` adds top-level entries (e.g. the columns a
    reader detected). ``force``: an existing ``target`` is replaced (`mgtune.files.replace_dir`).
    """
    check_prepare_values(core, split, seed, user_graph_k, min_rating)
    frame = data.frame
    if split == "time" and "timestamp" not in frame:
        raise DataFormatError(f"{data.source}: --split time needs a timestamp column (name it with --time-col)")
    started = time.perf_counter()
    counts: dict[str, Any] = {"rows_read": data.n_read}

    missing_id = frame["user"].isna() | frame["item"].isna() | (frame["user"] == "") | (frame["item"] == "")
    frame = frame[~missing_id]
    counts["rows_without_user_or_item"] = int(missing_id.sum())
    if min_rating is not None:
        if "rating" not in frame:
            raise DataFormatError(f"{data.source}: --min-rating needs a rating column (name it with --rating-col)")
        low = frame["rating"] < min_rating
        frame = frame[~low]
        counts["rows_below_min_rating"] = int(low.sum())
    before = len(frame)
    ordered = frame.sort_values("timestamp", kind="stable") if "timestamp" in frame else frame
    frame = ordered.drop_duplicates(["user", "item"], keep="first").sort_index()
    counts["duplicate_rows"] = before - len(frame)

    user_codes, _ = pd.factorize(frame["user"])
    item_codes, _ = pd.factorize(frame["item"])
    keep, rounds = k_core(user_codes, item_codes, core)
    counts["k_core"] = {
        "k": core, "rounds": rounds, "rows_dropped": int((~keep).sum()),
        "users_dropped": int(user_codes.max(initial=-1) + 1 - len(np.unique(user_codes[keep]))),
        "items_dropped": int(item_codes.max(initial=-1) + 1 - len(np.unique(item_codes[keep]))),
    }
    frame = frame[keep]
    if len(frame) == 0:
        raise DataFormatError(
            f"{data.source}: no interactions left after {core}-core filtering (every user and item needs "
            f"{core} interactions; {before} rows before); lower --core"
        )
    users, user_ids = pd.factorize(frame["user"])  # first appearance order, as MMRec's notebook
    items, item_ids = pd.factorize(frame["item"])
    labels = split_labels(users, np.random.default_rng(seed),
                          frame["timestamp"].to_numpy() if split == "time" else None)
    n_users, n_items = len(user_ids), len(item_ids)
    train = labels == TRAIN
    cold = np.setdiff1d(np.arange(n_items), items[train])
    counts.update({
        "users": n_users, "items": n_items, "interactions": len(frame),
        "train": int(train.sum()), "valid": int((labels == VALID).sum()), "test": int((labels == TEST).sum()),
    })

    summary: dict[str, Any] = {
        "name": name,
        # paths as given: the record stays true when the inputs and the dataset move together
        "inputs": [{"path": str(p), "bytes": p.stat().st_size, "blake2b": file_digest(p)} for p in inputs],
        **({"columns": data.columns} if data.columns else {}),  # the columns read (rating, timestamp: if found)
        "settings": {"core": core, "split": split, "seed": seed, "min_rating": min_rating,
                     "user_graph_k": user_graph_k, **(extra or {})},
        "counts": counts,
        "cold_start_items": {"count": len(cold), "note": "items with no training interaction",
                             "examples": [str(item_ids[i]) for i in cold[:20]]},
        "split": {"rule": "per user: n < 10 -> 1 valid + 1 test; else int(0.2 n) held out, halved (valid first)",
                  "order": "timestamp" if split == "time" else f"random, seed {seed}"},
        "features": {},
        **(record or {}),
    }

    def write(tmp: Path) -> None:
        inter = pd.DataFrame({"userID": users, "itemID": items})
        for col in ("rating", "timestamp"):
            if col in frame:
                values = frame[col].to_numpy()
                integral = np.all(values == np.round(values)) and np.abs(values).max() < 2**53
                inter[col] = values.astype(np.int64) if integral else values
        inter["x_label"] = labels
        order = np.lexsort((labels, users))
        inter.iloc[order].to_csv(tmp / f"{name}.inter", sep="\t", index=False)
        pd.DataFrame({"user_id": user_ids, "userID": np.arange(n_users)}).to_csv(
            tmp / "u_id_mapping.csv", sep="\t", index=False)
        pd.DataFrame({"asin": item_ids, "itemID": np.arange(n_items)}).to_csv(
            tmp / "i_id_mapping.csv", sep="\t", index=False)
        for modality, writer in features.items():
            report = writer(pd.Index(item_ids), tmp / f"{modality}_feat.npy")
            summary["features"][modality] = report.as_dict(pd.Index(item_ids))
        if user_graph_k:
            t0 = time.perf_counter()
            k = min(user_graph_k, max(n_users - 1, 1))  # no user has more neighbours; the file is the same
            nbrs, weights, n_valid = top_k_cooccurrence(users[train], items[train], n_users, n_items, k)
            write_user_graph_dict(tmp / USER_GRAPH_FILE, nbrs, weights, n_valid)
            summary["user_graph"] = {"k": user_graph_k, "mean_neighbours": round(float(n_valid.mean()), 2),
                                     "users_without_neighbours": int((n_valid == 0).sum()),
                                     "seconds": round(time.perf_counter() - t0, 2)}
        summary["seconds"] = round(time.perf_counter() - started, 2)
        write_json(tmp / SUMMARY_FILE, summary)

    replace_dir(target, write, replace=force)
    return summary



def format_summary(summary: dict[str, Any], folder: Path) -> str:
    """The few lines ``mgtune data prepare`` prints on stderr."""
    c = summary["counts"]
    kc = c["k_core"]
    lines = [
        f"prepared {summary['name']} -> {folder}",
        f"  rows read            {c['rows_read']:,}",
        f"  dropped              {c['rows_without_user_or_item']:,} without id, {c['duplicate_rows']:,} duplicates"
        + (f", {c['rows_below_min_rating']:,} below --min-rating" if "rows_below_min_rating" in c else ""),
        f"  {kc['k']}-core              -{kc['rows_dropped']:,} rows, -{kc['users_dropped']:,} users, "
        f"-{kc['items_dropped']:,} items ({kc['rounds']} rounds)",
        f"  users / items        {c['users']:,} / {c['items']:,}",
        f"  train / valid / test {c['train']:,} / {c['valid']:,} / {c['test']:,} ({summary['split']['order']})",
        f"  cold-start items     {summary['cold_start_items']['count']:,} (no training interaction)",
    ]
    if "item_fields" in summary:
        fields = ", ".join(f"{f['name']} {f['kind']}" for f in summary["item_fields"]["fields"])
        lines.append(f"  item fields          {fields or 'none'}")
    for modality, f in summary["features"].items():
        holds = "".join(f" ({', '.join(_part_text(p) for p in f['holds'])})" if "holds" in f else "")
        lines.append(f"  {modality + ' features':<20} {f['dim']}-d{holds}, {f['mean_filled_items']:,} items filled "
                     f"with the mean, {f['unmatched_rows']:,} rows matched no item")
    if "user_graph" in summary:
        g = summary["user_graph"]
        lines.append(f"  user graph           top {g['k']}, {g['mean_neighbours']} neighbours per user on average "
                     f"({g['seconds']} s)")
    lines.append(f"  took                 {summary['seconds']} s")
    return "\n".join(lines)


def _part_text(part: dict[str, Any]) -> str:
    """One part of a feature matrix, e.g. ``movie_title text (tfidf) 384`` or ``class multi_hot 19``."""
    encoder = f" ({part['encoder']})" if "encoder" in part else ""
    return f"{'+'.join(part['fields'])} {part['kind']}{encoder} {part['dim']}"
