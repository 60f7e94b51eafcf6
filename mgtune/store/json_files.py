"""The JSON records of a run read back: one checked reader (`read_json`), and a record with its CSV rows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mgtune.errors import DataFormatError
from mgtune.store.csv_files import check_regular_file, read_rows

__all__ = ["read_json", "read_record"]


def read_json(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``; anything else (a missing or special file, bad JSON, a list) is a
    `DataFormatError` naming the file."""
    check_regular_file(path)
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise DataFormatError(f"{path}: cannot read ({exc})") from None
    except json.JSONDecodeError as exc:
        raise DataFormatError(f"{path}: not valid JSON ({exc})") from None
    except RecursionError:
        raise DataFormatError(f"{path}: not valid JSON (nested too deeply)") from None
    if not isinstance(info, dict):
        raise DataFormatError(f"{path}: expected a JSON object, got {type(info).__name__}")
    return info


def read_record(info_file: Path, results_file: Path) -> tuple[dict[str, Any], list[dict[str, str]]] | None:
    """A JSON record and its CSV of rows (a confirmation's, a robustness pass's); None while either is missing."""
    if not info_file.exists() or not results_file.exists():
        return None
    return read_json(info_file), read_rows(results_file)
