"""Dataset names, replacing a dataset, and ids or feature arrays that imply nonsense (issue 11: 5, 7, 9)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from mgtune.cli import main
from mgtune.data import dataset_dir, load_dataset
from mgtune.data.synth import make_synthetic
from mgtune.errors import ConfigError, DataFormatError


@pytest.mark.parametrize("name", ["../x", "/tmp/mgtune-abs-name", "sub/dir", "..", ".", "", ".hidden", "a\\b",
                                  "x" * 200, "tab\tname"])
def test_synth_name_that_is_a_path_is_refused(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data_dir = tmp_path / "datasets"
    before = set(tmp_path.rglob("*")) | set(Path("/tmp").glob("mgtune-abs-name*"))
    code = main(["data", "synth", "--preset", "tiny", "--name", name, "--data-dir", str(data_dir)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "dataset name must be a plain name" in err[0], err
    assert set(tmp_path.rglob("*")) | set(Path("/tmp").glob("mgtune-abs-name*")) == before


@pytest.mark.parametrize("name", ["../tiny", "/etc", "a/b"])
def test_every_dataset_option_checks_the_name(name: str, tiny_dir: Path) -> None:
    with pytest.raises(ConfigError, match="dataset name must be a plain name"):
        dataset_dir(tiny_dir, name)
    with pytest.raises(ConfigError, match="dataset name must be a plain name"):
        load_dataset(tiny_dir, name)


def test_synth_over_existing_dataset_needs_force_and_replaces_it_whole(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["data", "synth", "--preset", "tiny", "--name", "t", "--data-dir", str(tmp_path)]
    assert main(argv) == 0
    folder = tmp_path / "t"
    old_inter = (folder / "t.inter").read_bytes()
    np.save(folder / "user_graph_dict.npy", {0: [[1], [1.0]]}, allow_pickle=True)  # stale, from the old data
    (folder / ".mgtune_cache").mkdir()
    (folder / ".mgtune_cache" / "knn-x.pt").write_bytes(b"stale")
    capsys.readouterr()

    assert main([*argv, "--seed", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "already exists; pass --force" in err[0]
    assert (folder / "t.inter").read_bytes() == old_inter and (folder / "user_graph_dict.npy").exists()

    assert main([*argv, "--seed", "1", "--force"]) == 0
    assert (folder / "t.inter").read_bytes() != old_inter
    assert sorted(p.name for p in folder.iterdir()) == ["image_feat.npy", "t.inter", "text_feat.npy"]
    assert [p.name for p in tmp_path.iterdir()] == ["t"]  # no temp or old folder left beside it


def test_failed_replacement_keeps_the_old_dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mgtune.data.synth as synth

    make_synthetic(tmp_path, "t", "tiny")
    old = (tmp_path / "t" / "t.inter").read_bytes()

    def boom(*_: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(synth, "write_dataset", boom)
    with pytest.raises(OSError, match="disk full"):
        make_synthetic(tmp_path, "t", "tiny", seed=1, force=True)
    assert (tmp_path / "t" / "t.inter").read_bytes() == old
    assert [p.name for p in tmp_path.iterdir()] == ["t"]


def _copy(tiny_dir: Path, tmp_path: Path) -> Path:
    shutil.copytree(tiny_dir / "tiny", tmp_path / "tiny", ignore=shutil.ignore_patterns(".mgtune_cache"))
    return tmp_path / "tiny"


@pytest.mark.parametrize("row, message", [
    ("5\t1000000000000\t0", r"column itemID has id 1000000000000 .* above the largest supported id"),
    ("5\t1e30\t0", r"column itemID has id 1e30"),
    ("100000000\t3\t0", r"userID values imply 100000001 users .* only \d+ distinct users"),
    ("3\t50000000\t0", r"itemID values imply 50000001 items .* only \d+ distinct items"),
])
def test_ids_implying_absurd_sizes_are_refused_with_the_sizes(row: str, message: str, tiny_dir: Path,
                                                              tmp_path: Path) -> None:
    folder = _copy(tiny_dir, tmp_path)
    with (folder / "tiny.inter").open("a") as fh:
        fh.write(row + "\n")
    with pytest.raises(DataFormatError, match=message):
        load_dataset(tmp_path, "tiny")


@pytest.mark.parametrize("array, message", [
    (np.zeros((200, 0), np.float32), "has 0 feature columns"),
    (np.zeros((200, 3), np.complex64), "array of real numbers"),
    (np.array([["a"] * 3] * 200), "array of real numbers"),
])
def test_feature_arrays_without_features_are_refused(array: np.ndarray, message: str, tiny_dir: Path,
                                                     tmp_path: Path) -> None:
    folder = _copy(tiny_dir, tmp_path)
    np.save(folder / "image_feat.npy", array)
    with pytest.raises(DataFormatError, match=f"image_feat.npy: .*{message}"):
        load_dataset(tmp_path, "tiny")
