"""A hostile pass over the data layer (issue 23): bad files, bad options, odd file types, through the command line.

Every case runs ``mgtune data prepare``/``synth``/``train`` on a data folder that already holds a dataset ``keep``
(prepared cases replace it with ``--force``) and must end with exactly one line ``mgtune: error: <file or
option>: <problem>``, exit code 2, ``keep`` untouched and nothing else left in the data folder. A few inputs
that look odd but are fine (CRLF line ends, a byte-order mark, float16 or Fortran-ordered arrays) are
documented successes, and give the same dataset as the plain input.
"""

from __future__ import annotations

import gzip
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from data_faults import item_ids, no_hang, one_error, state, write_log
from disk_faults import read_only_bind

from mgtune.cli import main


@dataclass
class Env:
    """A case's folder: ``log.csv`` (a good log), ``ids.txt`` (the 30 item ids), and the data folder."""

    tmp: Path
    data: Path

    @property
    def log(self) -> Path:
        return self.tmp / "log.csv"

    @property
    def ids(self) -> Path:
        return self.tmp / "ids.txt"

    def prepare(self, *extra: str, log: Path | None = None, name: str = "keep") -> list[str]:
        return ["data", "prepare", "--interactions", str(log or self.log), "--name", name, "--data-dir",
                str(self.data), "--force", *extra]

    def text(self, name: str, text: str | bytes) -> Path:
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
        return path

    def npy(self, array: np.ndarray, name: str = "f.npy", ids: Path | None = None) -> list[str]:
        np.save(self.tmp / name, array, allow_pickle=True)
        return ["--image-features", str(self.tmp / name), "--image-ids", str(ids or self.ids)]

    def recbole(self, inter: str | bytes | None = None, item: str | bytes | None = None,
                name: str = "films") -> list[str]:
        folder = self.tmp / name
        folder.mkdir(exist_ok=True)
        log = pd.read_csv(self.log)
        inter = inter if inter is not None else "user_id:token\titem_id:token\ttimestamp:float\n" + "".join(
            f"{r.user_id}\t{r.item_id}\t{r.timestamp}\n" for r in log.itertuples())
        self.text(f"{name}/{name}.inter", inter)
        if item is not None:
            self.text(f"{name}/{name}.item", item)
        return ["data", "prepare", "--recbole", str(folder), "--name", "keep", "--data-dir", str(self.data), "--force"]

    def train(self, dataset: str = "keep") -> list[str]:
        return ["train", "--model", "vbpr", "--dataset", dataset, "--data-dir", str(self.data), "--epochs", "1",
                "--out", str(self.tmp / "out")]


Case = Callable[[Env], list[str]]
CASES: dict[str, tuple[Case, str]] = {}


def case(name: str, message: str) -> Callable[[Case], Case]:
    """Register a case: its arguments, and how the error line starts ({tmp}, {data}: the case's folders)."""

    def register(fn: Case) -> Case:
        CASES[name] = (fn, message)
        return fn

    return register


def _log_text(env: Env) -> str:
    return env.log.read_text()


# ---------------------------------------------------------------- the interactions file
@case("duplicate header names", "{tmp}/dup.csv: the header names column 'user_id' twice")
def _(env: Env) -> list[str]:
    return env.prepare(log=env.text("dup.csv", _log_text(env).replace("item_id", "user_id", 1)))


@case("header only", "{tmp}/head.csv: no interaction rows (the header has 'user_id', 'item_id')")
def _(env: Env) -> list[str]:
    return env.prepare(log=env.text("head.csv", "user_id,item_id\n"))


@case("NUL byte", "{tmp}/nul.csv: interactions file has a NUL byte on line 3: binary data, not text")
def _(env: Env) -> list[str]:
    lines = _log_text(env).splitlines(keepends=True)
    return env.prepare(log=env.text("nul.csv", "".join(lines[:2]) + "user\x001,item00,5,1\n" + "".join(lines[2:])))


@case("Latin-1 text", "{tmp}/latin.csv: interactions file is not UTF-8 text (line 2: invalid continuation byte); "
      "save it as UTF-8")
