"""Speed of a small FREEDOM study: seconds from trial start to first epoch, and trials per hour.

Usage: python benchmarks/study_speed.py [--dataset demo] [--data-dir datasets] [--trials 6]
                                        [--max-epochs 3] [--gpus 1,0.25] [--cpus-per-trial 1]
                                        [--json PATH] [--markdown PATH]

Runs one study per ``--gpus`` value (default ``1,0.25`` when CUDA is present, else ``0``) with
ASHA's grace period equal to ``--max-epochs``, so every trial does the same work. Printed per
study: trial start-up (from Ray creating the trial to its first epoch starting: scheduling,
worker process, imports, data from the object store, model and graph building) for the first
trials (fresh workers) and for the rest (reused workers), epoch seconds, the most trials seen
running at once (from the spans in each trial's ``progress.csv``; 1 s resolution), the study's wall
time (Ray's own start included) and trials per hour at that pace. Studies go to a temporary folder;
``--json`` and ``--markdown`` also write the figures to files.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

from mgtune.files import write_text
from mgtune.study import StudySettings, run_study


def _fmt(values: list[float]) -> str:
    if not values:
        return "-"
    return f"median {statistics.median(values):6.2f}s  (min {min(values):.2f}, max {max(values):.2f}, n={len(values)})"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="demo")
    p.add_argument("--data-dir", default="datasets")
    p.add_argument("--trials", type=int, default=6)
    p.add_argument("--max-epochs", type=int, default=3)
    p.add_argument("--gpus", default="1,0.25" if torch.cuda.is_available() else "0",
                   help="comma-separated --gpus-per-trial values, one study each")
    p.add_argument("--cpus-per-trial", type=float, default=1.0)
    p.add_argument("--json", type=Path, help="also write the figures as JSON to this file")
    p.add_argument("--markdown", type=Path, help="also write the figures as a markdown table to this file")
    args = p.parse_args()

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU only, {os.cpu_count()} cores"
    print(f"study speed: FREEDOM on {args.dataset}, {args.trials} trials x {args.max_epochs} epochs; {device}")
    figures: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="mgtune-speed-") as storage:
        for gpus in (float(g) for g in args.gpus.split(",")):
            t0 = time.perf_counter()
            out = run_study(StudySettings(
                model="freedom", dataset=args.dataset, data_dir=args.data_dir, trials=args.trials,
                max_epochs=args.max_epochs, grace_epochs=args.max_epochs, cpus_per_trial=args.cpus_per_trial,
                gpus_per_trial=gpus, storage=storage, name=f"speed-gpu{gpus:g}",
            ), log=lambda msg: None)
            wall = time.perf_counter() - t0
            epochs, spans = [], []
            for row in out.rows:
                progress = pd.read_csv(out.study_dir / row["trial_dir"] / "progress.csv")
                epochs += list(progress["train_seconds"] + progress["eval_seconds"])
                spans.append(_span(progress))
            startup = list(out.startup_seconds.values())  # in trial creation order
            concurrent = _concurrency(out.study_dir)  # the first trials start fresh workers, later ones reuse them
            per_hour = 3600 * len(out.rows) / wall
            print(f"\n--gpus-per-trial {gpus:g}  ({concurrent} trials at a time)")
            print(f"  trial start -> first epoch, fresh workers: {_fmt(startup[:concurrent])}")
            print(f"  trial start -> first epoch, reused:        {_fmt(startup[concurrent:])}")
            print(f"  epoch (train + eval):                      {_fmt(epochs)}")
            print(f"  most trials seen running at once:          {_max_overlap(spans)}")
            print(f"  study wall time {wall:.1f}s (Ray start included) -> {per_hour:.0f} trials/hour")
            figures.append({
                "gpus_per_trial": gpus, "max_concurrent_trials": concurrent,
                "most_running_at_once": _max_overlap(spans),
                "trials": len(out.rows), "statuses": [row["status"] for row in out.rows],
                "startup_fresh_s": startup[:concurrent], "startup_reused_s": startup[concurrent:],
                "epoch_median_s": statistics.median(epochs) if epochs else None, "wall_s": wall,
                "trials_per_hour": per_hour,
            })
    summary = {"device": device, "dataset": args.dataset, "trials": args.trials, "max_epochs": args.max_epochs,
               "studies": figures}
    if args.json:
        write_text(args.json, json.dumps(summary, indent=2) + "\n")
    if args.markdown:
        write_text(args.markdown, _markdown(summary))
    return 0


def _span(progress: pd.DataFrame) -> tuple[float, float]:
    """When the trial's function ran, in Unix seconds: its first report less the time it had run by then,
    to its last report (Ray's ``timestamp`` is whole seconds)."""
    first, last = progress.iloc[0], progress.iloc[-1]
    return float(first["timestamp"]) - float(first["time_total_s"]), float(last["timestamp"])


def _max_overlap(spans: list[tuple[float, float]]) -> int:
    """The most spans that contain one instant."""
    events = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans], key=lambda e: (e[0], -e[1]))
    most = running = 0
    for _, step in events:
        running += step
        most = max(most, running)
    return most


def _markdown(summary: dict[str, object]) -> str:
    lines = [f"FREEDOM study on {summary['dataset']}, {summary['trials']} trials x {summary['max_epochs']} epochs; "
             f"{summary['device']}.", "",
             "| GPUs per trial | trials at a time (set / seen) | start-up, fresh (median s) | epoch (median s) "
             "| wall (s) | trials per hour |", "|---:|---:|---:|---:|---:|---:|"]
    for f in summary["studies"]:  # type: ignore[attr-defined]
        fresh = statistics.median(f["startup_fresh_s"]) if f["startup_fresh_s"] else float("nan")
        epoch = f["epoch_median_s"] if f["epoch_median_s"] is not None else float("nan")
        lines.append(f"| {f['gpus_per_trial']:g} | {f['max_concurrent_trials']} / {f['most_running_at_once']} "
                     f"| {fresh:.2f} | {epoch:.3f} | {f['wall_s']:.1f} | {f['trials_per_hour']:.0f} |")
    return "\n".join(lines) + "\n"


def _concurrency(study_dir: Path) -> int:
    return int(json.loads((study_dir / "study.json").read_text())["max_concurrent_trials"])


if __name__ == "__main__":
    sys.exit(main())
