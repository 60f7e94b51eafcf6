"""Report layer: best configuration per model, MG vs no-MG, and an HTML page with plots.

Reads study folders written by `mgtune run` (see `load`); needs no Ray. Optuna and matplotlib are
imported only while the HTML page is drawn.
"""

from mgtune.report.build import build_report
from mgtune.report.load import Study, find_studies, load_study, parse_cutoffs, parse_metric

__all__ = ["build_report", "find_studies", "load_study", "parse_cutoffs", "parse_metric", "Study"]
