"""Get MovieLens 100K (ml-100k) as RecBole atomic files, out of RecBole's wheel on PyPI, without installing RecBole.

Usage: python benchmarks/real_data.py --out DIR [--cache DIR]   # DIR gets ml-100k.inter, .item, .user
       python benchmarks/real_data.py --fetch-only [--cache DIR]  # only fill the cache (CI does, before the tests)

The data: F. Maxwell Harper and Joseph A. Konstan. 2015. The MovieLens Datasets: History and
Context. ACM Transactions on Interactive Intelligent Systems (TiiS) 5, 4, Article 19
(https://doi.org/10.1145/2827872). 100,000 ratings (1-5) of 1,682 movies by 943 users, with titles,
release years and genres. GroupLens' licence forbids redistributing it, so mgtune never commits
it: this script fetches a public copy. RecBole ships ml-100k in its atomic format inside its wheel
(``recbole/dataset_example/ml-100k/``), so ``pip download recbole==1.2.1 --no-deps`` (2 MB, the
wheel only: nothing is installed, and RecBole is never imported) gets it from PyPI; its SHA-256 is
checked, and the three files are read straight out of the wheel with `zipfile`.

The wheel is cached (default ``~/.cache/mgtune/recbole``, or ``$MGTUNE_RECBOLE_CACHE``) and not
downloaded again while it is there and intact. Then::

    mgtune data prepare --recbole DIR          # dataset "ml-100k": 943 users, 1,349 items after the 5-core
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

RECBOLE = "recbole==1.2.1"
WHEEL = "recbole-1.2.1-py3-none-any.whl"
WHEEL_SHA256 = "9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407"  # PyPI's file
MEMBER = "recbole/dataset_example/ml-100k/ml-100k.{}"
SUFFIXES = ("inter", "item", "user")


class FetchError(Exception):
    """The wheel could not be had (no network and no cache, a changed file); the message says why."""


def default_cache() -> Path:
    return Path(os.environ.get("MGTUNE_RECBOLE_CACHE") or "~/.cache/mgtune/recbole").expanduser()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fetch_wheel(cache_dir: Path | None = None) -> Path:
    """The RecBole wheel in ``cache_dir``, downloaded by pip only when it is not there intact."""
    cache = cache_dir or default_cache()
    wheel = cache / WHEEL
    if wheel.is_file() and _sha256(wheel) == WHEEL_SHA256:
        return wheel
    wheel.unlink(missing_ok=True)  # absent, or a truncated or different file
    cache.mkdir(parents=True, exist_ok=True)
    try:
        run = subprocess.run([sys.executable, "-m", "pip", "download", RECBOLE, "--no-deps", "--only-binary=:all:",
                              "-d", str(cache), "--disable-pip-version-check", "-q"],
                             capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        raise FetchError(f"pip download {RECBOLE} took over 300 s") from None
    if run.returncode != 0 or not wheel.is_file():
        last = (run.stderr.strip().splitlines() or ["no output"])[-1]
        raise FetchError(f"pip download {RECBOLE} failed ({last})")
    if _sha256(wheel) != WHEEL_SHA256:
        wheel.unlink()
        raise FetchError(f"{WHEEL} from pip has an unexpected SHA-256 (not {WHEEL_SHA256})")
    return wheel


def fetch_ml100k(cache_dir: Path | None = None, out: Path | None = None) -> Path:
    """The folder holding ``ml-100k.inter``, ``.item`` and ``.user``: ``out``, or ``<cache>/ml-100k``."""
    wheel = fetch_wheel(cache_dir)
    folder = out or (cache_dir or default_cache()) / "ml-100k"
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as zf:
        for suffix in SUFFIXES:
            (folder / f"ml-100k.{suffix}").write_bytes(zf.read(MEMBER.format(suffix)))
    return folder


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, help="folder to write ml-100k.inter, .item and .user into")
    p.add_argument("--cache", type=Path, help="where the wheel is kept (default ~/.cache/mgtune/recbole)")
    p.add_argument("--fetch-only", action="store_true", help="only download the wheel into the cache")
    args = p.parse_args()
    if not args.fetch_only and args.out is None:
        p.error("give --out DIR, or --fetch-only")
    try:
        if args.fetch_only:
            print(f"wheel: {fetch_wheel(args.cache)}")
        else:
            print(f"ml-100k: {fetch_ml100k(args.cache, args.out)}")
    except FetchError as exc:
        print(f"real_data: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
