"""mgtune data prepare --recbole: RecBole atomic files with typed headers, item fields sorted into text and metadata."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mgtune.cli import main
from mgtune.data import load_dataset

N_USERS, N_ITEMS = 40, 30
GENRES = ("Drama", "Comedy", "Horror")
INTER_HEADER = ["user_id:token", "item_id:token", "rating:float", "timestamp:float", "review:token_seq"]
ITEM_HEADER = ["item_id:token", "title:token_seq", "genre:token_seq", "year:token", "kind:token", "price:float",
               "vec:float_seq"]


def _interactions(seed: int = 0) -> pd.DataFrame:
    """User u rates 5 + (u % 21) distinct items; timestamps increase down the file."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(N_USERS):
        for i in rng.choice(N_ITEMS, size=5 + u % 21, replace=False):
            rows.append((f"{u + 1}", f"i{i:02d}", int(rng.integers(1, 6)), 880_000_000 + len(rows), "good film"))
    return pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp", "review"])


def _items() -> pd.DataFrame:
    """Items i00..i28 (i29 has no row) and one id, 'ghost', that no interaction names."""
    rows = []
    for i in [*range(N_ITEMS - 1), "ghost"]:
        n = i if isinstance(i, int) else 99
        rows.append((f"i{n:02d}" if isinstance(i, int) else i, f"The {['red', 'blue', 'green'][n % 3]} word{n} story",
                     " ".join(GENRES[: 1 + n % 2]) if n % 5 else GENRES[2], "unknown" if n == 7 else str(1990 + n % 7),
                     "movie" if n % 4 else "series", "" if n == 3 else f"{n / 2:.1f}", f"{n % 3} {n % 2}.5"))
    return pd.DataFrame(rows, columns=[h.split(":")[0] for h in ITEM_HEADER])


