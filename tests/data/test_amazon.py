"""mgtune data prepare --amazon: a tiny fake category in the 2014 release's raw formats."""

from __future__ import annotations

import gzip
import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mgtune.cli import main
from mgtune.data import load_dataset
from mgtune.data.amazon import image_feature_chunks, item_text

DIM = 4096
N_USERS, N_ITEMS = 30, 24
WITH_IMAGE = 20  # items B000000000..B000000019 have image features, plus one unknown ASIN
WITH_META = 21


def _asin(i: int) -> str:
    return f"B{i:09d}"


def _ratings(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(N_USERS):
        for i in rng.choice(N_ITEMS, size=6 + u % 5, replace=False):
            rows.append((f"A{u:05d}X", _asin(i), float(rng.integers(1, 6)), 1_400_000_000 + 86_400 * len(rows)))
    return pd.DataFrame(rows, columns=["user", "item", "rating", "time"])


def _meta_line(i: int) -> str:
    record = {"asin": _asin(i), "title": f"Soft blanket no. {i}", "brand": "Mum's",  # a quote: not JSON
              "categories": [["Baby", "Nursery", f"Kind {i % 3}"], ["Other"]], "description": "warm\nand soft",
              "price": 9.99, "related": {"also_bought": [_asin(0)]}}
    return repr(record)


def _category(folder: Path, reviews: bool = False) -> np.ndarray:
    """Write the raw files of category Baby into ``folder``; return the image vectors (by item number)."""
    folder.mkdir(parents=True, exist_ok=True)
    ratings = _ratings()
    if reviews:
        with gzip.open(folder / "reviews_Baby_5.json.gz", "wt") as fh:
            for r in ratings.itertuples():
                fh.write(json.dumps({"reviewerID": r.user, "asin": r.item, "overall": r.rating,
                                     "unixReviewTime": r.time, "reviewText": "fine"}) + "\n")
    else:
        ratings.to_csv(folder / "ratings_Baby.csv", header=False, index=False)
    with gzip.open(folder / "meta_Baby.json.gz", "wt") as fh:
        fh.write("\n".join(_meta_line(i) for i in range(WITH_META)) + "\n")
    vectors = np.random.default_rng(1).random((N_ITEMS, DIM), dtype=np.float32)
    record = np.dtype([("asin", "S10"), ("feat", "<f4", (DIM,))])
    b = np.zeros(WITH_IMAGE + 1, dtype=record)
    b["asin"] = [_asin(i).encode() for i in range(WITH_IMAGE)] + [b"B999999999"]
    b["feat"][:WITH_IMAGE] = vectors[:WITH_IMAGE]
    b.tofile(folder / "image_features_Baby.b")
    return vectors


def _prepare(tmp_path: Path, *extra: str, name: str = "baby") -> int:
    return main(["data", "prepare", "--amazon", str(tmp_path / "raw"), "--category", "Baby", "--name", name,
                 "--data-dir", str(tmp_path / "data"), *extra])


def test_item_text_follows_the_notebook() -> None:
    record = {"title": "T", "brand": "B", "categories": [["C1", "C2"], ["X"]], "description": "D\nE"}
    assert item_text(record) == "T B C1 C2 D E"
    assert item_text({"title": "T"}) == "T"


def test_image_file_is_read_in_chunks(tmp_path: Path) -> None:
    vectors = _category(tmp_path / "raw")
    chunks = list(image_feature_chunks(tmp_path / "raw/image_features_Baby.b", chunk_rows=8))
    assert [len(ids) for ids, _ in chunks] == [8, 8, 5]
    ids = np.concatenate([c[0] for c in chunks])
    assert ids[0] == _asin(0) and ids[-1] == "B999999999"
    np.testing.assert_array_equal(np.concatenate([c[1] for c in chunks])[:WITH_IMAGE], vectors[:WITH_IMAGE])


def test_fake_category_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    vectors = _category(tmp_path / "raw")
    assert _prepare(tmp_path) == 0
    assert "image features       4096-d" in capsys.readouterr().err
    folder = tmp_path / "data/baby"
    i_map = pd.read_csv(folder / "i_id_mapping.csv", sep="\t")
    ratings = _ratings()
    kept = set(i_map.asin)
    assert i_map.asin.tolist() == [a for a in pd.unique(ratings.item) if a in kept]  # first appearance order
    assert all(n < 5 for a, n in ratings.item.value_counts().items() if a not in kept)  # the 5-core's only drops
    data = load_dataset(tmp_path / "data", "baby")
    assert data.image_feat is not None and data.text_feat is not None
    number = [int(a[1:]) for a in i_map.asin]
    has_image = np.array([n < WITH_IMAGE for n in number])
    expected = np.where(has_image[:, None], vectors[number], vectors[:WITH_IMAGE].mean(axis=0))
    np.testing.assert_allclose(data.image_feat, expected, rtol=1e-5)
    has_meta = np.array([n < WITH_META for n in number])
    np.testing.assert_allclose(data.text_feat[~has_meta], data.text_feat[has_meta].mean(axis=0)[None].repeat(
        (~has_meta).sum(), axis=0), rtol=1e-5, atol=1e-6)
    assert data.text_feat.shape[1] <= 384 and np.linalg.norm(data.text_feat[has_meta], axis=1) == pytest.approx(1)
    summary = json.loads((folder / "prepare.json").read_text())
    assert summary["features"]["image"]["mean_filled_items"] == (~has_image).sum()
    assert summary["features"]["image"]["unmatched_rows"] == 1 + WITH_IMAGE - has_image.sum()
    assert summary["features"]["text"]["mean_filled_items"] == (~has_meta).sum() > 0
    assert summary["settings"]["amazon_category"] == "Baby" and summary["settings"]["text_encoder"] == "tfidf"
    assert len(summary["inputs"]) == 3
    assert main(["train", "--model", "freedom", "--dataset", "baby", "--data-dir", str(tmp_path / "data"),
                 "--epochs", "1", "--device", "cpu"]) == 0


def test_reviews_json_gives_the_ratings_csv_dataset(tmp_path: Path) -> None:
    _category(tmp_path / "raw")
    assert _prepare(tmp_path, "--user-graph-k", "0") == 0
    _category(tmp_path / "raw2", reviews=True)
    assert main(["data", "prepare", "--amazon", str(tmp_path / "raw2"), "--category", "baby", "--name", "b2",
                 "--data-dir", str(tmp_path / "data"), "--user-graph-k", "0"]) == 0
    a = (tmp_path / "data/baby/baby.inter").read_bytes()
    assert a == (tmp_path / "data/b2/b2.inter").read_bytes()
    assert not (tmp_path / "data/baby/user_graph_dict.npy").exists()


def test_meta_is_never_evaluated(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _category(tmp_path / "raw")
    marker = tmp_path / "pwned"
    with gzip.open(tmp_path / "raw/meta_Baby.json.gz", "at") as fh:
        fh.write(f"__import__('pathlib').Path({str(marker)!r}).touch()\n")
    assert _prepare(tmp_path) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"meta_Baby.json.gz: line {WITH_META + 1} is neither JSON nor a Python literal" in err[0]
    assert not marker.exists()
    assert not list((tmp_path / "data").iterdir())


def test_truncated_image_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _category(tmp_path / "raw")
    path = tmp_path / "raw/image_features_Baby.b"
    path.write_bytes(path.read_bytes()[:-100])
    assert _prepare(tmp_path) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{path}: " in err[0] and "not a whole number of records" in err[0]
    assert not list((tmp_path / "data").iterdir())


def test_missing_category_files_are_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "raw").mkdir()
    assert _prepare(tmp_path) == 2
    assert "no ratings_Baby.csv or reviews_Baby_5.json(.gz)" in capsys.readouterr().err


@pytest.mark.skipif(importlib.util.find_spec("sentence_transformers") is not None,
                    reason="sentence-transformers is installed")
def test_minilm_without_the_extra_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _category(tmp_path / "raw")
    assert _prepare(tmp_path, "--text-encoder", "minilm") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install 'mgtune[text]'" in err[0]
    assert not (tmp_path / "data").exists()  # refused before any data work


def test_tfidf_encoder_handles_a_single_item_or_term() -> None:
    from mgtune.data.text import encode_texts

    assert encode_texts(["one"]).shape == (1, 1)
    out = encode_texts(["red shoe", "blue shoe", "red hat", "warm hat"], dim=384)
    assert out.shape == (4, 3) and np.allclose(np.linalg.norm(out, axis=1), 1, atol=1e-5)