def _(env: Env) -> list[str]:
    return env.prepare(log=env.text("latin.csv", _log_text(env).replace("user0,", "us\xe9r0,", 1).encode("latin-1")))


@case("a row longer than the header", "{tmp}/long.csv: a row has more cells than there are columns")
def _(env: Env) -> list[str]:
    return env.prepare(log=env.text("long.csv", "user_id,item_id\n" + "".join(f"u{u},i{i},x\n" for u in range(6)
                                                                             for i in range(6))))


@case("0-byte file", "{tmp}/empty.csv: interactions file is empty")
def _(env: Env) -> list[str]:
    return env.prepare(log=env.text("empty.csv", ""))


@case("a .parquet that is CSV", "{tmp}/log.parquet: unreadable parquet file (")
def _(env: Env) -> list[str]:
    return env.prepare(log=env.text("log.parquet", _log_text(env)))


@case(".csv.gz that is not gzip", "{tmp}/log.csv.gz: interactions file is not gzip data, though its name ends in .gz")
def _(env: Env) -> list[str]:
    return env.prepare(log=env.text("log.csv.gz", _log_text(env)))


@case("truncated .csv.gz", "{tmp}/cut.csv.gz: interactions file is a truncated gzip file")
def _(env: Env) -> list[str]:
    return env.prepare(log=env.text("cut.csv.gz", gzip.compress(_log_text(env).encode())[:-40]))


@case("a folder", "{tmp}/dir.csv: interactions file is a folder, not a regular file")
def _(env: Env) -> list[str]:
    (env.tmp / "dir.csv").mkdir()
    return env.prepare(log=env.tmp / "dir.csv")


@case("a symbolic link loop", "{tmp}/loop.csv: interactions file is a symbolic link loop")
def _(env: Env) -> list[str]:
    (env.tmp / "loop.csv").symlink_to(env.tmp / "loop2.csv")
    (env.tmp / "loop2.csv").symlink_to(env.tmp / "loop.csv")
    return env.prepare(log=env.tmp / "loop.csv")


@case("a broken link", "{tmp}/gone.csv: interactions file is a symbolic link to {tmp}/nothing.csv, which does not "
      "exist")
def _(env: Env) -> list[str]:
    (env.tmp / "gone.csv").symlink_to(env.tmp / "nothing.csv")
    return env.prepare(log=env.tmp / "gone.csv")


@case("a character device", "{tmp}/zero.csv: interactions file is a character device, not a regular file (reading "
      "it might never end)")
def _(env: Env) -> list[str]:
    (env.tmp / "zero.csv").symlink_to("/dev/zero")
    return env.prepare(log=env.tmp / "zero.csv")


@case("unknown suffix", "{tmp}/log.xlsx: unknown interactions file type '.xlsx'")
def _(env: Env) -> list[str]:
    return env.prepare(log=env.text("log.xlsx", _log_text(env)))


@case("user and item the same column", "{tmp}/log.csv: the user and item columns are both 'item_id'")
def _(env: Env) -> list[str]:
    return env.prepare("--user-col", "item_id")


@case("JSON lines of arrays", "{tmp}/arrays.jsonl: JSON lines must be one object per line")
def _(env: Env) -> list[str]:
    return env.prepare(log=env.text("arrays.jsonl", "".join(f'["u{u}", "i{i}"]\n' for u in range(6)
                                                            for i in range(6))))


@case("an object as a user id", "{tmp}/obj.jsonl: column 'user_id' holds a dict on data row 1 ({{'name': 'u0'}}); "
      "an id is one value")
def _(env: Env) -> list[str]:
    return env.prepare(log=env.text("obj.jsonl", "".join(f'{{"user_id": {{"name": "u{u}"}}, "item_id": "i{i}"}}\n'
                                                         for u in range(6) for i in range(6))))


def _first_row(env: Env, name: str, row: str) -> Path:
    """The good log with its first data row replaced by ``row``."""
    lines = _log_text(env).splitlines(keepends=True)
    return env.text(name, lines[0] + row + "\n" + "".join(lines[2:]))


@case("rating 1e400", "{tmp}/big.csv: column 'rating' must hold finite numbers, got '1e400' on data row 1")
def _(env: Env) -> list[str]:
    return env.prepare(log=_first_row(env, "big.csv", "user0,item00,1e400,1000"))


