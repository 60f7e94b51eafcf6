"""`mgtune recommend`: the evaluator's ranking, in the dataset's original ids, training items never shown."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from mgtune.cli import main
from mgtune.data import load_dataset
from mgtune.training import Evaluator
from mgtune.training.checkpoint_eval import load_trained


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dataset prepared from a CSV with string ids (``u-007``, ``sku/12``) and image features, run from its
    folder with relative paths; returns the folder holding ``datasets/shop``."""
    root = tmp_path_factory.mktemp("shop")
    rng = np.random.default_rng(3)
    rows = [(f"u-{u:03d}", f"sku/{i}", int(rng.integers(1, 6)), 1000 + n)
            for n, (u, i) in enumerate((u, i) for u in range(40) for i in rng.choice(30, 12, replace=False))]
    pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"]).to_csv(root / "clicks.csv", index=False)
    np.save(root / "img.npy", rng.normal(size=(30, 6)).astype(np.float32))
    (root / "img_ids.txt").write_text("".join(f"sku/{i}\n" for i in range(30)))
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        assert main(["data", "prepare", "--interactions", "clicks.csv", "--name", "shop", "--image-features",
                     "img.npy", "--image-ids", "img_ids.txt", "--user-graph-k", "0"]) == 0
        assert main(["train", "--model", "vbpr", "--dataset", "shop", "--epochs", "3", "--batch-size", "128",
                     "--out", "train"]) == 0
    return root


def _read(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, dtype={"user": str, "item": str})


def _recommend(shop: Path, out: str, *extra: str) -> pd.DataFrame:
    assert main(["recommend", "--checkpoint", str(shop / "train" / "checkpoint.pt"), "--data-dir",
                 str(shop / "datasets"), "--out", str(shop / out), *extra]) == 0
    return _read(shop / out)


def test_prepare_json_keeps_paths_as_given_and_the_columns_it_read(shop: Path) -> None:
    info = json.loads((shop / "datasets" / "shop" / "prepare.json").read_text())
    assert [i["path"] for i in info["inputs"]] == ["clicks.csv", "img.npy", "img_ids.txt"]
    assert info["columns"] == {"user": "user_id", "item": "item_id", "rating": "rating", "timestamp": "timestamp"}


def test_top_k_is_the_evaluators_ranking_in_original_ids(shop: Path, capsys: pytest.CaptureFixture[str]) -> None:
    k = 5
    rec = _recommend(shop, "rec.csv", "--k", str(k))
    printed = json.loads(capsys.readouterr().out)
    assert printed["ids"] == "original" and printed["rows"] == len(rec) and printed["k"] == k
    assert list(rec.columns) == ["user", "rank", "item", "score"]
    assert rec["user"].str.startswith("u-").all() and rec["item"].str.startswith("sku/").all()

    folder = shop / "datasets" / "shop"
    users = pd.read_csv(folder / "u_id_mapping.csv", sep="\t", dtype=str).set_index("userID")["user_id"]
    items = pd.read_csv(folder / "i_id_mapping.csv", sep="\t", dtype=str).set_index("itemID")["asin"]
    users.index, items.index = users.index.astype(int), items.index.astype(int)
    trained = load_trained(shop / "train" / "checkpoint.pt", data_dir=str(shop / "datasets"), device="cpu")
    data = trained.data
    with torch.no_grad():  # scored and masked here by hand, ranked by numpy: not the code under test
        scores = trained.model.score(torch.arange(data.n_users)).numpy().astype(np.float64)
    scores[data.train.users, data.train.items] = -np.inf
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    expected = pd.DataFrame({"user": users[np.repeat(np.arange(data.n_users), k)].to_numpy(),
                             "rank": np.tile(np.arange(1, k + 1), data.n_users),
                             "item": items[top.ravel()].to_numpy(),
                             "score": np.take_along_axis(scores, top, 1).ravel()})
    assert rec["user"].tolist() == expected["user"].tolist() and rec["rank"].tolist() == expected["rank"].tolist()
    np.testing.assert_allclose(rec["score"], expected["score"], rtol=1e-5)
    assert rec["item"].tolist() == expected["item"].tolist()

    # the evaluator's own numbers come out of these lists: test recall@5 of the recommendations
    test = pd.DataFrame({"user": users[data.test.users].to_numpy(), "item": items[data.test.items].to_numpy()})
    hits = rec.merge(test, on=["user", "item"]).groupby("user").size()
    per_user = (hits.reindex(test["user"].unique(), fill_value=0) / test.groupby("user").size()).fillna(0)
    metrics = Evaluator(data, torch.device("cpu"), (k,)).evaluate(trained.model)
    assert per_user.mean() == pytest.approx(metrics["test"][f"recall@{k}"])


def test_no_training_item_is_ever_recommended(shop: Path) -> None:
    n_items = load_dataset(shop / "datasets", "shop").n_items
    rec = _recommend(shop, "all.parquet", "--k", str(n_items))  # every item a user has not trained on
    clicks = pd.read_csv(shop / "clicks.csv", dtype=str)
    inter = pd.read_csv(shop / "datasets" / "shop" / "shop.inter", sep="\t")
    users = pd.read_csv(shop / "datasets" / "shop" / "u_id_mapping.csv", sep="\t", dtype=str)["user_id"]
    items = pd.read_csv(shop / "datasets" / "shop" / "i_id_mapping.csv", sep="\t", dtype=str)["asin"]
    train = inter[inter["x_label"] == 0]
    train = pd.DataFrame({"user": users[train["userID"]].to_numpy(), "item": items[train["itemID"]].to_numpy()})
    assert rec.merge(train, on=["user", "item"]).empty
    assert set(rec["user"]) <= set(clicks["user_id"]) and set(rec["item"]) <= set(clicks["item_id"])
    per_user = rec.groupby("user").size()
    expected = n_items - train.groupby("user").size()
    assert per_user.sort_index().tolist() == expected.sort_index().tolist()  # fewer rows than k, never a trained item


def test_users_file_in_original_ids_and_parquet(shop: Path) -> None:
    (shop / "users.txt").write_text("u-012\n\nu-003\nu-012\n")
    rec = _recommend(shop, "some.parquet", "--users", str(shop / "users.txt"), "--k", "3")
    assert rec["user"].tolist() == ["u-012"] * 3 + ["u-003"] * 3  # the file's order, once each
    assert rec["rank"].tolist() == [1, 2, 3, 1, 2, 3]
    same = _recommend(shop, "some.csv", "--users", str(shop / "users.txt"), "--k", "3")
    pd.testing.assert_frame_equal(rec, same, check_dtype=False)


def test_a_dataset_without_id_maps_gives_internal_ids(tiny_dir: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--model", "freedom", "--dataset", "tiny", "--data-dir", str(tiny_dir), "--epochs", "1",
                 "--out", str(tmp_path / "t")]) == 0
    capsys.readouterr()
    assert main(["recommend", "--checkpoint", str(tmp_path / "t" / "checkpoint.pt"), "--out",
                 str(tmp_path / "r.csv"), "--k", "4"]) == 0
    assert json.loads(capsys.readouterr().out)["ids"] == "internal"
    rec = pd.read_csv(tmp_path / "r.csv")
    data = load_dataset(tiny_dir, "tiny")
    assert rec["user"].nunique() == data.n_users and rec["item"].between(0, data.n_items - 1).all()
