r"""The user-user co-interaction graph of DualGNN and DRAGON, sparse end to end.

Two users are neighbours when they share training items; the weight of the pair is that number,
:math:`c_{uv} = |I_u \cap I_v|`. Each user keeps its ``k`` heaviest neighbours. The graph comes
from the dataset folder's ``user_graph_dict.npy`` when there is one (the output of the reference's
``preprocessing/dualgnn-gen-u-u-matrix.py``: a pickled ``{user: [neighbours, counts]}`` dict,
neighbours sorted by count, at most 200 each), otherwise it is built from the training
interactions: :math:`C = R R^\top`, one chunk of users at a time, as sparse products (never a dense
users x users matrix; `mgtune.data.user_graph`). Either way the result is cached on disk keyed by the
dataset fingerprint (and the file's digest), so a changed dataset or graph file is never served a stale graph.

Every epoch the models draw `sample_user_neighbours`: a user with fewer than ``k`` neighbours has
its list padded to ``k`` by drawing among its own neighbours (the reference's ``topk_sample``), and
the ``k`` counts become weights by a softmax, so

.. math:: h_u = \sum_{j=1}^{k} \mathrm{softmax}(c_{u,\cdot})_j\, x_{n_{u,j}}

is one sparse ``(n_users, n_users)`` product, `user_aggregation_adj` (rows of users without
neighbours are empty).
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from mgtune.data import Dataset
from mgtune.data.dataset import file_digest
from mgtune.data.user_graph import USER_GRAPH_FILE, top_k_cooccurrence
from mgtune.errors import DataFormatError
from mgtune.models._blocks.cache import cached_tensors
from mgtune.models._blocks.sparse import FixedSparse, fixed_sparse, spmm

__all__ = [
    "UserGraph", "USER_GRAPH_FILE", "cooccurrence_topk", "load_user_graph_dict", "user_graph",
    "sample_user_neighbours", "user_aggregation_adj", "UserGraphAggregation",
]

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
    """`mgtune.data.user_graph.top_k_cooccurrence` (the same builder ``mgtune data prepare`` writes
    ``user_graph_dict.npy`` with), as a `UserGraph` of tensors."""
    neighbours, counts, n_valid = top_k_cooccurrence(users, items, n_users, n_items, k, max_products)
    return UserGraph(torch.from_numpy(neighbours), torch.from_numpy(counts), torch.from_numpy(n_valid))


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
        source = file_digest(path)

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
