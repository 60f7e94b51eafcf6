r"""The user-user co-interaction graph of DualGNN and DRAGON, built sparse, and its file.

Two users are neighbours when they share training items; the weight of the pair is that number,
:math:`c_{uv} = |I_u \cap I_v|`, and each user keeps its ``k`` heaviest neighbours. The counts are
:math:`C = R R^\top` for the binary user-item matrix :math:`R`, computed one chunk of users at a
time as sparse products, so no dense users x users matrix ever exists (the reference's
``preprocessing/dualgnn-gen-u-u-matrix.py`` fills one, with an O(users²) Python loop, which
cannot finish at Elec's 192k users).

`write_user_graph_dict` writes the reference's ``user_graph_dict.npy``: ``np.save`` of a dict
``{user: [neighbours, counts]}``, neighbours by decreasing count, at most ``k`` (the reference:
200) each. We store the two lists as int64 / float32 arrays rather than Python lists: a loader
reads them the same way (``len``, slicing, ``np.asarray``), and at Elec's size lists of Python
numbers would take several GB.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp

from mgtune.files import atomic_open

__all__ = ["top_k_cooccurrence", "write_user_graph_dict", "USER_GRAPH_FILE", "MAX_USER_GRAPH_K"]

USER_GRAPH_FILE = "user_graph_dict.npy"
MAX_USER_GRAPH_K = 1000
"""The most neighbours per user: the reference keeps 200, and the graph takes 12 bytes per user and neighbour
while it is built (1000 at Elec's 192k users: 2.3 GB)."""


def top_k_cooccurrence(
    users: np.ndarray, items: np.ndarray, n_users: int, n_items: int, k: int, max_products: int = 20_000_000
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``k`` users sharing most items with each user (self excluded), from sparse products.

    Users are processed in chunks whose product ``R_chunk R^T`` has at most about ``max_products``
    nonzeros, so memory stays bounded on any dataset; time is about ``sum_i deg(i)^2`` products.
    Ties at the ``k``-th count are broken arbitrarily but deterministically (the reference's
    dense ``topk`` is no better defined), and a row's neighbours are in no particular order.

    Shapes: returns ``neighbours`` (int64) and ``counts`` (float32), both ``(n_users, k)`` (only
    the first ``n_valid[u]`` entries of row ``u`` are real, the rest 0), and ``n_valid``
    ``(n_users,)``.
    """
    inter = sp.csr_matrix((np.ones(len(users), dtype=np.int32), (users, items)), shape=(n_users, n_items))
    inter.sum_duplicates()
    inter.data[:] = 1  # a repeated (user, item) pair counts once, as the reference's set intersection
    inter_t = inter.T.tocsr()
    item_deg = np.asarray(inter.sum(axis=0)).ravel().astype(np.int64)
    cum_products = np.cumsum(inter @ item_deg)  # row u of R R^T has at most (R deg)_u nonzeros

    neighbours = np.zeros((n_users, k), dtype=np.int64)
    counts = np.zeros((n_users, k), dtype=np.float32)
    n_valid = np.zeros(n_users, dtype=np.int64)
    start = 0
    while start < n_users:
        done = int(cum_products[start - 1]) if start else 0
        stop = max(int(np.searchsorted(cum_products, done + max_products, side="right")), start + 1)
        co = inter[start:stop] @ inter_t
        rows = np.repeat(np.arange(stop - start), np.diff(co.indptr))
        co.data[co.indices == rows + start] = 0  # a user is not its own neighbour
        kept_rows, kept, slot, n_valid[start:stop] = _top_k_per_row(co.indptr, co.data, rows, k)
        neighbours[start + kept_rows, slot] = co.indices[kept]
        counts[start + kept_rows, slot] = co.data[kept]
        start = stop
    return neighbours, counts, n_valid


def write_user_graph_dict(
    path: Path, neighbours: np.ndarray, counts: np.ndarray, n_valid: np.ndarray, block: int = 16_384
) -> None:
    """Write `top_k_cooccurrence`'s result as the reference's ``user_graph_dict.npy`` (atomically).

    Each user's neighbours are sorted by decreasing count (ties by id), as the reference's
    ``torch.topk`` gives them; a user without neighbours gets two empty arrays. The rows of
    ``neighbours``/``counts`` are sorted in place, ``block`` users at a time, and the dict holds
    views of them, so writing needs no second copy of the graph.
    """
    for start in range(0, len(n_valid), block):
        rows = slice(start, start + block)
        order = np.lexsort((neighbours[rows], -counts[rows]), axis=1)  # padding (count 0) sorts last
        neighbours[rows] = np.take_along_axis(neighbours[rows], order, axis=1)
        counts[rows] = np.take_along_axis(counts[rows], order, axis=1)
    graph = {u: [neighbours[u, :n], counts[u, :n]] for u, n in enumerate(n_valid.tolist())}
    with atomic_open(path, "wb") as fh:
        np.save(fh, np.array(graph, dtype=object), allow_pickle=True)


def _top_k_per_row(
    indptr: np.ndarray, data: np.ndarray, rows: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The entries holding each CSR row's ``k`` largest positive integer values, without sorting.

    ``rows`` is each entry's row; zeros are not entries. Returns the kept entries' rows, indices
    and output slots, and each row's number of kept entries. A row's threshold ``t`` is its
    ``k``-th largest value, read off the row's histogram of values (all rows' histograms side by
    side in one flat array, so memory is O(entries + sum of row maxima)); entries above ``t`` are
    kept, then entries equal to ``t`` in storage order until the row has ``k``.
    """
    n_rows = len(indptr) - 1
    sizes = np.diff(indptr)
    row_max = np.zeros(n_rows, dtype=np.int64)
    if (sizes > 0).any():
        row_max[sizes > 0] = np.maximum.reduceat(data, indptr[:-1][sizes > 0])
    width = row_max + 1
    offset = np.concatenate([[0], np.cumsum(width)])
    hist = np.bincount(offset[rows] + data, minlength=int(offset[-1]))
    csum = np.cumsum(hist)
    seg = np.repeat(np.arange(n_rows), width)
    at_least = csum[offset[1:] - 1][seg] - csum + hist  # at_least[offset_r + v] = #entries of row r >= v
    # threshold: the largest v with at_least >= k; rows with fewer than k entries keep all (v = 1)
    thresh = np.maximum(np.add.reduceat((at_least >= k).astype(np.int64), offset[:-1]) - 1, 1)
    above = np.where(thresh < row_max, at_least[offset[:-1] + np.minimum(thresh + 1, row_max)], 0)
    n_positive = np.where(row_max > 0, at_least[offset[:-1] + np.minimum(1, row_max)], 0)
    row_thresh = thresh[rows]
    sure = np.flatnonzero(data > row_thresh)
    tie = np.flatnonzero(data == row_thresh)
    tie = tie[_rank_in_run(rows[tie], n_rows) < k - above[rows[tie]]]
    kept = np.sort(np.concatenate([sure, tie]))
    kept_rows = rows[kept]
    return kept_rows, kept, _rank_in_run(kept_rows, n_rows), np.minimum(n_positive, k)


def _rank_in_run(sorted_rows: np.ndarray, n_rows: int) -> np.ndarray:
    """Position of each element within its run of equal values (``sorted_rows`` is sorted)."""
    sizes = np.bincount(sorted_rows, minlength=n_rows)
    return np.arange(len(sorted_rows)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
