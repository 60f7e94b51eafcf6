"""The ``mgtune`` command line. User mistakes end as one line on stderr and exit code 2."""

from __future__ import annotations

import argparse
import sys
import time
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mgtune.checks import MAX_SEED, check_float, check_int, check_writable_dir
from mgtune.errors import ConfigError, MgtuneError
from mgtune.files import json_text, write_json

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


_MAX_RUNS = 10_000


def _check_ray_options(args: argparse.Namespace) -> None:
    """Options of ``run``/``confirm`` that only Ray would notice: refused before Ray starts."""
    check_float("--cpus-per-trial", args.cpus_per_trial, low=0, low_open=True)
    if args.gpus_per_trial is not None:
        check_float("--gpus-per-trial", args.gpus_per_trial, low=0)
    if getattr(args, "seed", None) is not None:
        check_int("--seed", args.seed, low=0, high=MAX_SEED)
    for option in ("seeds", "top", "confirm"):  # runs are listed up front: a billion would exhaust memory
        if getattr(args, option, None) is not None:
            check_int(f"--{option}", getattr(args, option), high=_MAX_RUNS)


# ---------------------------------------------------------------- data
def _cmd_data_synth(args: argparse.Namespace) -> int:
    from mgtune.data.synth import make_synthetic

    folder = make_synthetic(args.data_dir, args.name, args.preset, args.seed, force=args.force)
    _log(f"wrote {args.preset} dataset to {folder}")
    return 0


def _cmd_data_prepare(args: argparse.Namespace) -> int:
    from mgtune.data.dataset import dataset_dir
    from mgtune.data.features import FeatureSource
    from mgtune.data.prepare import Columns, format_summary, prepare_dataset

    def names(value: str | None) -> list[str] | None:  # a comma-separated list ('' for none); None: not given
        return None if value is None else [n.strip() for n in value.split(",") if n.strip()]

    common: dict[str, Any] = {"core": args.core, "split": args.split, "seed": args.seed,
                              "user_graph_k": args.user_graph_k, "force": args.force,
                              "text_encoder": args.text_encoder}
    given = [o for o, v in (("--interactions", args.interactions), ("--amazon", args.amazon),
                            ("--recbole", args.recbole)) if v is not None]
    if len(given) != 1:
        raise ConfigError("data prepare needs exactly one of --interactions FILE, --recbole DIR or --amazon DIR "
                          f"--category CAT{f' (got {given[0]} and {given[1]})' if len(given) > 1 else ''}")
    only = {"--item-text": (args.item_text, "--interactions"), "--text-columns": (args.text_columns, "--item-text"),
            "--text-fields": (args.text_fields, "--recbole"), "--meta-fields": (args.meta_fields, "--recbole"),
            "--metadata-slot": (args.metadata_slot, "--recbole"),
            "--image-features": (args.image_features, "--interactions or --recbole"),
            "--text-features": (args.text_features, "--interactions or --recbole")}
    source = {"--interactions": args.interactions, "--item-text": args.item_text, "--recbole": args.recbole,
              "--interactions or --recbole": args.interactions or args.recbole}
    for option, (value, needs) in only.items():
        if value is not None and source[needs] is None:
            raise ConfigError(f"{option} goes with {needs}")
    if args.name is None and args.recbole is None:
        raise ConfigError("data prepare needs --name NAME (the dataset folder <data-dir>/<name>)")
    sources = {m: FeatureSource(Path(f), Path(i) if i else None) if f else None for m, f, i in (
        ("image", args.image_features, args.image_ids), ("text", args.text_features, args.text_ids))}
    columns = Columns(args.user_col, args.item_col, args.rating_col, args.time_col)
    if args.amazon is not None:
        from mgtune.data.amazon import prepare_amazon

        if not args.category:
            raise ConfigError("--amazon needs --category (e.g. Baby, Sports_and_Outdoors, Electronics)")
        summary = prepare_amazon(args.data_dir, args.name, Path(args.amazon), args.category, **common)
    elif args.recbole is not None:
        from mgtune.data.recbole import prepare_recbole

        summary = prepare_recbole(args.data_dir, args.name, Path(args.recbole), columns=columns,
                                  min_rating=args.min_rating, text_fields=names(args.text_fields),
                                  meta_fields=names(args.meta_fields), metadata_slot=args.metadata_slot,
                                  image=sources["image"], text=sources["text"], **common)
    else:
        from mgtune.data.item_text import ItemTextSource

        item_text = ItemTextSource(Path(args.item_text), tuple(names(args.text_columns) or ()),
                                   args.item_col) if args.item_text else None
        summary = prepare_dataset(args.data_dir, args.name, Path(args.interactions), columns=columns,
                                  min_rating=args.min_rating, image=sources["image"], text=sources["text"],
                                  item_text=item_text, **common)
    _log(format_summary(summary, dataset_dir(args.data_dir, summary["name"])))
    return 0


