"""Does MG help on real data? The MG-vs-no-MG table on MovieLens-100k, made with mgtune's own commands.

Usage:
    python benchmarks/real_ml100k.py run --work DIR [--seeds 3] [--study-trials 6] [--suites fast,slow] \\
        [--studies freedom,vbpr] [--models vbpr,freedom,...]
    python benchmarks/real_ml100k.py table --work DIR --json benchmarks/real_ml100k_cpu.json \\
        --markdown benchmarks/real_ml100k_cpu.md --load "what else ran" [--earlier OLD.json]

``run`` (hours on a 2-core CPU) does, in the folder DIR:

1. ml-100k out of the RecBole wheel (`benchmarks/real_data.py`) and ``mgtune data prepare --recbole``;
2. ``DIR/grid/search_spaces/<model>.yaml``: each model at its reference defaults (the model config's
   defaults and learning rate) with MG as the MG fork's ``mg.yaml`` sets it: alpha1 1.0, flip interval 3,
   flip ratio 0.2 (the middle of the fork's 0.1 / 0.2 / 0.3 grid, and mgtune's default), one fixed point;
3. from ``DIR/grid`` (whose ``search_spaces/`` take precedence), one suite per epoch cap,
   ``mgtune run --model M1,M2,... --mg on --trials 1 --max-epochs CAP --confirm N``: the confirmation trains
   that configuration for seeds 0..N-1 with MG and with MG off, early stopping on validation (patience 20,
   MMRec's), and compares the two seed by seed. The fast models get a cap of 200 epochs, the three slow ones
   (GRCN, MMGCN, SLMRec: 2-7 s per epoch here) 30, so that the whole run fits an afternoon on two cores;
4. from ``DIR/study`` (the shipped search spaces), ``mgtune run --model M --trials T --confirm N`` for
   FREEDOM and VBPR: does a study pay off against the defaults?

``table`` reads what those runs left (through `mgtune.store`) and writes the tables: per model the epoch cap,
test Recall/Precision/MAP/NDCG @5 and @20 as mean ± sd over seeds per arm, the paired MG − no-MG
difference with its 95% t-interval and verdict; a popularity row; and the study-vs-defaults gains, paired
by seed (both confirmations use seeds 0..N-1).
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from mgtune.files import write_json, write_text
from mgtune.store import StudyRecord, SuiteRecord
from mgtune.store.confirmation import ARMS, ConfigResult, load_confirmation
from mgtune.store.stats import ArmStats, paired_t_test

# suite name -> (epoch cap, models)
SUITES = {"fast": (200, ("vbpr", "freedom", "bm3", "dragon", "dualgnn")), "slow": (30, ("grcn", "mmgcn", "slmrec"))}
STUDY_EPOCHS = 200
FLIP_RATIO = 0.2
SEEDS = 3
STUDY_MODELS = ("freedom", "vbpr")
DATASET = "ml-100k"
SHOWN = tuple(f"{m}@{k}" for k in (5, 20) for m in ("recall", "precision", "map", "ndcg"))
HERE = Path(__file__).resolve().parent


def _script(name: str) -> ModuleType:
    """A sibling script of this one (`real_data`, `beats_popularity`), imported as a module."""
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    return importlib.import_module(name)


def _mgtune(args: list[str], cwd: Path, log: Path) -> int:
    """``mgtune ARGS`` in ``cwd``, its output appended to ``log``; its exit code."""
    with log.open("a") as fh:
        fh.write(f"\n$ mgtune {' '.join(args)}   # {time.strftime('%Y-%m-%dT%H:%M:%S')}\n")
        fh.flush()
        return subprocess.run([sys.executable, "-m", "mgtune.cli", *args], cwd=cwd, stdout=fh, stderr=fh).returncode


def grid_space(model: str) -> str:
    return (f"# MG as the MG fork's mg.yaml sets it: alpha1 1.0, flip interval 3 (MGConfig's defaults), flip ratio\n"
            f"# {FLIP_RATIO}; everything else at the model's reference defaults. One trial: the start.\n"
            f"model: {model}\nparams:\n  flip_ratio: {{type: categorical, choices: [{FLIP_RATIO}]}}\n"
            f"start:\n  - {{flip_ratio: {FLIP_RATIO}}}\n")


def run(work: Path, seeds: int, study_trials: int, suites: list[str], studies: list[str],
        only: set[str] | None = None) -> int:
    work = work.resolve()
    data_dir, log = work / "datasets", work / "commands.log"
    (work / "grid" / "search_spaces").mkdir(parents=True, exist_ok=True)
    (work / "study").mkdir(exist_ok=True)
    raw = _script("real_data").fetch_ml100k(out=work / "raw" / DATASET)
    if not (data_dir / DATASET / f"{DATASET}.inter").is_file():
        _mgtune(["data", "prepare", "--recbole", str(raw), "--data-dir", str(data_dir)], work, log)
    rc = 0
    for suite in suites:
        cap, models = SUITES[suite][0], tuple(m for m in SUITES[suite][1] if only is None or m in only)
        if not models:
            continue
        for model in models:
            write_text(work / "grid" / "search_spaces" / f"{model}.yaml", grid_space(model))
        rc |= _mgtune(["run", "--model", ",".join(models), "--mg", "on", "--dataset", DATASET, "--data-dir",
                       str(data_dir), "--trials", "1", "--max-epochs", str(cap), "--grace-epochs", str(cap),
                       "--confirm", str(seeds), "--storage", str(work / "runs"), "--name", suite], work / "grid", log)
    for model in studies:
        rc |= _mgtune(["run", "--model", model, "--dataset", DATASET, "--data-dir", str(data_dir), "--trials",
                       str(study_trials), "--max-epochs", str(STUDY_EPOCHS), "--grace-epochs", "10", "--confirm",
                       str(seeds), "--storage", str(work / "runs"), "--name", f"study-{model}"], work / "study", log)
    return rc


# ---------------------------------------------------------------- the tables
def _stats(s: ArmStats) -> dict[str, Any]:
    return {"n": s.n, "mean": s.mean, "sd": s.sd}


def _confirmed(study_dir: Path) -> tuple[StudyRecord, ConfigResult] | None:
    conf = load_confirmation(study_dir)
    if conf is None or not conf.info.get("finished"):
        return None
    return conf.meta, conf.results()[0]


def _model_row(result: ConfigResult) -> dict[str, Any]:
    return {
        "configuration": result.candidate.params, "source_trial": result.candidate.trial_id,
        "valid": result.candidate.valid,
        "arms": {arm: {m: _stats(result.arms[arm][m]) for m in SHOWN} for arm in ARMS},
        "difference": {m: result.tests[m].as_dict() for m in SHOWN},
        "epochs": {arm: [r["best_epoch"] for r in result.runs if r["arm"] == arm] for arm in ARMS},
        "seconds_per_epoch": {arm: _stats(result.seconds_per_epoch[arm]) for arm in ARMS},
    }


def _by_seed(result: ConfigResult, arm: str, metric: str) -> dict[int, float]:
    return {int(r["seed"]): float(r[f"test_{metric}"]) for r in result.runs
            if r["arm"] == arm and r["status"] == "completed" and r.get(f"test_{metric}") is not None}


def _payoff(study: ConfigResult, defaults: ConfigResult) -> dict[str, Any]:
    """Study's best configuration minus the defaults', per arm and metric, paired by seed."""
    out: dict[str, Any] = {}
    for arm in ARMS:
        out[arm] = {}
        for metric in ("recall@20", "ndcg@20"):
            a, b = _by_seed(study, arm, metric), _by_seed(defaults, arm, metric)
            seeds = sorted(set(a) & set(b))
            out[arm][metric] = paired_t_test([a[s] for s in seeds], [b[s] for s in seeds]).as_dict() | {
                "study": _stats_of([a[s] for s in seeds]), "defaults": _stats_of([b[s] for s in seeds])}
    return out


def _stats_of(values: list[float]) -> dict[str, Any]:
    from mgtune.store.stats import arm_stats

    return _stats(arm_stats(values))


def _popularity(data_dir: Path) -> dict[str, float]:
    import torch

    from mgtune.data import load_dataset
    from mgtune.training import Evaluator

    data = load_dataset(data_dir, DATASET)
    test = Evaluator(data, torch.device("cpu")).evaluate(_script("beats_popularity").Popularity(data))["test"]
    return {m: test[m] for m in SHOWN}


def collect(work: Path) -> dict[str, Any]:
    work = work.resolve()
    models: dict[str, Any] = {}
    defaults: dict[str, ConfigResult] = {}
    suites: dict[str, Any] = {}
    for suite, (cap, _) in SUITES.items():
        suite_dir = work / "runs" / suite
        if (suite_dir / "suite.json").is_file():
            record = SuiteRecord.read(suite_dir)
            suites[suite] = {"settings": record.settings, "created": record.created, "finished": record.finished,
                             "max_epochs": cap}
            studies = [(st.model, suite_dir / st.name, st.state, st.reason) for st in record.studies]
        elif (suite_dir / "study.json").is_file():  # `run --models M`: one model is a study, not a suite
            meta = StudyRecord.read(suite_dir)
            suites[suite] = {"settings": None, "created": meta.created, "finished": meta.finished, "max_epochs": cap}
            studies = [(meta.model, suite_dir, "finished" if meta.finished else "unfinished", None)]
        else:
            continue
        for model, study_dir, state, reason in studies:
            found = _confirmed(study_dir)
            models[model] = {"state": state, "max_epochs": cap, **({"reason": reason} if reason else {})}
            if found is not None:
                defaults[model] = found[1]
                models[model] |= _model_row(found[1])
    payoff = {}
    for model in STUDY_MODELS:
        found = _confirmed(work / "runs" / f"study-{model}")
        if found is not None and model in defaults:
            meta, result = found
            payoff[model] = {"trials": meta.trials, "study": _model_row(result),
                             "gain": _payoff(result, defaults[model]),
                             "same_as_defaults": result.candidate.params == defaults[model].candidate.params}
    info = json.loads((work / "datasets" / DATASET / "prepare.json").read_text())
    return {"dataset": DATASET, "counts": info["counts"], "suites": suites, "flip_ratio": FLIP_RATIO,
            "seeds": SEEDS, "models": models,
            "popularity": _popularity(work / "datasets"), "payoff": payoff}


def merge_earlier(doc: dict[str, Any], earlier: dict[str, Any]) -> dict[str, Any]:
    """``doc`` with the confirmed rows of an ``earlier`` table (its JSON) for the models and pay-offs ``doc``
    lacks: their runs went with an earlier machine. Each such row says so (``from_earlier``); models in
    `SUITES` order."""
    models = dict(doc["models"])
    for model, row in earlier.get("models", {}).items():
        if "arms" in row and "arms" not in models.get(model, {}):
            models[model] = row | {"from_earlier": True}
    order = [m for _, ms in SUITES.values() for m in ms]
    doc["models"] = {m: models[m] for m in sorted(models, key=lambda m: order.index(m) if m in order else 99)}
    for model, payoff in earlier.get("payoff", {}).items():
        doc["payoff"].setdefault(model, payoff | {"from_earlier": True})
    for name, suite in earlier.get("suites", {}).items():
        doc["suites"].setdefault(name, suite)
    return doc


def _f(x: float | None, digits: int = 4) -> str:
    return "—" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def _pm(s: dict[str, Any]) -> str:
    return f"{_f(s['mean'])} ± {_f(s['sd'])}"


def _ci(d: dict[str, Any]) -> str:
    return f"{d['mean']:+.4f} [{_f(d['ci_low'])}, {_f(d['ci_high'])}]" if d.get("mean") is not None else "—"


def _caps(doc: dict[str, Any]) -> str:
    """"200 epochs (VBPR, FREEDOM) / 40 epochs (GRCN)": each suite's epoch cap and its models."""
    parts = []
    for suite in doc["suites"].values():
        names = ", ".join(m.upper() for m, row in doc["models"].items() if row["max_epochs"] == suite["max_epochs"])
        parts.append(f"{suite['max_epochs']} epochs ({names})")
    return " / ".join(parts)


