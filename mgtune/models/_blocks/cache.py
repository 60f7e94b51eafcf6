"""On-disk cache of precomputed tensors, keyed by everything they depend on."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

__all__ = ["cached_tensors"]


def cached_tensors(folder: Path, stem: str, key: dict[str, Any], build: Callable[[], dict[str, Tensor]]) -> dict[str, Tensor]:
    """Load ``build()``'s tensors from ``folder/.mgtune_cache`` or build and store them.

    ``key`` must name every input (dataset fingerprint, hyperparameters): the file name is its
    hash, so a changed dataset is never served a stale structure. Loading uses
    ``weights_only=True``; writes are atomic, so concurrent trials never read half a file.
    A read-only dataset folder just means no caching.
    """
    digest = hashlib.blake2b(json.dumps(key, sort_keys=True).encode(), digest_size=12).hexdigest()
    path = folder / ".mgtune_cache" / f"{stem}-{digest}.pt"
    if path.is_file():
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception:
            pass  # corrupt or from an incompatible torch: rebuild
    tensors = {k: v.cpu() for k, v in build().items()}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(fd, "wb") as fh:
            torch.save(tensors, fh)
        os.replace(tmp, path)
    except OSError:
        pass
    return tensors
