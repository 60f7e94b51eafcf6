"""`import mgtune.study` stays cheap: Ray and Optuna load only when a study runs."""

from __future__ import annotations

import subprocess
import sys


def test_import_study_imports_no_ray_or_optuna() -> None:
    code = ("import sys, mgtune.study, mgtune.study.trainable, mgtune.store; "
            "print(sorted(m for m in ('ray', 'optuna') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
