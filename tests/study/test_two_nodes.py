"""Studies on a real two-node Ray cluster: two network namespaces of this machine, joined by a veth pair.

Each namespace has its own network stack and holds one Ray node on a private test address: the head
(10.231.0.1, no CPUs, so every trial runs on the worker node) and a worker node (10.231.0.2, 2 CPUs).
The nodes reach each other only over the veth pair, as two machines on a private network do, and
share this machine's file system, which stands for the ``--storage`` folder every node must see.
Token authentication is on, with a token the test makes. The driver is ``mgtune run --address
10.231.0.1:6379`` inside the head's namespace: the README's multi-node recipe.

A node is lost the hard way: ``kill -9`` of its raylet, then of the rest of its processes (as when its
machine dies; after the raylet alone, its workers would train on for a few seconds).

- Losing the worker node mid-trial, then starting a fresh one: the study finishes, every trial
  completed, each lost trial continued from its checkpoint. Meanwhile nothing of Ray listens where an
  address but the two private ones and loopback reaches it, and a driver with another token is refused.
- Losing the worker node under one trial more often than a trial is retried: the study exits 2 with
  the resume line (not 0 with that trial ``errored`` and another's configuration printed as best),
  and that line continues the trial from its checkpoint to the end.
- Losing the only worker node for good: exit 2 and the resume line once ``$MGTUNE_NO_FIT_GRACE_S`` is over.

The namespaces have no IPv6, so each holds loopback and its private address only, and the head declares
a silent node dead after about 3 s instead of Ray's 15 (`FAST_NODE_DEATH`), which keeps the tests short.

Needs root and iproute2's ``ip netns``; skipped with the reason otherwise. The namespaces and every
process in them are removed at the end, pass or fail. (Not ``ray stop``: it stops every Ray runtime
on the machine, whoever started it.)
"""

from __future__ import annotations

import contextlib
import csv
import functools
import ipaddress
import itertools
import json
import os
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

pytestmark = pytest.mark.cluster

HEAD_IP, WORKER_IP, PORT = "10.231.0.1", "10.231.0.2", 6379
ADDRESS = f"{HEAD_IP}:{PORT}"
EPOCHS = 8
LONG_EPOCHS = 12  # for a trial that must outlive losing its node three times
# the head's GCS declares a silent node dead after 3 missed health checks 1 s apart (Ray's default: 5, 3 s apart)
FAST_NODE_DEATH = {"RAY_health_check_period_ms": "1000", "RAY_health_check_failure_threshold": "3"}

# every listening TCP socket of the namespace this runs in: [address, port, process (a Python one with its module)]
_LISTENING = """
import json, psutil
found = []
for c in psutil.net_connections(kind="inet"):
    if c.status == psutil.CONN_LISTEN:
        try:
            proc = psutil.Process(c.pid)
            name, args = proc.name(), proc.cmdline()
            if name.startswith("python") and "-m" in args:
                name += " -m " + args[args.index("-m") + 1]
        except (psutil.Error, IndexError, ValueError):
            name = "?"
        found.append([c.laddr.ip, c.laddr.port, name])
print(json.dumps(found))
"""

_NO_IPV6 = """
from pathlib import Path
for conf in ("all", "default"):
    flag = Path(f"/proc/sys/net/ipv6/conf/{conf}/disable_ipv6")
    if flag.exists():
        flag.write_text("1")
"""