def _write(path: Path, frame: pd.DataFrame, header: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["\t".join(header)] + ["\t".join(str(v) for v in row) for row in frame.itertuples(index=False)]
    path.write_text("\n".join(lines) + "\n")


def _folder(tmp_path: Path, name: str = "films", item: bool = True) -> Path:
    folder = tmp_path / name
    _write(folder / f"{name}.inter", _interactions(), INTER_HEADER)
    if item:
        _write(folder / f"{name}.item", _items(), ITEM_HEADER)
    _write(folder / f"{name}.user", pd.DataFrame({"u": ["1"], "age": ["24"]}), ["user_id:token", "age:token"])
    return folder


def _prepare(tmp_path: Path, folder: Path, *extra: str) -> int:
    return main(["data", "prepare", "--recbole", str(folder), "--data-dir", str(tmp_path / "data"), *extra])


def _summary(tmp_path: Path, name: str = "films") -> dict:
    return json.loads((tmp_path / "data" / name / "prepare.json").read_text())


def test_typed_headers_give_the_interactions_pipeline_and_item_features(tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    folder = _folder(tmp_path)
    assert _prepare(tmp_path, folder) == 0  # --name defaults to the files' NAME
    err = capsys.readouterr().err
    assert "item fields          title text, genre multi_hot, year numeric, kind one_hot, price numeric, vec " \
           "numeric_seq" in err
    assert "image features       9-d (genre multi_hot 3, year numeric 1, kind one_hot 2, price numeric 1, " \
           "vec numeric_seq 2)" in err

    # the same rows as a plain CSV through --interactions: the very same .inter, id maps and split
    csv = tmp_path / "log.csv"
    _interactions().drop(columns="review").to_csv(csv, index=False)
    assert main(["data", "prepare", "--interactions", str(csv), "--name", "plain", "--data-dir",
                 str(tmp_path / "data")]) == 0
    data_dir = tmp_path / "data"
    assert (data_dir / "films/films.inter").read_bytes() == (data_dir / "plain/plain.inter").read_bytes()
    for f in ("u_id_mapping.csv", "i_id_mapping.csv"):
        assert (data_dir / "films" / f).read_bytes() == (data_dir / "plain" / f).read_bytes()

    summary = _summary(tmp_path)
    kinds = {f["name"]: (f["type"], f["kind"], f["slot"]) for f in summary["item_fields"]["fields"]}
    assert kinds == {"title": ("token_seq", "text", "text"), "genre": ("token_seq", "multi_hot", "image"),
                     "year": ("token", "numeric", "image"), "kind": ("token", "one_hot", "image"),
                     "price": ("float", "numeric", "image"), "vec": ("float_seq", "numeric_seq", "image")}
    assert summary["inter_fields"]["unused"] == ["review"] and summary["settings"]["metadata_slot"] == "image"
    assert summary["user_fields"]["fields"] == {"user_id": "token", "age": "token"}
    assert summary["settings"]["text_encoder"] == "tfidf" and summary["features"]["text"]["holds"] == [
        {"fields": ["title"], "kind": "text", "dim": summary["features"]["text"]["dim"], "encoder": "tfidf"}]
    image = summary["features"]["image"]
    assert image["unmatched_rows"] == 1 and image["mean_filled_examples"] == ["i29"]

    data = load_dataset(data_dir, "films")
    assert data.image_feat is not None and data.text_feat is not None
    asin = pd.read_csv(data_dir / "films/i_id_mapping.csv", sep="\t").asin.tolist()
    items = _items().set_index("item_id")
    has_row = np.array([a in items.index for a in asin])
    genre_cols = image["holds"][0]["values"]
    assert sorted(genre_cols) == sorted(GENRES)
    rows = items.loc[[a for a in asin if a in items.index]]
    want_genre = np.array([[g in row.split() for g in genre_cols] for row in rows.genre], dtype=np.float32)
    np.testing.assert_array_equal(data.image_feat[has_row, :3], want_genre)
    year = pd.to_numeric(rows.year, errors="coerce").to_numpy()  # 'unknown' is missing: the mean, 0 standardised
    want_year = np.nan_to_num((year - np.nanmean(year)) / np.nanstd(year))
    np.testing.assert_allclose(data.image_feat[has_row, 3], want_year, rtol=1e-5, atol=1e-6)
    kind_cols = image["holds"][2]["values"]
    assert kind_cols == ["movie", "series"]  # most frequent first
    np.testing.assert_array_equal(data.image_feat[has_row, 4], (rows.kind == "movie").to_numpy())
    np.testing.assert_allclose(data.image_feat[~has_row], data.image_feat[has_row].mean(0, keepdims=True), atol=1e-6)
    assert np.linalg.norm(data.text_feat[has_row], axis=1) == pytest.approx(1, abs=1e-5)
    assert main(["train", "--model", "vbpr", "--dataset", "films", "--data-dir", str(data_dir), "--epochs", "1",
                 "--device", "cpu"]) == 0


def test_metadata_slot_text_appends_and_none_leaves_out(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    assert _prepare(tmp_path, folder, "--name", "image") == 0
    assert _prepare(tmp_path, folder, "--name", "text", "--metadata-slot", "text") == 0
    assert _prepare(tmp_path, folder, "--name", "none", "--metadata-slot", "none") == 0
    by_slot = {n: load_dataset(tmp_path / "data", n) for n in ("image", "text", "none")}
    image, text, none = by_slot["image"], by_slot["text"], by_slot["none"]
    assert image.text_feat is not None and image.image_feat is not None and text.text_feat is not None
    assert text.image_feat is None and none.image_feat is None and none.text_feat is not None
    d_text = image.text_feat.shape[1]
    assert text.text_feat.shape[1] == d_text + image.image_feat.shape[1]
    np.testing.assert_allclose(text.text_feat[:, d_text:], image.image_feat, atol=1e-6)
    np.testing.assert_allclose(text.text_feat[:, :d_text], image.text_feat, atol=1e-6)
    np.testing.assert_array_equal(none.text_feat, image.text_feat)
    holds = [p["fields"][0] for p in _summary(tmp_path, "text")["features"]["text"]["holds"]]
    assert holds == ["title", "genre", "year", "kind", "price", "vec"]
    assert [f["slot"] for f in _summary(tmp_path, "none")["item_fields"]["fields"]][1:] == [None] * 5


def test_overrides_fix_each_group(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    assert _prepare(tmp_path, folder, "--text-fields", "title,genre", "--meta-fields", "year,kind") == 0
    fields = {f["name"]: (f["kind"], f["chosen_by"]) for f in _summary(tmp_path)["item_fields"]["fields"]}
    assert fields == {"title": ("text", "--text-fields"), "genre": ("text", "--text-fields"),
                      "year": ("numeric", "--meta-fields"), "kind": ("one_hot", "--meta-fields"),
                      "price": ("left_out", "rule"), "vec": ("left_out", "rule")}
    assert _summary(tmp_path)["features"]["image"]["dim"] == 3
    assert _prepare(tmp_path, folder, "--name", "t2", "--text-fields", "", "--meta-fields", "title", "--force") == 0
    s = _summary(tmp_path, "t2")
    assert "text" not in s["features"] and s["features"]["image"]["holds"][0]["kind"] == "multi_hot"
    assert s["features"]["image"]["dim"] > 29  # every word of a title is a column when you ask for it


def test_name_and_folder_lookup(tmp_path: Path) -> None:
    folder = _folder(tmp_path, "ml-x", item=False)
    _write(folder / "other.inter", _interactions(1), INTER_HEADER)  # the folder's own name wins
    assert _prepare(tmp_path, folder) == 0
    s = _summary(tmp_path, "ml-x")
    assert "item_fields" not in s and s["features"] == {} and s["settings"]["text_encoder"] is None
    assert _prepare(tmp_path, folder, "--name", "mine") == 0
    assert (tmp_path / "data/mine/mine.inter").read_bytes() == (tmp_path / "data/ml-x/ml-x.inter").read_bytes()


def _bad(tmp_path: Path, case: str) -> tuple[Path, list[str]]:
    """Write the broken folder of ``case``; return it and the extra arguments."""
    folder = _folder(tmp_path)
    inter, item = folder / "films.inter", folder / "films.item"
    if case == "untyped header":
        _write(inter, _interactions(), ["user_id", *INTER_HEADER[1:]])
    elif case == "unknown type":
        _write(item, _items(), [*ITEM_HEADER[:5], "price:number", ITEM_HEADER[6]])
    elif case == "item ids match nothing":
        _write(item, _items().assign(item_id=lambda f: "x" + f.item_id), ITEM_HEADER)
    elif case == "no inter":
        inter.rename(folder / "films.train.inter")
    elif case == "several inter":
        inter.rename(folder / "a.inter")
        _write(folder / "b.inter", _interactions(), INTER_HEADER)
    elif case == "missing field":
        return folder, ["--text-fields", "title,plot"]
    elif case == "field in both":
        return folder, ["--text-fields", "title", "--meta-fields", "title,genre"]
    elif case == "encoder without text":
        _write(item, _items().drop(columns="title"), [h for h in ITEM_HEADER if not h.startswith("title")])
        return folder, ["--text-encoder", "tfidf"]
    elif case == "empty text field":
        _write(item, _items().assign(title=""), ITEM_HEADER)
        return folder, ["--text-fields", "title"]
    elif case == "bad float":
        _write(item, _items().assign(price=lambda f: f.price.where(f.item_id != "i05", "cheap")), ITEM_HEADER)
    elif case == "ragged float_seq":
        _write(item, _items().assign(vec=lambda f: f.vec.where(f.item_id != "i02", "1 2 3")), ITEM_HEADER)
    elif case == "no id field":
        _write(item, _items(), ["movie_id:token", *ITEM_HEADER[1:]])
    elif case == "misplaced option":
        return folder, ["--item-text", str(item)]
    return folder, []


BAD = {  # case: (what the line names first, message)
    "untyped header": ("films/films.inter", "header column 'user_id' has no :type"),
    "unknown type": ("films/films.item", "header column 'price:number' has unknown type 'number'"),
    "item ids match nothing": ("films/films.item", "none of its 30 ids matches an item of the interactions"),
    "no inter": ("films", "no NAME.inter file; a RecBole dataset folder holds NAME.inter and optionally NAME.item "
                          "and NAME.user (pre-split films.train.inter are not read"),
    "several inter": ("films", "several .inter files (a.inter, b.inter) and none is films.inter"),
    "missing field": ("--text-fields", "has no field 'plot'; its fields are 'title', 'genre'"),
    "field in both": ("--text-fields and --meta-fields both name 'title'", ""),
    "encoder without text": ("--text-encoder tfidf", "films.item has no text field to encode"),
    "empty text field": ("films/films.item", "field 'title' (--text-fields) is empty in every row"),
    "bad float": ("films/films.item", "field 'price' must hold numbers, got 'cheap' for item 'i05'"),
    "ragged float_seq": ("films/films.item", "field 'vec' holds vectors of 2 and of 3 numbers (item 'i02')"),
    "no id field": ("films/films.item", "no item id field 'item_id'"),
    "misplaced option": ("--item-text goes with --interactions", ""),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_one_line_exit_2_and_no_folder(case: str, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    folder, extra = _bad(tmp_path, case)
    code = _prepare(tmp_path, folder, *extra)
    err = capsys.readouterr().err.strip().splitlines()
    where, message = BAD[case]
    first = str(tmp_path / where) if where.startswith("films") else where
    assert code == 2
    assert len(err) == 1 and err[0].startswith(f"mgtune: error: {first}") and message in err[0], err
    assert not (tmp_path / "data").exists() or list((tmp_path / "data").iterdir()) == []


def test_image_features_move_the_metadata_to_the_text_slot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = _folder(tmp_path)
    ids = [f"i{i:02d}" for i in range(N_ITEMS)]
    pd.DataFrame({"id": ids, "a": np.arange(N_ITEMS, dtype=float), "b": 1.0}).to_csv(tmp_path / "img.csv",
                                                                                     index=False)
    assert _prepare(tmp_path, folder, "--image-features", str(tmp_path / "img.csv")) == 0
    s = _summary(tmp_path)
    assert s["settings"]["metadata_slot"] == "text" and s["features"]["image"]["dim"] == 2
    assert [p["fields"][0] for p in s["features"]["text"]["holds"]][:2] == ["title", "genre"]
    assert _prepare(tmp_path, folder, "--name", "x", "--image-features", str(tmp_path / "img.csv"),
                    "--metadata-slot", "image") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("mgtune: error: --image-features and films.item's fields genre, year") and \
        "pass --metadata-slot text or none" in err[-1]


def test_an_atomic_file_given_as_interactions_points_to_recbole(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    folder = _folder(tmp_path)
    assert main(["data", "prepare", "--interactions", str(folder / "films.inter"), "--name", "x",
                 "--data-dir", str(tmp_path / "data")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing column 'user_id' (user)" in err[0] and \
        "it is a RecBole atomic file: give its folder with --recbole DIR" in err[0]
