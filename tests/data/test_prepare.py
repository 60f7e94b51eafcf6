"""mgtune data prepare on one's own interactions: formats, k-core, ids, split, features, user graph, bad input."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mgtune.cli import main
from mgtune.data import load_dataset
from mgtune.data.kcore import k_core
from mgtune.data.split import split_labels

N_ITEMS = 30


def _log(seed: int = 0, n_users: int = 40) -> pd.DataFrame:
    """A raw log: user u has 5 + (u % 21) distinct items, timestamps increasing down the file."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        for i in rng.choice(N_ITEMS, size=5 + u % 21, replace=False):
            rows.append((f"user{u}", f"item{i:02d}", float(rng.integers(1, 6)), 1_000 + len(rows)))
    return pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])


def _prepare(tmp_path: Path, inter: Path, *extra: str, name: str = "mine") -> int:
    return main(["data", "prepare", "--interactions", str(inter), "--name", name,
                 "--data-dir", str(tmp_path / "data"), *extra])


def _inter(tmp_path: Path, name: str = "mine") -> pd.DataFrame:
    return pd.read_csv(tmp_path / "data" / name / f"{name}.inter", sep="\t")


def _maps(tmp_path: Path, name: str = "mine") -> tuple[pd.DataFrame, pd.DataFrame]:
    folder = tmp_path / "data" / name
    return (pd.read_csv(folder / "u_id_mapping.csv", sep="\t", dtype={"user_id": str}),
            pd.read_csv(folder / "i_id_mapping.csv", sep="\t", dtype={"asin": str}))


def test_k_core_is_iterative() -> None:
    # k=2: item 2 has one row, so it goes; then user 2 has one row left and goes too (round 2)
    users = np.array([0, 0, 1, 1, 2, 2])
    items = np.array([0, 1, 0, 1, 1, 2])
    keep, rounds = k_core(users, items, 2)
    assert keep.tolist() == [True, True, True, True, False, False] and rounds == 2
    assert k_core(users, items, 1)[0].all()
    assert not k_core(users, items, 3)[0].any()


@pytest.mark.parametrize("n, expected", [(3, (1, 1, 1)), (5, (3, 1, 1)), (9, (7, 1, 1)), (10, (8, 1, 1)),
                                         (15, (12, 1, 2)), (20, (16, 2, 2)), (29, (24, 2, 3)), (2, (2, 0, 0))])
def test_split_counts_follow_mmrec(n: int, expected: tuple[int, int, int]) -> None:
    labels = split_labels(np.zeros(n, dtype=np.int64), np.random.default_rng(0))
    assert tuple(np.bincount(labels, minlength=3)) == expected


def test_time_split_holds_out_the_latest() -> None:
    users = np.repeat([0, 1], [20, 6])
    stamps = np.random.default_rng(1).permutation(26).astype(float)
    labels = split_labels(users, np.random.default_rng(0), stamps)
    for u in (0, 1):
        t, lab = stamps[users == u], labels[users == u]
        assert t[lab == 0].max() < t[lab == 1].min() and t[lab == 1].max() < t[lab == 2].min()


def test_random_split_is_seeded() -> None:
    users = np.repeat(np.arange(10), 12)
    a, b, c = (split_labels(users, np.random.default_rng(s)) for s in (3, 3, 4))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl.gz"])
def test_formats_give_the_same_dataset(fmt: str, tmp_path: Path) -> None:
    log = _log()
    ref = tmp_path / "ref.csv"
    log.to_csv(ref, index=False)
    path = tmp_path / f"log.{fmt}"
    if fmt == "tsv":
        log.to_csv(path, sep="\t", index=False)
    elif fmt == "jsonl.gz":
        with gzip.open(path, "wt") as fh:
            log.to_json(fh, orient="records", lines=True)
    else:
        path = ref
    assert _prepare(tmp_path, ref, name="ref") == 0
    assert _prepare(tmp_path, path) == 0
    assert _inter(tmp_path).equals(_inter(tmp_path, "ref"))