class TwoNamespaces:
    """Two network namespaces joined by a veth pair, one Ray node in each (see the module docstring)."""

    def __init__(self, root: Path) -> None:
        tag = f"mgt{os.getpid()}"
        self.head_ns, self.worker_ns = f"{tag}-head", f"{tag}-worker"
        # Ray's session folders hold Unix sockets, whose paths must stay short: not under pytest's tmp_path
        self.ray_dir = Path(tempfile.mkdtemp(prefix="mgt-ray-"))
        self.workers = 0  # worker nodes started so far
        self.live_workers: dict[str, psutil.Process] = {}  # temp folder name -> raylet, of those not lost
        token = root / "auth_token"
        token.write_text(secrets.token_hex(32))
        token.chmod(0o600)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
        self.env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token), RAY_USAGE_STATS_ENABLED="0")

    # ------------------------------------------------------------ namespaces
    def create(self) -> None:
        """Make the namespaces and the link; `pytest.skip` with the reason where this machine cannot."""
        for ns in (self.head_ns, self.worker_ns):
            self._ip("netns", "add", ns)
            # no IPv6 (so no link-local addresses): each namespace holds loopback and its private address only
            done = subprocess.run(self.in_ns(ns, sys.executable, "-c", _NO_IPV6), capture_output=True, text=True,
                                  timeout=30)
            if done.returncode != 0:
                pytest.skip(f"cannot run a process in a network namespace here: {done.stderr.strip()[-500:]}")
        # made inside the namespaces: the pair never appears in this machine's own network
        self._ip("link", "add", "mgt0", "netns", self.head_ns, "type", "veth", "peer", "name", "mgt0", "netns",
                 self.worker_ns)
        for ns, ip in ((self.head_ns, HEAD_IP), (self.worker_ns, WORKER_IP)):
            self._ip("-n", ns, "addr", "add", f"{ip}/24", "dev", "mgt0")
            self._ip("-n", ns, "link", "set", "lo", "up")
            self._ip("-n", ns, "link", "set", "mgt0", "up")

    def _ip(self, *args: str) -> None:
        done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
        if done.returncode != 0:
            pytest.skip(f"cannot make network namespaces here: ip {' '.join(args)}: {done.stderr.strip()}")

    def addresses(self, ns: str) -> set[str]:
        """The IP addresses of the namespace's interfaces."""
        done = subprocess.run(["ip", "-n", ns, "-j", "addr"], capture_output=True, text=True, timeout=30, check=True)
        return {a["local"] for link in json.loads(done.stdout) for a in link.get("addr_info", [])}

    def in_ns(self, ns: str, *cmd: str) -> list[str]:
        return ["ip", "netns", "exec", ns, *cmd]

    def pids(self, ns: str) -> list[int]:
        done = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True, timeout=30)
        return [int(p) for p in done.stdout.split()]

    def destroy(self) -> None:
        """Every process in the namespaces (SIGTERM, then SIGKILL), the namespaces with their link, Ray's folders."""
        for sig, wait in ((signal.SIGTERM, 2.0), (signal.SIGKILL, 5.0)):
            deadline = time.monotonic() + wait
            for pid in self._all_pids():
                _signal(pid, sig)
            while self._all_pids() and time.monotonic() < deadline:
                time.sleep(0.2)
        for ns in (self.head_ns, self.worker_ns):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)
        shutil.rmtree(self.ray_dir, ignore_errors=True)

    def _all_pids(self) -> list[int]:
        return [p for ns in (self.head_ns, self.worker_ns) for p in self.pids(ns) if psutil.pid_exists(p)]

    # ------------------------------------------------------------ Ray nodes
    def _ray_start(self, ns: str, temp: str, *args: str, env: dict[str, str] | None = None) -> str:
        """``ray start`` in ``ns`` with its own temp folder; the new node's id."""
        cmd = self.in_ns(ns, sys.executable, "-m", "ray.scripts.scripts", "start", *args, "--temp-dir",
                         str(self.ray_dir / temp), "--disable-usage-stats")
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env={**self.env, **(env or {})})
        assert done.returncode == 0, f"{shlex.join(cmd)}:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        return self.node_id(ns, temp)

    def start_head(self) -> str:
        return self._ray_start(self.head_ns, "head", "--head", "--node-ip-address", HEAD_IP, "--port", str(PORT),
                               "--num-cpus", "0", "--include-dashboard", "false", env=FAST_NODE_DEATH)

    def start_worker(self) -> str:
        """A fresh worker node (a new temp folder, so a new raylet) in the worker namespace."""
        self.workers += 1
        name = f"worker{self.workers}"
        node = self._ray_start(self.worker_ns, name, "--address", ADDRESS, "--node-ip-address", WORKER_IP,
                               "--num-cpus", "2")
        self.live_workers[name] = self._raylet(self.worker_ns, name)
        return node

    def _raylet(self, ns: str, temp: str) -> psutil.Process:
        for proc in self._processes(ns):
            with contextlib.suppress(psutil.NoSuchProcess):
                if proc.name() == "raylet" and any(str(self.ray_dir / temp) in a for a in proc.cmdline()):
                    return proc
        raise AssertionError(f"no raylet of {temp} in {ns}")

    def _processes(self, ns: str) -> list[psutil.Process]:
        found = []
        for pid in self.pids(ns):
            with contextlib.suppress(psutil.NoSuchProcess):
                found.append(psutil.Process(pid))
        return found

    def node_id(self, ns: str, temp: str) -> str:
        args = self._raylet(ns, temp).cmdline()
        return next(a.split("=", 1)[1] for a in args if a.startswith("--node_id="))

    def worker_of(self, pid: int) -> str | None:
        """The live worker node whose raylet started process ``pid`` (a trial's worker), if any."""
        try:
            parents = {p.pid for p in psutil.Process(pid).parents()}
        except psutil.NoSuchProcess:
            return None
        return next((name for name, raylet in self.live_workers.items() if raylet.pid in parents), None)

    def lose_worker(self, pid: int) -> str:
        """The live worker node running process ``pid`` dies: its raylet first, then its other processes (the
        trials' workers and agents, and the log monitor ``ray start`` started beside it). Its id."""
        name = self.worker_of(pid)
        assert name is not None, f"process {pid} runs on no live worker node"
        node, raylet = self.node_id(self.worker_ns, name), self.live_workers.pop(name)
        doomed = [*raylet.children(recursive=True), *(p for p in self._processes(self.worker_ns)
                                                     if any(str(self.ray_dir / name) in a for a in _cmdline(p)))]
        raylet.kill()
        for proc in doomed:
            _signal(proc.pid, signal.SIGKILL)
        return node

    # ------------------------------------------------------------ the study and what it exposes
    def study(self, tiny_dir: Path, storage: Path, name: str, *args: str, epochs: int = EPOCHS,
              env: dict[str, str] | None = None) -> Study:
        """A new study of VBPR on the tiny dataset, attached to the head, checkpointing every epoch."""
        return self.mgtune(storage / name, "run", "--model", "vbpr", "--dataset", "tiny", "--data-dir", str(tiny_dir),
                           "--max-epochs", str(epochs), "--grace-epochs", str(epochs), "--checkpoint-every", "1",
                           "--storage", str(storage), "--name", name, "--address", ADDRESS, *args, env=env)

    def mgtune(self, folder: Path, *args: str, env: dict[str, str] | None = None) -> Study:
        """``mgtune ARGS`` (the study in ``folder``) in the head's namespace."""
        cmd = self.in_ns(self.head_ns, sys.executable, "-m", "mgtune.cli", *args)
        return Study(cmd, folder, {**self.env, **(env or {})}, self)

    def listening(self) -> list[tuple[str, str, int, str]]:
        """(namespace, address, port, process) of every listening TCP socket in the two namespaces."""
        found = []
        for ns in (self.head_ns, self.worker_ns):
            done = subprocess.run(self.in_ns(ns, sys.executable, "-c", _LISTENING), capture_output=True, text=True,
                                  timeout=60)
            if done.returncode < 0:  # killed with the rest of a node that was being lost
                continue
            assert done.returncode == 0, done.stderr[-2000:]
            found += [(ns, _plain(ip), port, name) for ip, port, name in json.loads(done.stdout)]
        return found

    def exposed(self, seen: list[tuple[str, str, int, str]]) -> list[tuple[str, str, int, str]]:
        """The sockets in ``seen`` that an address other than their node's private one or loopback reaches.

        Ray 2.60 binds its gRPC servers (GCS, raylet, workers) to every interface (0.0.0.0 or ::) of a
        node whose IP is not 127.0.0.1, so those reach every address of their namespace.
        """
        own = {self.head_ns: HEAD_IP, self.worker_ns: WORKER_IP}
        everywhere = {ns: self.addresses(ns) for ns in own}
        return sorted({(ns, ip, port, name) for ns, ip, port, name in seen
                       if any(a != own[ns] and not _is_loopback(a)
                              for a in (everywhere[ns] if ipaddress.ip_address(ip).is_unspecified else {ip}))})


