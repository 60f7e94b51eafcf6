"""Seconds per training epoch (MG on/off), per full evaluation (valid + test) and peak memory at baby scale.

Usage: python benchmarks/epoch_speed.py [--models freedom,vbpr | all] [--repeats 3] [--device auto|cpu|cuda]
                                        [--data-dir datasets] [--dataset baby|small|elec] [--threads N]
                                        [--markdown PATH] [--json PATH] [--model-timeout 120] [--no-baseline]
                                        [--long-run N]

Generates the synthetic ``baby`` preset (19,445 users, 7,050 items, 160,792 interactions, 4096-d
image and 384-d text features) once as ``<data-dir>/bench-baby``. Each model runs in its own
process (so its peak memory is its own) with the optimizer and epoch function of `mgtune.training`,
with its default settings; each figure is the median of ``--repeats`` runs after one warm-up epoch,
and ``build_s`` is the seconds from nothing to a built model (graphs, kNN, parameters on the device).
A model that fails or runs past ``--model-timeout`` seconds is reported as such and the rest go on.
``--json`` writes every row, the device and the failures; on CUDA the device is synchronised around
every timed call.
The baseline, measured in the same run on the same data, is the reference toolbox's way of doing
the non-model work: per-row Python rejection sampling of negatives and a Python hit-counting loop
over the top-k lists (MMRec's ``TopKEvaluator``); the ratios printed are baseline / ours. For
scale, the reference fork on a 2-core CPU: FREEDOM ~30 s/epoch with MG (~21 s without), VBPR ~7 s,
~6 s per evaluation; on an H100 ~1.1 s per FREEDOM epoch, ~4.5 s per evaluation.

``--long-run N`` measures instead what one epoch after warm-up cannot see: epochs that slow down as
the model converges, because weights, gradients and Adam's moments decay into subnormal floats (slow
on CPU). Each model trains N epochs through `mgtune.training.train` (no early stopping), at the
settings that provoke it (flip interval 1, learning rate 0.009), twice, each in a fresh process: with
subnormals flushed to zero (as `train` does) and without (its `flush_denormal` replaced by a no-op).
It reports the mean training seconds of the first 3 epochs after the first (a warm-up) and of the
last 3 epochs of each, their ratio (well above 1 without flushing: a subnormal slowdown), the same
ratio of the fastest epochs (robust to other processes' load) and both runs' test recall@20 at the
best validation epoch. ``--json`` keeps every epoch's seconds.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import itertools
import json
import math
import random
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import torch

from mgtune.data import Dataset, Split, TrainSampler, load_dataset
from mgtune.data.synth import make_synthetic
from mgtune.files import json_text, write_text
from mgtune.models import model_names
from mgtune.models.base import Recommender
from mgtune.training import (
    EpochReport,
    Evaluator,
    MGConfig,
    TrainConfig,
    build_model,
    build_optimizer,
    loop,
    mirror_gradient_step,
    peak_memory_mb,
    reset_peak_memory,
    resolve_device,
    train,
    train_epoch,
)
from mgtune.training.device import deterministic_on_cpu

DATASET = "bench-baby"
BABY_TABLE = Path(__file__).with_name("epoch_speed_baby_cpu.md")  # measured peaks, the base of elec's estimates
LONG_RUN_SETTINGS = {"learning_rate": 0.009, "mg": MGConfig(flip_interval=1)}  # a measured subnormal slowdown
EDGE = 3  # epochs averaged at each end of a long run
REFERENCE_CPU = {"freedom": {"mg": 30.0, "nomg": 21.0, "eval": 6.0}, "vbpr": {"mg": 7.0, "nomg": 7.0, "eval": 6.0}}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _median_time(fn: Callable[[], object], repeats: int, device: torch.device) -> float:
    times = []
    for _ in range(repeats):
        _sync(device)
        t = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def baseline_negatives(data: Dataset) -> float:
    """MMRec's sampler: one Python draw per training row, redrawn while in the user's history."""
    history: dict[int, set[int]] = {}
    for u, i in zip(data.train.users.tolist(), data.train.items.tolist()):
        history.setdefault(u, set()).add(i)
    pool = np.unique(data.train.items).tolist()
    t = time.perf_counter()
    for u in data.train.users.tolist():
        neg = random.choice(pool)
        while neg in history[u]:
            neg = random.choice(pool)
    return time.perf_counter() - t


def baseline_hit_counting(data: Dataset, top: np.ndarray, split_users: np.ndarray, split_items: np.ndarray) -> float:
    """MMRec's TopKEvaluator: ``[i in m for i in row]`` per user, in Python."""
    per_user: dict[int, list[int]] = {}
    for u, i in zip(split_users.tolist(), split_items.tolist()):
        per_user.setdefault(u, []).append(i)
    users = sorted(per_user)
    t = time.perf_counter()
    rows = [[i in per_user[u] for i in top[k]] for k, u in enumerate(users)]
    np.asarray(rows)
    return time.perf_counter() - t


