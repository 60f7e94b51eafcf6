r"""The user-user co-interaction graph of DualGNN and DRAGON, sparse end to end.

Two users are neighbours when they share training items; the weight of the pair is that number,
:math:`c_{uv} = |I_u \cap I_v|`. Each user keeps its ``k`` heaviest neighbours. The graph comes
from the dataset folder's ``user_graph_dict.npy`` when there is one (the output of the reference's
``preprocessing/dualgnn-gen-u-u-matrix.py``: a pickled ``{user: [neighbours, counts]}`` dict,
neighbours sorted by count, at most 200 each), otherwise it is built from the training
interactions: :math:`C = R R^\top`, one chunk of users at a time, as sparse products (never a dense
users x users matrix). Either way the result is cached on disk keyed by the dataset fingerprint
(and the file's digest), so a changed dataset or graph file is never served a stale graph.

Every epoch the models draw `sample_user_neighbours`: a user with fewer than ``k`` neighbours has
its list padded to ``k`` by drawing among its own neighbours (the reference's ``topk_sample``), and
the ``k`` counts become weights by a softmax, so

.. math:: h_u = \sum_{j=1}^{k} \mathrm{softmax}(c_{u,\cdot})_j\, x_{n_{u,j}}

is one sparse ``(n_users, n_users)`` product, `user_aggregation_adj` (rows of users without
neighbours are empty).
"""

from __future__ import annotations

import hashlib
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor, nn

from mgtune.data import Dataset
from mgtune.errors import DataFormatError
from mgtune.models._blocks.cache import cached_tensors
from mgtune.models._blocks.sparse import FixedSparse, fixed_sparse, spmm

__all__ = [
    "UserGraph", "USER_GRAPH_FILE", "cooccurrence_topk", "load_user_graph_dict", "user_graph",
    "sample_user_neighbours", "user_aggregation_adj", "UserGraphAggregation",
]

USER_GRAPH_FILE = "user_graph_dict.npy"


@dataclass(frozen=True)
class UserGraph:
    """Top-``k`` neighbours per user, on the CPU.

    Shapes: ``neighbours`` and ``counts`` are ``(n_users, k)`` (long / float; only the first
    ``n_valid[u]`` entries of row ``u`` are real, the rest are 0), ``n_valid`` is ``(n_users,)``.
    """

    neighbours: Tensor
    counts: Tensor
    n_valid: Tensor


