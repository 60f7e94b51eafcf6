"""The device a run uses and the one measure of its peak memory that every report shares."""

from __future__ import annotations

import resource

import torch

from mgtune.errors import ConfigError

__all__ = ["resolve_device", "peak_memory_mb", "reset_peak_memory"]


def resolve_device(name: str) -> torch.device:
    """``auto`` is CUDA when present, else CPU; an explicit ``cuda`` without one is a `ConfigError`."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("device cuda requested but no CUDA device is available")
    return torch.device(name)


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory of this process so far, in MiB: allocated GPU memory on CUDA, else the resident set.

    On CPU it covers the whole process, so it is one run's peak only in a process that ran nothing
    else (a Ray trial without actor reuse, a benchmark run per model).
    """
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def reset_peak_memory(device: torch.device) -> None:
    """Start `peak_memory_mb` afresh on CUDA; a CPU process's resident-set peak cannot be reset."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
