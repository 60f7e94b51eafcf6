"""A study vs the same trainings run by hand, on an idle machine and beside busy processes (issue 26).

Usage: python benchmarks/study_load.py [--load 2] [--trials 4] [--max-epochs 3] [--dataset demo]
                                       [--data-dir datasets] [--json PATH] [--markdown PATH]

For each condition, idle and then beside ``--load`` busy-loop processes (started at this process's
own niceness, "normal priority" for the machine, and stopped afterwards), the same ``--trials``
configurations run:

(a) as a default study (`run_study`, what ``mgtune run`` does: its own local Ray runtime, as many
    trials at a time as it books CPUs, ASHA's grace period = ``--max-epochs`` so every trial does the
    same epochs). Start-up per trial: from Ray creating it to its first epoch beginning.
(b) as sequential ``mgtune train`` processes with the study's sampled parameters and seed. Start-up
    per run: from the process start to its first epoch beginning (first epoch line less its seconds).

Printed per condition: trials per hour (trials / wall time, Ray's start and stop included for (a)),
start-up median and max, and the ratio (a)/(b) of trials per hour. ``uptime`` before and after says
what else loaded the machine. Targets (issue 26): (a)/(b) >= 0.9 in both conditions, start-up median
<= 3 s idle.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from mgtune.files import write_text
from mgtune.study import StudySettings, run_study

FLAGS = {"flip_interval": "--flip-interval", "flip_ratio": "--flip-ratio", "learning_rate": "--lr"}
EPOCH_LINE = re.compile(r"epoch\s+\d+ .*\[([\d.]+)s train, ([\d.]+)s eval\]")


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def _study(args: argparse.Namespace, storage: str, name: str) -> dict[str, Any]:
    t0 = time.perf_counter()
    out = run_study(StudySettings(model="freedom", dataset=args.dataset, data_dir=args.data_dir, trials=args.trials,
                                  max_epochs=args.max_epochs, grace_epochs=args.max_epochs, storage=storage,
                                  name=name, gpus_per_trial=0), log=lambda msg: None)
    wall = time.perf_counter() - t0
    configs = [{k.removeprefix("param_"): v for k, v in row.items() if k.startswith("param_")} for row in out.rows]
    return {"wall_s": wall, "ray_s": out.ray_seconds, "startup_s": list(out.startup_seconds.values()),
            "trials": len(out.rows), "configs": configs,
            "concurrency": json.loads((out.study_dir / "study.json").read_text())["max_concurrent_trials"]}


def _trains(args: argparse.Namespace, configs: list[dict[str, Any]], out: Path) -> dict[str, Any]:
    cli = [sys.executable, "-c", "import sys; from mgtune.cli import main; sys.exit(main())", "train"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # one torch thread, as a 1-CPU trial has
    startup: list[float] = []
    t0 = time.perf_counter()
    for i, config in enumerate(configs):
        flags = [a for k, v in config.items() for a in ((FLAGS[k], str(v)) if k in FLAGS else ("--set", f"{k}={v}"))]
        started = time.perf_counter()
        proc = subprocess.Popen([*cli, "--model", "freedom", *flags, "--dataset", args.dataset, "--data-dir",
                                 args.data_dir, "--epochs", str(args.max_epochs), "--seed", "0", "--device", "cpu",
                                 "--out", str(out / f"train-{i}")], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        assert proc.stderr is not None
        for line in proc.stderr:
            match = EPOCH_LINE.search(line)
            if match and len(startup) == i:
                startup.append(time.perf_counter() - started - float(match[1]) - float(match[2]))
        if proc.wait() != 0:
            raise SystemExit(f"mgtune train failed ({proc.returncode}): {proc.args!r}")
    return {"wall_s": time.perf_counter() - t0, "startup_s": startup, "trials": len(configs)}


def _condition(args: argparse.Namespace, load: int, storage: str) -> dict[str, Any]:
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(load)]
    try:
        study = _study(args, storage, f"load{load}")
        trains = _trains(args, study["configs"], Path(storage) / f"train-load{load}")
    finally:
        for proc in busy:
            proc.kill()
            proc.wait()
    fig: dict[str, Any] = {"load": load, "study": study, "train": trains}
    for side in (study, trains):
        side["trials_per_hour"] = 3600 * side["trials"] / side["wall_s"]
        side["startup_median_s"] = statistics.median(side["startup_s"]) if side["startup_s"] else None
        side["startup_max_s"] = max(side["startup_s"], default=None)
    fig["ratio"] = study["trials_per_hour"] / trains["trials_per_hour"]
    return fig


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--load", type=int, default=2, help="busy-loop processes beside the loaded condition")
    p.add_argument("--trials", type=int, default=4)
    p.add_argument("--max-epochs", type=int, default=3)
    p.add_argument("--dataset", default="demo")
    p.add_argument("--data-dir", default="datasets")
    p.add_argument("--label", default="", help="what code ran (e.g. 'main before issue 26'), for the notes")
    p.add_argument("--json", type=Path)
    p.add_argument("--markdown", type=Path)
    args = p.parse_args()
    summary: dict[str, Any] = {"cpus": os.cpu_count(), "niceness": os.nice(0), "dataset": args.dataset,
                               "trials": args.trials, "max_epochs": args.max_epochs, "label": args.label,
                               "uptime_before": _uptime(), "conditions": []}
    with tempfile.TemporaryDirectory(prefix="mgtune-load-") as storage:
        for load in (0, args.load):
            try:
                fig = _condition(args, load, storage)
            except Exception as exc:  # e.g. Ray's node start timing out on a machine this busy: say so, go on
                fig = {"load": load, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0]}"}
            summary["conditions"].append(fig)
            print(_row(fig), flush=True)
    summary["uptime_after"] = _uptime()
    for fig in summary["conditions"]:
        if "study" in fig:
            fig["study"].pop("configs")
    print(_markdown(summary))
    if args.json:
        write_text(args.json, json.dumps(summary, indent=2) + "\n")
    if args.markdown:
        write_text(args.markdown, _markdown(summary))
    return 0


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _row(fig: dict[str, Any]) -> str:
    condition = "idle" if fig["load"] == 0 else f"{fig['load']} busy loops"
    if "error" in fig:
        return f"| {condition} | failed: {fig['error']} |"
    a, b = fig["study"], fig["train"]
    return (f"| {condition} | {a['trials_per_hour']:.0f} "
            f"| {b['trials_per_hour']:.0f} | **{fig['ratio']:.2f}** | {_s(a['startup_median_s'])} / "
            f"{_s(a['startup_max_s'])} | {_s(b['startup_median_s'])} / {_s(b['startup_max_s'])} "
            f"| {a['concurrency']} | {a['ray_s']:.1f} | {a['wall_s']:.0f} / {b['wall_s']:.0f} |")


def _markdown(summary: dict[str, Any]) -> str:
    return "\n".join([
        f"FREEDOM on {summary['dataset']}, {summary['trials']} configurations x {summary['max_epochs']} epochs; "
        f"{summary['cpus']} CPUs, benchmark at niceness {summary['niceness']}"
        + (f"; code: {summary['label']}" if summary["label"] else "") + ".",
        f"uptime before: `{summary['uptime_before']}`; after: `{summary['uptime_after']}`.", "",
        "| condition | (a) study trials/h | (b) `mgtune train` trials/h | (a)/(b) | (a) start-up median / max (s) "
        "| (b) start-up median / max (s) | (a) trials at once | (a) Ray start+stop (s) | wall (a) / (b) (s) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        *(_row(fig) for fig in summary["conditions"]), ""])


if __name__ == "__main__":
    sys.exit(main())
