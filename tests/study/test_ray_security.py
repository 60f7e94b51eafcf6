"""The study's trust and network boundaries, through the real CLI.

- The default private Ray runtime listens on the loopback interface only (every process of it, while a
  study runs), and ``study.json`` records a loopback address.
- ``--resume`` refuses a study folder another user could have written (Ray unpickles files from it).
- ``--name`` is one folder name under ``--storage``; a ``--storage`` that cannot hold a study, and an
  ``--address`` where nothing listens, are one-line errors, before or instead of starting Ray.
"""

from __future__ import annotations

import ipaddress
import json
import os
import pickle
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest


def _cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "mgtune.cli", "run", *args]


def _run(*args: str, env: dict[str, str] | None = None, timeout: int = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(_cmd(*args), capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def _one_line_error(proc: subprocess.CompletedProcess[str], *words: str) -> None:
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert lines and lines[-1].startswith("mgtune: error: "), proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    for w in words:
        assert w in lines[-1], lines[-1]
    assert proc.stdout == ""


# ---------------------------------------------------------------- listening sockets of a default study
def _listening(root: psutil.Process) -> list[tuple[str, int, str]]:
    """(address, port, process name) of every listening TCP socket of ``root`` and its descendants."""
    found = []
    for proc in [root, *root.children(recursive=True)]:
        try:
            conns = proc.net_connections(kind="inet")
            name = proc.name()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        found += [(c.laddr.ip, c.laddr.port, name) for c in conns if c.status == psutil.CONN_LISTEN]
    return found


def _is_loopback(ip: str) -> bool:
    addr = ipaddress.ip_address(ip.split("%")[0])
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return addr.is_loopback


@pytest.mark.ray
def test_default_runtime_listens_on_loopback_only(tiny_dir: Path, tmp_path: Path) -> None:
    err = tmp_path / "err.txt"
    with err.open("w") as fh:
        study = subprocess.Popen(
            _cmd("--model", "freedom", "--dataset", "tiny", "--data-dir", str(tiny_dir), "--trials", "2",
                 "--max-epochs", "3", "--grace-epochs", "3", "--checkpoint-every", "1", "--storage", str(tmp_path),
                 "--name", "lo"),
            stdout=subprocess.PIPE, stderr=fh, text=True, env={**os.environ, "RAY_ADDRESS": ""},
        )
    seen: list[tuple[str, int, str]] = []
    try:
        root = psutil.Process(study.pid)
        deadline = time.monotonic() + 240
        # sample while the study runs: after the first epoch every server (workers included) is up
        while study.poll() is None and time.monotonic() < deadline:
            seen += _listening(root)
            time.sleep(0.3)
        out, _ = study.communicate(timeout=max(1, deadline - time.monotonic()))
    finally:
        if study.poll() is None:
            study.kill()
    assert study.returncode == 0, err.read_text()[-3000:]
    names = {n for _, _, n in seen}
    assert {"gcs_server", "raylet"} <= names, sorted(set(seen))  # the sampling saw the runtime
    exposed = sorted({s for s in seen if not _is_loopback(s[0])})
    assert not exposed, f"listening on a non-loopback address: {exposed}"
    meta = json.loads((tmp_path / "lo" / "study.json").read_text())
    assert _is_loopback(meta["ray_address"].rpartition(":")[0]), meta["ray_address"]
    assert json.loads(out)["best_trial"]  # stdout holds only the result JSON


# ---------------------------------------------------------------- --resume of a folder others could write
def _tampered_study(tmp_path: Path, marker: Path, data_dir: Path) -> Path:
    """A study folder shaped like one Ray can restore, whose tuner.pkl runs code when unpickled."""
    folder = tmp_path / "runs" / "evil"
    folder.mkdir(parents=True)
    (folder / "study.json").write_text(json.dumps({
        "model": "freedom", "dataset": "tiny", "mg": True, "metric": "recall@20", "mode": "max", "search_space": {},
        "data_dir": str(data_dir), "trials": 1, "max_epochs": 1, "grace_epochs": 1, "reduction_factor": 2,
        "seed": 0, "cpus_per_trial": 1.0, "gpus_per_trial": 0.0, "checkpoint_every": 1, "topk": [5, 10, 20, 50]}))

    class Payload:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, (f"touch {marker}",))

    (folder / "tuner.pkl").write_bytes(pickle.dumps(Payload()))
    (folder / "experiment_state-2026-01-01_00-00-00.json").write_text("{}")
    for p in (folder, *folder.iterdir()):
        p.chmod(0o700 if p.is_dir() else 0o600)
    return folder


@pytest.mark.parametrize("bad", ["tuner.pkl", "folder", "subfolder"])
def test_resume_refuses_a_folder_group_or_others_can_write(tiny_dir: Path, tmp_path: Path, bad: str) -> None:
    marker = tmp_path / "pwned"
    folder = _tampered_study(tmp_path, marker, tiny_dir)
    if bad == "tuner.pkl":
        target = folder / "tuner.pkl"
        target.chmod(0o666)
    elif bad == "folder":
        target = folder
        target.chmod(0o777)
    else:
        target = folder / "trial_x" / "checkpoint_000000"
        target.mkdir(parents=True, mode=0o700)
        target.chmod(0o707)
    proc = _run("--resume", "--name", "evil", "--storage", str(folder.parent))
    _one_line_error(proc, str(target), "writable by group or others")
    assert not marker.exists()


def test_resume_refuses_a_folder_of_another_user(tiny_dir: Path, tmp_path: Path) -> None:
    from mgtune.errors import ConfigError
    from mgtune.store import check_trusted

    if os.getuid() != 0:
        pytest.skip("chown needs root")
    folder = _tampered_study(tmp_path, tmp_path / "pwned", tiny_dir)
    os.chown(folder / "tuner.pkl", 12345, -1)
    with pytest.raises(ConfigError, match=r"tuner\.pkl: refusing to resume: owned by uid 12345"):
        check_trusted(folder)


# ---------------------------------------------------------------- --name, --storage, --address
def _study_error(tiny_dir: Path, **settings: str) -> str:
    """The `ConfigError` of a study with these settings (in this process: faster than the CLI)."""
    from mgtune.errors import ConfigError
    from mgtune.study import StudySettings, run_study

    with pytest.raises(ConfigError) as exc:
        run_study(StudySettings(model="freedom", dataset="tiny", data_dir=str(tiny_dir), **settings))  # type: ignore[arg-type]
    return str(exc.value)


def test_name_must_be_one_folder_name(tiny_dir: Path, tmp_path: Path) -> None:
    storage = tmp_path / "runs"
    storage.mkdir()
    proc = _run("--model", "freedom", "--dataset", "tiny", "--data-dir", str(tiny_dir), "--storage", str(storage),
                "--name", "../x")
    _one_line_error(proc, "--name")
    for name in ("/abs/path", "sub/dir", "..", ".", "", "a/../../b"):
        assert "--name" in _study_error(tiny_dir, storage=str(storage), name=name), name
    assert list(tmp_path.iterdir()) == [storage] and not list(storage.iterdir())
    assert not Path("/abs").exists()


def test_storage_that_cannot_hold_a_study_fails_before_ray(tiny_dir: Path, tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("x")
    read_only = tmp_path / "ro"
    read_only.mkdir(mode=0o500)
    cases = [(str(a_file), "is not a folder"), (str(a_file / "sub"), "is not a folder")]
    if os.getuid() != 0:  # root writes anywhere
        cases += [(str(read_only), "is not writable"), (str(read_only / "sub"), "is not writable")]
    for storage, words in cases:
        started = time.monotonic()
        proc = _run("--model", "freedom", "--dataset", "tiny", "--data-dir", str(tiny_dir), "--storage", storage,
                    "--name", "s")
        _one_line_error(proc, "--storage", words)
        assert time.monotonic() - started < 30  # Ray never started


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_malformed_address_is_one_line(tiny_dir: Path, tmp_path: Path) -> None:
    proc = _run("--model", "freedom", "--dataset", "tiny", "--data-dir", str(tiny_dir), "--storage", str(tmp_path),
                "--name", "a", "--address", "not-a-host:xx", timeout=60)
    _one_line_error(proc, "not-a-host:xx")
    for address in ("127.0.0.1:0", "127.0.0.1:99999", "no-such-host.invalid:6379", ":6379", "127.0.0.1"):
        assert address in _study_error(tiny_dir, storage=str(tmp_path), name="a", address=address), address
    assert not (tmp_path / "a").exists()


def test_address_where_nothing_listens_gives_up_after_the_bounded_wait(tiny_dir: Path, tmp_path: Path) -> None:
    address = f"127.0.0.1:{_free_port()}"
    started = time.monotonic()
    proc = _run("--model", "freedom", "--dataset", "tiny", "--data-dir", str(tiny_dir), "--storage", str(tmp_path),
                "--name", "a", "--address", address, env={"MGTUNE_ATTACH_TIMEOUT_S": "3"}, timeout=60)
    _one_line_error(proc, address, "within 3 s")
    assert time.monotonic() - started < 30


def test_sigterm_ends_the_wait_for_an_address_promptly(tiny_dir: Path, tmp_path: Path) -> None:
    address = f"127.0.0.1:{_free_port()}"
    proc = subprocess.Popen(
        _cmd("--model", "freedom", "--dataset", "tiny", "--data-dir", str(tiny_dir), "--storage", str(tmp_path),
             "--name", "a", "--address", address),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "MGTUNE_ATTACH_TIMEOUT_S": "300"})
    try:
        time.sleep(8)  # imports, the dataset, then the wait
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err