def _partial_epoch_s(model: Recommender, sampler: TrainSampler, opt: torch.optim.Optimizer, mg: MGConfig,
                     gen: torch.Generator, part: float, device: torch.device) -> float:
    """Seconds for one whole epoch, extrapolated from its first ``part`` of batches.

    The first half of the timed batches carries the epoch's fixed costs (permutation, negatives,
    ``pre_epoch``, first-touch allocation); the second half gives the cost per batch, which is constant
    within an epoch (every model here does the same work for every batch).
    """
    total = len(sampler)
    n = min(total, max(4, math.ceil(part * total)))
    half = n // 2
    model.train()
    stamps = []
    with deterministic_on_cpu(device):
        _sync(device)
        t0 = time.perf_counter()
        model.pre_epoch(0)
        for idx, batch in enumerate(itertools.islice(sampler.epoch(gen), n)):
            mirror_gradient_step(functools.partial(model.loss, batch), opt, mg, idx)
            if idx + 1 in (half, n):
                _sync(device)
                stamps.append(time.perf_counter() - t0)
    per_batch = (stamps[1] - stamps[0]) / (n - half)
    return stamps[0] + (total - half) * per_batch


def _partial_eval_s(model: Recommender, data: Dataset, cfg: TrainConfig, part: float, device: torch.device) -> float:
    """Seconds for one full evaluation, extrapolated from evaluations of the first ``part / 2`` and ``part``
    of the evaluated users (cost is fixed plus linear in users: scoring, masking and top-k per user)."""
    users = np.unique(np.concatenate([data.valid.users, data.test.users]))
    times, counts = [], []
    for share in (part / 2, part):
        cut = users[min(len(users) - 1, max(1, math.ceil(share * len(users))) - 1)]
        keep = {name: getattr(data, name) for name in ("valid", "test")}
        sub = dataclasses.replace(data, **{name: Split(s.users[s.users <= cut], s.items[s.users <= cut])
                                           for name, s in keep.items()})
        evaluator = Evaluator(sub, device, cfg.topk, cfg.eval_batch_size)
        times.append(_median_time(functools.partial(evaluator.evaluate, model), 1, device))
        counts.append(int((users <= cut).sum()))
    per_user = (times[1] - times[0]) / max(counts[1] - counts[0], 1)
    return times[0] + (len(users) - counts[0]) * per_user


def measure(model_name: str, data: Dataset, device: torch.device, repeats: int, part: float = 1.0) -> dict[str, float]:
    """One model's row: median seconds per epoch with and without MG, per evaluation, and peak MiB.

    With ``part`` < 1 (elec scale, where one epoch of a graph model takes up to hours: it propagates the
    whole graph for every batch), each figure is one run over that share of the epoch's batches and of
    evaluation's users, extrapolated to the whole, and only the MG epoch is timed.
    """
    cfg = TrainConfig.for_model(model_name, DATASET, device=str(device))
    torch.manual_seed(0)
    _sync(device)
    t_build = time.perf_counter()
    model = build_model(cfg, data, device)
    _sync(device)
    build_s = time.perf_counter() - t_build
    reset_peak_memory(device)
    row = {"mg": 0.0, "nomg": 0.0, "build_s": build_s, "part": part}
    if model.trainable:
        sampler = TrainSampler(data.train, data.n_items, cfg.batch_size, device, model.needs_negatives)
        opt = build_optimizer(model, cfg)
        gen = sampler.generator(0)
        if part < 1.0:  # MG only: the no-MG epoch does the same work per batch, minus the mirrored steps
            row["mg"] = _partial_epoch_s(model, sampler, opt, cfg.mg, gen, part, device)
            row["nomg"] = math.nan
        else:
            epoch = itertools.count()

            def run(mg: MGConfig) -> Callable[[], float]:
                return lambda: train_epoch(model, sampler, opt, mg, next(epoch), gen)

            run(cfg.mg)()  # warm-up (allocator, caches)
            row["mg"] = _median_time(run(cfg.mg), repeats, device)
            row["nomg"] = _median_time(run(MGConfig(enabled=False)), repeats, device)
    if part < 1.0:
        row["eval"] = _partial_eval_s(model, data, cfg, part, device)
    else:
        evaluator = Evaluator(data, device, cfg.topk, cfg.eval_batch_size)
        evaluator.evaluate(model)
        row["eval"] = _median_time(lambda: evaluator.evaluate(model), repeats, device)
    row["peak_mb"] = peak_memory_mb(device)
    return row


