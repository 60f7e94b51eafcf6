"""The Ray session of a study or a confirmation: start or attach, size the trials, wrap the trainable.

Ray runs locally (started for the job, bound to 127.0.0.1, stopped after it) unless an address
attaches to a running cluster, which is left running; `ray.shutdown` ends either. Importing this
module does not import Ray.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import shlex
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from mgtune.data import Dataset
from mgtune.errors import ConfigError, DivergedError
from mgtune.files import disk_refusal, write_text
from mgtune.processes import local_cpus, on_sigterm, trial_niceness, watch_suite
from mgtune.store import FAILED_FILE, trial_folder
from mgtune.study.trainable import TrialSetup, run_trial

__all__ = [
    "DEFAULT_GPU_FRACTION", "ATTACH_TIMEOUT_ENV", "MAX_FAILURES", "log",
    "cluster_address", "start_ray", "sigterm_as_sigint", "resume_command", "resources", "make_trainable",
    "lost_its_node",
]


def log(msg: str) -> None:
    """The default progress log: one line on stderr (stdout carries only the CLI's result)."""
    print(msg, file=sys.stderr, flush=True)


DEFAULT_GPU_FRACTION = 0.25


def _ray_env() -> None:
    # Our trials write their own TensorBoard events; Ray's automatic TBX logger would duplicate them
    # under other names. This switch also drops the JSON/CSV loggers, which _new_tuner adds back.
    os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "1"
    # keeping only the best + latest checkpoint forces a state snapshot per checkpoint; cheap on a local disk
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    # Ray's classic progress output is silent at verbose=0; the newer one still prints a banner
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # the driver's core worker would install absl's failure-signal handler, which turns SIGTERM into a stack
    # dump and an abort at exit; without it SIGTERM reaches sigterm_as_sigint (it ends like Ctrl-C)
    # (the constant is the copy Ray read when it was imported; the variable reaches a local runtime's workers)
    import ray._private.ray_constants as ray_constants

    os.environ.setdefault("RAY_DISABLE_FAILURE_SIGNAL_HANDLER", "1")
    ray_constants.RAY_DISABLE_FAILURE_SIGNAL_HANDLER = True


def cluster_address(address: str | None) -> str | None:
    """The cluster a command attaches to: ``--address``, else $RAY_ADDRESS; None for a runtime of its own."""
    return address or os.environ.get("RAY_ADDRESS") or None


def start_ray(address: str | None, log: Callable[[str], None], niceness: int | None = None,
              trials: tuple[float, int] | None = None) -> None:
    """Attach to ``address`` (else $RAY_ADDRESS), or start a local runtime; `ray.shutdown` ends either.

    A local runtime's trial workers run at ``niceness`` (`mgtune.processes.trial_niceness`; an attached
    cluster's are as its operator set them); ``trials`` (CPUs per trial, trials at once) books only the
    CPUs those trials need, so Ray starts no more idle workers than that."""
    import ray

    _ray_env()
    watch_suite()  # a suite's study ends with the suite that owns its runtime
    address = cluster_address(address)
    if address:
        _attach(address)
        log(f"attached to the Ray cluster at {address}")
        return
    increment = trial_niceness(niceness) - os.nice(0)  # Ray's worker_niceness is added to the raylet's (ours)
    from ray._private.utils import get_num_cpus

    cpus = local_cpus(trials[0], trials[1], int(get_num_cpus())) if trials else None
    # A private runtime bound to the loopback interface, no dashboard; stopped when the study ends.
    _loopback_only()
    ray.init(address="local", include_dashboard=False, _node_ip_address="127.0.0.1", dashboard_host="127.0.0.1",
             logging_level=logging.WARNING, num_cpus=cpus,
             # Ray prestarts idle workers (no job, no runtime env) as the driver connects; Tune's trial actors
             # carry a runtime env (class_cache's env_vars), so none could use them: they only took CPU from
             # the trials starting, and were stopped
             _system_config={"worker_niceness": increment, "prestart_worker_first_driver": False})
    gcs = ray.get_runtime_context().gcs_address
    if not gcs.startswith("127.0.0.1:"):  # a Ray that resolves the address differently: never run exposed
        ray.shutdown()
        raise RuntimeError(f"the private Ray runtime came up on {gcs}, not on the loopback interface")


_LOCAL_ONLY_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


ATTACH_TIMEOUT_ENV = "MGTUNE_ATTACH_TIMEOUT_S"
"""Seconds ``--address`` waits for the cluster's GCS port to accept a connection (default 30)."""


def _loopback_only() -> None:
    """Make this driver (and a runtime it starts) use 127.0.0.1 as the node address, as asked.

    Ray 2.60 replaces a node IP or GCS host of 127.0.0.1 by the machine's external address unless
    "cluster mode" is off (``ray._private.services.resolve_ip_for_localhost``). With it off, the GCS, the
    raylet (node manager and object manager), the workers', the driver's and the agents' servers all
    bind 127.0.0.1. The variable reaches the processes a local runtime starts; the constant is this
    driver's copy of it, read when Ray was imported.
    """
    import ray._private.ray_constants as ray_constants

    os.environ[_LOCAL_ONLY_ENV] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False


def _attach(address: str) -> None:
    import ray

    if "://" not in address and address != "auto":
        host = _wait_for_port(address)
        if host in ("127.0.0.1", "localhost", "::1"):
            _loopback_only()  # else Ray would look for the head at this machine's external address
    # one connection attempt (Ray's own timeout, about 30 s) instead of Ray's default 20, should the
    # port belong to something that is not a Ray head
    os.environ.setdefault("RAY_gcs_server_port_wait_time_s", "1")
    try:
        ray.init(address=address, logging_level=logging.WARNING)
    except (ConnectionError, RuntimeError, ValueError, ray.exceptions.RayError) as exc:
        cause = f"{exc} {exc.__cause__ or ''}"
        hint = ("; the cluster uses token authentication: export RAY_AUTH_MODE=token, with the head's token in "
                "~/.ray/auth_token, $RAY_AUTH_TOKEN_PATH or $RAY_AUTH_TOKEN" if "Authentication" in cause else "")
        raise ConfigError(f"cannot attach to the Ray cluster at {address}: {str(exc).splitlines()[0]}{hint}") from None


def _wait_for_port(address: str) -> str:
    """Wait (bounded, interruptible) until ``HOST:PORT`` accepts a TCP connection: Ray's own connect loop
    runs in C++ for minutes and ignores SIGTERM."""
    host, _, port_s = address.rpartition(":")
    host = host.strip("[]")
    if not host or not port_s.isdigit() or not 0 < int(port_s) < 65536:
        raise ConfigError(f"--address {address}: expected auto, HOST:PORT (a port from 1 to 65535) or ray://HOST:PORT")
    try:
        timeout = float(os.environ.get(ATTACH_TIMEOUT_ENV, "30"))
    except ValueError:
        raise ConfigError(f"${ATTACH_TIMEOUT_ENV}: not a number of seconds") from None
    try:
        socket.getaddrinfo(host, int(port_s), type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise ConfigError(f"--address {address}: unknown host {host!r} ({exc})") from None
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, int(port_s)), timeout=min(5.0, max(0.1, timeout))):
                return host
        except OSError as exc:
            if time.monotonic() >= deadline:
                raise ConfigError(f"cannot attach to the Ray cluster at {address}: nothing accepted a connection "
                                  f"within {timeout:g} s ({exc.strerror or exc}); is the head running "
                                  f"(ray start --head)?") from None
        time.sleep(0.5)