def cooccurrence_topk(
    users: np.ndarray, items: np.ndarray, n_users: int, n_items: int, k: int, max_products: int = 20_000_000
) -> UserGraph:
    """The ``k`` users sharing most items with each user (self excluded), from sparse products.

    Users are processed in chunks whose product ``R_chunk R^T`` has at most about ``max_products``
    nonzeros, so memory stays bounded on any dataset; time is about ``sum_i deg(i)^2`` products.
    Ties at the ``k``-th count are broken arbitrarily but deterministically (the reference's
    dense ``topk`` is no better defined), and a row's neighbours are in no particular order.
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
    return UserGraph(torch.from_numpy(neighbours), torch.from_numpy(counts), torch.from_numpy(n_valid))


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


def load_user_graph_dict(path: Path, n_users: int, k: int) -> UserGraph:
    """Read the reference's ``user_graph_dict.npy`` and keep each user's first ``k`` neighbours.

    The file is ``np.save`` of a dict, i.e. a pickle, and a pickle can run any code. It is read by
    `_SafeUnpickler`, which builds only what such a file holds (plain containers and numbers, and
    numpy arrays of numbers), so a crafted file fails instead of running. Every problem is a
    `DataFormatError` naming the file.
    """
    graph = _read_pickled_dict(path)
    missing = [u for u in range(n_users) if u not in graph]
    if missing:
        raise DataFormatError(
            f"{path}: no entry for {len(missing)} of the dataset's {n_users} users (first: {missing[0]}); "
            f"delete the file to have the graph rebuilt from the training interactions"
        )
    neighbours = np.zeros((n_users, k), dtype=np.int64)
    counts = np.zeros((n_users, k), dtype=np.float32)
    n_valid = np.zeros(n_users, dtype=np.int64)
    for u in range(n_users):  # load-time only
        try:
            nbrs, weights = graph[u]
            nbrs, weights = np.asarray(nbrs[:k], dtype=np.int64), np.asarray(weights[:k], dtype=np.float32)
        except (TypeError, ValueError, OverflowError, KeyError, IndexError) as exc:
            raise DataFormatError(f"{path}: entry of user {u} is not [neighbours, counts] ({exc})") from None
        if nbrs.ndim != 1 or weights.ndim != 1 or not np.isfinite(weights).all():
            raise DataFormatError(f"{path}: entry of user {u} must be two flat lists, of ids and of finite counts")
        if len(nbrs) != len(weights) or (len(nbrs) and (nbrs.min() < 0 or nbrs.max() >= n_users)):
            raise DataFormatError(f"{path}: entry of user {u} has mismatched lists or ids outside [0, {n_users})")
        neighbours[u, : len(nbrs)] = nbrs
        counts[u, : len(nbrs)] = weights
        n_valid[u] = len(nbrs)
    return UserGraph(torch.from_numpy(neighbours), torch.from_numpy(counts), torch.from_numpy(n_valid))


def _read_pickled_dict(path: Path) -> dict[Any, Any]:
    """The dict a ``.npy`` file holds (``np.save(path, a_dict)``), unpickled without running code."""
    fmt = np.lib.format
    try:
        with path.open("rb") as fh:
            version = fmt.read_magic(fh)
            if version not in ((1, 0), (2, 0)):
                raise ValueError(f".npy format version {version}")
            read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
            shape, _, dtype = read_header(fh)
            if dtype != np.dtype(object) or shape != ():
                raise ValueError(f"holds a {dtype} array of shape {shape}, not a pickled dict")
            raw = _SafeUnpickler(fh).load()
        graph = raw.item() if isinstance(raw, np.ndarray) and raw.dtype == object and raw.shape == () else raw
    except Exception as exc:  # a refused global, a bad header, a truncated pickle: all one line
        first = (str(exc).strip().splitlines() or [""])[0]
        raise DataFormatError(f"{path}: unreadable user graph ({type(exc).__name__}: {first})") from None
    if not isinstance(graph, dict):
        raise DataFormatError(
            f"{path}: expected a pickled dict {{user: [neighbours, counts]}}, got {type(graph).__name__}"
        )
    return graph


def _numeric_dtype(*args: Any) -> np.dtype[Any]:
    dtype = np.dtype(*args)
    if dtype.kind not in "biufO" or dtype.fields is not None or dtype.subdtype is not None:
        raise pickle.UnpicklingError(f"dtype {dtype} is not allowed in a user graph")
    return dtype


def _allowed_globals() -> dict[tuple[str, str], Any]:
    """What ``np.save`` of a dict of lists/arrays of numbers pickles, under numpy 1's and 2's module names."""
    allowed: dict[tuple[str, str], Any] = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): _numeric_dtype}
    multiarray = np.ndarray.__reduce__(np.zeros(0))[0]  # numpy's own _reconstruct, whatever its module
    scalar = np.int64(0).__reduce__()[0]
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(module, "_reconstruct")] = multiarray
        allowed[(module, "scalar")] = scalar
    return allowed


class _SafeUnpickler(pickle.Unpickler):
    """An unpickler that refuses every global but numpy's array, dtype and scalar constructors.

    Without globals a pickle can only build str, bytes, numbers, lists, tuples, dicts and sets;
    ``_reconstruct`` only makes ndarrays, and object arrays hold only what this unpickler built.
    """

    _ALLOWED = _allowed_globals()

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._ALLOWED[(module, name)]
        except KeyError:
            msg = f"refused to load {module}.{name} (only numbers and arrays are allowed)"
            raise pickle.UnpicklingError(msg) from None


def user_graph(data: Dataset, k: int) -> UserGraph:
    """The dataset's user graph with ``k`` neighbours per user: from its file, else built; cached."""
    path = data.path / USER_GRAPH_FILE
    if path.is_file():
        source = _file_digest(path)

        def build() -> dict[str, Tensor]:
            return _as_dict(load_user_graph_dict(path, data.n_users, k))
    else:
        source = "train-cooccurrence"

        def build() -> dict[str, Tensor]:
            return _as_dict(cooccurrence_topk(data.train.users, data.train.items, data.n_users, data.n_items, k))

    key = {"k": k, "source": source, "v": 1}
    t = cached_tensors(data, "user-graph", key, build)
    return UserGraph(t["neighbours"], t["counts"], t["n_valid"])