class Study:
    """``mgtune run`` in the head's namespace, its stderr in a file, sampling the namespaces' sockets as it runs."""

    def __init__(self, cmd: list[str], folder: Path, env: dict[str, str], nodes: TwoNamespaces) -> None:
        self.folder, self.nodes = folder, nodes
        self.err = folder.parent / f"{folder.name}-{time.monotonic_ns()}.err"
        self.err.parent.mkdir(parents=True, exist_ok=True)
        self.sockets: list[tuple[str, str, int, str]] = []
        with self.err.open("w") as fh:
            self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=fh, text=True, env=env)
        # sampled in the background, so that waiting for a trial's epoch never waits on a sample
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def _sample(self) -> None:
        while self.proc.poll() is None:
            self.sockets += self.nodes.listening()
            time.sleep(2)

    def log(self) -> str:
        return self.err.read_text()[-4000:]

    def wait_for(self, what: str, ready: Callable[[], Any], timeout: float = 120) -> Any:
        """``ready()``'s first true value, polled while the study runs."""
        deadline = time.monotonic() + timeout
        while not (value := ready()):
            assert self.proc.poll() is None, f"the study ended before {what}:\n{self.log()}"
            assert time.monotonic() < deadline, f"no {what} within {timeout:g} s:\n{self.log()}"
            time.sleep(0.05)
        return value

    def finish(self, timeout: float = 150) -> tuple[int, str, str]:
        """Exit code, stdout and stderr, once the study ends."""
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the study ran past {timeout:g} s:\n{self.log()}") from None
        finally:
            self.stop()
        return self.proc.returncode, out, self.err.read_text()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate(timeout=30)
        self._sampler.join(timeout=60)

    # ------------------------------------------------------------ its trials
    def progress(self) -> dict[str, list[dict[str, str]]]:
        """Per trial id, the rows of its ``progress.csv`` (one per reported epoch)."""
        return {f.parent.name.removeprefix("trial_"): list(csv.DictReader(f.open()))
                for f in sorted(self.folder.glob("trial_*/progress.csv"))}

    def checkpoint_past_first_epoch(self, trial: str | None = None) -> tuple[str, str, int] | None:
        """(trial id, checkpoint, worker process) of an unfinished trial (``trial``, if given) whose last report,
        from a live worker node, carries a checkpoint after epoch 0."""
        for t, rows in self.progress().items():
            last = rows[-1] if rows else {}
            try:  # the driver may be writing that row just now
                epoch, pid, checkpoint, final = int(last["epoch"]), int(last["pid"]), last["checkpoint_dir_name"], \
                    last["final"]
            except (KeyError, TypeError, ValueError):
                continue
            if checkpoint and epoch >= 1 and final == "False" and trial in (None, t) and self.nodes.worker_of(pid):
                return t, checkpoint, pid
        return None


