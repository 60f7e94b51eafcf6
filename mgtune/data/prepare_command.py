"""``mgtune data prepare``: its settings, and the one call that builds the dataset folder from them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mgtune.data.dataset import dataset_dir
from mgtune.data.features import FeatureSource
from mgtune.data.prepare import Columns, format_summary, prepare_dataset
from mgtune.errors import ConfigError
from mgtune.options import option

__all__ = ["PrepareSettings", "prepare"]

_FEATURES = "{m} features: .npy (with --{m}-ids), or .csv/.tsv/.parquet whose first column is the item id"


@dataclass(frozen=True)
class PrepareSettings:
    """``mgtune data prepare`` (its checks of values are `prepare_dataset`'s and `prepare_amazon`'s)."""

    name: str = option(help="dataset name: the folder <data-dir>/<name>")
    interactions: str | None = option(None, metavar="FILE", default_text="none", help="CSV, TSV or JSON lines "
                                      "(.gz too), a row per interaction")
    amazon: str | None = option(None, metavar="DIR", default_text="none", help="folder of a category's raw Amazon "
                                "2014 files")
    category: str | None = option(None, default_text="none", help="with --amazon: Baby, Sports_and_Outdoors, "
                                  "Clothing_Shoes_and_Jewelry, Electronics (or baby, sports, clothing, elec)")
    data_dir: str = option("datasets", help="the folder of dataset folders")
    user_col: str = option("user_id", help="user id column")
    item_col: str = option("item_id", help="item id column")
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
    text_encoder: str = option("tfidf", choices=("tfidf", "minilm"), help="with --amazon: tfidf (offline) or minilm "
                               "(all-MiniLM-L6-v2; pip install 'mgtune[text]')")
    user_graph_k: int = option(200, help="neighbours per user in user_graph_dict.npy (DualGNN, DRAGON); 0: none")
    force: bool = option(False, const=True, help="replace an existing dataset folder")

    def __post_init__(self) -> None:
        if (self.amazon is None) == (self.interactions is None):
            raise ConfigError("data prepare needs exactly one of --interactions FILE or --amazon DIR --category CAT")
        if self.amazon is not None and not self.category:
            raise ConfigError("--amazon needs --category (e.g. Baby, Sports_and_Outdoors, Electronics)")


def prepare(s: PrepareSettings) -> str:
    """Build the dataset folder ``s`` describes; the summary lines to print."""
    common: dict[str, Any] = {"core": s.core, "split": s.split, "seed": s.seed, "user_graph_k": s.user_graph_k,
                              "force": s.force}
    if s.amazon is not None:
        from mgtune.data.amazon import prepare_amazon

        assert s.category is not None  # checked in PrepareSettings
        summary = prepare_amazon(s.data_dir, s.name, Path(s.amazon), s.category, text_encoder=s.text_encoder,
                                 **common)
    else:
        assert s.interactions is not None
        sources = {m: FeatureSource(Path(f), Path(i) if i else None) if f else None for m, f, i in (
            ("image", s.image_features, s.image_ids), ("text", s.text_features, s.text_ids))}
        columns = Columns(s.user_col, s.item_col, s.rating_col, s.time_col)
        summary = prepare_dataset(s.data_dir, s.name, Path(s.interactions), columns=columns,
                                  min_rating=s.min_rating, image=sources["image"], text=sources["text"], **common)
    return format_summary(summary, dataset_dir(s.data_dir, s.name))
