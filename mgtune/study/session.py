"""The Ray session of a study or a confirmation: start or attach, size the trials, wrap the trainable.

Ray runs locally (started for the job, bound to 127.0.0.1, stopped after it) unless an address
attaches to a running cluster, which is left running; `ray.shutdown` ends either. Importing this
module does not import Ray.
"""

from __future__ import annotations

import logging
import math
import os
import sys
from collections.abc import Callable
from typing import Any, Protocol

from mgtune.data import Dataset
from mgtune.errors import ConfigError
from mgtune.study.trainable import TrialSetup, run_trial

__all__ = ["DEFAULT_GPU_FRACTION", "ResourceRequest", "log", "start_ray", "resources", "make_trainable"]

DEFAULT_GPU_FRACTION = 0.25


class ResourceRequest(Protocol):
    """What a job asks of the cluster per trial (`StudySettings` is one)."""

    @property
    def cpus_per_trial(self) -> float: ...

    @property
    def gpus_per_trial(self) -> float | None: ...  # None: DEFAULT_GPU_FRACTION if the cluster has GPUs, else 0

    @property
    def concurrency(self) -> int | None: ...  # None: as many trials as the cluster's resources hold


def log(msg: str) -> None:
    """The default progress log: one line on stderr (stdout carries only the CLI's result)."""
    print(msg, file=sys.stderr, flush=True)


def _ray_env() -> None:
    # Our trials write their own TensorBoard events; Ray's automatic TBX logger would duplicate them
    # under other names. This switch also drops the JSON/CSV loggers, which _new_tuner adds back.
    os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "1"
    # keeping only the best + latest checkpoint forces a state snapshot per checkpoint; cheap on a local disk
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    # Ray's classic progress output is silent at verbose=0; the newer one still prints a banner
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")


def start_ray(address: str | None, log: Callable[[str], None]) -> None:
    """Attach to ``address`` (else $RAY_ADDRESS), or start a local runtime; `ray.shutdown` ends either."""
    import ray

    _ray_env()
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address:
        _attach(address)
        log(f"attached to the Ray cluster at {address}")
    else:
        # a private runtime bound to the loopback interface, no dashboard; stopped when the study ends
        ray.init(address="local", include_dashboard=False, _node_ip_address="127.0.0.1",
                 logging_level=logging.WARNING)


def _attach(address: str) -> None:
    import ray

    try:
        ray.init(address=address, logging_level=logging.WARNING)
    except (ConnectionError, RuntimeError, ray.exceptions.RayError) as exc:
        cause = f"{exc} {exc.__cause__ or ''}"
        hint = ("; the cluster uses token authentication: export RAY_AUTH_MODE=token, with the head's token in "
                "~/.ray/auth_token or $RAY_AUTH_TOKEN" if "Authentication" in cause else "")
        raise ConfigError(f"cannot attach to the Ray cluster at {address}: {str(exc).splitlines()[0]}{hint}") from None


def resources(s: ResourceRequest, n_trials: int, log: Callable[[str], None]) -> tuple[float, int]:
    """GPUs per trial and concurrent trials for this cluster; never a setting that would pend forever."""
    import ray

    nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
    max_cpus = max((n.get("CPU", 0.0) for n in nodes), default=0.0)
    max_gpus = max((n.get("GPU", 0.0) for n in nodes), default=0.0)
    if s.cpus_per_trial > max_cpus:
        raise ConfigError(f"--cpus-per-trial {s.cpus_per_trial:g}: the largest node of the Ray cluster has "
                          f"{max_cpus:g} CPUs, so no trial could start")
    if s.gpus_per_trial is None:
        gpus = DEFAULT_GPU_FRACTION if max_gpus > 0 else 0.0
        if gpus == 0:
            log("no GPU in the Ray cluster: trials run on CPU")
    else:
        gpus = float(s.gpus_per_trial)
        if gpus > max_gpus:
            raise ConfigError(f"--gpus-per-trial {gpus:g}: the largest node of the Ray cluster has {max_gpus:g} "
                              "GPUs, so no trial could start; pass --gpus-per-trial 0 to train on CPU")
    fits = 0
    for n in nodes:
        per_node = math.floor(n.get("CPU", 0.0) / s.cpus_per_trial + 1e-9)
        if gpus > 0:
            per_node = min(per_node, math.floor(n.get("GPU", 0.0) / gpus + 1e-9))
        fits += per_node
    concurrency = s.concurrency or max(1, min(n_trials, fits))
    return gpus, concurrency


def make_trainable(setup: TrialSetup, data: Dataset, fn: Callable[..., Any] = run_trial) -> Any:
    """``fn`` (a study trial, or a confirmation run) with the setup's resources and the dataset."""
    from ray import tune

    resources = {"cpu": setup.cpus_per_trial, "gpu": setup.gpus_per_trial}
    # with_parameters puts the dataset into the object store once; trials read it from there
    return tune.with_resources(tune.with_parameters(fn, setup=setup, data=data), resources)