def _same_as_defaults(payoff: dict[str, Any]) -> bool:
    """Whether a study's best configuration was the defaults' own: the same parameters, or (where the defaults'
    space named fewer of them) the same test numbers on every seed and arm, which only the same runs give."""
    same_runs = all(g["n"] > 0 and g["mean"] == 0 and g["sd"] == 0
                    for arm in payoff["gain"].values() for g in arm.values())
    return bool(payoff["same_as_defaults"]) or same_runs


def markdown(doc: dict[str, Any], load: str) -> str:
    head = "| Model | Arm | " + " | ".join(m.upper().replace("PRECISION", "PREC") for m in SHOWN) + " |"
    rule = "|---|---|" + "---:|" * len(SHOWN)
    rows = [head, rule, "| Popularity | — | " + " | ".join(_f(doc["popularity"][m]) for m in SHOWN) + " |"]
    verdicts = []
    for model, m in doc["models"].items():
        if "arms" not in m:
            rows.append(f"| {model.upper()} | {m['state']} ({m.get('reason', 'not confirmed')}) |" + " |" * len(SHOWN))
            continue
        ratio = m["configuration"].get("flip_ratio")
        name = model.upper() + (" †" if m.get("from_earlier") else "")
        for arm, label in (("nomg", "no MG"), ("mg", f"MG (ratio {ratio:g})")):
            rows.append(f"| {name} | {label} | " + " | ".join(_pm(m["arms"][arm][k]) for k in SHOWN) + " |")
        rows.append(f"| {name} | MG − no MG [95% CI] | "
                    + " | ".join(_ci(m["difference"][k]) for k in SHOWN) + " |")
        d = m["difference"]["recall@20"]
        verdicts.append(f"- **{name}**: {d['verdict']} on test recall@20 ({_ci(d)}, "
                        f"p = {_f(d['p_value'], 3)}); on ndcg@20: {m['difference']['ndcg@20']['verdict']}.")
    payoff = []
    for model, p in doc["payoff"].items():
        for arm, label in (("mg", "MG"), ("nomg", "no MG")):
            g = p["gain"][arm]["recall@20"]
            name = model.upper() + (" †" if p.get("from_earlier") else "")
            payoff.append(f"| {name} | {label} | {_pm(g['study'])} | {_pm(g['defaults'])} | {_ci(g)} | "
                          f"{g['verdict'].replace('MG ', 'study ')} |")
    c = doc["counts"]
    parts = [
        "# MG vs no MG on MovieLens-100k (real data, CPU)",
        f"MovieLens-100k from the RecBole 1.2.1 wheel, prepared with `mgtune data prepare --recbole` "
        f"(5-core: {c['users']:,} users, {c['items']:,} items, {c['interactions']:,} interactions; MMRec's random "
        f"per-user split, {c['train']:,} / {c['valid']:,} / {c['test']:,}; text: TF-IDF of the titles, 384-d; the "
        "image slot: release year and 19 genres). Made by `python benchmarks/real_ml100k.py run` (the commands it "
        "ran are in its commands.log) and `... table`.",
        f"**Protocol.** Each model at its reference defaults; MG as the MG fork's `mg.yaml` sets it (alpha1 1.0, flip "
        f"interval 3, flip ratio {doc['flip_ratio']:g}: the middle of the fork's 0.1 / 0.2 / 0.3 grid, fixed rather "
        f"than chosen, to fit the run on two cores); then `mgtune confirm` over {doc['seeds']} seeds: that "
        "configuration trained with MG and with MG off, early stopping on validation recall@20 (patience 20), at "
        f"most {_caps(doc)}; test metrics at the best validation epoch; mean ± sd (ddof 1) over seeds; MG − no MG "
        "paired by seed with its 95% t-interval; \"MG helps\" only when the interval lies above zero. The epochs "
        "each run stopped "
        "at are in the JSON.",
        f"**Load.** {load}",
        "## Test metrics", "\n".join(rows)
        + ("\n\n† carried over from an earlier run of the same command (`table --earlier`): its runs went with that "
           "machine." if any(m.get("from_earlier") for m in doc["models"].values()) else ""),
        "## Verdicts (test recall@20)", "\n".join(verdicts) or "none confirmed yet",
    ]
    if payoff:
        parts += ["## Does a study pay off? FREEDOM and VBPR",
                  "A full study per model (`mgtune run --model M --trials T` with the shipped search space, TPE and "
                  "ASHA on validation, its first trial the reference defaults), its best configuration confirmed over "
                  "the same seeds; against the defaults' confirmation above. Test recall@20, study − defaults paired "
                  "by seed. " + " ".join(f"{m.upper()}: {p['trials']} trials, best {p['study']['configuration']}"
                                         + (" = the defaults (trial 1, the warm start), so the confirmations are "
                                            "the same runs" if _same_as_defaults(p) else "") + "."
                                         for m, p in doc["payoff"].items()),
                  "| Model | Arm | study | defaults | study − defaults [95% CI] | verdict |\n"
                  "|---|---|---:|---:|---:|---|\n" + "\n".join(payoff)]
    return "\n\n".join(parts) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--work", type=Path, required=True)
    r.add_argument("--seeds", type=int, default=SEEDS)
    r.add_argument("--study-trials", type=int, default=6)
    r.add_argument("--suites", default=",".join(SUITES), help="which suites to run (comma-separated)")
    r.add_argument("--studies", default=",".join(STUDY_MODELS), help="which pay-off studies to run ('' for none)")
    r.add_argument("--models", help="only these of the suites' models (comma-separated)")
    t = sub.add_parser("table")
    t.add_argument("--work", type=Path, required=True)
    t.add_argument("--json", type=Path)
    t.add_argument("--markdown", type=Path)
    t.add_argument("--load", default="not recorded", help="what else ran on the machine meanwhile")
    t.add_argument("--earlier", type=Path, help="an earlier table's JSON: its rows fill in the models not run here")
    args = p.parse_args()
    if args.cmd == "run":
        suites, studies = [x for x in args.suites.split(",") if x], [x for x in args.studies.split(",") if x]
        if unknown := sorted(set(suites) - set(SUITES)) + sorted(set(studies) - set(STUDY_MODELS)):
            p.error(f"unknown suite or study: {', '.join(unknown)}")
        only = set(args.models.split(",")) if args.models else None
        return run(args.work, args.seeds, args.study_trials, suites, studies, only)
    doc = collect(args.work)
    if args.earlier:
        doc = merge_earlier(doc, json.loads(args.earlier.read_text()))
    if args.json:
        write_json(args.json, doc)
    text = markdown(doc, args.load)
    if args.markdown:
        write_text(args.markdown, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