@contextlib.contextmanager
def sigterm_as_sigint() -> Iterator[None]:
    """SIGTERM does what Ctrl-C does: Ray Tune stops the trials and saves its state, and the study says how
    to resume. (``ray.init`` installs a handler that exits at once; this one is installed again after it.)
    A study whose suite died with its runtime (`mgtune.processes.orphaned`) ends at once instead."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        on_sigterm()  # a suite's study whose suite died: nothing left to save through, so it ends now
        on_int = signal.getsignal(signal.SIGINT)
        if callable(on_int):
            on_int(signal.SIGINT, frame)
        else:
            raise KeyboardInterrupt

    before = signal.signal(signal.SIGTERM, handler)
    import ray._private.utils as ray_utils

    set_sigterm = ray_utils.set_sigterm_handler
    ray_utils.set_sigterm_handler = lambda _h: None  # keep ours over the one ray.init would install
    try:
        yield
    finally:
        ray_utils.set_sigterm_handler = set_sigterm
        signal.signal(signal.SIGTERM, before)


def resume_command(folder: Path, address: str | None) -> str:
    """The command that continues the study or suite ``folder`` (on the cluster it was attached to, if any)."""
    on = f" --address {shlex.quote(address)}" if address else ""
    return (f"mgtune run --resume --name {shlex.quote(folder.name)} --storage {shlex.quote(str(folder.parent))}"
            f"{on}")


def resources(cpus_per_trial: float, gpus_per_trial: float | None, concurrency: int | None, n_trials: int,
              log: Callable[[str], None]) -> tuple[float, int]:
    """GPUs per trial and concurrent trials for this cluster; never a setting that would pend forever.

    ``gpus_per_trial`` None: `DEFAULT_GPU_FRACTION` if the cluster has GPUs, else 0; ``concurrency`` None:
    as many trials as the cluster's resources hold."""
    import ray

    nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
    max_cpus = max((n.get("CPU", 0.0) for n in nodes), default=0.0)
    max_gpus = max((n.get("GPU", 0.0) for n in nodes), default=0.0)
    if cpus_per_trial > max_cpus:
        raise ConfigError(f"--cpus-per-trial {cpus_per_trial:g}: the largest node of the Ray cluster has "
                          f"{max_cpus:g} CPUs, so no trial could start")
    if gpus_per_trial is None:
        gpus = DEFAULT_GPU_FRACTION if max_gpus > 0 else 0.0
        if gpus == 0:
            log("no GPU in the Ray cluster: trials run on CPU")
    else:
        gpus = float(gpus_per_trial)
        if gpus > max_gpus:
            raise ConfigError(f"--gpus-per-trial {gpus:g}: the largest node of the Ray cluster has {max_gpus:g} "
                              "GPUs, so no trial could start; pass --gpus-per-trial 0 to train on CPU")
    fits = 0
    for n in nodes:
        per_node = math.floor(n.get("CPU", 0.0) / cpus_per_trial + 1e-9)
        if gpus > 0:
            per_node = min(per_node, math.floor(n.get("GPU", 0.0) / gpus + 1e-9))
        fits += per_node
    return gpus, concurrency or max(1, min(n_trials, fits))


