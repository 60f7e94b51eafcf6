"""The ``mgtune`` command line. User mistakes end as one line on stderr and exit code 2.

Each command parses its options, builds its settings dataclass (whose fields hold the defaults,
the help and, in ``__post_init__``, every check: `mgtune.options`), calls one function and prints
what it returned. Options left out are not passed on, so the dataclass's defaults apply.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from mgtune.errors import MgtuneError
from mgtune.files import json_text
from mgtune.options import options_of

__all__ = ["main", "build_parser"]

S = TypeVar("S")


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- options from settings dataclasses
def _add_options(parser: argparse.ArgumentParser, cls: type, skip: Sequence[str] = ()) -> None:
    """One option per `mgtune.options.option` field of ``cls``; ``--help`` shows each default."""
    hints = typing.get_type_hints(cls)
    for f, opt in options_of(cls):
        if f.name in skip:
            continue
        required = f.default is dataclasses.MISSING
        shown = opt.default_text if opt.default_text is not None else None if required else f.default
        kwargs: dict[str, Any] = {"help": opt.help if shown is None or opt.const is not None
                                  else f"{opt.help} (default: {shown})"}
        kind = next((t for t in (int, float) if t in typing.get_args(hints[f.name]) or hints[f.name] is t), None)
        if opt.const is not None:
            kwargs.update(action="store_const", const=opt.const)
        else:
            kwargs.update(metavar=opt.metavar, choices=opt.choices)
            if opt.parse is None and kind is not None:
                kwargs["type"] = kind
        if opt.flag == "":  # positional
            parser.add_argument(f.name, nargs="*" if opt.repeat else None, **kwargs)
            continue
        if opt.repeat:
            kwargs["action"] = "append"
        parser.add_argument(opt.flag or "--" + f.name.replace("_", "-"), dest=f.name, default=None,
                            required=required, **kwargs)


def _given(cls: type, args: argparse.Namespace) -> dict[str, Any]:
    """The options of ``cls`` the user gave, parsed (``parse`` of the option) and lists made tuples."""
    out = {}
    for f, opt in options_of(cls):
        value = getattr(args, f.name, None)
        if value is None or value == []:
            continue
        if opt.parse is not None:
            value = opt.parse(value)
        out[f.name] = tuple(value) if isinstance(value, list) and not opt.repeat else value
    return out


def _settings(cls: Callable[..., S], args: argparse.Namespace, **extra: Any) -> S:
    return cls(**_given(typing.cast(type, cls), args), **extra)


# ---------------------------------------------------------------- commands
def _cmd_data_synth(args: argparse.Namespace) -> int:
    from mgtune.data import SynthSettings

    s = _settings(SynthSettings, args)
    _log(f"wrote {s.preset} dataset to {s.make()}")
    return 0


def _cmd_data_prepare(args: argparse.Namespace) -> int:
    from mgtune.data.prepare_command import PrepareSettings, prepare

    _log(prepare(_settings(PrepareSettings, args)))
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from mgtune.training import MGConfig, TrainConfig
    from mgtune.training.train_run import TrainOutput, train_into

    given = _given(TrainConfig, args)
    cfg = TrainConfig.from_options(given.pop("model"), given.pop("dataset"), args.set, mg=_settings(MGConfig, args),
                                   **{**given, "data_dir": str(Path(given.get("data_dir", "datasets")).resolve())})
    print(json_text(train_into(cfg, _settings(TrainOutput, args), _log)))
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from mgtune.training.checkpoint_eval import EvalSettings, evaluate_checkpoint

    print(json_text(evaluate_checkpoint(_settings(EvalSettings, args))))
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from mgtune.study import StudySettings

    settings = _settings(StudySettings, args)
    from mgtune.study.suite import is_suite_run

    if is_suite_run(settings):
        return _run_suite(settings)
    from mgtune.study import run_study

    outcome = run_study(settings, log=_log)
    if not outcome.finished:
        return 130
    summary = outcome.summary()
    if summary is not None:
        print(json_text(summary))
        if settings.confirm is not None:
            confirmed = _confirm(settings.confirm_settings(str(outcome.study_dir)))
            if not confirmed.finished:
                return 130
            print(json_text(confirmed.summary()))
    _report([outcome.study_dir], outcome.study_dir)
    return 0


def _run_suite(settings: Any) -> int:
    from mgtune.study.suite import SuiteSettings, run_suite

    outcome = run_suite(SuiteSettings(settings), log=_log)
    for line in outcome.summary:
        _log(line)
    ready = not outcome.interrupted and outcome.record.study_dirs(outcome.suite_dir)
    files = _report([outcome.suite_dir], outcome.suite_dir) if ready else []
    print(json_text(outcome.result(files)))
    return outcome.exit_code


def _report(dirs: list[Path], folder: Path) -> list[str]:
    """A run's own report into ``folder/report``; a problem with it is said, and the run still succeeds."""
    from mgtune.report import build_report
    from mgtune.store import REPORT_DIR

    try:
        files = [str(p) for p in build_report(dirs, folder / REPORT_DIR)]
    except MgtuneError as exc:
        _log(f"report not written: {exc}")
        return []
    _log(f"report: {', '.join(files)}")
    return files


