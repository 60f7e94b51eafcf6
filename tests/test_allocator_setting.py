"""`import mgtune` turns on torch's huge-page allocations unless the user has decided otherwise."""

import os
import subprocess
import sys


def _setting_after_import(env: dict[str, str]) -> str:
    code = "import os, mgtune; print(os.environ['THP_MEM_ALLOC_ENABLE'])"
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return proc.stdout.strip()


def test_huge_pages_on_by_default_and_the_user_wins() -> None:
    env = {k: v for k, v in os.environ.items() if k != "THP_MEM_ALLOC_ENABLE"}
    assert _setting_after_import(env) == "1"
    assert _setting_after_import({**env, "THP_MEM_ALLOC_ENABLE": "0"}) == "0"
