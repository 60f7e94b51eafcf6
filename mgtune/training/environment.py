"""Where a run happened: package versions, the GPU or CPU model, and a run's peak memory."""

from __future__ import annotations

import platform
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from mgtune import __version__

__all__ = ["environment", "device_name"]


def device_name(device: torch.device) -> str:
    """The GPU's name (``torch.cuda.get_device_name``), else the CPU's ``model name`` from /proc/cpuinfo."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def environment() -> dict[str, Any]:
    """Versions of this process's stack; ``cuda`` is the CUDA torch was built with (None: CPU build)."""
    return {
        "mgtune": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "ray": _version("ray"),
        "platform": platform.platform(),
    }


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None
