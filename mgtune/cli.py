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
from mgtune.files import disk_refusal, json_text, refusal_text, sigterm_as_interrupt
from mgtune.options import options_of
from mgtune.processes import on_sigterm

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
        text = opt.help  # a flag is off unless given; a positional argument is always given
        if opt.const is None and opt.flag != "":
            text += " (required)" if required else f" (default: {shown})" if shown is not None else ""
        kwargs: dict[str, Any] = {"help": text}
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
    from mgtune.training.train_run import TrainOutput, train_config, train_into

    output = _settings(TrainOutput, args)  # first: it imports --model-module
    summary = train_into(train_config(_given(TrainConfig, args), args.set, _settings(MGConfig, args)), output, _log)
    print(json_text(summary))
    return 130 if summary.get("interrupted") else 0


def _prints(cls: type, run: Callable[[Any], Any]) -> Callable[[argparse.Namespace], int]:
    """A command that builds its settings ``cls`` from the options, calls ``run`` on them and prints the JSON."""
    def command(args: argparse.Namespace) -> int:
        print(json_text(run(_settings(cls, args))))
        return 0

    return command


def _cmd_models(args: argparse.Namespace) -> int:
    from mgtune.models.listing import model_table

    lines, problems = model_table()
    print("\n".join(lines))
    for problem in problems:
        print(f"mgtune: error: {problem}", file=sys.stderr)
    return 2 if problems else 0


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
    from mgtune.report import rewrite_card, write_robustness_report
    from mgtune.study import RobustnessSettings
    from mgtune.study.robustness import run_robustness

    settings = _settings(RobustnessSettings, args)
    outcome = run_robustness(settings, log=_log)
    pages = [str(p) for d in outcome.studies  # the card is written again: it gains the robustness figures
             for p in [*write_robustness_report(d), *rewrite_card(d, Path(settings.out))]]
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


def _command(sub: Any, name: str, help: str, func: Callable[[argparse.Namespace], int], *settings: type) -> Any:
    """The subcommand ``name``: one option per field of each settings class, calling ``func``."""
    parser = sub.add_parser(name, help=help)
    for cls in settings:
        _add_options(parser, cls)
    parser.set_defaults(func=func)
    return parser


def _data_parsers(sub: Any) -> None:
    from mgtune.data import SynthSettings
    from mgtune.data.prepare_command import PrepareSettings

    data = sub.add_parser("data", help="dataset utilities").add_subparsers(dest="data_command", required=True)
    _command(data, "synth", "write a synthetic dataset in MMRec's format", _cmd_data_synth, SynthSettings)
    _command(data, "prepare", "build a dataset folder from your interactions file, RecBole atomic files or raw "
             "Amazon data; writes prepare.json and prints a summary", _cmd_data_prepare, PrepareSettings)


def _train_parsers(sub: Any) -> None:
    from mgtune.training import MGConfig, TrainConfig
    from mgtune.training.checkpoint_eval import EvalSettings, evaluate_checkpoint
    from mgtune.training.recommend import RecommendSettings, recommend
    from mgtune.training.train_run import TrainOutput

    tr = _command(sub, "train", "train one model once", _cmd_train, TrainConfig, MGConfig, TrainOutput)
    tr.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a model hyperparameter "
                    "(repeat for several; default: the model's own)")
    _command(sub, "eval", "evaluate a saved checkpoint", _prints(EvalSettings, evaluate_checkpoint), EvalSettings)
    _command(sub, "recommend", "top-k items per user, in the dataset's own ids, from a checkpoint or a study's best "
             "trial; training items never recommended", _prints(RecommendSettings, recommend), RecommendSettings)
    _command(sub, "models", "every model: the item features it needs, where it came from (built-in, a package, "
             "a file)", _cmd_models)


def _study_parsers(sub: Any) -> None:
    from mgtune.study import ConfirmSettings, RobustnessSettings, StudySettings

    _command(sub, "run", "a hyperparameter study: Ray Tune trials, OptunaSearch (TPE), ASHA; several models or --mg "
             "both: a suite of studies (exit 3 if one of them failed)", _cmd_run, StudySettings)
    _command(sub, "confirm", "re-train a study's best configurations over seeds, MG vs no MG; paired statistics "
             "and a reproduction card", _cmd_confirm, ConfirmSettings)
    _command(sub, "robustness", "MG vs no MG when the item features go bad at test time: noise, missing "
             "modalities, swapped items", _cmd_robustness, RobustnessSettings)


def _report_parser(sub: Any) -> None:
    from mgtune.report import ReportSettings

    _command(sub, "report", "best configurations, MG vs no-MG and plots from study folders", _cmd_report,
             ReportSettings)


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
        # every long command: SIGTERM (a scheduler, kill) ends it as Ctrl-C does; a suite's study, as its suite's end
        with sigterm_as_interrupt(first=on_sigterm):
            return func(args)
    except MgtuneError as exc:
        print(f"mgtune: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mgtune: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a write no `storage_errors` wraps (a library's own files): still one line
        if (refused := disk_refusal(exc)) is None:
            raise
        print(f"mgtune: error: {refused.filename or 'mgtune ' + args.command}: cannot write: "
              f"{refusal_text(refused)}; the files written before are kept", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
