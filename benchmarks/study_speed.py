"""Speed of a small FREEDOM study: seconds from trial start to first epoch, and trials per hour.

Usage: python benchmarks/study_speed.py [--dataset demo] [--data-dir datasets] [--trials 6]
                                        [--max-epochs 3] [--gpus 1,0.25] [--cpus-per-trial 1]

Runs one study per ``--gpus`` value (default ``1,0.25`` when CUDA is present, else ``0``) with
ASHA's grace period equal to ``--max-epochs``, so every trial does the same work. Printed per
study: trial start-up (from Ray creating the trial to its first epoch starting: scheduling,
worker process, imports, data from the object store, model and graph building) for the first
trials (fresh workers) and for the rest (reused workers), epoch seconds, the study's wall time
(Ray's own start included) and trials per hour at that pace. Studies go to a temporary folder.
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
    args = p.parse_args()

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU only, {os.cpu_count()} cores"
    print(f"study speed: FREEDOM on {args.dataset}, {args.trials} trials x {args.max_epochs} epochs; {device}")
    with tempfile.TemporaryDirectory(prefix="mgtune-speed-") as storage:
        for gpus in (float(g) for g in args.gpus.split(",")):
            t0 = time.perf_counter()
            out = run_study(StudySettings(
                model="freedom", dataset=args.dataset, data_dir=args.data_dir, trials=args.trials,
                max_epochs=args.max_epochs, grace_epochs=args.max_epochs, cpus_per_trial=args.cpus_per_trial,
                gpus_per_trial=gpus, storage=storage, name=f"speed-gpu{gpus:g}",
            ), log=lambda msg: None)
            wall = time.perf_counter() - t0
            epochs = []
            for row in out.rows:
                progress = pd.read_csv(out.study_dir / row["trial_dir"] / "progress.csv")
                epochs += list(progress["train_seconds"] + progress["eval_seconds"])
            startup = list(out.startup_seconds.values())  # in trial creation order
            concurrent = _concurrency(out.study_dir)  # the first trials start fresh workers, later ones reuse them
            print(f"\n--gpus-per-trial {gpus:g}  ({concurrent} trials at a time)")
            print(f"  trial start -> first epoch, fresh workers: {_fmt(startup[:concurrent])}")
            print(f"  trial start -> first epoch, reused:        {_fmt(startup[concurrent:])}")
            print(f"  epoch (train + eval):                      {_fmt(epochs)}")
            print(f"  study wall time {wall:.1f}s (Ray start included) -> {3600 * len(out.rows) / wall:.0f} trials/hour")
    return 0


def _concurrency(study_dir: Path) -> int:
    return int(json.loads((study_dir / "study.json").read_text())["max_concurrent_trials"])


if __name__ == "__main__":
    sys.exit(main())
