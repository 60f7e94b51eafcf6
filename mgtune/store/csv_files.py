"""The CSV files of a run: one atomic writer, one checked reader (as rows of text, or as a frame).

Every CSV mgtune writes goes through `write_csv` (a temp file renamed over the target, so a reader
never sees half of it), and every CSV it reads back through `read_rows` or `read_frame`, which turn
a missing, special (a FIFO would block), unreadable, empty or cut-short file into a
`DataFormatError` naming it. A writer always ends the last row with a newline, so a file that does
not end with one was cut short (a full disk, a copy interrupted) and is never read as fewer rows.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mgtune import checks
from mgtune.errors import DataFormatError
from mgtune.files import write_text

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["write_csv", "read_rows", "read_frame", "require_columns", "numeric_column", "check_regular_file",
           "check_complete"]


def write_csv(path: Path, columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> None:
    """Replace ``path`` with ``rows`` under the header ``columns`` (None as an empty cell; other keys ignored)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    writer.writerows({k: ("" if v is None else v) for k, v in row.items()} for row in rows)
    write_text(path, buf.getvalue())


def check_regular_file(path: Path, what: str = "") -> None:
    """`DataFormatError` unless ``path`` is a regular file (after links), by `mgtune.checks.check_regular_file`:
    a FIFO or a device would block a reader, a folder cannot be read. A missing one is ``PATH: missing{what}``."""
    if not path.exists() and not path.is_symlink():
        raise DataFormatError(f"{path}: missing{what}")
    checks.check_regular_file(path, "record file")


def _text(path: Path) -> str:
    check_regular_file(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DataFormatError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise DataFormatError(f"{path}: cannot be read ({exc.strerror or type(exc).__name__})") from None
    if not text.strip():
        raise DataFormatError(f"{path}: empty file")
    return text


def check_complete(path: Path, text: str | None = None) -> None:
    """`DataFormatError` if ``path`` (or its ``text``) does not end with a newline: a file cut short may still
    parse, as fewer rows or a shorter last row. Checked after the rows themselves, whose problems say more."""
    if text is None:
        with path.open("rb") as fh:
            fh.seek(-1, 2)
            last = fh.read(1).decode("latin-1")
    else:
        last = text[-1]
    if last not in "\r\n":
        raise DataFormatError(f"{path}: truncated (its last row does not end with a newline)")


def read_rows(path: Path) -> list[dict[str, str]]:
    """The rows of a CSV file mgtune wrote, as text; every row must have the header's length, and the file must
    end with a newline (`check_complete`)."""
    text = _text(path)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
        rows = list(reader)
    except csv.Error as exc:
        raise DataFormatError(f"{path}: not a readable CSV ({exc})") from None
    for number, row in enumerate(rows, start=1):
        if len(row) != len(header):
            raise DataFormatError(f"{path}: data row {number} has {len(row)} cells, the header {len(header)}")
    check_complete(path, text)
    return [dict(zip(header, row)) for row in rows]


def read_frame(path: Path, text_columns: Sequence[str] = ()) -> pd.DataFrame:
    """A CSV file as a DataFrame, ``text_columns`` kept as text. Whether it is complete is the caller's to check
    (`check_complete`) once it checked the rows: Ray's ``progress.csv`` of a running trial may be mid-row."""
    import pandas as pd

    text = _text(path)
    try:
        return pd.read_csv(io.StringIO(text), dtype=dict.fromkeys(text_columns, str))
    except pd.errors.EmptyDataError:
        raise DataFormatError(f"{path}: empty file") from None
    except (pd.errors.ParserError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataFormatError(f"{path}: not a readable CSV ({first})") from None


def require_columns(path: Path, frame: pd.DataFrame, columns: Iterable[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataFormatError(f"{path}: missing column(s) {', '.join(missing)}")


def numeric_column(path: Path, frame: pd.DataFrame, col: str, required: pd.Series | None = None) -> pd.Series:
    """``frame[col]`` as floats; a non-number, or an empty cell where ``required``, is an error."""
    import numpy as np
    import pandas as pd

    values = pd.to_numeric(frame[col], errors="coerce").astype(float)
    present = frame[col].notna() if required is None else frame[col].notna() | required
    bad = (values.isna() & present) | np.isinf(values)
    if bad.any():
        row = int(bad.to_numpy().nonzero()[0][0])
        raise DataFormatError(f"{path}: column {col} needs a finite number in data row {row + 1}, "
                              f"got {frame[col].iloc[row]!r}")
    return values