def _confirm(settings: Any) -> Any:
    """`run_confirm`, then the reproduction card into ``settings.out``."""
    from mgtune.report import write_card
    from mgtune.study.confirm import run_confirm

    outcome = run_confirm(settings, log=_log)
    if outcome.finished and outcome.confirmation is not None:
        outcome.cards = write_card(outcome.confirmation, Path(settings.out))
    return outcome


def _cmd_confirm(args: argparse.Namespace) -> int:
    from mgtune.study import ConfirmSettings

    outcome = _confirm(_settings(ConfirmSettings, args))
    if not outcome.finished:
        return 130
    print(json_text(outcome.summary()))
    return 0


def _cmd_robustness(args: argparse.Namespace) -> int:
    from mgtune.report import write_card, write_robustness_report
    from mgtune.store.confirmation import load_confirmation
    from mgtune.study import RobustnessSettings
    from mgtune.study.robustness import run_robustness

    settings = _settings(RobustnessSettings, args)
    outcome = run_robustness(settings, log=_log)
    pages = [str(p) for d in outcome.studies for p in write_robustness_report(d)]
    for study_dir in outcome.studies:  # the reproduction card, written again: it gains the robustness figures
        conf = load_confirmation(study_dir)
        pages += [str(p) for p in (write_card(conf, Path(settings.out)) if conf is not None else [])]
    print(json_text({**outcome.summary(), "pages": pages}))
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from mgtune.report import ReportSettings

    for path in _settings(ReportSettings, args).build():
        print(path)
    return 0


# ---------------------------------------------------------------- parser
class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line and exit 2, like every other mistake."""

    def error(self, message: str) -> typing.NoReturn:
        where = self.prog.removeprefix("mgtune").strip()
        self.exit(2, f"mgtune: error: {where + ': ' if where else ''}{message} (see {self.prog} --help)\n")


def _data_parsers(sub: Any) -> None:
    from mgtune.data import SynthSettings
    from mgtune.data.prepare_command import PrepareSettings

    data = sub.add_parser("data", help="dataset utilities").add_subparsers(dest="data_command", required=True)
    synth = data.add_parser("synth", help="write a synthetic dataset in MMRec's format")
    _add_options(synth, SynthSettings)
    synth.set_defaults(func=_cmd_data_synth)
    prep = data.add_parser("prepare", help="build a dataset folder from your interactions file, or from raw Amazon "
                                           "data; writes prepare.json and prints a summary")
    _add_options(prep, PrepareSettings)
    prep.set_defaults(func=_cmd_data_prepare)


def _train_parsers(sub: Any) -> None:
    from mgtune.training import MGConfig, TrainConfig
    from mgtune.training.checkpoint_eval import EvalSettings
    from mgtune.training.train_run import TrainOutput

    tr = sub.add_parser("train", help="train one model once")
    _add_options(tr, TrainConfig)
    _add_options(tr, MGConfig)
    tr.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a model hyperparameter "
                    "(repeat for several)")
    _add_options(tr, TrainOutput)
    tr.set_defaults(func=_cmd_train)
    ev = sub.add_parser("eval", help="evaluate a saved checkpoint")
    _add_options(ev, EvalSettings)
    ev.set_defaults(func=_cmd_eval)


def _study_parsers(sub: Any) -> None:
    from mgtune.study import ConfirmSettings, RobustnessSettings, StudySettings

    run = sub.add_parser("run", help="a hyperparameter study: Ray Tune trials, OptunaSearch (TPE), ASHA; several "
                                     "models or --mg both: a suite of studies (exit 3 if one of them failed)")
    _add_options(run, StudySettings)
    run.set_defaults(func=_cmd_run)
    con = sub.add_parser("confirm", help="re-train a study's best configurations over seeds, MG vs no MG; "
                                         "paired statistics and a reproduction card")
    _add_options(con, ConfirmSettings)
    con.set_defaults(func=_cmd_confirm)
    rob = sub.add_parser("robustness", help="MG vs no MG when the item features go bad at test time: noise, "
                                            "missing modalities, swapped items")
    _add_options(rob, RobustnessSettings)
    rob.set_defaults(func=_cmd_robustness)


def _report_parser(sub: Any) -> None:
    from mgtune.report import ReportSettings

    rep = sub.add_parser("report", help="best configurations, MG vs no-MG and plots from study folders")
    _add_options(rep, ReportSettings)
    rep.set_defaults(func=_cmd_report)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mgtune", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for add in (_data_parsers, _train_parsers, _study_parsers, _report_parser):
        add(sub)
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