def _cmdline(proc: psutil.Process) -> list[str]:
    try:
        return proc.cmdline()
    except psutil.NoSuchProcess:
        return []


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, psutil.NoSuchProcess):
        os.kill(pid, sig)


def _plain(ip: str) -> str:
    """``ip`` without a zone, an IPv4-mapped IPv6 address as IPv4."""
    addr = ipaddress.ip_address(ip.split("%")[0])
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return str(addr)


def _is_loopback(ip: str) -> bool:
    return ipaddress.ip_address(ip).is_loopback


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[TwoNamespaces]:
    if os.geteuid() != 0:
        pytest.skip("making network namespaces needs root")
    if shutil.which("ip") is None:
        pytest.skip("no `ip` command (iproute2) to make network namespaces")
    ns = TwoNamespaces(tmp_path)
    try:
        ns.create()
        yield ns
    finally:
        ns.destroy()


def _last_line(err: str) -> str:
    return [ln for ln in err.splitlines() if ln.strip()][-1]


def _results(folder: Path) -> list[dict[str, str]]:
    return list(csv.DictReader((folder / "results.csv").open()))


def _runs(rows: list[dict[str, str]]) -> list[list[int]]:
    """A trial's epochs per worker process, in order: one list per run of it (the first, then each restore)."""
    runs: list[list[int]] = []
    pid = None
    for r in rows:
        if r["pid"] != pid:
            runs.append([])
            pid = r["pid"]
        runs[-1].append(int(r["epoch"]))
    return runs