@case("rating 'nan'", "{tmp}/nan.csv: column 'rating' must hold numbers, got 'nan' on data row 1")
def _(env: Env) -> list[str]:
    return env.prepare(log=_first_row(env, "nan.csv", "user0,item00,nan,1000"))


# ---------------------------------------------------------------- names and options
@case("a unicode dataset name", "--name must be a plain name")
def _(env: Env) -> list[str]:
    return env.prepare(name="données")


@case("a 200-character name", "--name must be a plain name")
def _(env: Env) -> list[str]:
    return env.prepare(name="n" * 200)


@case("name '..'", "--name must be a plain name")
def _(env: Env) -> list[str]:
    return env.prepare(name="..")


@case("--core 0", "--core must be >= 1 and <= 2147483647, got 0")
def _(env: Env) -> list[str]:
    return env.prepare("--core", "0")


@case("--core 2**40", "--core must be >= 1 and <= 2147483647, got 1099511627776")
def _(env: Env) -> list[str]:
    return env.prepare("--core", str(2**40))


@case("--seed 2**40", "--seed must be >= 0 and <= 4294967295, got 1099511627776")
def _(env: Env) -> list[str]:
    return env.prepare("--seed", str(2**40))


@case("--text-columns ''", "--text-columns names no column")
def _(env: Env) -> list[str]:
    items = env.text("items.csv", "item_id,title\n" + "".join(f"{i},thing {i}\n" for i in item_ids()))
    return env.prepare("--item-text", str(items), "--text-columns", "")


@case("--data-dir under a file", "--data-dir {tmp}/a-file/sub: {tmp}/a-file is a file, not a folder")
def _(env: Env) -> list[str]:
    env.text("a-file", "x")
    return [a if a != str(env.data) else str(env.tmp / "a-file" / "sub") for a in env.prepare()]


# ---------------------------------------------------------------- feature files
@case("an id list one short", "{tmp}/short.txt: 29 ids for the 30 rows of {tmp}/f.npy")
def _(env: Env) -> list[str]:
    return env.prepare(*env.npy(np.ones((30, 4)), ids=env.text("short.txt", "\n".join(item_ids()[:-1]))))


@case("an id list one long", "{tmp}/long.txt: 31 ids for the 30 rows of {tmp}/f.npy")
def _(env: Env) -> list[str]:
    return env.prepare(*env.npy(np.ones((30, 4)), ids=env.text("long.txt", "\n".join([*item_ids(), "extra"]))))


@case("a complex .npy", "{tmp}/f.npy: expected a 2-d array of numbers [n, d], got complex128 of shape (30, 4)")
def _(env: Env) -> list[str]:
    return env.prepare(*env.npy(np.ones((30, 4), dtype=complex)))


@case("a 1-d .npy", "{tmp}/f.npy: expected a 2-d array of numbers [n, d], got float64 of shape (30,)")
def _(env: Env) -> list[str]:
    return env.prepare(*env.npy(np.ones(30)))


@case("a 3-d .npy", "{tmp}/f.npy: expected a 2-d array of numbers [n, d], got float64 of shape (30, 2, 2)")
def _(env: Env) -> list[str]:
    return env.prepare(*env.npy(np.ones((30, 2, 2))))


@case("an object .npy", "{tmp}/f.npy: unreadable .npy file (ValueError: Array can't be memory-mapped: Python "
      "objects in dtype.)")
def _(env: Env) -> list[str]:
    return env.prepare(*env.npy(np.array([[{"a": 1}] * 4] * 30, dtype=object)))


@case("a 0-byte .npy", "{tmp}/zero.npy: unreadable .npy file (EOFError: ")
def _(env: Env) -> list[str]:
    env.text("zero.npy", b"")
    return env.prepare("--image-features", str(env.tmp / "zero.npy"), "--image-ids", str(env.ids))


