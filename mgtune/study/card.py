"""Reproduction cards: ``<out>/<model>-<dataset>-card.md`` and ``.json`` from a confirmation.

A card holds what someone needs to rerun a result and judge it: the configuration, the seeds, the
protocol, the environment, every run's metrics, peak memory and seconds per epoch, the compute
spent (study + confirmation), the MG vs no-MG statistics and, for the Amazon datasets, the
published numbers next to ours. The published numbers live in ``published.json`` beside this
module (data, not code), each with its source.
"""

from __future__ import annotations

import json
import math
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from mgtune.data import AMAZON_DATASETS
from mgtune.errors import ConfigError
from mgtune.files import write_json, write_text
from mgtune.study.confirm import ARMS, SELECTION, ConfigResult, Confirmation, read_study
from mgtune.study.environment import environment
from mgtune.study.runner import _now, _setup
from mgtune.study.stats import CONFIDENCE, TEST_NAME, ArmStats
from mgtune.training import METRICS, metric_names

__all__ = ["AMAZON_DATASETS", "build_card", "render_card", "write_card", "published_results", "card_stem"]

_ARM_LABEL = {"nomg": "no MG", "mg": "MG"}


def card_stem(model: str, dataset: str) -> str:
    if not dataset or dataset in (".", "..") or any(c in dataset for c in "/\\\0"):
        raise ConfigError(f"dataset name {dataset!r} cannot name a card file")
    return f"{model}-{dataset}-card"


def write_card(conf: Confirmation, out_dir: Path) -> list[Path]:
    """Write the card of ``conf``'s model × dataset as Markdown and JSON; return both paths."""
    card = build_card(conf)
    stem = Path(out_dir) / card_stem(card["model"], card["dataset"])
    md, js = stem.with_suffix(".md"), stem.with_suffix(".json")
    write_json(js, card)
    write_text(md, render_card(card))
    return [md, js]


# ---------------------------------------------------------------- the card as data
@cache
def _published() -> dict[str, Any]:
    return json.loads(resources.files("mgtune.study").joinpath("published.json").read_text(encoding="utf-8"))


