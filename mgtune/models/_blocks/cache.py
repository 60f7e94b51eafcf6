"""On-disk cache of precomputed tensors, keyed by everything they depend on."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from mgtune.data import Dataset
from mgtune.files import atomic_open

__all__ = ["cached_tensors"]


def cached_tensors(
    data: Dataset, stem: str, key: dict[str, Any], build: Callable[[], dict[str, Tensor]]
) -> dict[str, Tensor]:
    """Load ``build()``'s tensors from ``<dataset folder>/.mgtune_cache`` or build and store them.

    ``key`` must name every input besides the data (hyperparameters, a version); the dataset's
    content fingerprint is added here, and the file name is the hash of both, so a changed dataset
    is never served a stale structure. Data with no fingerprint (built in memory) is never cached. Loading uses
    ``weights_only=True``; writes are atomic, so concurrent trials never read half a file.
    A read-only dataset folder just means no caching.
    """
    if not data.fingerprint:
        return build()
    key = {"data": data.fingerprint, **key}
    digest = hashlib.blake2b(json.dumps(key, sort_keys=True).encode(), digest_size=12).hexdigest()
    path = data.path / ".mgtune_cache" / f"{stem}-{digest}.pt"
    if path.is_file():
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception:
            pass  # corrupt or from an incompatible torch: rebuild
    tensors = {k: v.cpu() for k, v in build().items()}
    try:
        with atomic_open(path, "wb") as fh:
            torch.save(tensors, fh)
    except OSError:
        pass
    return tensors
