"""``mgtune data prepare``: its settings, and the one call that builds the dataset folder from them."""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mgtune.checks import check_float, check_name
from mgtune.data.dataset import dataset_dir
from mgtune.data.features import FeatureSource
from mgtune.data.prepare import Columns, check_prepare_values, format_summary, prepare_dataset
from mgtune.errors import ConfigError
from mgtune.files import sigterm_as_interrupt
from mgtune.options import option

__all__ = ["PrepareSettings", "prepare"]

_FEATURES = ("{m} features: .npy (with --{m}-ids), or .csv/.tsv/.parquet whose first column is the item id and the "
             "rest numbers")


@dataclass(frozen=True)
class PrepareSettings:
    """``mgtune data prepare`` (its checks of values are `prepare_dataset`'s and `prepare_amazon`'s)."""

    name: str | None = option(None, default_text="with --recbole: NAME", help="dataset name: the folder "
                              "<data-dir>/<name>")
    interactions: str | None = option(None, metavar="FILE", default_text="none", help="CSV, TSV, JSON lines (.gz "
                                      "too) or parquet, a row per interaction")
    recbole: str | None = option(None, metavar="DIR", default_text="none", help="folder of RecBole atomic files: "
                                 "NAME.inter, optional NAME.item (item features) and NAME.user; typed headers are "
                                 "read as is")
    amazon: str | None = option(None, metavar="DIR", default_text="none", help="folder of a category's raw Amazon "
                                "2014 files")
    category: str | None = option(None, default_text="none", help="with --amazon: Baby, Sports_and_Outdoors, "
                                  "Clothing_Shoes_and_Jewelry, Electronics (or baby, sports, clothing, elec)")
    data_dir: str = option("datasets", help="the folder of dataset folders")
    user_col: str = option("user_id", help="user id column")
    item_col: str = option("item_id", help="item id column; also the id column of --item-text and of NAME.item")
    rating_col: str | None = option(None, default_text="'rating' if present", help="rating column; kept in the "
                                    ".inter file")
    time_col: str | None = option(None, default_text="'timestamp' if present", help="timestamp column, numbers or "
                                  "dates")
    min_rating: float | None = option(None, default_text="none", help="drop interactions rated below this")
    core: int = option(5, help="k-core: every user and item keeps >= k interactions")
    split: str = option("random", choices=("random", "time"), help="MMRec's per-user split, in random (seeded) or "
                        "chronological order")
    seed: int = option(0, help="seed of the random split")
    image_features: str | None = option(None, metavar="FILE", default_text="none", help=_FEATURES.format(m="image"))
    image_ids: str | None = option(None, metavar="FILE", default_text="none", help="raw item id of each .npy row, "
                                   "one per line")
    text_features: str | None = option(None, metavar="FILE", default_text="none", help=_FEATURES.format(m="text"))
    text_ids: str | None = option(None, metavar="FILE", default_text="none", help="raw item id of each .npy row, "
                                  "one per line")
    item_text: str | None = option(None, metavar="FILE", default_text="none", help="with --interactions: raw item "
                                   "text to encode into the text features; CSV/TSV/JSON lines/parquet, the item id "
                                   "column (--item-col, else the first) and text columns")
    text_columns: str | None = option(None, metavar="A,B", default_text="every non-id column that is not all "
                                      "numbers", help="the text columns of --item-text")
    text_fields: str | None = option(None, metavar="A,B", default_text="the rule in the README", help="with "
                                     "--recbole: exactly these NAME.item fields are text ('' for none)")
    meta_fields: str | None = option(None, metavar="C,D", default_text="the rule in the README", help="with "
                                     "--recbole: exactly these NAME.item fields are metadata: one/multi-hot or "
                                     "scaled numbers ('' for none)")
    metadata_slot: str | None = option(None, choices=("image", "text", "none"), default_text="image; text with "
                                       "--image-features; none with both feature files", help="with --recbole: "
                                       "where the metadata block goes: image_feat.npy, appended to the text "
                                       "features, or nowhere")
    text_encoder: str | None = option(None, choices=("tfidf", "minilm"), default_text="tfidf where there is text",
                                      help="encoder of item text (--item-text, NAME.item's text fields, Amazon "
                                      "meta): tfidf (offline) or minilm (all-MiniLM-L6-v2; pip install "
                                      "'mgtune[text]'); an error without text")
    user_graph_k: int = option(200, help="neighbours per user in user_graph_dict.npy (DualGNN, DRAGON); 0: none")
    force: bool = option(False, const=True, help="replace an existing dataset folder")

    def __post_init__(self) -> None:
        given = [o for o, v in (("--interactions", self.interactions), ("--amazon", self.amazon),
                                ("--recbole", self.recbole)) if v is not None]
        if len(given) != 1:
            raise ConfigError("data prepare needs exactly one of --interactions FILE, --recbole DIR or --amazon DIR "
                              f"--category CAT{f' (got {given[0]} and {given[1]})' if len(given) > 1 else ''}")
        if self.amazon is not None and not self.category:
            raise ConfigError("--amazon needs --category (e.g. Baby, Sports_and_Outdoors, Electronics)")
        either = self.interactions or self.recbole
        only = {"--item-text": (self.item_text, self.interactions, "--interactions"),
                "--text-columns": (self.text_columns, self.item_text, "--item-text"),
                "--text-fields": (self.text_fields, self.recbole, "--recbole"),
                "--meta-fields": (self.meta_fields, self.recbole, "--recbole"),
                "--metadata-slot": (self.metadata_slot, self.recbole, "--recbole"),
                "--image-features": (self.image_features, either, "--interactions or --recbole"),
                "--text-features": (self.text_features, either, "--interactions or --recbole")}
        for flag, (value, source, needs) in only.items():
            if value is not None and source is None:
                raise ConfigError(f"{flag} goes with {needs}")
        if self.name is None and self.recbole is None:
            raise ConfigError("data prepare needs --name NAME (the dataset folder <data-dir>/<name>)")
        if self.name is not None:
            check_name("--name", self.name)
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):  # every float option: NaN would compare false and filter nothing
            value = getattr(self, f.name)
            if value is not None and float in (hints[f.name], *typing.get_args(hints[f.name])):
                check_float("--" + f.name.replace("_", "-"), value)
        check_prepare_values(self.core, self.split, self.seed, self.user_graph_k, self.min_rating)
        if self.text_columns is not None and not _names(self.text_columns):
            raise ConfigError("--text-columns names no column; leave it out to take every text column")