def sample_user_neighbours(graph: UserGraph) -> tuple[Tensor, Tensor]:
    """One epoch's ``k`` neighbours and aggregation weights per user (the reference's ``topk_sample``).

    A user with fewer than ``k`` neighbours is padded by drawing uniformly among its own
    neighbours; the weights are the softmax of the ``k`` counts (padding included). Users without
    neighbours get all-zero weights. Draws use torch's global CPU generator, so a seed gives the
    same graph on any device.

    Shapes: two ``(n_users, k)`` tensors, long and float, on the CPU.
    """
    nbrs, counts, n_valid = graph.neighbours, graph.counts, graph.n_valid
    n_users, k = nbrs.shape
    slot = torch.arange(k).expand(n_users, k)
    pick = (torch.rand(n_users, k) * n_valid.unsqueeze(1)).long()
    src = torch.where(slot < n_valid.unsqueeze(1), slot, pick)
    weights = torch.softmax(counts.gather(1, src), dim=1) * (n_valid > 0).unsqueeze(1)
    return nbrs.gather(1, src), weights


def user_aggregation_adj(neighbours: Tensor, weights: Tensor) -> FixedSparse:
    """The ``(n_users, n_users)`` CSR matrix with row ``u`` = ``weights[u]`` at ``neighbours[u]``
    (repeated neighbours summed), so ``adj @ x`` is the module docstring's :math:`h`, and its transpose."""
    n_users, k = neighbours.shape
    rows = torch.arange(n_users, device=neighbours.device).repeat_interleave(k)
    cols, vals = neighbours.reshape(-1), weights.reshape(-1)
    keep = vals != 0
    return fixed_sparse(rows[keep], cols[keep], vals[keep], (n_users, n_users))


class UserGraphAggregation(nn.Module):
    """One epoch's sampled user graph, applied as :math:`h = A x` (see the module docstring).

    The sample lives in buffers, so a checkpoint restores exactly the graph its scores used; the
    CSR matrix and its transpose (for a cheap backward pass) are rebuilt from them after every
    `resample` and `load_state_dict`.

    Shapes: buffers ``neighbours``, ``weights`` ``(n_users, k)``; ``forward``: ``(n_users, d)`` → same.
    """

    neighbours: Tensor
    weights: Tensor

    def __init__(self, graph: UserGraph, device: torch.device) -> None:
        super().__init__()
        self.graph = graph
        self.register_buffer("neighbours", torch.zeros_like(graph.neighbours, device=device))
        self.register_buffer("weights", torch.zeros_like(graph.counts, device=device))
        self.register_load_state_dict_post_hook(_rebuild_after_load)
        self.resample()

    def resample(self) -> None:
        """Draw this epoch's neighbours (`sample_user_neighbours`)."""
        neighbours, weights = sample_user_neighbours(self.graph)
        self.neighbours.copy_(neighbours)
        self.weights.copy_(weights)
        self._rebuild()

    def _rebuild(self) -> None:
        self._adj = user_aggregation_adj(self.neighbours, self.weights)

    def forward(self, x: Tensor) -> Tensor:
        if self._adj.matrix.device != x.device:  # the module was moved after the last rebuild
            self._rebuild()
        return spmm(self._adj, x)


def _rebuild_after_load(module: UserGraphAggregation, _keys: Any) -> None:
    module._rebuild()


def _as_dict(graph: UserGraph) -> dict[str, Tensor]:
    return {"neighbours": graph.neighbours, "counts": graph.counts, "n_valid": graph.n_valid}


def _file_digest(path: Path) -> str:
    h = hashlib.blake2b(digest_size=16)
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 24):
            h.update(chunk)
    return h.hexdigest()
