"""A float32 ``[n, d]`` ``.npy`` file written row by row with ordinary writes, rows in any order.

A writable memory map (``np.lib.format.open_memmap``) is the obvious way to fill a matrix larger
than memory, but when the disk fills while its pages are written back the kernel kills the process
with SIGBUS: no message, no cleanup, the temp folder left behind filling the disk. Written with
``write``, a full disk is an ``OSError`` (ENOSPC), which `mgtune.files` turns into one line and
whose temp folder is removed. Memory stays one chunk of rows, as with the map.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import numpy as np

__all__ = ["NpyRows", "write_npy_rows"]

_DTYPE = np.dtype("<f4")


class NpyRows:
    """An open ``(n_rows, dim)`` float32 ``.npy`` file; `write_rows` fills it, each row exactly once."""

    def __init__(self, fh: BinaryIO, n_rows: int, dim: int) -> None:
        np.lib.format.write_array_header_1_0(fh, {"descr": np.lib.format.dtype_to_descr(_DTYPE),
                                                  "fortran_order": False, "shape": (n_rows, dim)})
        self._fh, self._start, self._row_bytes = fh, fh.tell(), dim * _DTYPE.itemsize
        self.n_rows, self.dim, self.rows_written = n_rows, dim, 0

    def write_rows(self, rows: np.ndarray, values: np.ndarray) -> None:
        """Rows ``rows`` (distinct row numbers, in any order) get ``values``; each run of consecutive rows is one write.

        Shapes: ``rows`` ``(k,)``, ``values`` ``(k, dim)``.
        """
        if len(rows) == 0:
            return
        order = np.argsort(rows, kind="stable")
        rows = np.asarray(rows)[order]
        values = np.ascontiguousarray(np.asarray(values)[order], dtype=_DTYPE)
        starts = np.concatenate([[0], np.flatnonzero(np.diff(rows) != 1) + 1, [len(rows)]])
        for a, b in zip(starts[:-1].tolist(), starts[1:].tolist()):  # one write per run, not per row
            self._fh.seek(self._start + int(rows[a]) * self._row_bytes)
            self._fh.write(values[a:b].tobytes())  # a copy of one run: memory stays one chunk
        self.rows_written += len(rows)


@contextmanager
def write_npy_rows(path: Path, n_rows: int, dim: int) -> Iterator[NpyRows]:
    """Create ``path`` as an ``(n_rows, dim)`` float32 ``.npy`` file to fill with `NpyRows.write_rows`."""
    with path.open("wb") as fh:
        out = NpyRows(fh, n_rows, dim)
        yield out
        assert out.rows_written == n_rows, f"{path}: {out.rows_written} of {n_rows} rows written"
