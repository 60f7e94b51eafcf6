"""``user_graph_dict.npy`` is read without running code: only MMRec's format of numbers and arrays."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mgtune.errors import DataFormatError
from mgtune.models._blocks.user_graph import load_user_graph_dict


class _Payload:
    """Unpickling this runs ``touch <marker>``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (f"touch {self.marker}",)


def test_mmrec_format_loads(tmp_path: Path) -> None:
    # what preprocessing/dualgnn-gen-u-u-matrix.py writes: {user: [ids (list), counts (list of floats)]}
    graph = {0: [[1, 2], [3.0, 1.0]], 1: [[0], [3.0]], 2: [[0], [1.0]], 3: [[], []]}
    np.save(tmp_path / "user_graph_dict.npy", graph, allow_pickle=True)
    g = load_user_graph_dict(tmp_path / "user_graph_dict.npy", n_users=4, k=2)
    assert g.neighbours[0].tolist() == [1, 2] and g.counts[0].tolist() == [3.0, 1.0]
    assert g.n_valid.tolist() == [2, 1, 1, 0]


def test_numpy_arrays_and_scalars_load(tmp_path: Path) -> None:
    graph = {0: [np.array([1]), np.array([2.0], dtype=np.float32)], np.int64(1): [[np.int64(0)], [np.float32(2)]]}
    np.save(tmp_path / "g.npy", graph, allow_pickle=True)
    g = load_user_graph_dict(tmp_path / "g.npy", n_users=2, k=1)
    assert g.neighbours[:, 0].tolist() == [1, 0]


def test_crafted_pickle_is_refused_and_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    np.save(tmp_path / "user_graph_dict.npy", {0: [[0], [1.0]], 1: _Payload(marker)}, allow_pickle=True)
    with pytest.raises(DataFormatError, match=r"user_graph_dict\.npy: unreadable user graph.*refused"):
        load_user_graph_dict(tmp_path / "user_graph_dict.npy", n_users=2, k=1)
    assert not marker.exists()


def test_crafted_pickle_through_the_cli_runs_nothing(tmp_path: Path) -> None:
    """``mgtune train --model dualgnn`` on a dataset folder with a crafted graph file: one line, no marker."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    run = [sys.executable, "-m", "mgtune.cli"]
    subprocess.run([*run, "data", "synth", "--preset", "tiny", "--name", "evil", "--data-dir", str(tmp_path)],
                   env=env, check=True, capture_output=True, timeout=120)
    marker = tmp_path / "marker"
    np.save(tmp_path / "evil" / "user_graph_dict.npy", {0: _Payload(marker)}, allow_pickle=True)
    proc = subprocess.run([*run, "train", "--model", "dualgnn", "--dataset", "evil", "--data-dir", str(tmp_path),
                           "--epochs", "1", "--device", "cpu", "--out", str(tmp_path / "out")],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("mgtune: error: ")
    assert "user_graph_dict.npy" in proc.stderr and "Traceback" not in proc.stderr
    assert not marker.exists()


@pytest.mark.parametrize("payload", [
    b"not a numpy file",
    np.arange(6).reshape(2, 3),
    {0: [[[0, 1]], [[1.0, 2.0]]], 1: [[0], [1.0]]},  # nested lists
    {0: [[1], [float("nan")]], 1: [[0], [1.0]]},  # non-finite counts
    {0: "ab", 1: [[0], [1.0]]},
    {0: {1, 2}, 1: [[0], [1.0]]},
    np.array(["x"], dtype="U1"),
])
def test_other_contents_are_one_error(tmp_path: Path, payload: object) -> None:
    path = tmp_path / "user_graph_dict.npy"
    if isinstance(payload, bytes):
        path.write_bytes(payload)
    else:
        np.save(path, payload, allow_pickle=True)
    with pytest.raises(DataFormatError, match=r"user_graph_dict\.npy: "):
        load_user_graph_dict(path, n_users=2, k=1)