# ---------------------------------------------------------------- train / eval
def _train_config(args: argparse.Namespace) -> Any:
    from mgtune.models import get_model, parse_config
    from mgtune.training import MGConfig, TrainConfig

    params = _parse_sets(args.set)
    parse_config(get_model(args.model).config_cls, params)  # fail fast on unknown keys, before any data work
    mg = MGConfig(enabled=not args.no_mg, alpha1=args.alpha1, flip_ratio=args.flip_ratio,
                  flip_interval=args.flip_interval)
    return TrainConfig.for_model(
        args.model.lower(), args.dataset, data_dir=str(Path(args.data_dir).resolve()),
        model_params=params, mg=mg, epochs=args.epochs, learning_rate=args.lr, seed=args.seed,
        device=args.device, patience=args.patience, valid_metric=args.metric,
    )


def _cmd_train(args: argparse.Namespace) -> int:
    from mgtune.training import load_data, save_checkpoint, train

    cfg = _train_config(args)
    out = Path(args.out or f"runs/train/{cfg.model}-{cfg.dataset}-{time.strftime('%Y%m%d-%H%M%S')}")
    check_writable_dir("--out", out)  # before training, not after it
    data = load_data(cfg)  # validates the dataset before anything is printed or written
    _log(f"training {cfg.model} on {cfg.dataset} ({'MG' if cfg.mg.enabled else 'no MG'}), output in {out}")
    result = train(cfg, data=data, log=_log)
    summary = result.summary()
    save_checkpoint(out / "checkpoint.pt", cfg, result.best_state, result.best_epoch)
    write_json(out / "metrics.json", summary)
    print(json_text(summary))
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    import dataclasses

    from mgtune.data import ensure_demo, load_dataset
    from mgtune.training import Evaluator, build_model, load_checkpoint, resolve_device

    cfg, state = load_checkpoint(Path(args.checkpoint))
    _check_weights(args.checkpoint, state)
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
    print(json_text({"model": cfg.model, "dataset": cfg.dataset, "valid": metrics["valid"],
                      "test": metrics["test"], "config": cfg.as_dict()}))
    return 0


def _check_weights(path: str, state: Any) -> None:
    """A checkpoint's weights: named tensors, all finite (a diverged run's NaNs would score nonsense)."""
    import torch

    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConfigError(f"{path}: the checkpoint's model entry is not a set of named weight tensors")
    bad = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise ConfigError(f"{path}: {len(bad)} weight tensor(s) hold NaN or infinite values (first: {bad[0]}); "
                          "the run diverged, so there is nothing to evaluate")