def make_trainable(setup: TrialSetup, data: Dataset, fn: Callable[..., Any] = run_trial) -> Any:
    """``fn`` (a study trial, or a confirmation run) with the setup's resources and the dataset."""
    from ray import tune

    resources = {"cpu": setup.cpus_per_trial, "gpu": setup.gpus_per_trial}
    # with_parameters puts the dataset into the object store once; trials read it from there
    return tune.with_resources(tune.with_parameters(_fails_once(fn), setup=setup, data=data), resources)


MAX_FAILURES = 2
"""Retries of a trial whose node or worker process was lost; each continues from its last checkpoint."""


def lost_its_node(study_dir: str | Path, trial_id: str) -> bool:
    """Whether a trial that Ray ended in an error failed by no error of its own (none in its `FAILED_FILE`):
    its node or worker process was lost on each try. Such a trial is not over: ``--resume`` continues it."""
    return not (Path(study_dir) / trial_folder(trial_id) / FAILED_FILE).is_file()


def _fails_once(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn``, such that an error it raises itself is not retried.

    Ray Tune's ``FailureConfig(max_failures)`` retries every failure alike: a lost node (a worker that
    died: ``RayActorError``) and an exception in the trial (``DivergedError``, a bug), which would only
    happen again. So the trial records its own error in its folder, and a retry of it (or a resumed
    study's re-run of it) raises that error again at once instead of training.
    """

    def trial(config: dict[str, Any], setup: TrialSetup, data: Dataset) -> None:
        from ray import tune

        trial_id = tune.get_context().get_trial_id()
        failed = Path(setup.study_dir) / trial_folder(trial_id) / FAILED_FILE
        if failed.is_file():
            kind, _, msg = failed.read_text().partition("\n")
            raise (DivergedError if kind == DivergedError.__name__ else _TrialFailed)(
                f"{msg} (failed before: not retried)" if kind == DivergedError.__name__ else f"{kind}: {msg}")
        try:
            fn(config, setup=setup, data=data)
        except Exception as exc:
            if disk_refusal(exc) is None:  # a full disk is not the trial's fault: a resume continues it
                failed.parent.mkdir(parents=True, exist_ok=True)
                write_text(failed, f"{type(exc).__name__}\n{exc}")
            raise

    return trial


class _TrialFailed(RuntimeError):
    """A trial's own earlier error, raised again on a retry."""