def test_ids_dedup_kcore_and_split_by_hand(tmp_path: Path) -> None:
    log = _log()
    extra = pd.DataFrame([
        ("user3", log[log.user_id == "user3"].item_id.iloc[0], 5.0, 10**7),  # a later repeat of a pair
        ("lonely", "item00", 3.0, 2),  # a user with one row: 5-core drops it
        ("user1", "rare", 4.0, 3), ("user2", "rare", 4.0, 4),  # an item with two rows: dropped
        ("", "item01", 1.0, 5),  # no user id
    ], columns=log.columns)
    raw = pd.concat([log, extra], ignore_index=True)
    path = tmp_path / "log.csv"
    raw.to_csv(path, index=False)
    assert _prepare(tmp_path, path, "--seed", "7") == 0

    summary = json.loads((tmp_path / "data/mine/prepare.json").read_text())
    c = summary["counts"]
    assert c["rows_read"] == len(raw) and c["rows_without_user_or_item"] == 1 and c["duplicate_rows"] == 1
    assert c["k_core"] == {"k": 5, "rounds": 1, "rows_dropped": 3, "users_dropped": 1, "items_dropped": 1}
    assert summary["inputs"][0]["blake2b"] and summary["settings"]["seed"] == 7

    u_map, i_map = _maps(tmp_path)
    assert u_map.user_id.tolist() == list(pd.unique(log.user_id))  # first appearance order
    assert i_map.asin.tolist() == list(pd.unique(log.item_id))
    inter = _inter(tmp_path)
    back = set(zip(u_map.user_id.to_numpy()[inter.userID], i_map.asin.to_numpy()[inter.itemID]))
    assert back == set(zip(log.user_id, log.item_id))
    assert 10**7 not in inter.timestamp.to_numpy()  # the repeat's earliest row is kept
    per_user = inter.groupby("userID").x_label.apply(lambda s: tuple(np.bincount(s, minlength=3)))
    for uid, got in per_user.items():
        n = 5 + int(u_map.user_id[uid].removeprefix("user")) % 21
        held = 2 if n < 10 else int(n * 0.2)
        assert got == (n - held, held // 2, held - held // 2)
    assert (c["train"], c["valid"], c["test"]) == tuple(np.bincount(inter.x_label))
    data = load_dataset(tmp_path / "data", "mine")
    assert (data.n_users, data.n_items) == (40, N_ITEMS)


def test_features_are_aligned_and_missing_items_get_the_mean(tmp_path: Path) -> None:
    log = _log()
    path = tmp_path / "log.csv"
    log.to_csv(path, index=False)
    rng = np.random.default_rng(2)
    known = [f"item{i:02d}" for i in range(N_ITEMS - 3)] + ["not-an-item"]  # 3 items lack features
    image = rng.normal(size=(len(known), 6)).astype(np.float32)
    np.save(tmp_path / "img.npy", image)
    (tmp_path / "img.txt").write_text("\n".join(known) + "\n")
    text = pd.DataFrame(rng.normal(size=(len(known), 4)), columns=list("abcd"))
    text.insert(0, "item", known)
    text.to_parquet(tmp_path / "text.parquet")
    assert _prepare(tmp_path, path, "--image-features", str(tmp_path / "img.npy"), "--image-ids",
                    str(tmp_path / "img.txt"), "--text-features", str(tmp_path / "text.parquet")) == 0

    _, i_map = _maps(tmp_path)
    data = load_dataset(tmp_path / "data", "mine")
    row_of = {k: r for r, k in enumerate(known)}
    covered = [row_of[a] for a in i_map.asin if a in row_of]
    for feat, source in ((data.image_feat, image), (data.text_feat, text.iloc[:, 1:].to_numpy(np.float32))):
        assert feat is not None
        for item, asin in enumerate(i_map.asin):
            want = source[row_of[asin]] if asin in row_of else source[covered].mean(axis=0)
            np.testing.assert_allclose(feat[item], want, rtol=1e-5, atol=1e-6)
    f = json.loads((tmp_path / "data/mine/prepare.json").read_text())["features"]
    assert f["image"]["mean_filled_items"] == f["text"]["mean_filled_items"] == 3
    assert f["image"]["unmatched_rows"] == 1 and set(f["image"]["mean_filled_examples"]) == {"item27", "item28",
                                                                                             "item29"}


def test_user_graph_file_matches_dense_counts(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    _log().to_csv(path, index=False)
    assert _prepare(tmp_path, path, "--user-graph-k", "7") == 0
    data = load_dataset(tmp_path / "data", "mine")
    r = np.zeros((data.n_users, data.n_items))
    r[data.train.users, data.train.items] = 1
    co = r @ r.T
    np.fill_diagonal(co, 0)
    graph = np.load(tmp_path / "data/mine/user_graph_dict.npy", allow_pickle=True).item()
    assert type(graph) is dict and sorted(graph) == list(range(data.n_users))
    for u, (nbrs, counts) in graph.items():
        assert len(nbrs) == len(counts) == min(7, int((co[u] > 0).sum()))
        np.testing.assert_array_equal(counts, co[u, nbrs])
        assert list(counts) == sorted(counts, reverse=True)  # by decreasing count, as the reference
        np.testing.assert_array_equal(counts, np.sort(co[u])[::-1][: len(counts)])


def test_cold_start_items_are_counted_and_train_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = _log()
    late = pd.DataFrame([(f"user{u}", "newitem", 4.0, 10**6 + u) for u in range(6)], columns=log.columns)
    path = tmp_path / "log.csv"
    pd.concat([log, late]).to_csv(path, index=False)
    np.save(tmp_path / "img.npy", np.ones((1, 3), dtype=np.float32))  # features for one item only
    (tmp_path / "img.txt").write_text("item00\n")
    assert _prepare(tmp_path, path, "--split", "time", "--image-features", str(tmp_path / "img.npy"),
                    "--image-ids", str(tmp_path / "img.txt")) == 0
    err = capsys.readouterr().err
    assert "cold-start items     1" in err and f"{N_ITEMS} items filled with the mean" in err
    summary = json.loads((tmp_path / "data/mine/prepare.json").read_text())
    assert summary["cold_start_items"]["examples"] == ["newitem"]
    assert main(["train", "--model", "dualgnn", "--dataset", "mine", "--data-dir", str(tmp_path / "data"),
                 "--epochs", "1", "--device", "cpu", "--set", "user_graph_k=3"]) == 0
    assert "test" in json.loads(capsys.readouterr().out)


def test_existing_folder_needs_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "log.csv"
    _log().to_csv(path, index=False)
    assert _prepare(tmp_path, path) == 0
    before = (tmp_path / "data/mine/mine.inter").read_bytes()
    assert _prepare(tmp_path, path, "--seed", "1") == 2
    assert "already exists; pass --force" in capsys.readouterr().err
    assert _prepare(tmp_path, path, "--seed", "1", "--force") == 0
    assert (tmp_path / "data/mine/mine.inter").read_bytes() != before
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["mine"]


def _bad_log(tmp_path: Path, edit: str) -> list[str]:
    """Write a broken input for case ``edit``; return the extra arguments."""
    log = _log()
    path = tmp_path / "log.csv"
    if edit == "missing column":
        log.drop(columns="item_id").to_csv(path, index=False)
        return []
    if edit == "non-numeric rating":
        log["rating"] = log["rating"].astype(object)
        log.loc[7, "rating"] = "five"
    log.to_csv(path, index=False)
    if edit == "empty after k-core":
        return ["--core", "50"]
    items = [f"item{i:02d}" for i in range(N_ITEMS)]
    if edit == "ids match no item":
        pd.DataFrame({"id": ["x", "y"], "f": [1.0, 2.0]}).to_csv(tmp_path / "f.csv", index=False)
    elif edit == "mixed dimensions":
        (tmp_path / "f.csv").write_text("id,a,b\nitem00,1,2\nitem01,3\n")
    elif edit == "nan feature":
        pd.DataFrame({"id": items, "a": [np.nan] + [1.0] * (N_ITEMS - 1)}).to_csv(tmp_path / "f.csv", index=False)
    elif edit == "npy ids count":
        np.save(tmp_path / "f.npy", np.zeros((3, 2), dtype=np.float32))
        (tmp_path / "ids.txt").write_text("item00\nitem01\n")
        return ["--image-features", str(tmp_path / "f.npy"), "--image-ids", str(tmp_path / "ids.txt")]
    return ["--image-features", str(tmp_path / "f.csv")]


BAD = {
    "missing column": ("log.csv", "missing column 'item_id'"),
    "non-numeric rating": ("log.csv", "column 'rating' must hold numbers, got 'five' on data row 8"),
    "empty after k-core": ("log.csv", "no interactions left after 50-core filtering"),
    "ids match no item": ("f.csv", "none of its 2 ids matches an item"),
    "mixed dimensions": ("f.csv", "mixed feature dimensions: line 3 has 1 values, the header 2"),
    "nan feature": ("f.csv", "NaN or infinite feature values in row 1 (id 'item00')"),
    "npy ids count": ("ids.txt", "2 ids for the 3 rows"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_one_line_exit_2_and_no_folder(case: str, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    extra = _bad_log(tmp_path, case)
    code = _prepare(tmp_path, tmp_path / "log.csv", *extra)
    err = capsys.readouterr().err.strip().splitlines()
    file, message = BAD[case]
    assert code == 2
    assert len(err) == 1 and err[0].startswith(f"mgtune: error: {tmp_path / file}: ") and message in err[0], err
    assert not (tmp_path / "data").exists() or list((tmp_path / "data").iterdir()) == []


def test_min_rating_drops_low_ratings_before_the_k_core(tmp_path: Path) -> None:
    log = _log()
    path = tmp_path / "log.csv"
    log.to_csv(path, index=False)
    assert _prepare(tmp_path, path, "--min-rating", "3", "--core", "1") == 0
    c = json.loads((tmp_path / "data/mine/prepare.json").read_text())["counts"]
    assert c["rows_below_min_rating"] == int((log.rating < 3).sum()) > 0
    assert c["interactions"] == int((log.rating >= 3).sum())
    assert _inter(tmp_path).rating.min() >= 3


def _item_text(path: Path, ids: list[str] | None = None) -> pd.DataFrame:
    """Text for item00..item27 (item28 and item29 have none) and one id no interaction names; by ``path``'s suffix."""
    ids = ids or [f"item{i:02d}" for i in range(N_ITEMS - 2)] + ["not-an-item"]
    words = ["red", "blue", "green", "warm", "soft"]
    frame = pd.DataFrame({"item_id": ids, "title": [f"{words[n % 5]} thing {n}" for n in range(len(ids))],
                          "blurb": ["" if n == 4 else f"a {words[(n * 3) % 5]} one" for n in range(len(ids))],
                          "price": [str(n * 1.5) for n in range(len(ids))]})
    if path.suffix == ".parquet":
        frame.to_parquet(path)
    elif path.suffix == ".jsonl":
        frame.to_json(path, orient="records", lines=True)
    else:
        frame.to_csv(path, sep="\t" if path.suffix == ".tsv" else ",", index=False)
    return frame


def test_item_text_is_encoded_into_the_text_features(tmp_path: Path) -> None:
    from mgtune.data.text import encode_texts

    path = tmp_path / "log.csv"
    _log().to_csv(path, index=False)
    frame = _item_text(tmp_path / "items.csv")
    assert _prepare(tmp_path, path, "--item-text", str(tmp_path / "items.csv")) == 0
    summary = json.loads((tmp_path / "data/mine/prepare.json").read_text())
    assert summary["settings"]["item_text_columns"] == ["title", "blurb"]  # price holds numbers: not text
    assert summary["settings"]["text_encoder"] == "tfidf"
    text = summary["features"]["text"]
    assert text["holds"][0]["fields"] == ["title", "blurb"] and text["unmatched_rows"] == 1
    assert sorted(text["mean_filled_examples"]) == ["item28", "item29"]

    _, i_map = _maps(tmp_path)
    data = load_dataset(tmp_path / "data", "mine")
    assert data.text_feat is not None and data.image_feat is None
    kept = frame[frame.item_id.isin(set(i_map.asin))]
    joined = [" ".join(p for p in (t, b) if p) for t, b in zip(kept.title, kept.blurb.fillna(""))]
    want = encode_texts(joined, "tfidf", seed=0)
    row = {a: r for r, a in enumerate(i_map.asin)}
    np.testing.assert_allclose(data.text_feat[[row[a] for a in kept.item_id]], want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(data.text_feat[[row["item28"], row["item29"]]], want.mean(0)[None].repeat(2, 0),
                               rtol=1e-5, atol=1e-6)
    for fmt in ("jsonl", "parquet", "tsv"):
        _item_text(tmp_path / f"items.{fmt}")
        assert _prepare(tmp_path, path, "--item-text", str(tmp_path / f"items.{fmt}"), "--name", fmt) == 0
        np.testing.assert_allclose(np.load(tmp_path / f"data/{fmt}/text_feat.npy"), data.text_feat, atol=1e-6)
    assert _prepare(tmp_path, path, "--item-text", str(tmp_path / "items.csv"), "--text-columns", "blurb",
                    "--name", "blurb") == 0
    s = json.loads((tmp_path / "data/blurb/prepare.json").read_text())
    assert s["settings"]["item_text_columns"] == ["blurb"] and s["features"]["text"]["items_without_text"] == 1


def _bad_text(tmp_path: Path, case: str) -> list[str]:
    """Write the inputs of ``case``; return the extra arguments."""
    _log().to_csv(tmp_path / "log.csv", index=False)
    items = tmp_path / "items.csv"
    frame = _item_text(items)
    if case == "missing text column":
        return ["--item-text", str(items), "--text-columns", "title,plot"]
    if case == "empty text column":
        frame.assign(blurb="").to_csv(items, index=False)
        return ["--item-text", str(items), "--text-columns", "title,blurb"]
    if case == "text ids match no item":
        _item_text(items, ids=["x1", "x2"])
    if case == "no text column":
        frame[["item_id", "price"]].to_csv(items, index=False)
    if case == "encoder without text":
        return ["--text-encoder", "tfidf"]
    if case == "encoder with ready text features":
        pd.DataFrame({"id": ["item00"], "a": [1.0]}).to_csv(tmp_path / "f.csv", index=False)
        return ["--text-features", str(tmp_path / "f.csv"), "--text-encoder", "minilm"]
    if case == "item text and text features":
        return ["--item-text", str(items), "--text-features", str(items)]
    if case == "raw text as features":
        frame[["item_id", "title"]].to_csv(items, index=False)
        return ["--text-features", str(items)]
    if case == "text columns without item text":
        return ["--text-columns", "title"]
    return ["--item-text", str(items)]


BAD_TEXT = {  # case: (the start of the message after "mgtune: error: ", a part of the rest)
    "missing text column": ("items.csv: --text-columns names missing column(s) 'plot'", "the header has 'item_id'"),
    "empty text column": ("items.csv: text column 'blurb' is empty in every row", ""),
    "text ids match no item": ("items.csv: none of its 2 ids matches an item", ""),
    "no text column": ("items.csv: no text column: every column besides the id 'item_id' holds numbers", ""),
    "encoder without text": ("--text-encoder tfidf: there is no item text to encode", "--item-text FILE"),
    "encoder with ready text features": ("--text-encoder minilm: there is no item text to encode", ""),
    "item text and text features": ("--item-text and --text-features both make text_feat.npy", ""),
    "raw text as features": ("items.csv: feature column 'title' has non-numeric value 'red thing 0'",
                             "it looks like raw text: give the file with --item-text"),
    "text columns without item text": ("--text-columns goes with --item-text", ""),
}


@pytest.mark.parametrize("case", sorted(BAD_TEXT))
def test_bad_item_text_is_one_line_exit_2_and_no_folder(case: str, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    extra = _bad_text(tmp_path, case)
    code = _prepare(tmp_path, tmp_path / "log.csv", *extra)
    err = capsys.readouterr().err.strip().splitlines()
    start, part = BAD_TEXT[case]
    start = str(tmp_path / start) if start.startswith("items.csv") else start
    assert code == 2
    assert len(err) == 1 and err[0].startswith(f"mgtune: error: {start}") and part in err[0], err
    assert not (tmp_path / "data").exists() or list((tmp_path / "data").iterdir()) == []