# ---------------------------------------------------------------- run
def _cmd_run(args: argparse.Namespace) -> int:
    from mgtune.study import StudySettings, run_study
    from mgtune.study.budget import parse_duration
    from mgtune.study.confirm import ConfirmSettings
    from mgtune.study.suite import parse_mg

    _check_ray_options(args)
    confirm = None if args.confirm is None else ConfirmSettings(  # a bad --confirm fails before the study
        study_dir="", seeds=args.confirm, cpus_per_trial=args.cpus_per_trial, gpus_per_trial=args.gpus_per_trial,
        address=args.address)
    mg = parse_mg(args.mg, args.no_mg)
    settings = StudySettings(
        model=args.model, dataset=args.dataset, data_dir=args.data_dir, trials=args.trials,
        max_epochs=args.max_epochs, grace_epochs=args.grace_epochs, reduction_factor=args.reduction_factor,
        metric=args.metric, cpus_per_trial=args.cpus_per_trial, gpus_per_trial=args.gpus_per_trial,
        concurrency=args.concurrency, address=args.address, storage=args.storage, name=args.name,
        mg=mg != "off", seed=args.seed, search_space=args.search_space, resume=args.resume,
        checkpoint_every=args.checkpoint_every, budget_epochs=args.budget_epochs,
        time_budget_s=None if args.time_budget is None else parse_duration(args.time_budget),
    )
    if _is_suite(args, mg):
        return _cmd_suite(args, settings, mg)
    outcome = run_study(settings, log=_log)
    if not outcome.finished:
        return 130
    _log(f"results: {outcome.study_dir / 'results.csv'}")
    best = outcome.best
    if best is None:
        _log("no trial completed (all stopped early or failed): no best configuration")
    else:  # chosen by the validation metric; test is only reported
        print(json_text({
            "study": str(outcome.study_dir), "best_trial": best["trial_id"], "trial_dir": best["trial_dir"],
            "params": {k.removeprefix("param_"): v for k, v in best.items() if k.startswith("param_")},
            f"valid_{args.metric}": best[f"valid_{args.metric}"], f"test_{args.metric}": best[f"test_{args.metric}"],
            **({"ended_by": f"budget ({outcome.ended_by})"} if outcome.ended_by else {}),
        }))
        if confirm is not None:
            import dataclasses

            confirmed = _confirm(dataclasses.replace(confirm, study_dir=str(outcome.study_dir)), "reports")
            if not confirmed.finished:
                return 130
            print(json_text(confirmed.summary()))
    try:
        from mgtune.report import build_report
    except ImportError:
        return 0
    try:
        files = build_report([outcome.study_dir], outcome.study_dir / "report")
        _log(f"report: {', '.join(map(str, files))}")
    except MgtuneError as exc:
        _log(f"report not written: {exc}")
    return 0


# ---------------------------------------------------------------- run: several models, MG on and off
def _is_suite(args: argparse.Namespace, mg: str) -> bool:
    """A suite: several models (a list or ``all``), ``--mg both``, or ``--resume`` of a suite folder."""
    from mgtune.study.suite_record import is_suite

    model = (args.model or "").strip().lower()
    if "," in model or model == "all" or mg == "both":
        return True
    return bool(args.resume and args.name and is_suite(Path(args.storage) / args.name))


def _cmd_suite(args: argparse.Namespace, study: Any, mg: str) -> int:
    """A suite (`mgtune.study.suite`): ``study`` holds the options of each study."""
    from mgtune.study.suite import SuiteSettings, parse_models, run_suite

    if args.search_space:
        raise ConfigError("--search-space names one model's space; a suite uses each model's own "
                          "(search_spaces/MODEL.yaml)")
    models = tuple(parse_models(args.model)) if args.model else ()
    outcome = run_suite(SuiteSettings(study, models, mg, args.confirm), log=_log)
    for line in outcome.summary:
        _log(line)
    files: list[str] = []
    if not outcome.interrupted and outcome.record.study_dirs(outcome.suite_dir):
        from mgtune.report import build_report

        try:
            files = [str(p) for p in build_report([outcome.suite_dir], outcome.suite_dir / "report")]
            _log(f"report: {', '.join(files)}")
        except MgtuneError as exc:
            _log(f"report not written: {exc}")
    print(json_text({"suite": str(outcome.suite_dir), "exit_code": outcome.exit_code, "report": files,
                     "studies": [s.as_dict() for s in outcome.record.studies]}))
    return outcome.exit_code