def _assert_continued_from_checkpoints(trial: str, rows: list[dict[str, str]], epochs: int = EPOCHS) -> None:
    """Each run after the first began right after a checkpoint of the run before, never from epoch 0."""
    runs = _runs(rows)
    assert len(runs) >= 2, f"trial {trial} ran in one process: it was never lost ({runs})"
    assert sorted({e for run in runs for e in run}) == list(range(epochs)), (trial, runs)
    checkpointed = {int(r["epoch"]) for r in rows if r["checkpoint_dir_name"]}
    for before, after in itertools.pairwise(runs):
        assert after[0] - 1 in checkpointed and after[0] - 1 in before, (trial, runs)
        assert after[0] >= 1, (trial, runs)


def test_study_finishes_on_a_fresh_node_after_losing_its_worker_node(
        nodes: TwoNamespaces, tiny_dir: Path, tmp_path: Path) -> None:
    head, first = nodes.start_head(), nodes.start_worker()
    wrong = tmp_path / "wrong_token"
    wrong.write_text(secrets.token_hex(32))
    intruder = nodes.study(tiny_dir, tmp_path / "runs", "intruder", "--trials", "1",
                           env={"RAY_AUTH_TOKEN_PATH": str(wrong)})
    rc, out, err = intruder.finish()
    print(f"a driver with another token: exit {rc}; last line: {_last_line(err)}")
    assert rc == 2 and "the cluster uses token authentication" in _last_line(err), err[-4000:]
    assert out == "" and not (tmp_path / "runs" / "intruder").exists()

    started = time.monotonic()
    study = nodes.study(tiny_dir, tmp_path / "runs", "lost", "--trials", "2")
    try:
        trial, checkpoint, pid = study.wait_for("a checkpoint after epoch 0", study.checkpoint_past_first_epoch)
        lost = time.monotonic()
        nodes.lose_worker(pid)
        second = nodes.start_worker()
        rc, out, err = study.finish()
    finally:
        study.stop()
    print(f"a checkpoint past epoch 0 {lost - started:.1f} s after the study started; the study ended "
          f"{time.monotonic() - lost:.1f} s after the node was lost")
    print(f"head node {head}\nworker node {first} (lost)\nworker node {second} (started after the loss)")
    print(f"lost trial {trial}: checkpoint {study.folder / f'trial_{trial}' / checkpoint} when its node was lost")
    results = (study.folder / "results.csv").read_text() if (study.folder / "results.csv").is_file() else "(none)"
    print(f"results.csv:\n{results}")
    assert rc == 0, err[-4000:]
    assert json.loads(out)["best_trial"]
    rows = _results(study.folder)
    assert len(rows) == 2 and {r["status"] for r in rows} == {"completed"}, rows
    progress = study.progress()
    for t, trial_rows in progress.items():
        print(f"trial {t}: epochs per worker process {_runs(trial_rows)}")
    _assert_continued_from_checkpoints(trial, progress[trial])
    for t, trial_rows in progress.items():  # the other trial, if it was running too
        if len(_runs(trial_rows)) > 1:
            _assert_continued_from_checkpoints(t, trial_rows)
    _assert_private(nodes, study)


