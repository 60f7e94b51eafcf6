"""Do two versions of mgtune leave the same files? A check for refactors that must not change behaviour.

Usage:
    python benchmarks/same_outputs.py run DIR      # the standard jobs, into the empty folder DIR
    python benchmarks/same_outputs.py compare A B  # every file of two such folders, masked, side by side

``run`` works in DIR (the demo dataset in DIR/datasets, every run in DIR/runs, cards and reports in
DIR/reports*, each command's stdout and stderr in DIR/logs) and runs, with fixed seeds and one trial
at a time so that every Optuna and ASHA decision is reproducible:

1. a demo study (FREEDOM, 3 trials of 4 epochs) and its own report;
2. its confirmation over two seeds (card into DIR/reports);
3. a robustness run on it (mask and gaussian, levels 0 and 0.5);
4. a two-model ``--mg both`` suite (FREEDOM and VBPR, 2 trials of 3 epochs) and its report;
5. ``mgtune report`` over the study and over the suite.

Run it once per version, both times in the same DIR path (absolute paths are then equal), moving
the first result aside. ``compare`` reads both trees and prints every difference; it exits 1 if
there is one. What is masked, because it differs between any two runs of the same code:

- fields of time and place: JSON keys and CSV columns named like ``created``, ``finished``,
  ``date``, ``timestamp``, ``time_*``, ``*_seconds``, ``seconds*``, ``pid``, ``hostname``,
  ``node_ip``, ``ray_address``; TensorBoard wall times; Optuna's ``datetime_*`` columns;
- peak memory (``peak_memory_mb``), which depends on what else the process had allocated;
- run ids: Ray's random trial ids (``648915ce``) are renamed after the trial's own parameters (its
  ``params.json``), which the same seeds reproduce; since files list trials by id, rows of a CSV and
  lines of a text file are compared as sorted lists;
- in text (logs, reports, stdout): durations (``12.3s``, ``4m05s``, ``1h02m``), clock times, Ray's
  session folders, log lines Ray and Optuna print (lines not written by mgtune), and the inline PNG
  plots of the HTML pages, whose colours follow the random trial ids;
- Ray's own state files (``tuner.pkl``, ``experiment_state-*.json``, ``basic-variant-state-*.json``,
  ``searcher-state-*.pkl``, ``search_gen_state-*.json``, ``params.pkl``, ``.validate_storage_marker``,
  ``error.pkl``): not compared; TensorBoard event files are matched by their sequence number, not their
  name (which holds a time stamp, the host and a process id).

Checkpoints and weights are compared tensor by tensor, TensorBoard events value by value, Optuna's
database row by row.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

RAY_STATE = re.compile(r"^(tuner\.pkl|experiment_state-.*\.json|basic-variant-state-.*\.json|searcher-state-.*\.pkl"
                       r"|search_gen_state-.*\.json|\.validate_storage_marker|error\.pkl|params\.pkl)$")
EVENTS = re.compile(r"events\.out\.tfevents\.\d+\.[^./]+\.\d+\.(\d+)$")
PROGRESS = re.compile(r"\[\d+(/\d+)? done[^\]]*\]")
TIME_COLUMN = re.compile(r"s/epoch|Peak MiB|^Time$|seconds", re.I)
MASKED_KEY = re.compile(r"(^|_)(created|finished|date|timestamp|time|seconds|pid|hostname|node_ip|ray_address)"
                        r"($|_)|^time_|_s$|seconds|peak_memory")
TRIAL_ID = re.compile(r"(?<![0-9a-f])([0-9a-f]{5}_\d{5}|[0-9a-f]{8})(?![0-9a-f])")
PORT = re.compile(r"\b127\.0\.0\.1:\d+")
PNG = re.compile(r"data:image/png;base64,[A-Za-z0-9+/=]+")
DURATION = re.compile(r"\b\d+(\.\d+)?\s?(ms|s)\b|\b\d+h\d\dm\b|\b\d+m ?\d\ds\b|\b\d\d:\d\d:\d\d\b|"
                      r"\b\d{8}-\d{6}\b|\d{4}-\d\d-\d\dT[\d:+-]+")
RAY_SESSION = re.compile(r"/tmp/ray/session_[^/\s]+")

SEEDS = ["--seed", "0"]


def _jobs(root: Path) -> list[tuple[str, list[str]]]:
    runs, data = str(root / "runs"), ["--data-dir", str(root / "datasets")]
    study = str(root / "runs" / "study")
    return [
        ("study", ["run", "--model", "freedom", "--dataset", "demo", *data, "--trials", "3", "--max-epochs", "4",
                   "--grace-epochs", "2", "--concurrency", "1", "--storage", runs, "--name", "study", *SEEDS]),
        ("confirm", ["confirm", study, "--seeds", "2", "--out", str(root / "reports")]),
        ("robustness", ["robustness", study, "--kinds", "mask,gaussian", "--levels", "0,0.5", "--seed", "0",
                        "--out", str(root / "reports")]),
        ("suite", ["run", "--model", "freedom,vbpr", "--mg", "both", "--dataset", "demo", *data, "--trials", "2",
                   "--max-epochs", "3", "--grace-epochs", "2", "--concurrency", "1", "--storage", runs,
                   "--name", "suite", *SEEDS]),
        ("report-study", ["report", study, "--out", str(root / "reports-study")]),
        ("report-suite", ["report", str(root / "runs" / "suite"), "--out", str(root / "reports-suite")]),
    ]


def run(root: Path) -> int:
    root = root.resolve()
    if root.exists() and any(root.iterdir()):
        sys.exit(f"{root}: not empty")
    (root / "logs").mkdir(parents=True)
    for name, args in _jobs(root):
        print(f"mgtune {' '.join(args)}", flush=True)
        proc = subprocess.run([sys.executable, "-m", "mgtune.cli", *args], cwd=root, capture_output=True, text=True)
        (root / "logs" / f"{name}.stdout").write_text(proc.stdout)
        (root / "logs" / f"{name}.stderr").write_text(proc.stderr)
        (root / "logs" / f"{name}.rc").write_text(f"{proc.returncode}\n")
        if proc.returncode != 0:
            print(f"  exit {proc.returncode}: {proc.stderr.strip().splitlines()[-1:]}", flush=True)
    return 0


# ---------------------------------------------------------------- comparing
class _Ids:
    """Ray's random trial ids, renamed after each trial's parameters (the same in every run of the same seeds)."""

    def __init__(self, root: Path) -> None:
        import hashlib

        self.names: dict[str, str] = {}
        # study trials first: a confirmation run's parameters name its study trial, renamed before hashing
        files = sorted(root.rglob("trial_*/params.json"), key=lambda p: ("confirm" in p.parts, str(p)))
        for params in files:
            digest = hashlib.sha1(self(params.read_text()).encode()).hexdigest()[:10]
            self.names[params.parent.name.removeprefix("trial_")] = f"<trial-{digest}>"

    def __call__(self, text: str) -> str:
        return TRIAL_ID.sub(lambda m: self.names.get(m.group(0), m.group(0)), text)


def _files(root: Path, ids: _Ids) -> dict[str, Path]:
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not RAY_STATE.match(path.name) and "__pycache__" not in path.parts:
            out[EVENTS.sub(r"events.out.tfevents.\1", ids(str(path.relative_to(root))))] = path
    return out


def _masked(obj: Any, ids: _Ids) -> Any:
    if isinstance(obj, dict):
        return {ids(str(k)): "<masked>" if MASKED_KEY.search(str(k)) else _masked(v, ids) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_masked(v, ids) for v in obj]
    if isinstance(obj, str):
        return _text(obj, ids)
    return obj


def _text(text: str, ids: _Ids) -> str:
    text = PROGRESS.sub("[<progress>]", PNG.sub("<png>", ids(text)))
    return PORT.sub("127.0.0.1:<port>", DURATION.sub("<t>", RAY_SESSION.sub("<ray-session>", text)))


def _lines(text: str, ids: _Ids) -> list[str]:
    """Text as sorted lines: a line that is a JSON object masked as JSON, a Markdown table row with its time
    and memory cells masked (by the column's header, or in a Field | Value table by the field)."""
    out = []
    header: list[str] = []
    for line in text.splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            obj = None
        if isinstance(obj, dict):
            out.append(json.dumps(_masked(obj, ids)))
            continue
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if not header:
                header = cells
            elif header[:2] == ["Field", "Value"]:
                cells = [cells[0], "<masked>"] if MASKED_KEY.search(cells[0]) else cells
            else:
                cells = ["<masked>" if i < len(header) and TIME_COLUMN.search(header[i]) else c
                         for i, c in enumerate(cells)]
            line = "| " + " | ".join(cells) + " |"
        else:
            header = []
            if line.startswith("Seconds per epoch"):  # the card's sentence of seconds and memory
                line = re.sub(r"\d+\.\d+", "<n>", line)
        out.append(_text(line, ids))
    return sorted(out)


def _csv(path: Path, ids: _Ids) -> list[dict[str, Any]]:
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    masked = [{ids(k): "<masked>" if MASKED_KEY.search(k) else _text(v or "", ids) for k, v in r.items()} for r in rows]
    return sorted(masked, key=repr)


def _jsonl(path: Path, ids: _Ids) -> list[Any]:
    return [_masked(json.loads(line), ids) for line in path.read_text().splitlines() if line.strip()]


def _log_lines(path: Path, ids: _Ids) -> list[str]:
    """mgtune's own lines (Ray's own messages and warnings vary from run to run)."""
    keep = []
    for line in path.read_text(errors="replace").splitlines():
        if re.match(r"^\s*(\(|\[\d|\[[IWE] \d|\d{4}-\d\d|WARNING|INFO|E\d{4}|I\d{4}|W\d{4}|\*\*\*|warnings\.warn|"
                    r".*Warning:)",
                    line) or ("ray" in line.lower() and "mgtune" not in line and "trial" not in line.lower()):
            continue
        keep.append(_text(line, ids))
    return sorted(keep)


def _events(path: Path) -> list[tuple[Any, ...]]:
    """Every summary value: (step, tag, value); an HParams record as a dict (its maps have no order)."""
    from google.protobuf.json_format import MessageToDict
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

    out = []
    for event in EventFileLoader(str(path)).Load():
        if event.HasField("summary"):
            for v in event.summary.value:
                if v.HasField("simple_value"):
                    value: Any = v.simple_value
                else:
                    value = MessageToDict(HParamsPluginData.FromString(v.metadata.plugin_data.content))
                out.append((event.step, v.tag, value))
    return out


def _tensors(path: Path) -> Any:
    import torch

    def plain(obj: Any) -> Any:
        if isinstance(obj, torch.Tensor):
            return ("tensor", tuple(obj.shape), str(obj.dtype), obj.detach().cpu().numpy().tobytes())
        if isinstance(obj, dict):
            return {k: plain(v) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return [plain(v) for v in obj]
        return obj

    return plain(torch.load(path, map_location="cpu", weights_only=True))


def _sqlite(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
        out = {}
        for table in tables:
            cols = [r[1] for r in con.execute(f"PRAGMA table_info({table})")]
            keep = [c for c in cols if not c.startswith("datetime")]
            out[table] = sorted(con.execute(f"SELECT {', '.join(keep)} FROM {table}").fetchall(), key=repr)
        return out
    finally:
        con.close()


def _content(path: Path, ids: _Ids) -> Any:
    name = path.name
    if name.startswith("events.out.tfevents."):
        return _events(path)
    if path.suffix in (".pt",) or (name.endswith(".pkl") and "checkpoint" in str(path)):
        return _tensors(path)
    if path.suffix == ".db":
        return _sqlite(path)
    if (path.suffix == ".json" and name == "result.json") or path.suffix == ".jsonl":
        return _jsonl(path, ids)
    if path.suffix == ".json":
        return _masked(json.loads(path.read_text()), ids)
    if path.suffix == ".csv":
        return _csv(path, ids)
    if path.suffix in (".log", ".stderr", ".txt"):
        return _log_lines(path, ids)
    if path.suffix in (".md", ".html", ".stdout", ".rc"):
        return _lines(path.read_text(), ids)
    return path.read_bytes()


def _first_difference(a: Any, b: Any, where: str = "") -> str:
    if type(a) is not type(b):
        return f"{where}: {type(a).__name__} vs {type(b).__name__}"
    if isinstance(a, dict):
        for k in sorted(set(a) | set(b), key=str):
            if k not in a or k not in b:
                return f"{where}.{k}: only in {'B' if k not in a else 'A'}"
            if a[k] != b[k]:
                return _first_difference(a[k], b[k], f"{where}.{k}")
    if isinstance(a, list):
        if len(a) != len(b):
            return f"{where}: {len(a)} vs {len(b)} entries"
        for i, (x, y) in enumerate(zip(a, b)):
            if x != y:
                return _first_difference(x, y, f"{where}[{i}]")
    return f"{where}: {str(a)[:200]!r} vs {str(b)[:200]!r}"


def compare(a: Path, b: Path) -> int:
    ids_a, ids_b = _Ids(a), _Ids(b)
    files_a, files_b = _files(a, ids_a), _files(b, ids_b)
    problems = [f"only in {a}: {n}" for n in sorted(set(files_a) - set(files_b))]
    problems += [f"only in {b}: {n}" for n in sorted(set(files_b) - set(files_a))]
    same = 0
    for name in sorted(set(files_a) & set(files_b)):
        ca, cb = _content(files_a[name], ids_a), _content(files_b[name], ids_b)
        if ca == cb:
            same += 1
        else:
            problems.append(f"differs: {name}: {_first_difference(ca, cb)}")
    for line in problems:
        print(line)
    print(f"{same} files identical after masking, {len(problems)} difference(s)")
    return 1 if problems else 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("run").add_argument("dir", type=Path)
    cmp = sub.add_parser("compare")
    cmp.add_argument("a", type=Path)
    cmp.add_argument("b", type=Path)
    args = p.parse_args()
    return run(args.dir) if args.cmd == "run" else compare(args.a, args.b)


if __name__ == "__main__":
    sys.exit(main())