# ---------------------------------------------------------------- confirm
def _confirm(settings: Any, out: str | None) -> Any:
    """`run_confirm`, then the reproduction card (rendered by the report layer) into ``out``, if given."""
    from mgtune.study.confirm import run_confirm

    outcome = run_confirm(settings, log=_log)
    if outcome.finished and outcome.confirmation is not None and out is not None:
        from mgtune.report.card import write_card

        outcome.cards = write_card(outcome.confirmation, Path(out))
    return outcome


def _cmd_confirm(args: argparse.Namespace) -> int:
    from mgtune.study.confirm import ConfirmSettings

    _check_ray_options(args)
    check_writable_dir("--out", args.out)
    outcome = _confirm(ConfirmSettings(
        study_dir=args.run_dir, seeds=args.seeds, top=args.top, cpus_per_trial=args.cpus_per_trial,
        gpus_per_trial=args.gpus_per_trial, address=args.address, resume=args.resume,
    ), args.out)
    if not outcome.finished:
        return 130
    print(json_text(outcome.summary()))
    return 0


# ---------------------------------------------------------------- robustness
def _cmd_robustness(args: argparse.Namespace) -> int:
    from mgtune.study.robustness import RobustnessSettings, run_robustness

    settings = RobustnessSettings(
        run_dir=args.run_dir, seeds=args.seeds, kinds=tuple(_csv_list(args.kinds, "--kinds")),
        levels=tuple(_levels(args.levels)), modality=args.modality, seed=args.seed, mask_fill=args.mask_fill,
        device=args.device, cpus_per_trial=args.cpus_per_trial, address=args.address,
    )
    outcome = run_robustness(settings, log=_log)
    from mgtune.report.robustness import write_robustness_report

    pages = [str(p) for d in outcome.studies for p in write_robustness_report(d)]
    pages += [str(p) for d in outcome.studies for p in _card_again(d, args.out)]
    print(json_text({**outcome.summary(), "pages": pages}))
    return 0


def _card_again(study_dir: Path, out: str) -> list[Path]:
    """The study's reproduction card, written again: it gains the robustness figures."""
    from mgtune.report.card import write_card
    from mgtune.study.confirmation import load_confirmation

    conf = load_confirmation(study_dir)
    return write_card(conf, Path(out)) if conf is not None else []


def _csv_list(text: str, option: str) -> list[str]:
    items = [x.strip() for x in text.split(",") if x.strip()]
    if not items:
        raise ConfigError(f"{option}: expected a comma-separated list, got {text!r}")
    return items


def _levels(text: str) -> list[float]:
    out = []
    for item in _csv_list(text, "--levels"):
        try:
            out.append(float(item))
        except ValueError:
            raise ConfigError(f"--levels: {item!r} is not a number") from None
    return out


