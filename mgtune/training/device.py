"""The device a run uses and the one measure of its peak memory that every report shares."""

from __future__ import annotations

import resource
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.utils.deterministic

from mgtune.errors import ConfigError

__all__ = ["resolve_device", "deterministic_on_cpu", "flush_denormal", "peak_memory_mb", "reset_peak_memory"]


def resolve_device(name: str) -> torch.device:
    """``auto`` is CUDA when present, else CPU; an explicit ``cuda`` without one is a `ConfigError`."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("device cuda requested but no CUDA device is available")
    return torch.device(name)


@contextmanager
def deterministic_on_cpu(device: torch.device) -> Iterator[None]:
    """PyTorch's deterministic kernels while the block runs, on CPU only; the settings are restored after.

    Why: on CPU the backward of advanced indexing (``table[rows]``, an accumulating ``index_put_``)
    adds duplicate rows from several threads in no fixed order, so two runs with one seed drifted
    apart from the first batch (every trained model did, on the small preset with 2 threads). The
    deterministic kernel sorts the indices first. Uninitialised memory is not NaN-filled (a debugging
    aid that costs a pass over every new tensor). CUDA is left alone: the promise is for CPU, and
    there several deterministic kernels are slower or raise.
    """
    if device.type != "cpu":
        yield
        return
    before = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
    fill_before = torch.utils.deterministic.fill_uninitialized_memory  # type: ignore[attr-defined]
    torch.use_deterministic_algorithms(True)
    torch.utils.deterministic.fill_uninitialized_memory = False  # type: ignore[attr-defined]
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])
        torch.utils.deterministic.fill_uninitialized_memory = fill_before  # type: ignore[attr-defined]


@contextmanager
def flush_denormal() -> Iterator[None]:
    """Subnormal floats are flushed to zero while the block runs; the previous setting is restored after.

    Why: on CPU, arithmetic on subnormal floats (below ~1.2e-38 in float32) takes a slow microcode
    path. As a model converges, some weights, gradients and Adam moments can decay into that range: a
    trial with flip interval 1 and learning rate 0.009 slowed from 0.9 s to 2.8 s per epoch, and with
    flushing it stayed at 0.45 s with identical test metrics. Numbers that small are far below what
    can change a ranking (Adam divides by ``sqrt(v) + 1e-8``). ``torch.set_flush_denormal`` returns
    False where the CPU lacks the flags; then this is a no-op. The flag is per thread: it reaches the
    calling thread and threads started while it is set, not the workers of an intra-op (OpenMP) pool
    already running, so a large parallel op can still meet subnormals on those.
    """
    before = _flushing()
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(before)


def _flushing() -> bool:
    """Whether this thread flushes subnormals now (torch has no getter): a product that would be
    subnormal comes out as zero."""
    return bool((torch.tensor([1e-39]) * 0.5).item() == 0.0)


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
