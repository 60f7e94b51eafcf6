"""Reproduction cards: ``<out>/<model>-<dataset>-card.md`` and ``.json`` from a confirmation.

The card's data is `mgtune.report.card_data.build_card`'s (a JSON-able dict); this module renders it as
Markdown with the report's table helpers and writes both files.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from mgtune.errors import ConfigError
from mgtune.files import write_json, write_text
from mgtune.report.card_data import build_card
from mgtune.report.robustness import robustness_md
from mgtune.report.tables import Table, mean_sd, signed, to_markdown
from mgtune.store.confirmation import Confirmation, load_confirmation

__all__ = ["write_card", "rewrite_card", "render_card", "card_stem"]

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


def rewrite_card(study_dir: Path, out_dir: Path) -> list[Path]:
    """The card of the study's confirmation written again (say, with the robustness figures since); [] without one."""
    conf = load_confirmation(study_dir)
    return write_card(conf, out_dir) if conf is not None else []


def render_card(card: dict[str, Any]) -> str:
    model, dataset = card["model"].upper(), card["dataset"]
    v = card["verdict"]
    parts = [
        f"# Reproduction card: {model} on {dataset}",
        f"**Verdict** ({v['metric']}, configuration {v['configuration']}): **{v['verdict']}**. "
        f"MG − no MG = {signed(v['mean'])}, {v['confidence']:.0%} CI [{signed(v['ci_low'])}, "
        f"{signed(v['ci_high'])}], p = {_p(v['p_value'])} ({card['protocol']['test']}; n = {v['n']} seeds). "
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
    if card.get("robustness"):  # after `mgtune robustness`
        parts += ["## Robustness", robustness_md(card["robustness"], card["robustness"]["curves"])]
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
    summary = [[name, mean_sd(s["nomg"]), mean_sd(s["mg"]), signed(s["difference"]["mean"]),
                f"[{signed(s['difference']['ci_low'])}, {signed(s['difference']['ci_high'])}]",
                _p(s["difference"]["p_value"]), s["difference"]["verdict"]]
               for name, s in block["summary"].items()]
    return [
        f"## Configuration {rank}: trial `{block['source_trial']}` (verdict: {block['verdict']})",
        f"Study validation {card['protocol']['validation_metric']}: "
        f"{_f(block['study_valid_' + card['protocol']['validation_metric']])}. Sampled parameters: "
        + (", ".join(f"`{k}={v}`" for k, v in params.items()) or "none") + ".",
        "Full training configuration (MG arm; the no-MG arm has `mg.enabled = false`):",
        "```json\n" + json.dumps(block["configuration"]["train_config"], indent=1) + "\n```",
        f"### Test metrics over seeds (mean ± sd, ddof = 1), configuration {rank}",
        _table(["Metric", "no MG", "MG", "MG − no MG", f"{card['protocol']['confidence']:.0%} CI", "p", "Verdict"],
               summary),
        f"### Per-seed runs, configuration {rank}",
        _table(["Seed", "Arm", "Status", "Epochs", "Best epoch", "s/epoch", "Peak MiB", *(f"test {n}" for n in shown)],
               runs),
        f"Seconds per epoch (median training time of an epoch): no MG {mean_sd(res['seconds_per_epoch']['nomg'])}, "
        f"MG {mean_sd(res['seconds_per_epoch']['mg'])}. Peak memory (MiB; GPU: allocated, CPU: resident set of the "
        f"run's process): no MG {mean_sd(res['peak_memory_mb']['nomg'], 1)}, "
        f"MG {mean_sd(res['peak_memory_mb']['mg'], 1)}.",
    ]


def _published_md(card: dict[str, Any]) -> str:
    pub = card["published"]
    if not pub["comparison"]:
        return pub["note"] + "."
    rows = [[p["source"], _ARM_LABEL[p["arm"]], p["metric"], _f(p["published"]),
             mean_sd(p["ours"]) if p["ours"] else "—"] for p in pub["comparison"]]
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
    return to_markdown(Table(header, rows))


def _s(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    return str(value)


def _f(value: float | None) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{value:.4f}"



def _p(value: float | None) -> str:
    return "—" if value is None else f"{value:.3g}"