def _assert_private(nodes: TwoNamespaces, *studies: Study) -> None:
    """Every socket the cluster listened on while ``studies`` ran is reachable at its node's private address and
    loopback only."""
    sockets = [s for study in studies for s in study.sockets]
    listeners = sorted({(ns, ip, name) for ns, ip, _, name in sockets})
    print("listening (namespace, address, process):", *listeners, sep="\n  ")
    names = {(ns, name) for ns, _, name in listeners}
    assert {(nodes.head_ns, "gcs_server"), (nodes.head_ns, "raylet"), (nodes.worker_ns, "raylet")} <= names, names
    for ns, own in ((nodes.head_ns, HEAD_IP), (nodes.worker_ns, WORKER_IP)):
        assert nodes.addresses(ns) == {"127.0.0.1", own}, (ns, nodes.addresses(ns))
    exposed = nodes.exposed(sockets)
    assert not exposed, f"listening beyond the private addresses and loopback: {exposed}"


def test_trial_that_loses_its_node_too_often_stops_the_study_with_the_resume_line(
        nodes: TwoNamespaces, tiny_dir: Path, tmp_path: Path) -> None:
    from mgtune.study.session import MAX_FAILURES

    nodes.start_head()
    nodes.start_worker(), nodes.start_worker()  # a second node takes each retry at once
    # one trial at a time: the first one loses its node, once per run, until Ray Tune retries it no more
    study = nodes.study(tiny_dir, tmp_path / "runs", "flaky", "--trials", "2", "--concurrency", "1",
                        epochs=LONG_EPOCHS)
    trial: str | None = None
    try:
        for _ in range(MAX_FAILURES + 1):
            trial, checkpoint, pid = study.wait_for("a checkpoint from a live worker node",
                                                    functools.partial(study.checkpoint_past_first_epoch, trial))
            print(f"trial {trial}: worker node {nodes.lose_worker(pid)} lost after {checkpoint}")
            nodes.start_worker()  # while the trial starts again on the other one
        rc, out, err = study.finish()
    finally:
        study.stop()
    print(f"first run: exit {rc}; last line: {_last_line(err)}")
    assert rc == 2, err[-4000:]
    assert out == ""  # no configuration printed as the study's best
    last = _last_line(err)
    assert last.startswith("mgtune: error: ") and f"trial {trial} " in last, err[-4000:]
    hint = last.partition("with: ")[2]
    assert hint == f"mgtune run --resume --name flaky --storage {study.folder.parent} --address {ADDRESS}", last
    assert not (study.folder / "results.csv").exists()  # nothing written as if the study were done

    resumed = nodes.mgtune(study.folder, *shlex.split(hint)[1:])  # the line as printed
    try:
        rc, out, err = resumed.finish()
    finally:
        resumed.stop()
    print(f"resumed: exit {rc}\nresults.csv:\n{(study.folder / 'results.csv').read_text() if rc == 0 else err[-4000:]}")
    assert rc == 0, err[-4000:]
    assert json.loads(out)["best_trial"]
    rows = _results(study.folder)
    assert len(rows) == 2 and {r["status"] for r in rows} == {"completed"}, rows
    runs = _runs(study.progress()[trial])
    print(f"trial {trial}: epochs per worker process {runs}")
    assert len(runs) == MAX_FAILURES + 2, runs  # its first run, its retries, and the resumed one
    _assert_continued_from_checkpoints(trial, study.progress()[trial], LONG_EPOCHS)
    _assert_private(nodes, study, resumed)


def test_losing_the_only_worker_node_for_good_stops_the_study_with_the_resume_line(
        nodes: TwoNamespaces, tiny_dir: Path, tmp_path: Path) -> None:
    nodes.start_head(), nodes.start_worker()
    study = nodes.study(tiny_dir, tmp_path / "runs", "gone", "--trials", "2", env={"MGTUNE_NO_FIT_GRACE_S": "3"})
    try:
        *_, pid = study.wait_for("a checkpoint after epoch 0", study.checkpoint_past_first_epoch)
        nodes.lose_worker(pid)
        rc, out, err = study.finish()
    finally:
        study.stop()
    last = _last_line(err)
    print(f"exit {rc}; last line: {last}")
    assert rc == 2, err[-4000:]
    assert out == ""
    assert last.startswith("mgtune: error: no live node of the Ray cluster can hold a trial"), last
    assert last.endswith(f"with: mgtune run --resume --name gone --storage {study.folder.parent} --address {ADDRESS}")
    assert not (study.folder / "results.csv").exists()