def _names(value: str | None) -> list[str] | None:
    """A comma-separated list ('' for none); None when not given."""
    return None if value is None else [n.strip() for n in value.split(",") if n.strip()]


def prepare(s: PrepareSettings) -> str:
    """Build the dataset folder ``s`` describes; the summary lines to print. SIGTERM stops it as Ctrl-C does."""
    with sigterm_as_interrupt():
        return _prepare(s)


def _prepare(s: PrepareSettings) -> str:
    common: dict[str, Any] = {"core": s.core, "split": s.split, "seed": s.seed, "user_graph_k": s.user_graph_k,
                              "force": s.force, "text_encoder": s.text_encoder}
    sources = {m: FeatureSource(Path(f), Path(i) if i else None) if f else None for m, f, i in (
        ("image", s.image_features, s.image_ids), ("text", s.text_features, s.text_ids))}
    columns = Columns(s.user_col, s.item_col, s.rating_col, s.time_col)
    if s.amazon is not None:
        from mgtune.data.amazon import prepare_amazon

        assert s.category is not None and s.name is not None  # checked in PrepareSettings
        summary = prepare_amazon(s.data_dir, s.name, Path(s.amazon), s.category, **common)
    elif s.recbole is not None:
        from mgtune.data.recbole import prepare_recbole

        summary = prepare_recbole(s.data_dir, s.name, Path(s.recbole), columns=columns, min_rating=s.min_rating,
                                  text_fields=_names(s.text_fields), meta_fields=_names(s.meta_fields),
                                  metadata_slot=s.metadata_slot, image=sources["image"], text=sources["text"],
                                  **common)
    else:
        from mgtune.data.item_text import ItemTextSource

        assert s.interactions is not None and s.name is not None
        item_text = ItemTextSource(Path(s.item_text), tuple(_names(s.text_columns) or ()),
                                   s.item_col) if s.item_text else None
        summary = prepare_dataset(s.data_dir, s.name, Path(s.interactions), columns=columns,
                                  min_rating=s.min_rating, image=sources["image"], text=sources["text"],
                                  item_text=item_text, **common)
    return format_summary(summary, dataset_dir(s.data_dir, summary["name"]))