@case("a .npy with a huge header", "{tmp}/huge.npy: unreadable .npy file (ValueError: Header info length")
def _(env: Env) -> list[str]:
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (30, 4), 'x': '" + "y" * 20_000 + "'}"
    header += " " * (-(len(header) + 11) % 64) + "\n"
    env.text("huge.npy", b"\x93NUMPY\x02\x00" + len(header).to_bytes(4, "little") + header.encode() + bytes(480))
    return env.prepare("--image-features", str(env.tmp / "huge.npy"), "--image-ids", str(env.ids))


@case("a .npy cut short", "{tmp}/cut.npy: unreadable .npy file (ValueError: ")
def _(env: Env) -> list[str]:
    np.save(env.tmp / "cut.npy", np.ones((30, 4)))
    env.text("cut.npy", (env.tmp / "cut.npy").read_bytes()[:-100])
    return env.prepare("--image-features", str(env.tmp / "cut.npy"), "--image-ids", str(env.ids))


@case("a .npy of 0 columns", "{tmp}/f.npy: rows have no feature values")
def _(env: Env) -> list[str]:
    return env.prepare(*env.npy(np.ones((30, 0))))


@case("feature ids all unknown", "{tmp}/f.npy: none of its 30 ids matches an item of the interactions")
def _(env: Env) -> list[str]:
    return env.prepare(*env.npy(np.ones((30, 4)), ids=env.text("other.txt", "\n".join(f"x{i}" for i in range(30)))))


@case("feature CSV with a NUL byte", "{tmp}/f.csv: feature file has a NUL byte on line 2: binary data, not text")
def _(env: Env) -> list[str]:
    return env.prepare("--image-features", str(env.text("f.csv", "id,a\nitem00,1\x00\n")))


@case("feature CSV in Latin-1", "{tmp}/f.csv: feature file is not UTF-8 text (line 2: invalid continuation byte)")
def _(env: Env) -> list[str]:
    return env.prepare("--image-features", str(env.text("f.csv", "id,a\nit\xe9m00,1\n".encode("latin-1"))))


@case("feature arrays of words", "{tmp}/f.parquet: feature column 'v' holds arrays that are not all numbers")
def _(env: Env) -> list[str]:
    pd.DataFrame({"id": item_ids(), "v": [["red", "blue"]] * 30}).to_parquet(env.tmp / "f.parquet")
    return env.prepare("--image-features", str(env.tmp / "f.parquet"))


@case("an id list that is a folder", "{tmp}/idsdir: id list is a folder, not a regular file")
def _(env: Env) -> list[str]:
    (env.tmp / "idsdir").mkdir()
    return env.prepare(*env.npy(np.ones((30, 4)), ids=env.tmp / "idsdir"))


@case("a feature cell over the CSV field limit", "{tmp}/f.csv: not a readable table (field larger than field limit")
def _(env: Env) -> list[str]:
    return env.prepare("--image-features", str(env.text("f.csv", "id,a\nitem00," + "1" * 200_000 + "\n")))


@case("unknown feature suffix", "{tmp}/f.bin: unknown feature file type '.bin'")
def _(env: Env) -> list[str]:
    return env.prepare("--image-features", str(env.text("f.bin", "x")))


@case("a CSV feature beyond float32", "{tmp}/f.csv: NaN or infinite feature values in row 1 (id 'item00') (beyond "
      "float32's range, +-3.4e38)")
def _(env: Env) -> list[str]:
    return env.prepare("--image-features", str(env.text("f.csv", "id,a\nitem00,1e39\nitem01,1\n")))


@case("the id list with a BOM and Latin-1", "{tmp}/bom.txt: id list is not UTF-8 text")
def _(env: Env) -> list[str]:
    return env.prepare(*env.npy(np.ones((30, 4)), ids=env.text("bom.txt", b"\xef\xbb\xbf" + "\n".join(
        item_ids()).replace("item29", "\xe9").encode("latin-1"))))


# ---------------------------------------------------------------- RecBole atomic files
@case("RecBole .inter header only", "{tmp}/films/films.inter: no interaction rows")
def _(env: Env) -> list[str]:
    return env.recbole(inter="user_id:token\titem_id:token\n")


@case("RecBole .item of 0 rows", "{tmp}/films/films.item: no item rows, only a header; fill it or remove it")
def _(env: Env) -> list[str]:
    return env.recbole(item="item_id:token\tprice:float\n")


