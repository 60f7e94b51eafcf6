"""Reproduction cards as data: what ``<out>/<model>-<dataset>-card.json`` holds (`mgtune.report.card`
renders it as Markdown and writes both files).

A card holds what someone needs to rerun a result and judge it: the configuration, the seeds, the
protocol, the environment, every run's metrics, peak memory and seconds per epoch, the compute
spent (study + confirmation), the MG vs no-MG statistics and, for the datasets the published tables
cover, the published numbers next to ours. Everything comes from the confirmation's record
(`mgtune.store.confirmation`): the full training settings and the environment were recorded when the
runs happened, so writing a card needs no torch. The published numbers live in ``published.json``
beside this module (data, not code), each with its source.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from mgtune.store import METRICS, metric_names, now
from mgtune.store.confirmation import ARMS, SELECTION, ConfigResult, Confirmation
from mgtune.store.robustness import robustness_summary
from mgtune.store.stats import CONFIDENCE, TEST_NAME

__all__ = ["build_card", "published_results", "published_data", "published_datasets"]

_NOT_RECORDED = "not recorded (confirmed by an mgtune that did not record it)"


# ---------------------------------------------------------------- the card as data
@cache
def published_data() -> dict[str, Any]:
    """``published.json``: ``datasets`` (those its sources cover), ``sources`` (title, url) and ``results`` rows."""
    return json.loads(resources.files("mgtune.report").joinpath("published.json").read_text(encoding="utf-8"))


def published_datasets() -> tuple[str, ...]:
    """The datasets the published tables cover (Amazon's baby, sports, clothing and elec)."""
    return tuple(published_data()["datasets"])


def published_results(model: str, dataset: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The sources and the published rows (``{source, dataset, model, mg, metrics}``) for ``model`` on ``dataset``."""
    doc = published_data()
    rows = [r for r in doc["results"] if r["model"] == model.lower() and r["dataset"] == dataset.lower()]
    return {k: v for k, v in doc["sources"].items() if any(r["source"] == k for r in rows)}, rows


def build_card(conf: Confirmation) -> dict[str, Any]:
    """The card as a JSON-able dict; every configuration of the confirmation gets its block."""
    meta = conf.meta
    results = conf.results()
    head = results[0]
    base = _train_config(conf, head) or {}
    devices = sorted({r["device"] for r in conf.rows if r.get("device")})
    return {
        "card": "mgtune reproduction card",
        "created": now(),
        "model": meta.model,
        "dataset": meta.dataset,
        "study": {"name": conf.study_dir.name, "path": str(conf.study_dir), "trials": len(conf.study_rows),
                  "selection_metric": f"valid_{conf.metric}", "search_space": meta.search_space,
                  "seed": meta.seed, "mg": meta.mg},
        "selection": SELECTION.format(metric=conf.metric),
        "seeds": conf.seeds,
        "seed_rule": conf.info.get("seed_rule"),
        "protocol": {
            "batch_size": base.get("batch_size", _NOT_RECORDED),
            "eval_batch_size": base.get("eval_batch_size", _NOT_RECORDED),
            "max_epochs": meta.max_epochs, "early_stopping_patience": base.get("patience", _NOT_RECORDED),
            "early_stopping": (f"stop once more than {base.get('patience', '(not recorded)')} epochs in a row fail to "
                               f"improve validation {conf.metric}; test metrics are those of the best validation "
                               "epoch"),
            "validation_metric": conf.metric, "cutoffs": list(conf.topk), "metrics": list(METRICS),
            "evaluation": "full ranking of all items, each user's training items excluded",
            "arms": conf.info.get("arms"),
            "pairing": "by seed (both arms of a seed share initialisation and batch order)",
            "test": TEST_NAME, "confidence": CONFIDENCE,
        },
        "environment": {**conf.info.get("environment", {"recorded": _NOT_RECORDED}), "devices": devices},
        "verdict": {"configuration": head.candidate.rank, "metric": f"test_{conf.metric}", "verdict": head.verdict,
                    **{k: v for k, v in head.tests[conf.metric].as_dict().items() if k != "verdict"}},
        "configurations": [_config_block(conf, r) for r in results],
        "compute": {
            "study_trials": len(conf.study_rows), "study_seconds": round(conf.study_seconds, 1),
            "confirmation_runs": len(conf.rows), "confirmation_seconds": round(conf.seconds, 1),
            "total_seconds": round(conf.study_seconds + conf.seconds, 1),
            "note": ("wall seconds of each trial or run from the start of its trial function (Ray worker start-up "
                     "not counted), summed; concurrent runs overlap in time"),
        },
        "published": _published_block(meta.model, meta.dataset, head),
        "robustness": _robustness_block(conf),
    }


def _robustness_block(conf: Confirmation) -> dict[str, Any] | None:
    """``mgtune robustness``'s figures for this study, when it has them (None otherwise)."""
    return robustness_summary(conf.study_dir)


def _train_config(conf: Confirmation, result: ConfigResult) -> dict[str, Any] | None:
    """The configuration's full training settings (without the seed: one per run), as the confirmation
    recorded them; None for a confirmation that did not record them."""
    recorded = conf.info.get("train_configs")
    return recorded.get(result.candidate.trial_id) if isinstance(recorded, dict) else None


def _config_block(conf: Confirmation, result: ConfigResult) -> dict[str, Any]:
    train_config = _train_config(conf, result) or _NOT_RECORDED
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
    if dataset.lower() not in published_datasets():
        return {"note": f"Published numbers are kept for the Amazon datasets {', '.join(published_datasets())} only",
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