def published_results(model: str, dataset: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The sources and the published rows (``{source, dataset, model, mg, metrics}``) for ``model`` on ``dataset``."""
    doc = _published()
    rows = [r for r in doc["results"] if r["model"] == model.lower() and r["dataset"] == dataset.lower()]
    return {k: v for k, v in doc["sources"].items() if any(r["source"] == k for r in rows)}, rows


def build_card(conf: Confirmation) -> dict[str, Any]:
    """The card as a JSON-able dict; every configuration of the confirmation gets its block."""
    meta = conf.meta
    _, _, space = read_study(conf.study_dir)
    setup = _setup(meta, space, conf.study_dir)
    results = conf.results()
    head = results[0]
    base = setup.train_config(head.candidate.params)
    devices = sorted({r["device"] for r in conf.rows if r.get("device")})
    return {
        "card": "mgtune reproduction card",
        "created": _now(),
        "model": meta["model"],
        "dataset": meta["dataset"],
        "study": {"name": conf.study_dir.name, "path": str(conf.study_dir), "trials": len(conf.study_rows),
                  "selection_metric": f"valid_{conf.metric}", "search_space": meta["search_space"],
                  "seed": meta["seed"], "mg": meta["mg"]},
        "selection": SELECTION.format(metric=conf.metric),
        "seeds": conf.seeds,
        "seed_rule": conf.info.get("seed_rule"),
        "protocol": {
            "batch_size": base.batch_size, "eval_batch_size": base.eval_batch_size,
            "max_epochs": meta["max_epochs"], "early_stopping_patience": base.patience,
            "early_stopping": (f"stop once more than {base.patience} epochs in a row fail to improve validation "
                               f"{conf.metric}; test metrics are those of the best validation epoch"),
            "validation_metric": conf.metric, "cutoffs": list(conf.topk), "metrics": list(METRICS),
            "evaluation": "full ranking of all items, each user's training items excluded",
            "arms": conf.info.get("arms"),
            "pairing": "by seed (both arms of a seed share initialisation and batch order)",
            "test": TEST_NAME, "confidence": CONFIDENCE,
        },
        "environment": {**environment(), "devices": devices},
        "verdict": {"configuration": head.candidate.rank, "metric": f"test_{conf.metric}", "verdict": head.verdict,
                    **{k: v for k, v in head.tests[conf.metric].as_dict().items() if k != "verdict"}},
        "configurations": [_config_block(conf, r, setup) for r in results],
        "compute": {
            "study_trials": len(conf.study_rows), "study_seconds": round(conf.study_seconds, 1),
            "confirmation_runs": len(conf.rows), "confirmation_seconds": round(conf.seconds, 1),
            "total_seconds": round(conf.study_seconds + conf.seconds, 1),
            "note": ("wall seconds of each trial or run from the start of its trial function (Ray worker start-up "
                     "not counted), summed; concurrent runs overlap in time"),
        },
        "published": _published_block(meta["model"], meta["dataset"], head),
    }


def _config_block(conf: Confirmation, result: ConfigResult, setup: Any) -> dict[str, Any]:
    train_config = setup.train_config(result.candidate.params).as_dict()
    train_config.pop("seed")  # one per run: see "seeds"
    names = metric_names(conf.topk)
    return {
        "rank": result.candidate.rank,
        "source_trial": result.candidate.trial_id,
        f"study_valid_{conf.metric}": result.candidate.valid,
        "configuration": {"params": result.candidate.params, "train_config": train_config},
        "per_seed": [
            {k: r.get(k) for k in ("seed", "arm", "status", "epochs_run", "best_epoch", "seconds",
                                    "seconds_per_epoch", "peak_memory_mb", "device", "trial_dir")}
            | {"valid": {n: r.get(f"valid_{n}") for n in names}, "test": {n: r.get(f"test_{n}") for n in names}}
            for r in result.runs
        ],
        "summary": {n: {**{arm: result.arms[arm][n].as_dict() for arm in ARMS},
                        "difference": result.tests[n].as_dict()} for n in names},
        "verdict": result.verdict,
        "resources": {"seconds_per_epoch": {a: result.seconds_per_epoch[a].as_dict() for a in ARMS},
                      "peak_memory_mb": {a: result.peak_memory_mb[a].as_dict() for a in ARMS}},
    }


def _published_block(model: str, dataset: str, head: ConfigResult) -> dict[str, Any]:
    if dataset.lower() not in AMAZON_DATASETS:
        return {"note": f"Published numbers are kept for the Amazon datasets {', '.join(AMAZON_DATASETS)} only",
                "sources": {}, "comparison": []}
    sources, rows = published_results(model, dataset)
    comparison = []
    for row in rows:
        arm = "mg" if row["mg"] else "nomg"
        for metric, value in row["metrics"].items():
            ours = head.arms[arm].get(metric)
            comparison.append({"source": row["source"], "arm": arm, "metric": metric, "published": value,
                               "ours": ours.as_dict() if ours is not None else None})
    note = "" if rows else f"The sources have no numbers for {model} on {dataset}"
    return {"note": note, "sources": sources, "comparison": comparison}


# ---------------------------------------------------------------- the card as Markdown
def render_card(card: dict[str, Any]) -> str:
    model, dataset = card["model"].upper(), card["dataset"]
    v = card["verdict"]
    parts = [
        f"# Reproduction card: {model} on {dataset}",
        f"**Verdict** ({v['metric']}, configuration {v['configuration']}): **{v['verdict']}**. "
        f"MG − no MG = {_signed(v['mean'])}, {v['confidence']:.0%} CI [{_signed(v['ci_low'])}, "
        f"{_signed(v['ci_high'])}], p = {_p(v['p_value'])} ({card['protocol']['test']}; n = {v['n']} seeds). "
        "\"MG helps\" only when the whole interval is above zero.",
        f"Study `{card['study']['name']}`, card written {card['created']}. {card['selection']}",
        "## Seeds",
        f"{', '.join(map(str, card['seeds']))} — {card['seed_rule']}. Every seed trains both arms: "
        f"{card['protocol']['arms']['mg']} and {card['protocol']['arms']['nomg']}.",
        "## Protocol",
        _kv_table({k: v for k, v in card["protocol"].items() if k not in ("arms",)}),
        "## Environment",
        _kv_table(card["environment"]),
    ]
    for block in card["configurations"]:
        parts += _config_md(block, card)
    parts += ["## Compute", _kv_table(card["compute"]), "## Published numbers", _published_md(card)]
    return "\n\n".join(parts) + "\n"


def _config_md(block: dict[str, Any], card: dict[str, Any]) -> list[str]:
    rank = block["rank"]
    params = block["configuration"]["params"]
    cutoffs = card["protocol"]["cutoffs"]
    shown = [f"{m}@{k}" for k in cutoffs for m in ("recall", "ndcg")]
    res = block["resources"]
    runs = [[str(r["seed"]), _ARM_LABEL[r["arm"]], r["status"], _s(r["epochs_run"]), _s(r["best_epoch"]),
             _s(r["seconds_per_epoch"]), _s(r["peak_memory_mb"]), *(_f(r["test"][n]) for n in shown)]
            for r in block["per_seed"]]
    summary = [[name, _pm(s["nomg"]), _pm(s["mg"]), _signed(s["difference"]["mean"]),
                f"[{_signed(s['difference']['ci_low'])}, {_signed(s['difference']['ci_high'])}]",
                _p(s["difference"]["p_value"]), s["difference"]["verdict"]]
               for name, s in block["summary"].items()]
    return [
        f"## Configuration {rank}: trial `{block['source_trial']}` (verdict: {block['verdict']})",
        f"Study validation {card['protocol']['validation_metric']}: "
        f"{_f(block[f'study_valid_' + card['protocol']['validation_metric']])}. Sampled parameters: "
        + (", ".join(f"`{k}={v}`" for k, v in params.items()) or "none") + ".",
        "Full training configuration (MG arm; the no-MG arm has `mg.enabled = false`):",
        "```json\n" + json.dumps(block["configuration"]["train_config"], indent=1) + "\n```",
        f"### Test metrics over seeds (mean ± sd, ddof = 1), configuration {rank}",
        _table(["Metric", "no MG", "MG", "MG − no MG", f"{card['protocol']['confidence']:.0%} CI", "p", "Verdict"],
               summary),
        f"### Per-seed runs, configuration {rank}",
        _table(["Seed", "Arm", "Status", "Epochs", "Best epoch", "s/epoch", "Peak MiB", *(f"test {n}" for n in shown)],
               runs),
        f"Seconds per epoch (median training time of an epoch): no MG {_pm(res['seconds_per_epoch']['nomg'])}, "
        f"MG {_pm(res['seconds_per_epoch']['mg'])}. Peak memory (MiB; GPU: allocated, CPU: resident set of the "
        f"run's process): no MG {_pm(res['peak_memory_mb']['nomg'], 1)}, MG {_pm(res['peak_memory_mb']['mg'], 1)}.",
    ]


def _published_md(card: dict[str, Any]) -> str:
    pub = card["published"]
    if not pub["comparison"]:
        return pub["note"] + "."
    rows = [[p["source"], _ARM_LABEL[p["arm"]], p["metric"], _f(p["published"]), _pm(p["ours"]) if p["ours"] else "—"]
            for p in pub["comparison"]]
    sources = [f"- `{k}`: {s['title']}; {s['url']}" for k, s in pub["sources"].items()]
    return "\n\n".join([
        "Ours: configuration 1, test metrics, mean ± sd over the seeds of the same arm. Published numbers are "
        "copied from their sources; their data splits and budgets may differ from this study's.",
        _table(["Source", "Arm", "Metric", "Published", "Ours"], rows),
        "Sources:\n" + "\n".join(sources),
    ])


def _kv_table(d: dict[str, Any]) -> str:
    return _table(["Field", "Value"], [[k, _s(v)] for k, v in d.items()])


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def _s(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    return str(value)


def _f(value: float | None) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{value:.4f}"


def _signed(value: float | None) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{value:+.4f}"


def _p(value: float | None) -> str:
    return "—" if value is None else f"{value:.3g}"


def _pm(stats: dict[str, Any] | ArmStats, digits: int = 4) -> str:
    d = stats.as_dict() if isinstance(stats, ArmStats) else stats
    if d["mean"] is None:
        return "—"
    sd = f" ± {d['sd']:.{digits}f}" if d["sd"] is not None else ""
    return f"{d['mean']:.{digits}f}{sd} (n={d['n']})"
