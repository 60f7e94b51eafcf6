"""Report layer: best configuration per model, MG vs no-MG, and an HTML page with plots.

Reads what `mgtune run`, ``confirm`` and ``robustness`` left on disk through `mgtune.store` only; needs
neither torch nor Ray. Optuna and matplotlib are imported only while the HTML page is drawn. Also here:
reproduction cards (`card`, with their data in `card_data`).
"""

from mgtune.report.build import ReportSettings, build_report
from mgtune.report.card import rewrite_card, write_card
from mgtune.report.load import Study, find_studies, load_study, parse_cutoffs, parse_metric
from mgtune.report.robustness import write_robustness_report

__all__ = ["ReportSettings", "build_report", "write_card", "rewrite_card", "write_robustness_report", "find_studies",
           "load_study", "parse_cutoffs", "parse_metric", "Study"]