@case("RecBole .item row longer than the header", "{tmp}/films/films.item: a row has more cells than there are "
      "columns")
def _(env: Env) -> list[str]:
    return env.recbole(item="item_id:token\tprice:float\n" + "".join(f"{i}\t1\textra\n" for i in item_ids()))


@case("RecBole .item that is a folder", "{tmp}/films/films.item: atomic file is a folder, not a regular file")
def _(env: Env) -> list[str]:
    argv = env.recbole()
    (env.tmp / "films" / "films.item").mkdir()
    return argv


@case("RecBole .inter in Latin-1", "{tmp}/films/films.inter: atomic file is not UTF-8 text (line 2")
def _(env: Env) -> list[str]:
    return env.recbole(inter="user_id:token\titem_id:token\nusér\ti1\n".encode("latin-1"))


@case("RecBole name that is no plain name", "the dataset name films-é.inter gives (name it with --name) must be a "
      "plain name")
def _(env: Env) -> list[str]:
    argv = env.recbole(name="films-é")
    return [a for a in argv if a not in ("--name", "keep")]


@case("RecBole float field 1e400", "{tmp}/films/films.item: field 'price' must hold numbers, got '1e400' for item "
      "'item00'")
def _(env: Env) -> list[str]:
    return env.recbole(item="item_id:token\tprice:float\n" + "".join(
        f"{i}\t{'1e400' if i == 'item00' else 2}\n" for i in item_ids()))


def _films_item(n_titles: int = 30) -> str:
    return "item_id:token\ttitle:token_seq\tyear:token\n" + "".join(
        f"{i}\tthe film {n % n_titles}\t{1990 + n % 5}\n" for n, i in enumerate(item_ids()))


@case("--text-fields naming a field twice", "--text-fields: names 'title' twice")
def _(env: Env) -> list[str]:
    return [*env.recbole(item=_films_item()), "--text-fields", "title,title"]


@case("--meta-fields with --metadata-slot none", "--meta-fields year and --metadata-slot none: the metadata would be "
      "left out; give one of them")
def _(env: Env) -> list[str]:
    return [*env.recbole(item=_films_item()), "--meta-fields", "year", "--metadata-slot", "none"]


@case("--meta-fields forcing a one-hot of 5000 values", "--meta-fields: {tmp}/films/films.item's field 'title' has "
      "5003 distinct values, and a multi_hot of them would be 5003 columns (at most 4096); give it with --text-fields")
def _(env: Env) -> list[str]:
    item = "item_id:token\ttitle:token_seq\n" + "".join(f"{i}\tw{n}a w{n}b\n" for n, i in enumerate(item_ids()))
    item += "".join(f"x{n}\tv{n}\n" for n in range(4943))  # items no interaction names: their tokens count too
    return [*env.recbole(item=item), "--meta-fields", "title"]


# ---------------------------------------------------------------- item text, Amazon
@case("item text with a NUL byte", "{tmp}/items.csv: item text file has a NUL byte on line 2: binary data, not text")
def _(env: Env) -> list[str]:
    return env.prepare("--item-text", str(env.text("items.csv", "item_id,title\nitem00,a\x00b\n")))


@case("item text 0 bytes", "{tmp}/items.csv: item text file is empty")
def _(env: Env) -> list[str]:
    return env.prepare("--item-text", str(env.text("items.csv", "")))


def _amazon(env: Env) -> list[str]:
    return ["data", "prepare", "--amazon", str(env.tmp / "raw"), "--category", "Baby", "--name", "keep",
            "--data-dir", str(env.data), "--force", "--core", "1"]


@case("Amazon ratings with a fifth column", "{tmp}/raw/ratings_Baby.csv: a row has more cells than there are columns")
def _(env: Env) -> list[str]:
    env.text("raw/ratings_Baby.csv", "A1,B1,5,1400000000,extra\n")
    return _amazon(env)


@case("Amazon image features that are a folder", "{tmp}/raw/image_features_Baby.b: Amazon file is a folder, not a "
      "regular file")
def _(env: Env) -> list[str]:
    env.text("raw/ratings_Baby.csv", "A1,B1,5,1400000000\n")
    (env.tmp / "raw" / "image_features_Baby.b").mkdir()
    return _amazon(env)


