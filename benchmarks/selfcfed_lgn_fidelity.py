"""SELFCFED_LGN against the reference fork: mgtune's side of `benchmarks/selfcfed_lgn_fidelity.md`.

Usage:
    python benchmarks/selfcfed_lgn_fidelity.py steps --dataset fid --data-dir /tmp/fiddata --out DIR [--steps 12]
    python benchmarks/selfcfed_lgn_fidelity.py seeds --dataset fids --data-dir /tmp/fiddata --seeds 0-9

``steps`` trains ``--steps`` batches with MG from one initial state and prints every loss call (a flip
batch calls the loss twice). Before the k-th call torch's global RNG is seeded with ``10_000 + k``, so the
call's drop rate, edge mask and dropout masks are fixed; ``DIR`` receives ``init.pt`` (the initial state
dict), ``batches.pt`` (the user and item ids of each batch) and ``losses.json``, which is what a harness
needs to drive the reference model through the same steps (see the .md for how its draws are matched).

``seeds`` runs ``mgtune train``'s training function once per seed (the model's defaults, MG on) and prints
the test metrics at the best validation epoch, then their mean and standard deviation.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import sys
from pathlib import Path

import torch
from torch import Tensor

from mgtune.data import Batch, TrainSampler, load_dataset
from mgtune.models.selfcfed_lgn import SelfCFedLGN
from mgtune.training import TrainConfig, train
from mgtune.training.config import MGConfig
from mgtune.training.loop import build_optimizer
from mgtune.training.mg import mirror_gradient_step

SEED_BASE = 10_000
"""The k-th loss call runs right after ``torch.manual_seed(SEED_BASE + k)``."""

_METRICS = ("recall@20", "ndcg@20", "recall@10", "ndcg@10")


def steps(args: argparse.Namespace) -> None:
    data = load_dataset(args.data_dir, args.dataset)
    torch.manual_seed(args.seed)
    model = SelfCFedLGN.from_dataset(data)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), out / "init.pt")
    cfg = TrainConfig(model="selfcfed_lgn", dataset=args.dataset, batch_size=args.batch_size)
    optimizer = build_optimizer(model, cfg)
    sampler = TrainSampler(data.train, data.n_items, args.batch_size, torch.device("cpu"), with_negatives=False)
    generator = sampler.generator(args.seed)
    batches: list[Batch] = []
    while len(batches) < args.steps:
        batches.extend(sampler.epoch(generator))
    batches = batches[: args.steps]
    torch.save([torch.stack([b.users, b.pos_items]) for b in batches], out / "batches.pt")

    losses: list[float] = []

    def seeded_loss(batch: Batch) -> Tensor:
        torch.manual_seed(SEED_BASE + len(losses))
        loss = model.loss(batch)
        losses.append(float(loss.detach()))
        return loss

    model.train()
    calls: list[tuple[int, int]] = []
    for k, batch in enumerate(batches):  # batches 0..N-1 as one sequence: MG flips where k % flip_interval == 0
        before = len(losses)
        mirror_gradient_step(functools.partial(seeded_loss, batch), optimizer, cfg.mg, k)
        calls.extend((k, j) for j in range(len(losses) - before))
    (out / "losses.json").write_text(json.dumps({"seed_base": SEED_BASE, "calls": calls, "losses": losses}))
    print("| call | batch | mgtune loss |")
    print("|---|---|---|")
    for i, ((k, j), loss) in enumerate(zip(calls, losses, strict=True)):
        print(f"| {i} | {k}{' (mirrored)' if j else ''} | {loss:.7f} |")


def seeds(args: argparse.Namespace) -> None:
    lo, _, hi = args.seeds.partition("-")
    results = []
    data = load_dataset(args.data_dir, args.dataset)
    for seed in range(int(lo), int(hi or lo) + 1):
        cfg = TrainConfig.for_model("selfcfed_lgn", args.dataset, data_dir=args.data_dir, seed=seed, device="cpu",
                                    mg=MGConfig(enabled=not args.no_mg))
        r = train(cfg, data=data)
        results.append(r.test)
        print(f"seed {seed}: best epoch {r.best_epoch:4d}  " + "  ".join(f"{m} {r.test[m]:.4f}" for m in _METRICS),
              flush=True)
    for m in _METRICS:
        values = [t[m] for t in results]
        sd = statistics.stdev(values) if len(values) > 1 else 0.0
        print(f"{m}: mean {statistics.mean(values):.4f}  sd {sd:.4f}  (n={len(values)})")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("steps")
    s.add_argument("--dataset", required=True)
    s.add_argument("--data-dir", default="datasets")
    s.add_argument("--out", required=True)
    s.add_argument("--steps", type=int, default=12)
    s.add_argument("--batch-size", type=int, default=256)
    s.add_argument("--seed", type=int, default=0)
    r = sub.add_parser("seeds")
    r.add_argument("--dataset", required=True)
    r.add_argument("--data-dir", default="datasets")
    r.add_argument("--seeds", default="0-2", help="an inclusive range such as 0-9")
    r.add_argument("--no-mg", action="store_true")
    args = p.parse_args()
    steps(args) if args.command == "steps" else seeds(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
