"""The ``mgtune`` command line. User mistakes end as one line on stderr and exit code 2."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mgtune.errors import ConfigError, MgtuneError

__all__ = ["main"]


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _parse_sets(pairs: Sequence[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set expects key=value, got {pair!r}")
        out[key.strip()] = value.strip()
    return out


def _write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    os.replace(tmp, path)


# ---------------------------------------------------------------- data
def _cmd_data_synth(args: argparse.Namespace) -> int:
    from mgtune.data.synth import make_synthetic

    folder = make_synthetic(args.data_dir, args.name, args.preset, args.seed)
    _log(f"wrote {args.preset} dataset to {folder}")
    return 0


# ---------------------------------------------------------------- train / eval
def _train_config(args: argparse.Namespace) -> Any:
    from mgtune.models import get_model, parse_config
    from mgtune.training import MGConfig, TrainConfig

    params = _parse_sets(args.set)
    parse_config(get_model(args.model).config_cls, params)  # fail fast on unknown keys, before any data work
    mg = MGConfig(enabled=not args.no_mg, alpha1=args.alpha1, flip_ratio=args.flip_ratio,
                  flip_interval=args.flip_interval)
    return TrainConfig(
        model=args.model.lower(), dataset=args.dataset, data_dir=str(Path(args.data_dir).resolve()),
        model_params=params, mg=mg, epochs=args.epochs, learning_rate=args.lr, seed=args.seed,
        device=args.device, patience=args.patience, valid_metric=args.metric,
    )


def _cmd_train(args: argparse.Namespace) -> int:
    from mgtune.training import load_data, save_checkpoint, train

    cfg = _train_config(args)
    data = load_data(cfg)  # validates the dataset before anything is printed or written
    out = Path(args.out or f"runs/train/{cfg.model}-{cfg.dataset}-{time.strftime('%Y%m%d-%H%M%S')}")
    _log(f"training {cfg.model} on {cfg.dataset} ({'MG' if cfg.mg.enabled else 'no MG'}), output in {out}")
    result = train(cfg, data=data, log=_log)
    summary = result.summary()
    save_checkpoint(out / "checkpoint.pt", cfg, result.best_state, result.best_epoch)
    _write_json(out / "metrics.json", summary)
    print(json.dumps(summary))
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    import dataclasses

    from mgtune.data import ensure_demo, load_dataset
    from mgtune.training import Evaluator, build_model, load_checkpoint, resolve_device

    cfg, state = load_checkpoint(Path(args.checkpoint))
    cfg = dataclasses.replace(cfg, dataset=args.dataset or cfg.dataset,
                              data_dir=str(Path(args.data_dir).resolve()) if args.data_dir else cfg.data_dir,
                              device=args.device)
    ensure_demo(cfg.data_dir, cfg.dataset)
    data = load_dataset(cfg.data_dir, cfg.dataset)
    device = resolve_device(cfg.device)
    model = build_model(cfg, data, device)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise ConfigError(f"{args.checkpoint}: weights do not fit {cfg.model} on {cfg.dataset} ({first})") from None
    metrics = Evaluator(data, device, cfg.topk, cfg.eval_batch_size).evaluate(model)
    print(json.dumps({"model": cfg.model, "dataset": cfg.dataset, "valid": metrics["valid"],
                      "test": metrics["test"], "config": cfg.as_dict()}))
    return 0


# ---------------------------------------------------------------- parser
def _add_train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="model name, e.g. freedom")
    p.add_argument("--dataset", required=True, help="dataset folder name under --data-dir ('demo' is built in)")
    p.add_argument("--data-dir", default="datasets")
    p.add_argument("--epochs", type=int, default=1000)
    p.add_argument("--flip-interval", type=int, default=3, help="MG: every K-th batch is mirrored")
    p.add_argument("--flip-ratio", type=float, default=0.2, help="MG: weight of the mirrored step")
    p.add_argument("--alpha1", type=float, default=1.0, help="MG: weight of the normal step on a flip batch")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--no-mg", action="store_true", help="train without Mirror Gradient")
    p.add_argument("--seed", type=int, default=999)
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--patience", type=int, default=20, help="early-stopping patience in epochs")
    p.add_argument("--metric", default="recall@20", help="validation metric for early stopping")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="model hyperparameter")
    p.add_argument("--out", help="output folder (metrics.json, checkpoint.pt)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mgtune", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="dataset utilities").add_subparsers(dest="data_command", required=True)
    synth = data.add_parser("synth", help="write a synthetic dataset in MMRec's format")
    synth.add_argument("--preset", choices=["tiny", "small", "baby"], default="small")
    synth.add_argument("--name", required=True)
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--data-dir", default="datasets")
    synth.set_defaults(func=_cmd_data_synth)

    tr = sub.add_parser("train", help="train one model once")
    _add_train_args(tr)
    tr.set_defaults(func=_cmd_train)

    ev = sub.add_parser("eval", help="evaluate a saved checkpoint")
    ev.add_argument("--checkpoint", required=True)
    ev.add_argument("--dataset", help="defaults to the checkpoint's dataset")
    ev.add_argument("--data-dir", help="defaults to the checkpoint's data dir")
    ev.add_argument("--device", default="auto")
    ev.set_defaults(func=_cmd_eval)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except MgtuneError as exc:
        print(f"mgtune: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mgtune: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