# ---------------------------------------------------------------- a dataset folder, read by the loader
def _broken(env: Env, edit: Callable[[Path], None]) -> list[str]:
    folder = env.data / "broken"
    shutil.copytree(env.data / "keep", folder)
    edit(folder)
    return env.train("broken")


@case("loader: .inter names userID twice", "{data}/broken/broken.inter: the header names column userID twice")
def _(env: Env) -> list[str]:
    def edit(folder: Path) -> None:
        (folder / "keep.inter").rename(folder / "broken.inter")
        text = (folder / "broken.inter").read_text().split("\n", 1)
        (folder / "broken.inter").write_text(text[0].replace("itemID", "userID\titemID", 1) + "\n" + "\n".join(
            "0\t" + line if line else line for line in text[1].split("\n")))

    return _broken(env, edit)


@case("loader: image_feat.npy a link loop", "{data}/broken/image_feat.npy: feature file is a symbolic link loop")
def _(env: Env) -> list[str]:
    def edit(folder: Path) -> None:
        (folder / "keep.inter").rename(folder / "broken.inter")
        (folder / "image_feat.npy").unlink()
        (folder / "image_feat.npy").symlink_to(folder / "image_feat.npy")

    return _broken(env, edit)


@case("loader: text_feat.npy a folder", "{data}/broken/text_feat.npy: feature file is a folder, not a regular file")
def _(env: Env) -> list[str]:
    def edit(folder: Path) -> None:
        (folder / "keep.inter").rename(folder / "broken.inter")
        (folder / "text_feat.npy").unlink(missing_ok=True)
        (folder / "text_feat.npy").mkdir()

    return _broken(env, edit)


@case("loader: an object image_feat.npy", "{data}/broken/image_feat.npy: unreadable .npy file (ValueError: Object "
      "arrays cannot be loaded when allow_pickle=False)")
def _(env: Env) -> list[str]:
    def edit(folder: Path) -> None:
        (folder / "keep.inter").rename(folder / "broken.inter")
        np.save(folder / "image_feat.npy", np.array([[None] * 4] * 30, dtype=object), allow_pickle=True)

    return _broken(env, edit)


# ---------------------------------------------------------------- synth
@case("synth: a unicode name", "dataset name must be a plain name")
def _(env: Env) -> list[str]:
    return ["data", "synth", "--preset", "tiny", "--name", "é", "--data-dir", str(env.data)]


@case("synth: --seed 2**40", "seed must be >= 0 and <= 4294967295, got 1099511627776")
def _(env: Env) -> list[str]:
    return ["data", "synth", "--preset", "tiny", "--name", "keep", "--data-dir", str(env.data), "--seed",
            str(2**40), "--force"]


