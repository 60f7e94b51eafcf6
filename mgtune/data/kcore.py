"""Iterative k-core filtering of interactions, as MMRec's ``0rating2inter`` notebook does it."""

from __future__ import annotations

import numpy as np

__all__ = ["k_core"]


def k_core(users: np.ndarray, items: np.ndarray, k: int) -> tuple[np.ndarray, int]:
    """The rows to keep so that every remaining user and item has at least ``k`` rows, and the rounds taken.

    Each round drops every row of a user or item with fewer than ``k`` rows, both counted on the
    same rows (MMRec's ``filter_by_k_core``), until a round drops nothing. ``users``/``items`` are
    non-negative integer codes. ``k <= 1`` keeps every row.

    Shapes: ``users``, ``items`` ``(n_rows,)``; returns a bool mask ``(n_rows,)``.
    """
    keep = np.ones(len(users), dtype=bool)
    rounds = 0
    if k <= 1:
        return keep, rounds
    while True:
        u, i = users[keep], items[keep]
        ok = (np.bincount(u)[u] >= k) & (np.bincount(i)[i] >= k) if len(u) else np.ones(0, dtype=bool)
        if ok.all():
            return keep, rounds
        rounds += 1
        keep[np.flatnonzero(keep)[~ok]] = False