def measure_long_run(model_name: str, data: Dataset, device: torch.device, epochs: int,
                     flush: bool) -> dict[str, object]:
    """Training seconds of each of ``epochs`` epochs of `train` at `LONG_RUN_SETTINGS`, with subnormals
    flushed (``flush``, what `train` does) or not, the test metric at the best validation epoch, and
    how many subnormal numbers the weights and Adam's state hold after the last epoch."""
    cfg = TrainConfig.for_model(model_name, DATASET, device=str(device), epochs=epochs, patience=epochs,
                                **LONG_RUN_SETTINGS)
    seconds: list[float] = []
    last: dict[str, Any] = {}

    def record(report: EpochReport) -> None:
        seconds.append(report.train_seconds)
        last.update(report.state or {})

    off = contextlib.nullcontext() if flush else mock.patch.object(loop, "flush_denormal", contextlib.nullcontext)
    with off:
        result = train(cfg, callback=record, data=data, snapshot_every=epochs)
    return {"seconds": seconds if result.epochs_run else [], "test": result.test[cfg.valid_metric],
            "valid": result.valid[cfg.valid_metric], "best_epoch": result.best_epoch,
            "subnormals": {part: _subnormals(last[part]) for part in ("model", "optimizer") if part in last}}


def _subnormals(obj: Any) -> int:
    """How many nonzero floats in ``obj`` (tensors, nested in dicts and lists) are below the normal range."""
    if isinstance(obj, torch.Tensor):
        if not obj.is_floating_point():
            return 0
        return int(((obj != 0) & (obj.abs() < torch.finfo(obj.dtype).tiny)).sum())
    if isinstance(obj, dict):
        return sum(_subnormals(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(_subnormals(v) for v in obj)
    return 0


def _edges(seconds: list[float], stat: Callable[[list[float]], float] = statistics.mean) -> tuple[float, float]:
    """``stat`` of the seconds of the first `EDGE` epochs after the first (a warm-up: allocator,
    caches, lazy graphs) and of the last `EDGE` epochs."""
    return stat(seconds[1:1 + EDGE]), stat(seconds[-EDGE:])


def _long_run_row(runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One model's long-run figures from its two runs (``off``, ``on``), each epoch's seconds included.

    Besides the means, ``*_min_ratio`` compares the fastest epoch of each end: on a shared machine
    other work only ever adds time, so the fastest epochs show the run's own speed, and a slowdown
    of its own moves them too.
    """
    row: dict[str, Any] = {f"{key}_seconds": run["seconds"] for key, run in runs.items()}
    for key, run in runs.items():
        seconds = run["seconds"]
        first, last = _edges(seconds) if seconds else (0.0, 0.0)
        fastest_first, fastest_last = _edges(seconds, min) if seconds else (0.0, 0.0)
        row |= {f"{key}_first": first, f"{key}_last": last, f"{key}_ratio": last / first if first else 0.0,
                f"{key}_min_ratio": fastest_last / fastest_first if fastest_first else 0.0,
                f"{key}_test": float(run["test"]), f"{key}_epochs": float(len(seconds)),
                f"{key}_subnormals": sum(run.get("subnormals", {}).values()) if "subnormals" in run else None}
    return row


def _long_run_markdown(rows: dict[str, dict[str, Any]], device_text: str, failed: dict[str, str],
                       epochs: int) -> str:
    lines = [f"{DATASET.removeprefix('bench-')} synthetic data, {device_text}; {epochs} epochs of `train` per run "
             f"(learning rate {LONG_RUN_SETTINGS['learning_rate']}, flip interval 1, no early stopping), "
             f"each run in a fresh process. first, last: mean training seconds per epoch over the first {EDGE} "
             f"after the first (a warm-up) and over the last {EDGE} epochs; last/first above 1 is a slowdown as "
             f"the model converges; (fastest): the same ratio of the fastest epoch at each end, which time taken "
             "by other processes does not inflate. Test recall@20 at the best validation epoch. Subnormals: "
             "nonzero numbers below float32's normal range in the weights and Adam's state after the last "
             "epoch (- : not counted).", "",
             "| model | flush off: first (s) | last (s) | last/first | (fastest) | flush on: first (s) | last (s) "
             "| last/first | (fastest) | off/on, last | test recall@20 off | on | subnormals off | on |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in rows.items():
        counts = " | ".join(str(r.get(f"{k}_subnormals", "-")).replace("None", "-") for k in ("off", "on"))
        if not r["on_epochs"]:
            lines.append(f"| {name} | not trained | | | | | | | | | {r['off_test']:.4f} | {r['on_test']:.4f} "
                         f"| {counts} |")
            continue
        lines.append(
            f"| {name} | {r['off_first']:.3f} | {r['off_last']:.3f} | {r['off_ratio']:.2f} | {r['off_min_ratio']:.2f} "
            f"| {r['on_first']:.3f} | {r['on_last']:.3f} | {r['on_ratio']:.2f} | {r['on_min_ratio']:.2f} "
            f"| {r['off_last'] / r['on_last']:.2f} | {r['off_test']:.4f} | {r['on_test']:.4f} | {counts} |")
    lines += [f"| {name} | failed: {why} | | | | | | | | | | | | |" for name, why in failed.items()]
    return "\n".join(lines) + "\n"


def _long_run_text(name: str, r: dict[str, Any]) -> str:
    if not r["on_epochs"]:
        return f"{name:<12} not trained"
    return (f"{name:<12} off {r['off_first']:7.3f} -> {r['off_last']:7.3f} s ({r['off_ratio']:5.2f}x)   "
            f"on {r['on_first']:7.3f} -> {r['on_last']:7.3f} s ({r['on_ratio']:5.2f}x)   "
            f"test {r['off_test']:.4f} / {r['on_test']:.4f}")


def estimate_peak_mb(name: str, preset: str, base_mb: float = 500.0) -> float | None:
    """A model's peak memory on ``preset``, extrapolated from its measured peak at baby scale (`BABY_TABLE`).

    Everything above the process's fixed cost ``base_mb`` (torch, the interpreter) is taken to grow
    like the largest of the preset's users, items and interactions relative to baby (Elec: 10.5x):
    a deliberate over-estimate for the parts that grow with items only. None: no baby figure.
    """
    from mgtune.data.synth import PRESETS

    peak = _baby_peaks().get(name)
    if peak is None:
        return None
    big, baby = PRESETS[preset], PRESETS["baby"]
    ratio = max(big.n_users / baby.n_users, big.n_items / baby.n_items, big.n_interactions / baby.n_interactions)
    return base_mb + max(peak - base_mb, 0.0) * ratio


@functools.cache
def _baby_peaks() -> dict[str, float]:
    """Each model's peak MiB in `BABY_TABLE`, read once: the last column, whichever columns come before it."""
    rows = [line.split("|") for line in BABY_TABLE.read_text().splitlines()]
    return {r[1].strip(): float(r[-2]) for r in rows if len(r) > 3 and r[-2].strip().replace(".", "", 1).isdigit()}


def _row_text(name: str, row: dict[str, float]) -> str:
    ref = REFERENCE_CPU.get(name)
    ratios = "" if ref is None else " ".join(f"{ref[k] / row[k]:5.1f}x" for k in ("mg", "nomg", "eval"))
    epochs = f"{row['mg']:10.2f} {row['nomg']:12.2f}" if row["mg"] else f"{'-':>10} {'-':>12}"
    return f"{name:<12} {epochs} {row['eval']:7.2f} {row['peak_mb']:8.0f}  {ratios:>26}"


def _markdown(rows: dict[str, dict[str, float]], device_text: str, failed: dict[str, str]) -> str:
    lines = [f"{DATASET.removeprefix('bench-').capitalize()}-scale synthetic data, {device_text}, default settings; "
             "seconds (median), peak MiB of the "
             "model's own process (resident set on CPU, allocated on CUDA).", "",
             "| model | epoch, MG (s) | epoch, no MG (s) | evaluation (s) | build (s) | peak memory (MiB) |",
             "|---|---:|---:|---:|---:|---:|"]
    digits = 3 if "CPU" not in device_text else 2  # GPU epochs are fractions of a second
    for name, r in rows.items():
        mg, nomg = (f"{r['mg']:.{digits}f}", f"{r['nomg']:.{digits}f}") if r["mg"] else ("not trained", "not trained")
        nomg = "-" if math.isnan(r["nomg"]) else nomg  # not timed (elec: MG only)
        build = f"{r['build_s']:.2f}" if "build_s" in r else "-"
        lines.append(f"| {name} | {mg} | {nomg} | {r['eval']:.{digits}f} | {build} | {r['peak_mb']:.0f} |")
    lines += [f"| {name} | failed: {why} | | | | |" for name, why in failed.items()]
    return "\n".join(lines) + "\n"


def _run_child(command: list[str], timeout: float) -> dict[str, Any]:
    """The JSON object a ``--one`` child prints last; RuntimeError saying why when it fails or times out."""
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"timed out after {timeout:g} s") from None
    if out.returncode != 0:
        last = out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}"
        if "can't allocate memory" in last or "MemoryError" in last:
            raise RuntimeError(f"does not fit: ran out of its memory limit ({last[-160:]})")
        raise RuntimeError(last)
    row: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return row


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="freedom,vbpr", help="comma-separated, or 'all'")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="auto")
    p.add_argument("--data-dir", default="datasets")
    p.add_argument("--dataset", choices=["small", "baby", "elec"], default="baby", help="synthetic preset to time on")
    p.add_argument("--memory-gb", type=float, default=24.0, help="with --dataset elec: skip models estimated above")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's own choice)")
    p.add_argument("--markdown", type=Path, help="also write the table as markdown to this file")
    p.add_argument("--json", type=Path, help="also write the rows, the device and any failures as JSON to this file")
    p.add_argument("--model-timeout", type=float, default=120.0, help="seconds one model's process may take")
    p.add_argument("--no-baseline", action="store_true")
    p.add_argument("--part", type=float, help="time this share of each epoch's batches and of evaluation's "
                   "users, and extrapolate (default: 0.03 on elec, else 1)")
    p.add_argument("--long-run", type=int, metavar="N", help="train each model N epochs with subnormals flushed "
                   "and not; report the first and last epochs' seconds")
    p.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure one model, print its row as JSON
    p.add_argument("--flush", choices=["on", "off"], help=argparse.SUPPRESS)  # internal: with --one --long-run
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    part = args.part if args.part is not None else (0.03 if args.dataset == "elec" else 1.0)
    if not 0.0 < part <= 1.0:
        p.error(f"--part must be in (0, 1], got {part}")
    device = resolve_device(args.device)
    global DATASET
    DATASET = f"bench-{args.dataset}"
    if args.dataset != "baby":
        REFERENCE_CPU.clear()  # the reference's figures are baby's: no ratios against them
    if not (Path(args.data_dir) / DATASET / f"{DATASET}.inter").exists():
        print(f"generating the {args.dataset} preset into {args.data_dir}/{DATASET} ...", file=sys.stderr)
        make_synthetic(args.data_dir, DATASET, args.dataset, seed=0)
    data = load_dataset(args.data_dir, DATASET)
    if args.long_run is not None and args.long_run < 2 * EDGE + 1:
        p.error(f"--long-run needs at least {2 * EDGE + 1} epochs, got {args.long_run}")
    if args.one and args.dataset == "elec":
        # a model that needs more than --memory-gb fails with an allocation error in its own process,
        # instead of the machine's out-of-memory killer taking it (or, first, someone else's process)
        limit = int(args.memory_gb * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    if args.one and args.long_run:
        print(json.dumps(measure_long_run(args.one, data, device, args.long_run, args.flush == "on")))
        return 0
    if args.one:
        print(json.dumps(measure(args.one, data, device, args.repeats, part)))
        return 0

    device_text = (torch.cuda.get_device_name(device) if device.type == "cuda"
                   else f"CPU, {torch.get_num_threads()} torch threads")
    print(f"device: {device} ({device_text})")
    print(f"data: {data.n_users} users, {data.n_items} items, {len(data.train)} train interactions")
    if args.long_run:
        print(f"\n{args.long_run} epochs per run; training seconds per epoch, epochs 1-{EDGE} -> last {EDGE}",
              flush=True)
    else:
        print(f"\n{'model':<12} {'epoch MG s':>10} {'epoch noMG s':>12} {'eval s':>7} {'peak MB':>8}  "
              f"{'vs ref CPU (MG/noMG/eval)':>26}", flush=True)
    names = model_names() if args.models == "all" else args.models.split(",")
    rows: dict[str, dict[str, Any]] = {}
    failed: dict[str, str] = {}

    def write_figures() -> None:  # after every model, so a run cut short still leaves what it measured
        if args.markdown:
            write_text(args.markdown, _long_run_markdown(rows, device_text, failed, args.long_run) if args.long_run
                       else _markdown(rows, device_text, failed))
        if args.json:
            summary = {"device": str(device), "device_name": device_text, "repeats": args.repeats,
                       "long_run": args.long_run,
                       "data": {"users": data.n_users, "items": data.n_items, "train": len(data.train)},
                       "rows": rows, "failed": failed,
                       "pending": [n for n in names if n not in rows and n not in failed]}
            write_text(args.json, json_text(summary, indent=2) + "\n")

    for name in names:
        estimate = estimate_peak_mb(name, args.dataset) if args.dataset != "baby" else None
        if estimate is not None and estimate > args.memory_gb * 1024:
            print(f"{name:<12} does not fit: estimated peak {estimate / 1024:.1f} GiB > {args.memory_gb:g} GiB")
            continue
        child = [sys.executable, __file__, "--one", name, "--repeats", str(args.repeats), "--device", args.device,
                 "--data-dir", args.data_dir, "--dataset", args.dataset, "--part", str(part),
                 "--memory-gb", str(args.memory_gb)] + (
                     ["--threads", str(args.threads)] if args.threads else [])
        try:
            if args.long_run:
                runs = {flush: _run_child([*child, "--long-run", str(args.long_run), "--flush", flush],
                                          args.model_timeout) for flush in ("off", "on")}
                rows[name] = _long_run_row(runs)
                print(_long_run_text(name, rows[name]), flush=True)
            else:
                rows[name] = _run_child(child, args.model_timeout)
                print(_row_text(name, rows[name]), flush=True)
        except RuntimeError as e:
            failed[name] = str(e)
            print(f"{name:<12} failed: {failed[name]}", flush=True)
        write_figures()
    for path in (args.markdown, args.json):
        if path:
            print(f"written: {path}")

    if not args.no_baseline and not args.long_run:
        print("\nnon-model work, reference style (Python per row) vs ours, same data, same run:")
        t_neg_ref = baseline_negatives(data)
        sampler = TrainSampler(data.train, data.n_items, 2048, device)
        t_neg = _median_time(lambda: sampler.sample_negatives(sampler.users, sampler.generator(1)),
                             args.repeats, device)
        print(f"  negatives for one epoch: baseline {t_neg_ref:.3f} s, ours {t_neg:.4f} s ({t_neg_ref / t_neg:.0f}x)")
        counts = np.bincount(data.train.items, minlength=data.n_items)
        top = np.tile(np.argsort(-counts)[:50], (len(np.unique(data.test.users)), 1))  # any top-50 lists will do
        t_hits_ref = baseline_hit_counting(data, top, data.test.users, data.test.items)
        print(f"  hit counting, test split (one of two per evaluation): baseline {t_hits_ref:.3f} s "
              f"(ours is inside the eval figure above)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
