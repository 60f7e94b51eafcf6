"""Real data end to end: MovieLens 100K, fetched as RecBole atomic files, prepared with --recbole, trained.

Needs the RecBole wheel (``benchmarks/real_data.py``: from the cache, else ``pip download``); skipped
with the reason when it cannot be had. The counts are checked against a 5-core computed here in
plain Python from the raw ``.inter`` file, not by the product's code.
"""

from __future__ import annotations

import importlib.util
import json
from collections import Counter
from pathlib import Path
from types import ModuleType

import pytest
import torch

from mgtune.cli import main
from mgtune.data import load_dataset
from mgtune.training import Evaluator

pytestmark = pytest.mark.real
BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def ml100k(tmp_path_factory: pytest.TempPathFactory) -> Path:
    real_data = _script("real_data")
    try:
        return real_data.fetch_ml100k(out=tmp_path_factory.mktemp("raw") / "ml-100k")
    except real_data.FetchError as exc:
        pytest.skip(f"ml-100k is not available: {exc}")


def _five_core(inter: Path) -> tuple[set[str], set[str], set[tuple[str, str]]]:
    """Users, items and distinct (user, item) pairs left when every user and item needs 5 pairs."""
    lines = inter.read_text(encoding="utf-8").splitlines()
    header = [c.split(":")[0] for c in lines[0].split("\t")]
    u, i = header.index("user_id"), header.index("item_id")
    pairs = {(row[u], row[i]) for row in (line.split("\t") for line in lines[1:] if line)}
    while True:
        users = Counter(p[0] for p in pairs)
        items = Counter(p[1] for p in pairs)
        kept = {p for p in pairs if users[p[0]] >= 5 and items[p[1]] >= 5}
        if kept == pairs:
            return set(users), set(items), pairs
        pairs = kept


def test_ml100k_prepares_and_a_model_beats_popularity(ml100k: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    raw_rows = (ml100k / "ml-100k.inter").read_text().count("\n") - 1
    assert raw_rows == 100_000  # the real file, not a stand-in
    data_dir = tmp_path / "data"
    assert main(["data", "prepare", "--recbole", str(ml100k), "--data-dir", str(data_dir)]) == 0
    capsys.readouterr()

    users, items, pairs = _five_core(ml100k / "ml-100k.inter")
    summary = json.loads((data_dir / "ml-100k/prepare.json").read_text())
    c = summary["counts"]
    assert (c["users"], c["items"], c["interactions"]) == (len(users), len(items), len(pairs))
    assert c["rows_read"] == raw_rows and c["train"] + c["valid"] + c["test"] == len(pairs)
    kinds = {f["name"]: (f["kind"], f["slot"]) for f in summary["item_fields"]["fields"]}
    assert kinds == {"movie_title": ("text", "text"), "release_year": ("numeric", "image"),
                     "class": ("multi_hot", "image")}
    data = load_dataset(data_dir, "ml-100k")
    assert data.image_feat is not None and data.image_feat.shape == (len(items), 1 + 19)  # year + 19 genres
    assert data.text_feat is not None and data.text_feat.shape[0] == len(items)

    Popularity = _script("beats_popularity").Popularity
    popularity = Evaluator(data, torch.device("cpu")).evaluate(Popularity(data))["test"]["recall@20"]
    out = tmp_path / "vbpr"
    assert main(["train", "--model", "vbpr", "--dataset", "ml-100k", "--data-dir", str(data_dir), "--epochs", "5",
                 "--lr", "0.01", "--device", "cpu", "--out", str(out)]) == 0
    recall = json.loads((out / "metrics.json").read_text())["test"]["recall@20"]
    assert recall > popularity > 20 / len(items), (recall, popularity)