# ---------------------------------------------------------------- report
def _cmd_report(args: argparse.Namespace) -> int:
    from mgtune.report import build_report, find_studies, parse_cutoffs

    check_writable_dir("--out", args.out)
    dirs = [Path(d) for d in args.run_dirs] or find_studies(args.storage)
    ks = parse_cutoffs(args.k) if args.k is not None else None
    for path in build_report(dirs, Path(args.out), metric=args.metric, ks=ks):
        print(path)
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
    p.add_argument("--lr", type=float, help="learning rate (default: 1e-3, or the model's own)")
    p.add_argument("--no-mg", action="store_true", help="train without Mirror Gradient")
    p.add_argument("--seed", type=int, default=999)
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--patience", type=int, default=20, help="early-stopping patience in epochs")
    p.add_argument("--metric", default="recall@20", help="validation metric for early stopping")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="model hyperparameter")
    p.add_argument("--out", help="output folder (metrics.json, checkpoint.pt)")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line and exit 2, like every other mistake."""

    def error(self, message: str) -> typing.NoReturn:
        where = self.prog.removeprefix("mgtune").strip()
        self.exit(2, f"mgtune: error: {where + ': ' if where else ''}{message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mgtune", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="dataset utilities").add_subparsers(dest="data_command", required=True)
    synth = data.add_parser("synth", help="write a synthetic dataset in MMRec's format")
    synth.add_argument("--preset", choices=["tiny", "small", "hard", "baby", "elec"], default="small")  # PRESETS
    synth.add_argument("--name", required=True)
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--data-dir", default="datasets")
    synth.add_argument("--force", action="store_true", help="replace an existing dataset of that name (atomically)")
    synth.set_defaults(func=_cmd_data_synth)

    prep = data.add_parser("prepare", help="build a dataset folder from your interactions file, RecBole atomic files "
                                           "or raw Amazon data; writes prepare.json and prints a summary")
    prep.add_argument("--interactions", metavar="FILE", help="CSV, TSV, JSON lines (.gz too) or parquet, a row per "
                                                             "interaction")
    prep.add_argument("--recbole", metavar="DIR", help="folder of RecBole atomic files: NAME.inter, optional NAME.item "
                                                       "(item features) and NAME.user; typed headers are read as is")
    prep.add_argument("--amazon", metavar="DIR", help="folder of a category's raw Amazon 2014 files")
    prep.add_argument("--category", help="with --amazon: Baby, Sports_and_Outdoors, Clothing_Shoes_and_Jewelry, "
                                         "Electronics (or baby, sports, clothing, elec)")
    prep.add_argument("--name", help="dataset name: the folder <data-dir>/<name> (with --recbole: NAME by default)")
    prep.add_argument("--data-dir", default="datasets")
    prep.add_argument("--user-col", default="user_id")
    prep.add_argument("--item-col", default="item_id", help="also the id column of --item-text and of NAME.item")
    prep.add_argument("--rating-col", help="rating column (default: 'rating' if present); kept in the .inter file")
    prep.add_argument("--time-col", help="timestamp column, numbers or dates (default: 'timestamp' if present)")
    prep.add_argument("--min-rating", type=float, help="drop interactions rated below this")
    prep.add_argument("--core", type=int, default=5, help="k-core: every user and item keeps >= k interactions")
    prep.add_argument("--split", choices=["random", "time"], default="random",
                      help="MMRec's per-user split, in random (seeded) or chronological order")
    prep.add_argument("--seed", type=int, default=0)
    for modality in ("image", "text"):
        prep.add_argument(f"--{modality}-features", metavar="FILE",
                          help=f"{modality} features: .npy (with --{modality}-ids), or .csv/.tsv/.parquet whose "
                               "first column is the item id and the rest numbers")
        prep.add_argument(f"--{modality}-ids", metavar="FILE", help="raw item id of each .npy row, one per line")
    prep.add_argument("--item-text", metavar="FILE", help="with --interactions: raw item text to encode into the text "
                      "features; CSV/TSV/JSON lines/parquet, the item id column (--item-col, else the first) and "
                      "text columns")
    prep.add_argument("--text-columns", metavar="A,B", help="the text columns of --item-text (default: every non-id "
                                                            "column that is not all numbers)")
    prep.add_argument("--text-fields", metavar="A,B", help="with --recbole: exactly these NAME.item fields are text "
                                                           "(default: the rule in the README; '' for none)")
    prep.add_argument("--meta-fields", metavar="C,D", help="with --recbole: exactly these NAME.item fields are "
                                                           "metadata: one/multi-hot or scaled numbers")
    prep.add_argument("--metadata-slot", choices=["image", "text", "none"],
                      help="with --recbole: where the metadata block goes: image_feat.npy (default without "
                           "--image-features), appended to the text features (default with them), or nowhere "
                           "(default with --text-features too)")
    prep.add_argument("--text-encoder", choices=["tfidf", "minilm"],
                      help="encoder of item text (--item-text, NAME.item's text fields, Amazon meta): tfidf "
                           "(the default, offline) or minilm (all-MiniLM-L6-v2; pip install 'mgtune[text]'); "
                           "an error without text")
    prep.add_argument("--user-graph-k", type=int, default=200,
                      help="neighbours per user in user_graph_dict.npy (DualGNN, DRAGON); 0: none")
    prep.add_argument("--force", action="store_true", help="replace an existing dataset folder")
    prep.set_defaults(func=_cmd_data_prepare)

    tr = sub.add_parser("train", help="train one model once")
    _add_train_args(tr)
    tr.set_defaults(func=_cmd_train)

    ev = sub.add_parser("eval", help="evaluate a saved checkpoint")
    ev.add_argument("--checkpoint", required=True)
    ev.add_argument("--dataset", help="defaults to the checkpoint's dataset")
    ev.add_argument("--data-dir", help="defaults to the checkpoint's data dir")
    ev.add_argument("--device", default="auto")
    ev.set_defaults(func=_cmd_eval)

    run = sub.add_parser("run", help="a hyperparameter study: Ray Tune trials, OptunaSearch (TPE), ASHA; several "
                                     "models or --mg both: a suite of studies (exit 3 if one of them failed)")
    run.add_argument("--model", help="model name, e.g. freedom (read from the study with --resume); several, "
                                      "comma-separated, or 'all': one study each, at the same time (a suite)")
    run.add_argument("--dataset", help="dataset folder name under --data-dir ('demo' is built in)")
    run.add_argument("--data-dir", default="datasets")
    run.add_argument("--trials", type=int, help="trials to run (default 32; with a budget, as many as it allows)")
    run.add_argument("--max-epochs", type=int, default=100, help="ASHA's max_t; also each trial's epoch limit")
    run.add_argument("--grace-epochs", type=int,
                     help="ASHA: epochs before a trial can be stopped (default: 10, or --max-epochs if fewer)")
    run.add_argument("--reduction-factor", type=int, default=3, help="ASHA's reduction factor")
    run.add_argument("--metric", default="recall@20", help="validation metric that search and ASHA maximise")
    run.add_argument("--cpus-per-trial", type=float, default=1.0)
    run.add_argument("--gpus-per-trial", type=float, default=None,
                     help="fractions allowed (default: 0.25 if the cluster has GPUs, else 0)")
    run.add_argument("--concurrency", type=int, help="trials at a time (default: as many as the resources hold); "
                                                             "a suite shares them evenly among its studies")
    run.add_argument("--address", help="attach to a running Ray cluster (auto or HOST:PORT; default $RAY_ADDRESS, "
                                       "else a local Ray started for the study)")
    run.add_argument("--storage", default="runs", help="folder of study folders (shared by all nodes of a cluster)")
    run.add_argument("--name", help="study folder name (default MODEL-DATASET[-nomg]-TIMESTAMP; a suite's: "
                                    "suite-DATASET-TIMESTAMP, holding one folder per study: MODEL[-nomg])")
    run.add_argument("--mg", metavar="on|off|both", help="with Mirror Gradient (on, the default), without (off), "
                                                         "or one study of each (both: a suite)")
    run.add_argument("--no-mg", action="store_true", help="--mg off: train without Mirror Gradient; MG settings "
                                                          "not searched")
    run.add_argument("--seed", type=int, default=0, help="seed of the TPE sampler and of every trial")
    run.add_argument("--search-space", help="search-space YAML (default search_spaces/MODEL.yaml)")
    run.add_argument("--resume", action="store_true", help="continue the interrupted study --name")
    run.add_argument("--checkpoint-every", type=int, default=5, help="epochs between trial checkpoints")
    run.add_argument("--budget-epochs", type=int, metavar="N", help="end the study once its trials have trained N "
                     "epochs in all (kept by --resume)")
    run.add_argument("--time-budget", metavar="DURATION", help="end the study after this much wall time, e.g. 90m, "
                     "2h, 1h30m (kept by --resume)")
    run.add_argument("--confirm", type=int, metavar="N", help="afterwards, confirm the best configuration over N "
                                                               "seeds, MG vs no MG (as mgtune confirm --seeds N)")
    run.set_defaults(func=_cmd_run)

    con = sub.add_parser("confirm", help="re-train a study's best configurations over seeds, MG vs no MG; "
                                         "paired statistics and a reproduction card")
    con.add_argument("run_dir", metavar="RUN_DIR", help="the study folder")
    con.add_argument("--seeds", type=int, default=5, help="seeds per configuration and arm: study seed + 0..N-1")
    con.add_argument("--top", type=int, default=1, help="how many of the best completed trials (by validation)")
    con.add_argument("--cpus-per-trial", type=float, default=1.0)
    con.add_argument("--gpus-per-trial", type=float, default=None,
                     help="fractions allowed (default: 0.25 if the cluster has GPUs, else 0)")
    con.add_argument("--address", help="attach to a running Ray cluster (default $RAY_ADDRESS, else a local Ray)")
    con.add_argument("--out", default="reports", help="writes <out>/<model>-<dataset>-card.md and .json")
    con.add_argument("--resume", action="store_true", help="continue interrupted runs from their checkpoints")
    con.set_defaults(func=_cmd_confirm)

    rob = sub.add_parser("robustness", help="MG vs no MG when the item features go bad at test time: noise, "
                                            "missing modalities, swapped items")
    rob.add_argument("run_dir", metavar="RUN_DIR", help="a study folder, or a folder of study folders")
    rob.add_argument("--seeds", type=int, default=3, help="seeds per arm when the study is not confirmed yet")
    rob.add_argument("--kinds", default="gaussian,mask,swap", help="comma-separated: gaussian, mask, swap")
    rob.add_argument("--levels", default="0,0.1,0.25,0.5,1.0",
                     help="gaussian: noise in feature standard deviations; mask, swap: share of items")
    rob.add_argument("--modality", default="both", help="image, text or both")
    rob.add_argument("--mask-fill", default="zero", help="what a masked feature row becomes: zero or mean")
    rob.add_argument("--seed", type=int, default=0, help="seed of the perturbations (shared by every model)")
    rob.add_argument("--device", default="cpu", help="where evaluations run: cpu, cuda or auto")
    rob.add_argument("--cpus-per-trial", type=float, default=1.0, help="for the confirmation, if one runs first")
    rob.add_argument("--address", help="Ray cluster for the confirmation, if one runs first")
    rob.add_argument("--out", default="reports", help="rewrites <out>/<model>-<dataset>-card.md and .json with "
                                                       "the robustness figures")
    rob.set_defaults(func=_cmd_robustness)

    rep = sub.add_parser("report", help="best configurations, MG vs no-MG and plots from study folders")
    rep.add_argument("run_dirs", nargs="*", metavar="RUN_DIR", help="study or suite folders (default: all "
                                                                     "studies under --storage)")
    rep.add_argument("--storage", default="runs", help="where to look for study folders when none are given")
    rep.add_argument("--out", default="reports", help="writes <out>/<dataset>.md, .csv and .html")
    rep.add_argument("--metric", default="recall@20", help="validation metric that picks the best trial")
    rep.add_argument("--k", help="cutoffs of the test metrics shown, comma-separated (default 5,10,20; "
                                 "5,10,20,50 for a suite)")
    rep.set_defaults(func=_cmd_report)
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
