"""`build_report`: study folders in, ``<out>/<dataset>.{md,csv,html}`` out, replaced atomically."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mgtune.checks import check_writable_dir
from mgtune.errors import ConfigError
from mgtune.files import storage_errors
from mgtune.options import option
from mgtune.report.confirmed import find_confirmed
from mgtune.report.html import render_html
from mgtune.report.load import Study, find_studies, load_study, parse_cutoffs, parse_metric
from mgtune.report.markdown import render_markdown
from mgtune.report.paper import paper_markdown, paper_table
from mgtune.report.robustness import robustness_sections
from mgtune.report.tables import compare, group_studies, render_csv
from mgtune.store import RESULTS_FILE, ROBUST_DIR, SuiteRecord, is_suite

__all__ = ["ReportSettings", "build_report"]


@dataclass(frozen=True)
class ReportSettings:
    """``mgtune report``."""

    run_dirs: tuple[str, ...] = option((), flag="", metavar="RUN_DIR", repeat=True, default_text="all studies under "
                                       "--storage", help="study or suite folders")
    storage: str = option("runs", help="where to look for study folders when none are given")
    out: str = option("reports", help="writes <out>/<dataset>.md, .csv and .html")
    metric: str = option("recall@20", help="validation metric that picks the best trial")
    k: tuple[int, ...] | None = option(None, parse=parse_cutoffs, default_text="5,10,20; 5,10,20,50 for a suite",
                                       help="cutoffs of the test metrics shown, comma-separated")

    def __post_init__(self) -> None:
        check_writable_dir("--out", self.out)
        parse_metric(self.metric)

    def build(self) -> list[Path]:
        """`build_report` over the folders given, else every study under ``storage``."""
        dirs = [Path(d) for d in self.run_dirs] or find_studies(self.storage)
        return build_report(dirs, Path(self.out), metric=self.metric, ks=self.k)


def build_report(study_dirs: Sequence[Path], out_dir: Path, metric: str = "recall@20",
                 ks: Sequence[int] | None = None) -> list[Path]:
    """Write one Markdown, CSV and HTML report per dataset found in ``study_dirs``; return their paths.

    A suite folder (``suite.json``, `mgtune.store.suite`) stands for its finished studies, and
    its pages lead with the paper's table (`mgtune.report.paper`). ``ks``: the test cutoffs shown,
    by default 5, 10, 20 (and 50 with a suite, the seed's table).
    Every page is rendered in memory first, so bad input (a `ConfigError` or `DataFormatError`)
    leaves ``out_dir`` exactly as it was; the files then replace any old ones atomically.
    """
    out_dir = Path(out_dir)
    parse_metric(metric)
    study_dirs, suites = _expand_suites(study_dirs)
    suite = bool(suites)
    if ks is None:
        ks = (5, 10, 20, 50) if suite else (5, 10, 20)
    ks = tuple(dict.fromkeys(ks))
    if not ks or any(k < 1 for k in ks):
        raise ConfigError(f"cutoffs must be positive integers, got {list(ks)}")
    if not study_dirs:
        raise ConfigError("no study folders given")
    unique: dict[Path, Path] = {}  # each folder once, as the caller spelled it first
    for d in study_dirs:
        unique.setdefault(Path(d).resolve(), Path(d))
    studies = [load_study(d, metric, ks) for d in unique.values()]

    by_dataset: dict[str, list[Study]] = {}
    for study in studies:
        by_dataset.setdefault(study.dataset, []).append(study)
    pages: dict[Path, str] = {}
    for dataset, members in sorted(by_dataset.items()):
        groups = group_studies(members, metric, ks)
        comparisons = compare(groups)
        stem = _safe_name(dataset)
        confirmed = find_confirmed(groups)  # reads every confirmation once, for both pages
        failed = [f"`{s.name}`: {s.reason or 'failed'}" for r in suites if r.dataset == dataset
                  for s in r.studies if s.state == "failed"]
        lead = paper_markdown(dataset, comparisons, confirmed, ks, failed) if suite else []
        table = paper_table(dataset, comparisons, confirmed, ks) if suite and comparisons else None
        pages[out_dir / f"{stem}.md"] = (render_markdown(dataset, groups, comparisons, metric, ks, confirmed, lead)
                                         + _robustness(members))
        pages[out_dir / f"{stem}.csv"] = render_csv(groups, comparisons, metric, ks)
        pages[out_dir / f"{stem}.html"] = render_html(dataset, groups, comparisons, metric, ks, confirmed, table)
    _replace_all(pages)
    return list(pages)


def _robustness(members: Sequence[Study]) -> str:
    """The robustness sections of the studies that have ``mgtune robustness`` results ("" if none)."""
    done = [s.path for s in members if (s.path / ROBUST_DIR / RESULTS_FILE).is_file()]
    if not done:
        return ""
    return robustness_sections(done)


def _expand_suites(dirs: Sequence[Path]) -> tuple[list[Path], list[SuiteRecord]]:
    """Each suite folder replaced by its finished studies; the suites' records."""
    out: list[Path] = []
    suites = []
    for d in dirs:
        if not is_suite(d):
            out.append(Path(d))
            continue
        record = SuiteRecord.read(d)
        finished = [Path(d) / s.name for s in record.studies if s.state == "finished"]
        if not finished:
            raise ConfigError(f"{d}: no study of this suite has finished yet")
        out += finished
        suites.append(record)
    return out, suites


def _safe_name(dataset: str) -> str:
    if not dataset or dataset in (".", "..") or any(c in dataset for c in "/\\\0"):
        raise ConfigError(f"dataset name {dataset!r} cannot name a report file")
    return dataset


def _replace_all(pages: dict[Path, str]) -> None:
    """Stage every page as a temp file beside its target, then ``os.replace`` them all.

    A failure while staging removes the temp files and leaves every existing report as it was.
    """
    staged: list[tuple[Path, Path]] = []
    try:
        for target, text in pages.items():
            with storage_errors(target, "every report page is as it was", create=True):
                target.parent.mkdir(parents=True, exist_ok=True)
                fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
                staged.append((Path(name), target))
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    fh.write(text)
                os.chmod(name, 0o644)  # mkstemp makes 0600; reports are meant to be shared
    except BaseException:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        raise
    for tmp, target in staged:
        os.replace(tmp, target)
