"""A study on a two-node cluster (`ray.cluster_utils.Cluster`) survives losing the node its trial runs on.

The head has no CPUs, so every trial runs on a worker node. Removing that worker mid-trial: the trial
is retried from its last checkpoint on another worker and the study completes. Removing the last worker:
the study stops with one clear line instead of waiting forever.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.ray

# the test process reads its auth token once, when Ray first needs it: a fresh token would not reach it
# the cluster's processes run on 127.0.0.1, as the study's own runtime does (see session.start_ray)
AUTH = {"RAY_AUTH_MODE": "disabled", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
EPOCHS = 30


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    import ray._private.ray_constants as ray_constants
    from ray.cluster_utils import Cluster

    saved = {k: os.environ.get(k) for k in AUTH}
    os.environ.update(AUTH)
    cluster_mode, ray_constants.ENABLE_RAY_CLUSTER = ray_constants.ENABLE_RAY_CLUSTER, False
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False,
                                                      "node_ip_address": "127.0.0.1"})
    try:
        yield c
    finally:
        c.shutdown()
        ray_constants.ENABLE_RAY_CLUSTER = cluster_mode
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _study(tiny_dir: Path, storage: Path, name: str, address: str, err: Path) -> subprocess.Popen[str]:
    with err.open("w") as fh:
        return subprocess.Popen(
            [sys.executable, "-m", "mgtune.cli", "run", "--model", "freedom", "--dataset", "tiny", "--data-dir",
             str(tiny_dir), "--trials", "1", "--max-epochs", str(EPOCHS), "--grace-epochs", str(EPOCHS),
             "--checkpoint-every", "1", "--storage", str(storage), "--name", name, "--address", address],
            stdout=subprocess.PIPE, stderr=fh, text=True,
            env={**os.environ, "MGTUNE_NO_FIT_GRACE_S": "3"},
        )


def _progress(folder: Path) -> list[dict[str, str]]:
    files = list(folder.glob("trial_*/progress.csv"))
    return list(csv.DictReader(files[0].open())) if files else []


def _wait_for_checkpoint(proc: subprocess.Popen[str], folder: Path, err: Path) -> None:
    deadline = time.monotonic() + 180
    while not any(r.get("checkpoint_dir_name") for r in _progress(folder)[1:]):
        assert proc.poll() is None, err.read_text()[-3000:]
        assert time.monotonic() < deadline, err.read_text()[-3000:]
        time.sleep(0.1)


def _node_of(nodes: list[Any], pid: int) -> Any:
    """The node whose raylet started the worker process ``pid``."""
    import psutil
    from ray._private import ray_constants

    parents = {p.pid for p in psutil.Process(pid).parents()}
    for node in nodes:
        if node.all_processes[ray_constants.PROCESS_TYPE_RAYLET][0].process.pid in parents:
            return node
    raise AssertionError(f"no node started worker {pid}")


def test_trial_on_a_lost_node_finishes_on_another(cluster: Any, tiny_dir: Path, tmp_path: Path) -> None:
    workers = [cluster.add_node(num_cpus=1) for _ in range(2)]
    cluster.wait_for_nodes()
    err = tmp_path / "err.txt"
    proc = _study(tiny_dir, tmp_path, "lost", cluster.address, err)
    try:
        _wait_for_checkpoint(proc, tmp_path / "lost", err)
        cluster.remove_node(_node_of(workers, int(_progress(tmp_path / "lost")[-1]["pid"])))
        out, _ = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err.read_text()[-3000:]
    assert json.loads(out)["best_trial"]
    rows = list(csv.DictReader((tmp_path / "lost" / "results.csv").open()))
    assert len(rows) == 1 and rows[0]["status"] == "completed" and int(rows[0]["epochs_run"]) == EPOCHS, rows
    progress = _progress(tmp_path / "lost")
    epochs = [int(r["epoch"]) for r in progress]
    assert sorted(set(epochs)) == list(range(EPOCHS)) and epochs.count(0) == 1, epochs  # from its checkpoint
    assert len({r["pid"] for r in progress}) == 2  # in a second worker process, after the first was lost


def test_study_stops_when_no_node_can_hold_a_trial(cluster: Any, tiny_dir: Path, tmp_path: Path) -> None:
    workers = list(cluster.worker_nodes)
    if not workers:
        workers = [cluster.add_node(num_cpus=1)]
        cluster.wait_for_nodes()
    err = tmp_path / "err.txt"
    proc = _study(tiny_dir, tmp_path, "stuck", cluster.address, err)
    try:
        _wait_for_checkpoint(proc, tmp_path / "stuck", err)
        lost = time.monotonic()
        for w in workers:
            cluster.remove_node(w)  # the head has no CPUs: nothing can hold the trial now
        proc.communicate(timeout=120)
        waited = time.monotonic() - lost
    finally:
        if proc.poll() is None:
            proc.kill()
    text = err.read_text()
    assert proc.returncode == 2, text[-3000:]
    last = [ln for ln in text.splitlines() if ln.strip()][-1]
    assert last.startswith("mgtune: error: no live node of the Ray cluster can hold a trial"), text[-3000:]
    assert "--resume --name stuck" in last
    assert waited < 90, waited
