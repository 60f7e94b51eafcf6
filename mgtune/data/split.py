"""MMRec's per-user train/valid/test split, at random (seeded) or by time.

MMRec's ``1splitting`` notebook shuffles the interactions, groups them by user and labels each
user's list in order: with ``n < 10`` interactions, ``n - 2`` train, one valid, one test;
otherwise ``v + t = int(0.2 n)`` held out, ``v = (v + t) // 2`` valid and the rest test, the
train rows first. ``by_time`` orders each user's list by timestamp instead (ties at random), so
valid and test are the user's latest interactions; MMRec's ``0rating2inter`` instead cuts the whole
log at global time quantiles, which leaves users without training rows.

We differ in one corner: a user with fewer than 3 interactions (only possible below ``--core 3``)
keeps them all in train, where the notebook would write more labels than rows.
"""

from __future__ import annotations

import numpy as np

__all__ = ["split_labels", "TRAIN", "VALID", "TEST"]

TRAIN, VALID, TEST = 0, 1, 2


def split_labels(users: np.ndarray, rng: np.random.Generator, timestamps: np.ndarray | None = None) -> np.ndarray:
    """The ``x_label`` of every row (0 train, 1 valid, 2 test), per MMRec's rule (module docstring).

    Shapes: ``users`` (int codes) and ``timestamps`` ``(n_rows,)``; returns int64 ``(n_rows,)``.
    """
    n_rows = len(users)
    keys = [rng.random(n_rows)]
    if timestamps is not None:
        keys.append(np.asarray(timestamps, dtype=np.float64))
    order = np.lexsort((*keys, users))  # by user, then time (if any), then the random key
    counts = np.bincount(users)
    held_out = np.where(counts < 10, 2, (0.2 * counts).astype(np.int64))
    held_out[counts < 3] = 0
    n_test = held_out - held_out // 2
    n_train = counts - held_out
    sorted_users = users[order]
    pos = np.arange(n_rows) - (np.cumsum(counts) - counts)[sorted_users]  # position in the user's list
    labels = np.full(n_rows, TRAIN, dtype=np.int64)
    sorted_labels = np.where(pos >= counts[sorted_users] - n_test[sorted_users], TEST,
                             np.where(pos >= n_train[sorted_users], VALID, TRAIN))
    labels[order] = sorted_labels
    return labels