# ---------------------------------------------------------------- the runner
@pytest.fixture(scope="module")
def keep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data folder holding dataset ``keep`` (with image features), made once; cases get copies."""
    root = tmp_path_factory.mktemp("keep")
    write_log(root / "log.csv")
    (root / "ids.txt").write_text("\n".join(item_ids()) + "\n")
    np.save(root / "f.npy", np.random.default_rng(0).random((30, 4), dtype=np.float32))
    assert main(["data", "prepare", "--interactions", str(root / "log.csv"), "--name", "keep", "--data-dir",
                 str(root / "data"), "--image-features", str(root / "f.npy"), "--image-ids", str(root / "ids.txt"),
                 "--text-features", str(root / "f.npy"), "--text-ids", str(root / "ids.txt")]) == 0
    return root


def _env(keep: Path, tmp_path: Path) -> Env:
    shutil.copytree(keep / "data", tmp_path / "data")
    shutil.copy(keep / "log.csv", tmp_path / "log.csv")
    shutil.copy(keep / "ids.txt", tmp_path / "ids.txt")
    return Env(tmp_path, tmp_path / "data")


@pytest.mark.parametrize("name", list(CASES))
def test_a_hostile_input_is_one_line_exit_2_and_nothing_lost(name: str, keep: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    env = _env(keep, tmp_path)
    make, message = CASES[name]
    argv = make(env)
    before = state(env.data)
    capsys.readouterr()
    with no_hang(60):
        assert main(argv) == 2
    got = one_error(capsys.readouterr().err)
    want = message.format(tmp=tmp_path, data=env.data)
    assert got.startswith(want), got
    assert state(env.data) == before  # keep untouched, no temp folder, nothing new
    assert not (tmp_path / "out").exists()


def test_a_read_only_bind_mounted_data_dir_is_one_line(keep: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    env = _env(keep, tmp_path)
    before = state(env.data)
    with read_only_bind(env.data, tmp_path / "ro") as ro:
        synth = ["data", "synth", "--preset", "tiny", "--name", "keep", "--data-dir", str(ro), "--force"]
        for argv in ([str(ro) if a == str(env.data) else a for a in env.prepare()], synth):
            assert main(argv) == 2
            assert one_error(capsys.readouterr().err) == (f"--data-dir {ro}: cannot write in {ro} (Read-only file "
                                                          "system)")
    assert state(env.data) == before


def test_a_folder_that_appears_while_building_is_kept(keep: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """Two prepares of one new name at once: the one that finishes second says so and keeps the first one's."""
    import mgtune.data.prepare as prepare

    env = _env(keep, tmp_path)
    write = prepare.write_user_graph_dict

    def meanwhile(*args: object, **kwargs: object) -> None:
        (env.data / "new").mkdir()
        (env.data / "new" / "other.txt").write_text("the other run's")
        write(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(prepare, "write_user_graph_dict", meanwhile)
    argv = [a for a in env.prepare(name="new") if a != "--force"]
    assert main(argv) == 2
    assert one_error(capsys.readouterr().err) == (f"{env.data / 'new'}: appeared while this one was being built "
                                                  "(another run?); it is kept; pass --force to replace it")
    assert state(env.data / "new") == {"other.txt": state(env.data / "new")["other.txt"]}
    assert sorted(p.name for p in env.data.iterdir()) == ["keep", "new"]


# ---------------------------------------------------------------- odd but fine: documented successes
def _same_dataset(a: Path, b: Path) -> None:
    for name in ("u_id_mapping.csv", "i_id_mapping.csv", "image_feat.npy"):
        if (a / name).exists() or (b / name).exists():
            assert (a / name).read_bytes() == (b / name).read_bytes(), name
    inter = [next(p for p in d.iterdir() if p.suffix == ".inter").read_bytes() for d in (a, b)]
    assert inter[0] == inter[1]


SUCCESSES: dict[str, Callable[[Env], tuple[list[str], list[str]]]] = {
    "CRLF line ends": lambda env: (env.prepare(name="plain"), env.prepare(
        name="odd", log=env.text("crlf.csv", _log_text(env).replace("\n", "\r\n").encode()))),
    "a UTF-8 byte-order mark": lambda env: (env.prepare(name="plain"), env.prepare(
        name="odd", log=env.text("bom.csv", "\ufeff" + _log_text(env)))),
    "an id list with a BOM": lambda env: (env.prepare(*env.npy(np.ones((30, 3)) * np.arange(30)[:, None]),
                                                      name="plain"),
                                          env.prepare(*env.npy(np.ones((30, 3)) * np.arange(30)[:, None], "g.npy",
                                                               env.text("bom.txt", "\ufeff" + "\n".join(item_ids()))),
                                                      name="odd")),
    "float16 and Fortran-ordered .npy": lambda env: (
        env.prepare(*env.npy(np.arange(120, dtype=np.float32).reshape(30, 4)), name="plain"),
        env.prepare(*env.npy(np.asfortranarray(np.arange(120, dtype=np.float16).reshape(30, 4)), "g.npy"),
                    name="odd")),
}


@pytest.mark.parametrize("name", list(SUCCESSES))
def test_odd_but_fine_inputs_give_the_plain_inputs_dataset(name: str, keep: Path, tmp_path: Path) -> None:
    env = _env(keep, tmp_path)
    plain, odd = SUCCESSES[name](env)
    assert main(plain) == 0 and main(odd) == 0
    _same_dataset(env.data / "plain", env.data / "odd")
    assert not [p for p in os.listdir(env.data) if p.startswith(".")]
