"""Does a study find the reference grid's best for a fraction of its cost? Grid vs budgeted studies.

Usage: python benchmarks/study_vs_grid.py --model freedom [--dataset hard] [--data-dir datasets]
           [--budgets 0.1,0.25,0.5] [--seeds 0,1,2] [--max-epochs 100] [--concurrency 2]
           [--storage DIR] [--markdown PATH] [--json PATH] [--grid-only] [--grid-from JSON]
           [--plot PATH [--with JSON ...]] [--train-reference N]
       python benchmarks/study_vs_grid.py --plot PATH --with A.json --with B.json   # draw only

Both sides run through `mgtune run`'s study runner on the same data, with the same training function
and its early stopping (patience 20, the reference's ``stopping_step``), one local Ray runtime each,
``--concurrency`` trials at a time, so they use the machine alike:

- **the reference grid**: the model's grid as the reference's YAML lists it (`REFERENCE_GRIDS`), crossed
  with MG's ``flip_ratio`` {0.1, 0.2, 0.3} at ``flip_interval`` 3 and the reference learning rate 1e-3:
  one study whose search space lists exactly those configurations as ``start:`` points and whose ASHA
  grace period is ``--max-epochs`` (nothing is stopped early but by the loop itself). Its best is
  chosen by validation recall@20; its cost is the sum of its trials' epochs.
- **studies** with the model's shipped search space (``search_spaces/<model>.yaml``) and
  ``--budget-epochs`` of each ``--budgets`` share of the grid's epochs, once per study seed. Each
  records the fraction of the grid's best validation recall@20 that its chosen configuration reaches,
  that configuration's test recall@20, the epochs it spent and its wall time.

The grid's spread (worst / best validation recall@20) says whether the data can tell the two apart:
on a flat grid any configuration reaches 98% of the best. ``hard`` (steep popularity) is made if
missing. Wall times include each side's Ray start. "Slots busy" is the share of the trial slots'
time (wall x concurrency) spent in epochs, from the trials' own per-epoch seconds: the rest is
fixed cost (Ray's start, trial start-ups, checkpoints, idle slots), so it says whether a share of the
grid's epochs is also that share of its time, whatever else loads the machine.

``--train-reference N`` answers "is a study's time per epoch within 20% of `mgtune train`'s?" directly:
N grid configurations, spread over the grid, run once as a study (a grid study of just those) and once
as separate ``mgtune train`` processes (one torch thread each, as a trial has; ``--concurrency`` at a
time, each with its own process start, as a script that loops over a grid would run them). Both sides
give slot-seconds per epoch (wall x concurrency / epochs), every start-up included.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from mgtune.data.synth import PRESETS, make_synthetic
from mgtune.files import json_text, write_text
from mgtune.store import read_spent
from mgtune.study import StudySettings, run_study

METRIC = "recall@20"
MG_GRID = {"flip_interval": [3], "flip_ratio": [0.1, 0.2, 0.3], "learning_rate": [1.0e-3]}
"""Mirror Gradient's grid in the reference fork's runs, at the reference learning rate."""
REFERENCE_GRIDS: dict[str, dict[str, list[Any]]] = {
    # MMRec's src/configs/model/<MODEL>.yaml ``hyper_parameters`` lists
    "freedom": {"dropout": [0.8, 0.9], "reg_weight": [0.0, 1.0e-5, 1.0e-4, 1.0e-3]},
    "vbpr": {"reg_weight": [2.0, 1.0, 1.0e-1, 1.0e-2, 1.0e-3, 1.0e-4, 1.0e-5]},
    "layergcn": {"n_layers": [4], "dropout": [0.0, 0.1, 0.2], "reg_weight": [1.0e-2, 1.0e-3, 1.0e-4, 1.0e-5]},
}


def grid_space(model: str) -> dict[str, Any]:
    """The grid as a search space whose ``start:`` points are every configuration, in grid order."""
    grid = {**REFERENCE_GRIDS[model], **MG_GRID}
    names = list(grid)
    return {
        "model": model,
        "params": {n: {"type": "categorical", "choices": values} for n, values in grid.items()},
        "start": [dict(zip(names, combo, strict=True)) for combo in itertools.product(*grid.values())],
    }


def _study(settings: StudySettings) -> dict[str, Any]:
    """Run one study; its chosen trial's figures, every trial's, the epochs spent and the wall time."""
    t0 = time.perf_counter()
    outcome = run_study(settings, log=lambda line: None)
    wall = time.perf_counter() - t0
    if not outcome.finished:
        raise SystemExit(f"{outcome.study_dir}: interrupted")
    spent = read_spent(outcome.study_dir).epochs if settings.budget_epochs else None
    return {**_figures(outcome.study_dir, outcome.rows, outcome.best, wall, spent),
            "ended_by": outcome.ended_by, "ray_s": outcome.ray_seconds}


def _figures(folder: Path, rows: list[dict[str, Any]], best: dict[str, Any] | None, wall: float,
             spent_epochs: int | None) -> dict[str, Any]:
    """A finished study's figures from its ``results.csv`` rows and chosen trial: epochs (all trials'),
    the chosen configuration's validation and test metric, every completed trial's validation metric."""
    epochs = sum(int(r["epochs_run"]) for r in rows)
    return {
        "folder": str(folder), "wall_s": wall, "epochs": epochs, "trials": len(rows),
        "spent_epochs": epochs if spent_epochs is None else spent_epochs,
        "best_valid": None if best is None else float(best[f"valid_{METRIC}"]),
        "best_test": None if best is None else float(best[f"test_{METRIC}"]),
        "best_params": None if best is None else {k.removeprefix("param_"): v for k, v in best.items()
                                                  if k.startswith("param_")},
        "valid": [float(r[f"valid_{METRIC}"]) for r in rows if r["status"] == "completed"],
    }


def grid_from_folder(folder: Path) -> dict[str, Any]:
    """A finished grid study's figures read back from its folder (wall time: study.json's created to
    finished, one-second resolution), for a grid whose benchmark process did not live to write them."""
    import csv
    from datetime import datetime

    from mgtune.store import StudyRecord, select_best

    meta = StudyRecord.read(folder)
    if not meta.finished or not meta.created:
        raise SystemExit(f"{folder}: the grid study has not finished")
    with (folder / "results.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    best = select_best(rows, METRIC)
    assert best is not None
    fmt = "%Y-%m-%dT%H:%M:%S%z"
    wall = (datetime.strptime(meta.finished, fmt) - datetime.strptime(meta.created, fmt)).total_seconds()
    grid = _figures(folder, rows, best, wall, None)
    return {**grid, "ended_by": None, "spread": min(grid["valid"]) / grid["best_valid"]}


def work_share(run: dict[str, Any], concurrency: int) -> float:
    """The share of a study's trial slots spent in epochs (training and evaluation, from every trial's
    ``progress.csv``) over its wall time: 1 means no overhead; what is missing is Ray's start, trial
    start-ups, checkpoints and idle slots. Robust to other load on the machine, unlike absolute times."""
    import pandas as pd

    work = 0.0
    for progress in Path(run["folder"]).glob("trial_*/progress.csv"):
        frame = pd.read_csv(progress)
        work += float(frame["train_seconds"].sum() + frame["eval_seconds"].sum())
    return work / (run["wall_s"] * concurrency)


def spread_over(configs: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    """``n`` of ``configs`` at evenly spaced positions (the grid's order varies the last key fastest, so the
    first n would all share the first values of the others)."""
    n = min(n, len(configs))
    return [configs[i * len(configs) // n] for i in range(n)]


def _train_args(model: str, config: dict[str, Any]) -> list[str]:
    """``mgtune train`` flags for one grid configuration."""
    flags = {"flip_interval": "--flip-interval", "flip_ratio": "--flip-ratio", "learning_rate": "--lr"}
    args = ["--model", model]
    for key, value in config.items():
        args += [flags[key], str(value)] if key in flags else ["--set", f"{key}={value}"]
    return args


def train_processes(base: StudySettings, configs: list[dict[str, Any]], out: Path) -> dict[str, Any]:
    """Each configuration as its own ``mgtune train`` process, ``base.concurrency`` at a time, one torch
    thread each; their wall time (process starts included) and epochs."""
    cli = [sys.executable, "-c", "import sys; from mgtune.cli import main; sys.exit(main())", "train"]
    env = {**os.environ, "OMP_NUM_THREADS": str(int(base.cpus_per_trial))}
    waiting = list(enumerate(configs))
    running: list[subprocess.Popen[bytes]] = []
    t0 = time.perf_counter()
    while waiting or running:
        while waiting and len(running) < (base.concurrency or 1):
            i, config = waiting.pop(0)
            running.append(subprocess.Popen(
                [*cli, *_train_args(str(base.model), config), "--dataset", str(base.dataset), "--data-dir",
                 base.data_dir, "--epochs", str(base.max_epochs), "--seed", str(base.seed), "--device", "cpu",
                 "--out", str(out / f"train-{i}")], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(0.05)
        for proc in [p for p in running if p.poll() is not None]:
            if proc.returncode != 0:
                raise SystemExit(f"mgtune train failed ({proc.returncode}): {proc.args!r}")
            running.remove(proc)
    wall = time.perf_counter() - t0
    epochs = sum(json.loads((out / f"train-{i}" / "metrics.json").read_text())["epochs_run"]
                 for i in range(len(configs)))
    return {"wall_s": wall, "epochs": epochs}


def train_reference(base: StudySettings, space: dict[str, Any], n: int, storage: Path, stamp: str) -> dict[str, Any]:
    """The same ``n`` grid configurations as a study and as ``mgtune train`` processes: slot-seconds per epoch."""
    configs = spread_over(space["start"], n)
    space_file = storage / f"reference-{base.model}.yaml"
    write_text(space_file, yaml.safe_dump({**space, "start": configs}, sort_keys=False))
    study = _study(dataclasses.replace(base, trials=len(configs), grace_epochs=base.max_epochs,
                                       search_space=str(space_file), name=f"reference-{base.model}-{stamp}"))
    trains = train_processes(base, configs, storage / f"reference-train-{stamp}")
    slots = base.concurrency or 1
    per_epoch = {side: run["wall_s"] * slots / max(run["epochs"], 1) for side, run in (("study", study),
                                                                                        ("train", trains))}
    without_ray = (study["wall_s"] - study["ray_s"]) * slots / max(study["epochs"], 1)
    return {"configs": len(configs), "study": {k: study[k] for k in ("wall_s", "epochs", "folder", "ray_s")},
            "train": trains, "study_s_per_epoch": per_epoch["study"], "train_s_per_epoch": per_epoch["train"],
            "ratio": per_epoch["study"] / per_epoch["train"], "ratio_without_ray": without_ray / per_epoch["train"]}


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def markdown(summary: dict[str, Any]) -> str:
    g, slots = summary["grid"], summary["concurrency"]
    lines = [
        f"## {summary['model']} on `{summary['dataset']}`",
        "",
        f"Grid: {g['trials']} configurations, {g['epochs']} epochs, {g['wall_s']:.0f} s wall "
        f"({g['wall_s'] / max(g['epochs'], 1):.2f} s per epoch, {slots} trials at a time; slots busy with epochs: "
        f"{work_share(g, slots):.0%}). Best validation {METRIC} {g['best_valid']:.4f} (test {g['best_test']:.4f}); "
        f"worst {min(g['valid']):.4f}: **spread {g['spread']:.1%}** (worst / best).",
        "",
        "| budget | seed | epochs spent | share of grid epochs | wall (s) | share of grid wall | slots busy | trials | "
        f"valid {METRIC} | fraction of grid best | test {METRIC} |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in summary["studies"]:
        frac = "-" if run["fraction"] is None else f"{run['fraction']:.1%}"
        valid = "-" if run["best_valid"] is None else f"{run['best_valid']:.4f}"
        test = "-" if run["best_test"] is None else f"{run['best_test']:.4f}"
        lines.append(f"| {run['budget']:.0%} | {run['seed']} | {run['spent_epochs']} | "
                     f"{run['spent_epochs'] / g['epochs']:.1%} | {run['wall_s']:.0f} | "
                     f"{run['wall_s'] / g['wall_s']:.1%} | {work_share(run, slots):.0%} | {run['trials']} | "
                     f"{valid} | {frac} | {test} |")
    ref = summary.get("train_reference")
    if ref:
        lines += ["", f"**Against `mgtune train`** ({ref['configs']} of the grid's configurations, run both ways, "
                  f"{slots} at a time): as a study {ref['study']['epochs']} epochs in {ref['study']['wall_s']:.0f} s, "
                  f"**{ref['study_s_per_epoch']:.3f} slot-seconds per epoch** (Ray's start and trial start-ups "
                  f"included; slots busy {work_share(ref['study'], slots):.0%}); as `mgtune train` processes "
                  f"{ref['train']['epochs']} epochs in {ref['train']['wall_s']:.0f} s, "
                  f"**{ref['train_s_per_epoch']:.3f}** (process starts included). A study's time per epoch is "
                  f"**{ref['ratio']:.2f}x** `mgtune train`'s (goal: at most 1.2x)"
                  + ("." if "ratio_without_ray" not in ref else
                     f"; {ref['ratio_without_ray']:.2f}x without Ray's own start and shutdown "
                     f"({ref['study']['ray_s']:.1f} s, once per study).")]
    lines += ["", "| budget | median fraction of grid best | median test " + METRIC + " | median share of wall |",
              "|---:|---:|---:|---:|"]
    for budget, m in summary["medians"].items():
        frac = "-" if m["fraction"] is None else f"{m['fraction']:.1%}"
        test = "-" if m["test"] is None else f"{m['test']:.4f}"
        lines.append(f"| {float(budget):.0%} | {frac} | {test} | {m['wall_share']:.1%} |")
    return "\n".join(lines) + "\n"


def plot(summaries: list[dict[str, Any]], path: Path) -> None:
    """Median fraction of the grid's best against the budget, one line per model."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5, 3.8))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for s in summaries:
        budgets = [float(b) for b in s["medians"]]
        fracs = [m["fraction"] or 0.0 for m in s["medians"].values()]
        ax.plot([b * 100 for b in budgets], [f * 100 for f in fracs], marker="o",
                label=f"{s['model']} ({s['dataset']})")
    ax.axhline(99, color="grey", linestyle="--", linewidth=1, label="goal: 99%")
    ax.set_xlabel("budget, % of the grid's epochs")
    ax.set_ylabel(f"% of grid's best valid {METRIC}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=sorted(REFERENCE_GRIDS), help="without it: only draw --plot from --with files")
    p.add_argument("--dataset", default="hard")
    p.add_argument("--data-dir", default="datasets")
    p.add_argument("--budgets", default="0.1,0.25,0.5")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--max-epochs", type=int, default=100)
    p.add_argument("--concurrency", type=int, default=2)
    p.add_argument("--storage", help="folder for the studies (default: a temporary one)")
    p.add_argument("--markdown", type=Path)
    p.add_argument("--json", type=Path)
    p.add_argument("--plot", type=Path, help="also plot the fraction reached against the budget (reads --json "
                   "files of other models given with --with)")
    p.add_argument("--with", dest="others", type=Path, action="append", default=[],
                   help="another model's --json, drawn on the same plot")
    p.add_argument("--train-reference", type=int, metavar="N", default=0,
                   help="also run N grid configurations as a study and as `mgtune train` processes, and compare "
                   "their time per epoch")
    p.add_argument("--grid-only", action="store_true", help="run the grid and print its spread only")
    p.add_argument("--grid-from", type=Path, help="reuse the grid of an earlier --json, or a finished grid "
                   "study folder, of the same model and data (to try study settings without rerunning the grid)")
    args = p.parse_args()
    if args.model is None:  # redraw the table and plot of earlier runs
        if not args.others or not (args.plot or args.markdown):
            p.error("--model is required (or --with JSON files and --plot and/or --markdown, to redraw them)")
        summaries = [json.loads(f.read_text()) for f in args.others]
        if args.plot:
            plot(summaries, args.plot)
        if args.markdown:
            write_text(args.markdown, "\n".join(markdown(s) for s in summaries))
        return 0
    budgets = [float(b) for b in args.budgets.split(",") if b]  # "": the grid (and --train-reference) only
    seeds = [int(s) for s in args.seeds.split(",")]
    data_dir = str(Path(args.data_dir).resolve())
    if not (Path(data_dir) / args.dataset / f"{args.dataset}.inter").exists():
        if args.dataset not in PRESETS:
            raise SystemExit(f"{data_dir}/{args.dataset}: no such dataset, and not a synthetic preset")
        make_synthetic(data_dir, args.dataset, args.dataset, seed=0)
    storage = Path(args.storage or tempfile.mkdtemp(prefix="study-vs-grid-"))
    storage.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%H%M%S")
    base = StudySettings(model=args.model, dataset=args.dataset, data_dir=data_dir, max_epochs=args.max_epochs,
                         concurrency=args.concurrency, storage=str(storage))

    space = grid_space(args.model)
    if args.grid_from is not None:
        grid = (grid_from_folder(args.grid_from) if args.grid_from.is_dir()
                else json.loads(args.grid_from.read_text())["grid"])
    else:
        space_file = storage / f"grid-{args.model}.yaml"
        write_text(space_file, yaml.safe_dump(space, sort_keys=False))
        n = len(space["start"])
        print(f"grid: {n} configurations of {args.model} on {args.dataset} ...", file=sys.stderr, flush=True)
        grid = _study(dataclasses.replace(base, trials=n, grace_epochs=args.max_epochs, search_space=str(space_file),
                                          name=f"grid-{args.model}-{stamp}"))
        grid["spread"] = min(grid["valid"]) / grid["best_valid"]
    print(f"grid: {grid['epochs']} epochs, {grid['wall_s']:.0f} s; best valid {grid['best_valid']:.4f}, "
          f"spread (worst / best) {grid['spread']:.1%}", file=sys.stderr, flush=True)
    summary: dict[str, Any] = {"model": args.model, "dataset": args.dataset, "max_epochs": args.max_epochs,
                               "concurrency": args.concurrency, "grid": grid, "studies": [], "medians": {}}
    if args.grid_only:
        print(json_text({k: v for k, v in grid.items() if k != "valid"}))
        return 0
    if args.train_reference:
        ref = summary["train_reference"] = train_reference(base, space, args.train_reference, storage, stamp)
        print(f"against mgtune train: {ref['ratio']:.2f}x its time per epoch", file=sys.stderr, flush=True)
    for budget in budgets:
        for seed in seeds:
            run = _study(dataclasses.replace(base, seed=seed, budget_epochs=max(1, round(budget * grid["epochs"])),
                                             name=f"study-{args.model}-b{budget:g}-s{seed}-{stamp}"))
            run.update(budget=budget, seed=seed,
                       fraction=None if run["best_valid"] is None else run["best_valid"] / grid["best_valid"])
            summary["studies"].append(run)
            print(f"budget {budget:.0%} seed {seed}: {run['spent_epochs']} epochs, {run['wall_s']:.0f} s, "
                  f"fraction {run['fraction']}", file=sys.stderr, flush=True)
        runs = [r for r in summary["studies"] if r["budget"] == budget]
        summary["medians"][str(budget)] = {
            "fraction": _median([r["fraction"] or 0.0 for r in runs]),
            "test": _median([r["best_test"] for r in runs if r["best_test"] is not None]),
            "wall_share": statistics.median(r["wall_s"] / grid["wall_s"] for r in runs),
        }
    text = markdown(summary)
    print(text)
    if args.markdown:
        write_text(args.markdown, text)
    if args.json:
        write_text(args.json, json_text(summary, indent=2) + "\n")
    if args.plot:
        others = [json.loads(f.read_text()) for f in args.others]
        plot([*others, summary], args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
